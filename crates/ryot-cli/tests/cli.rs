//! End-to-end checks of the `ryot` binary: output shapes and exit codes.

use std::path::PathBuf;
use std::process::Command;

fn ryot() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ryot"))
}

fn shared() -> PathBuf {
    ryot_paths::shared_dir_for(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn info_json_lists_every_tensor() {
    let model = shared().join("models/stories260K-q4_0.gguf");
    let out = ryot().arg("info").arg(&model).arg("--json").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], 3);
    let tensors = v["tensors"].as_array().unwrap();
    assert_eq!(tensors.len() as u64, v["total_tensors"].as_u64().unwrap());
    assert!(tensors.iter().any(|t| t["type"] == "Q4_0"));
    let sum: u64 = tensors.iter().map(|t| t["bytes"].as_u64().unwrap()).sum();
    assert_eq!(sum, v["total_bytes"].as_u64().unwrap());
}

#[test]
fn info_rejects_a_file_that_is_not_gguf() {
    let path = std::env::temp_dir()
        .join(format!("ryot-not-gguf-{}", std::process::id()));
    std::fs::write(&path, b"hello, this is not a model").unwrap();
    let out = ryot().arg("info").arg(&path).output().unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a GGUF file"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_isa_and_bad_shape_are_errors_not_panics() {
    let out =
        ryot().args(["cpu"]).env("RYOT_FORCE_ISA", "sse9").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out =
        ryot().args(["bench", "kernels", "--shapes", "12xZ"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad K"));
}

#[test]
fn bench_json_has_the_issue_fields() {
    let path = std::env::temp_dir()
        .join(format!("ryot-bench-{}.json", std::process::id()));
    let out = ryot()
        .args(["bench", "kernels", "--shapes", "64x256", "--n", "1,2"])
        .args(["--threads", "1", "--cache", "hot", "--types", "t2p,q8_0"])
        .arg("--json")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    std::fs::remove_file(&path).unwrap();
    for key in ["cpu", "isa", "threads", "dram_read_gbps"] {
        assert!(!v["machine"][key].is_null(), "machine.{key}");
    }
    let rows = v["results"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for r in rows {
        for key in [
            "op",
            "wtype",
            "m",
            "k",
            "n",
            "threads",
            "cache",
            "isa",
            "median_us",
            "gflops",
            "weight_gbps",
            "pct_of_dram",
            "speedup_vs_f32",
        ] {
            assert!(r.get(key).is_some(), "{key} missing in {r}");
        }
        assert!(r["median_us"].as_f64().unwrap() > 0.0);
    }
}
