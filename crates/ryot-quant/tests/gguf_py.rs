//! Cross-check with gguf-py on synthetic data beyond the golden files.
//!
//! `tests/gguf_py_check.py` made `tests/data/gguf_py_hashes.json` by running
//! gguf-py on data from a splitmix64 stream; this test rebuilds the same
//! data and checks that ryot-quant's outputs hash the same:
//! * dequantization of random block bytes (f16/bf16 fields forced finite)
//!   for all 14 GGUF types, bit for bit;
//! * quantization of random floats for the 9 types gguf-py can quantize.

use ryot_quant::{QuantType, dequantize, quantize};
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

fn type_seed(seed: u64, name: &str) -> u64 {
    let h = name
        .bytes()
        .fold(0u64, |h, c| h.wrapping_mul(131).wrapping_add(c as u64));
    seed ^ h
}

/// Byte offsets of the f16/bf16 fields in one block (ggml-common.h).
fn f16_fields(ty: QuantType) -> &'static [usize] {
    use QuantType::*;
    match ty {
        Q4_1 | Q5_1 | Q4_K | Q5_K => &[0, 2],
        Q2_K => &[80, 82],
        Q3_K => &[108],
        Q6_K => &[208],
        TQ1_0 => &[52],
        TQ2_0 => &[64],
        _ => &[0],
    }
}

fn block_bytes(ty: QuantType, rng: &mut SplitMix64, n: usize) -> Vec<u8> {
    let mut out: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
    let bf16 = ty == QuantType::BF16;
    for b in (0..n).step_by(ty.block_bytes()) {
        for &off in f16_fields(ty) {
            let mut h = u16::from_le_bytes([out[b + off], out[b + off + 1]]);
            let all_ones = if bf16 {
                (h >> 7) & 0xff == 0xff
            } else {
                (h >> 10) & 0x1f == 0x1f
            };
            if all_ones {
                h &= !0x4000;
            }
            out[b + off..b + off + 2].copy_from_slice(&h.to_le_bytes());
        }
    }
    out
}

fn floats(rng: &mut SplitMix64, n: usize) -> Vec<f32> {
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
            ((u >> 40) as i64 - (1 << 23)) as f64 / (1u64 << 23) as f64 * scale
        };
        vals.push(v as f32);
        prev = v;
    }
    vals
}

fn sha_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn matches_gguf_py_on_synthetic_data() {
    let path =
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/gguf_py_hashes.json");
    let text =
        std::fs::read_to_string(path).expect("tests/data/gguf_py_hashes.json");
    let v: Value = serde_json::from_str(&text).unwrap();
    let rows = v["rows"].as_u64().unwrap() as usize;
    let k = v["k"].as_u64().unwrap() as usize;
    let seed = v["seed"].as_u64().unwrap();
    let types = v["types"].as_object().unwrap();
    assert_eq!(types.len(), 14);
    let mut quantized = 0;
    for (name, entry) in types {
        let ty = QuantType::from_name(name).unwrap();
        let mut rng = SplitMix64(type_seed(seed, &format!("dequant:{name}")));
        let n = ty.tensor_bytes(rows, k).unwrap();
        let raw = block_bytes(ty, &mut rng, n);
        let mut y = vec![0.0f32; rows * k];
        dequantize(ty, &raw, rows, k, &mut y).unwrap();
        let bytes: Vec<u8> = y.iter().flat_map(|f| f.to_le_bytes()).collect();
        assert_eq!(sha_hex(&bytes), entry["dequant_sha256"], "{name} dequant");

        if let Some(want) = entry.get("quantize_sha256") {
            let mut rng =
                SplitMix64(type_seed(seed, &format!("quantize:{name}")));
            let x = floats(&mut rng, rows * k);
            let q = quantize(ty, &x, rows, k).unwrap();
            assert_eq!(&sha_hex(&q), want, "{name} quantize");
            quantized += 1;
        }
    }
    assert_eq!(quantized, 9);
}
