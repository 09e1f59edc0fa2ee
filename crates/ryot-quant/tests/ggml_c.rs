//! K-quant quantizers against ggml's C reference on 512 super-blocks per
//! type (the golden files have 16).
//!
//! `tests/ggml_c_check.py` ran ggml's `quantize_row_q*_K_ref` on synthetic
//! data and stored a short sha256 per row in `tests/data/ggml_c_hashes.json`;
//! this test rebuilds the same data and compares row by row.

use ryot_quant::{QuantType, quantize_row};
use serde_json::Value;
use sha2::{Digest, Sha256};

struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn seed_of(name: &str) -> u64 {
    name.bytes().fold(0u64, |h, c| h.wrapping_mul(131).wrapping_add(c as u64))
}

fn frac24(bits: u64) -> f64 {
    (bits as i64 - (1 << 23)) as f64 / (1u64 << 23) as f64
}

/// `floats` of gguf_py_check.py.
fn mixed(rng: &mut SplitMix64, n: usize) -> Vec<f32> {
    let mut vals = Vec::with_capacity(n);
    let (mut scale, mut prev) = (1.0f64, 0.0f64);
    for i in 0..n {
        let u = rng.next();
        if i % 32 == 0 {
            scale = 2f64.powi((u & 15) as i32 - 8);
        }
        let sel = (u >> 4) & 0xff;
        let v = if sel < 12 {
            0.0
        } else if sel < 20 {
            prev
        } else {
            frac24(u >> 40) * scale
        };
        vals.push(v as f32);
        prev = v;
    }
    vals
}

/// `gen` of ggml_c_check.py.
fn generate(variant: &str, rng: &mut SplitMix64, n: usize) -> Vec<f32> {
    if variant == "mixed" {
        return mixed(rng, n);
    }
    let mut out = Vec::with_capacity(n);
    for _ in (0..n).step_by(16) {
        let u = rng.next();
        let mode = u & 7;
        let scale = 2f64.powi(((u >> 3) & 31) as i32 - 16);
        let c = frac24((u >> 40) & 0xff_ffff) * scale;
        for _ in 0..16 {
            let r = rng.next();
            let a = frac24(r >> 40);
            let b = frac24((r >> 16) & 0xff_ffff);
            let v = match (variant, mode) {
                ("spiky", _) => a * 2f64.powi((r & 15) as i32 - 8),
                ("bell", _) => (a + b) * 0.5 * scale,
                (_, 0) => 0.0,
                (_, 1) => c,
                (_, 2) => a * 2f64.powi(-64),
                (_, 3) => {
                    if r & 1 != 0 {
                        c
                    } else {
                        -c
                    }
                }
                (_, 4) => {
                    if r & 3 == 0 {
                        c
                    } else {
                        0.0
                    }
                }
                _ => a * scale,
            };
            out.push(v as f32);
        }
    }
    out
}

#[test]
fn k_quants_match_ggml_c_row_by_row() {
    let path =
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/ggml_c_hashes.json");
    let text =
        std::fs::read_to_string(path).expect("tests/data/ggml_c_hashes.json");
    let v: Value = serde_json::from_str(&text).unwrap();
    let rows = v["rows"].as_u64().unwrap() as usize;
    let k = v["k"].as_u64().unwrap() as usize;
    let seed = v["seed"].as_u64().unwrap();
    let variants = v["variants"].as_object().unwrap();
    assert_eq!(variants.len(), 4);
    let mut mismatches = Vec::new();
    let mut checked = 0;
    for (variant, per_type) in variants {
        let mut rng = SplitMix64(seed ^ seed_of(variant));
        let x = generate(variant, &mut rng, rows * k);
        for (name, hashes) in per_type.as_object().unwrap() {
            let ty = QuantType::from_name(name).unwrap();
            let mut out = vec![0u8; ty.row_bytes(k).unwrap()];
            for r in 0..rows {
                quantize_row(ty, &x[r * k..(r + 1) * k], &mut out).unwrap();
                let h: String = Sha256::digest(&out)[..8]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                if h != hashes[r] {
                    mismatches.push(format!("{variant} {name} row {r}"));
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 4 * 5 * rows);
    // The port keeps ggml's float operation order, so no row may differ.
    assert!(
        mismatches.is_empty(),
        "{} rows differ from ggml: {mismatches:?}",
        mismatches.len()
    );
}
