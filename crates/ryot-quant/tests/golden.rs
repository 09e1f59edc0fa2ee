//! Golden tests against `shared/golden/quants`: bytes made by llama.cpp's C
//! quantizer (and bitnet.cpp for I2_S), floats made by gguf-py.
//!
//! The folder is `$RYOT_SHARED/golden/quants`, or else
//! `<workspace root>/../shared/golden/quants`. If it is missing, every test
//! here fails: a silent pass would hide that nothing was checked.

use std::path::PathBuf;
use std::sync::OnceLock;

use ryot_quant::{QuantType, act, dequantize, i2s, quantize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// K-quant blocks allowed to differ from llama.cpp's bytes. The port keeps
/// llama.cpp's float order exactly, so none may differ.
const MAX_KQUANT_BLOCK_MISMATCHES: usize = 0;

fn golden_dir() -> PathBuf {
    let shared = match std::env::var_os("RYOT_SHARED") {
        Some(s) => PathBuf::from(s),
        None => {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
        }
    };
    let dir = shared.join("golden/quants");
    assert!(
        dir.join("manifest.json").is_file(),
        "golden data not found at {} (set RYOT_SHARED to the shared folder \
         that holds golden/quants/manifest.json)",
        dir.display()
    );
    dir
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a golden file after checking its size and sha256.
fn read_checked(name: &str, bytes: u64, sha256: &str) -> Vec<u8> {
    let path = golden_dir().join(name);
    let data = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert_eq!(data.len() as u64, bytes, "{name}: size differs from manifest");
    assert_eq!(hex(&Sha256::digest(&data)), sha256, "{name}: sha256 differs");
    data
}

fn json(name: &str) -> &'static Value {
    static MANIFEST: OnceLock<Value> = OnceLock::new();
    static I2S: OnceLock<Value> = OnceLock::new();
    let cell = if name == "manifest.json" { &MANIFEST } else { &I2S };
    cell.get_or_init(|| {
        let text = std::fs::read_to_string(golden_dir().join(name)).unwrap();
        serde_json::from_str(&text).unwrap()
    })
}

fn file_entry(entry: &Value) -> Vec<u8> {
    read_checked(
        entry["file"].as_str().unwrap(),
        entry["bytes"].as_u64().unwrap(),
        entry["sha256"].as_str().unwrap(),
    )
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn usize_of(v: &Value) -> usize {
    v.as_u64().unwrap() as usize
}

/// Flat indices where two float arrays differ in their bits.
fn bit_diffs(a: &[f32], b: &[f32]) -> Vec<usize> {
    assert_eq!(a.len(), b.len());
    (0..a.len()).filter(|&i| a[i].to_bits() != b[i].to_bits()).collect()
}

fn is_kquant(t: QuantType) -> bool {
    use QuantType::*;
    matches!(t, Q2_K | Q3_K | Q4_K | Q5_K | Q6_K)
}

#[test]
fn manifest_covers_the_fourteen_types() {
    let types = json("manifest.json")["types"].as_array().unwrap();
    assert_eq!(types.len(), 14);
    for t in types {
        let ty = QuantType::from_name(t["type"].as_str().unwrap()).unwrap();
        assert_eq!(ty.ggml_id() as u64, t["ggml_type_id"].as_u64().unwrap());
        assert_eq!(ty.block_elems(), usize_of(&t["block_elements"]));
        assert_eq!(ty.block_bytes(), usize_of(&t["block_bytes"]));
    }
}

#[test]
fn dequantize_matches_gguf_py_bit_for_bit() {
    for t in json("manifest.json")["types"].as_array().unwrap() {
        let ty = QuantType::from_name(t["type"].as_str().unwrap()).unwrap();
        let (rows, k) = (usize_of(&t["shape"][0]), usize_of(&t["shape"][1]));
        let blocks = file_entry(&t["files"]["blocks.bin"]);
        let want = f32s(&file_entry(&t["files"]["dequant.f32.bin"]));
        let mut got = vec![0.0f32; rows * k];
        dequantize(ty, &blocks, rows, k, &mut got).unwrap();
        let diffs = bit_diffs(&got, &want);
        // gguf-py's dequant equals ggml's C to_float bit for bit
        // (manifest: dequant_equals_ggml_to_float), -0.0 included.
        assert_eq!(t["dequant_equals_ggml_to_float"], true);
        assert!(
            diffs.is_empty(),
            "{ty}: {} values differ, first at {}: got {} want {}",
            diffs.len(),
            diffs[0],
            got[diffs[0]],
            want[diffs[0]]
        );
        // The same through the per-row API, from a misaligned buffer.
        let mut shifted = vec![0u8; blocks.len() + 1];
        shifted[1..].copy_from_slice(&blocks);
        let rb = ty.row_bytes(k).unwrap();
        for r in 0..rows {
            let mut row = vec![0.0f32; k];
            let src = &shifted[1 + r * rb..1 + (r + 1) * rb];
            ryot_quant::dequantize_row(ty, src, &mut row).unwrap();
            assert!(bit_diffs(&row, &want[r * k..(r + 1) * k]).is_empty());
        }
    }
}

#[test]
fn quantize_matches_llama_cpp_byte_for_byte() {
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for t in json("manifest.json")["types"].as_array().unwrap() {
        let ty = QuantType::from_name(t["type"].as_str().unwrap()).unwrap();
        let (rows, k) = (usize_of(&t["shape"][0]), usize_of(&t["shape"][1]));
        let input = f32s(&file_entry(&t["files"]["input.f32.bin"]));
        let want = file_entry(&t["files"]["blocks.bin"]);
        let got = quantize(ty, &input, rows, k).unwrap();
        assert_eq!(got.len(), want.len(), "{ty}: tensor size");
        let bb = ty.block_bytes();
        let bad: Vec<usize> = (0..want.len() / bb)
            .filter(|&b| {
                got[b * bb..(b + 1) * bb] != want[b * bb..(b + 1) * bb]
            })
            .collect();
        report.push(format!(
            "{ty}: {} of {} blocks differ",
            bad.len(),
            want.len() / bb
        ));
        let allowed =
            if is_kquant(ty) { MAX_KQUANT_BLOCK_MISMATCHES } else { 0 };
        if bad.len() > allowed {
            failures.push(format!(
                "{ty}: blocks {bad:?} differ (allowed {allowed})"
            ));
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------- I2_S

fn i2s_case(name: &str) -> &'static Value {
    &json("I2_S.json")["cases"][name]
}

fn i2s_file(case: &Value, file: &str) -> Vec<u8> {
    file_entry(&case["files"][file])
}

fn shape(case: &Value) -> (usize, usize) {
    (usize_of(&case["shape"][0]), usize_of(&case["shape"][1]))
}

const CASES: [&str; 2] = ["4x512", "3x256"];

#[test]
fn i2s_manifest_files_are_intact() {
    let bitnet = json("manifest.json")["bitnet_types"].as_array().unwrap();
    assert_eq!(bitnet[0]["type"], "I2_S");
    let files = bitnet[0]["files"].as_array().unwrap();
    assert!(files.len() >= 15, "expected I2_S.json + 14 data files");
    for f in files {
        file_entry(f);
    }
}

#[test]
fn i2s_dequantize_is_bit_exact() {
    for name in CASES {
        let case = i2s_case(name);
        let (m, k) = shape(case);
        let blocks = i2s_file(case, "blocks.bin");
        assert_eq!(blocks.len(), i2s::tensor_bytes(m, k).unwrap());
        assert_eq!(blocks.len(), usize_of(&case["tensor_bytes"]));
        let want = f32s(&i2s_file(case, "dequant.f32.bin"));
        let mut got = vec![0.0f32; m * k];
        dequantize(QuantType::I2_S, &blocks, m, k, &mut got).unwrap();
        assert!(bit_diffs(&got, &want).is_empty(), "{name}");
        let scale = i2s::scale(&blocks, m, k).unwrap();
        assert_eq!(hex(&scale.to_le_bytes()), case["scale_hex_le"], "{name}");
        // Code counts from the json.
        let mut counts = [0u64; 4];
        for i in 0..m * k {
            counts[i2s::code(&blocks[..m * k / 4], i) as usize] += 1;
        }
        let want_counts: Vec<u64> = case["code_counts_0_1_2_3"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(counts.to_vec(), want_counts, "{name}");
    }
}

#[test]
fn i2s_quantize_reproduces_bitnet_bytes() {
    for name in CASES {
        let case = i2s_case(name);
        let (m, k) = shape(case);
        let head = m * k / 4 + 4;
        let blocks = i2s_file(case, "blocks.bin");
        let dequant = f32s(&i2s_file(case, "dequant.f32.bin"));
        let input = f32s(&i2s_file(case, "input.f32.bin"));

        // quantize_i2_s(dequant) == blocks (the tail is zero in both).
        let got = quantize(QuantType::I2_S, &dequant, m, k).unwrap();
        assert_eq!(got[..head], blocks[..head], "{name}: from dequant");
        assert_eq!(got, blocks, "{name}: tail bytes");

        // absmean ternarization of the raw input, then quantize.
        let (tern, scale) = i2s::ternarize_absmean(&input);
        assert_eq!(
            hex(&scale.to_le_bytes()),
            case["absmean"]["mean_abs_f32_hex_le"]
        );
        assert!(
            tern.iter().zip(&dequant).all(|(a, b)| a == b),
            "{name}: ternary"
        );
        let got = i2s::quantize(&tern, m, k).unwrap();
        assert_eq!(got[..head], blocks[..head], "{name}: from input");

        // quantize_i2_s applied to raw weights: sign * max|x|.
        let raw = i2s_file(case, "raw.blocks.bin");
        let got = i2s::quantize(&input, m, k).unwrap();
        assert_eq!(got[..head], raw[..head], "{name}: raw");
        let raw_scale = i2s::scale(&raw, m, k).unwrap();
        assert_eq!(hex(&raw_scale.to_le_bytes()), case["raw"]["scale_hex_le"]);
    }
}

#[test]
fn i2s_activation_quantization_matches() {
    for name in CASES {
        let case = i2s_case(name);
        let (_, k) = shape(case);
        let act_f = f32s(&i2s_file(case, "act.f32.bin"));
        let want: Vec<i8> =
            i2s_file(case, "act.i8.bin").iter().map(|&b| b as i8).collect();
        let mm = &case["matmul"];
        for t in 0..usize_of(&mm["n_tokens"]) {
            let mut q = vec![0i8; k];
            let (s, sum) =
                act::quantize_row_i8_s(&act_f[t * k..(t + 1) * k], &mut q);
            assert_eq!(q, want[t * k..(t + 1) * k], "{name} token {t}");
            assert_eq!(hex(&s.to_le_bytes()), mm["act_scale_hex_le"][t]);
            assert_eq!(sum as i64, mm["act_sum"][t].as_i64().unwrap());
        }
    }
}

#[test]
fn i2s_matmul_is_bit_exact() {
    for name in CASES {
        let case = i2s_case(name);
        let (m, k) = shape(case);
        let mm = &case["matmul"];
        let n = usize_of(&mm["n_tokens"]);
        let blocks = i2s_file(case, "blocks.bin");
        let act_f = f32s(&i2s_file(case, "act.f32.bin"));
        let want = f32s(&i2s_file(case, "matmul.f32.bin"));
        let mut out = vec![0.0f32; n * m];
        i2s::reference_matmul(&blocks, m, k, &act_f, n, &mut out).unwrap();
        assert!(
            bit_diffs(&out, &want).is_empty(),
            "{name}: {out:?} vs {want:?}"
        );
        // The intermediate kernel sums, [token][row] as in the json.
        for t in 0..n {
            let mut q = vec![0i8; k];
            act::quantize_row_i8_s(&act_f[t * k..(t + 1) * k], &mut q);
            for r in 0..m {
                let codes = &blocks[r * k / 4..(r + 1) * k / 4];
                let sumi = i2s::kernel_sumi(codes, &q).unwrap();
                let want = mm["sumi_kernel"][t * m + r].as_i64().unwrap();
                assert_eq!(sumi as i64, want, "{name} t{t} r{r}");
                let dot = sumi as i64 - mm["act_sum"][t].as_i64().unwrap();
                assert_eq!(dot, mm["ternary_dot"][t][r].as_i64().unwrap());
            }
        }
    }
}

#[test]
fn i2s_wraparound_example_matches_json() {
    let w = &json("I2_S.json")["wraparound_example"];
    let k = 4096;
    let mut tensor = vec![0xAAu8; k / 4];
    tensor.extend_from_slice(&1.0f32.to_le_bytes());
    tensor.extend_from_slice(&[0u8; 28]);
    let q = vec![127i8; k];
    let sumi = i2s::kernel_sumi(&tensor[..k / 4], &q).unwrap();
    assert_eq!(sumi as i64, w["avx2_kernel_sumi"].as_i64().unwrap());
    let mut out = [0.0f32];
    i2s::reference_matmul(&tensor, 1, k, &vec![1.0; k], 1, &mut out).unwrap();
    assert_eq!(hex(&out[0].to_le_bytes()), w["out_reference_kernel_hex_le"]);
}
