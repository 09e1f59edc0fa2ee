//! End-to-end checks of `ryot generate`, `perplexity` and `synth`: the
//! greedy continuation equals llama.cpp's golden, JSON fields, and clear
//! errors with non-zero exits for bad input.

use std::path::PathBuf;
use std::process::Command;

fn ryot() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ryot"))
}

fn shared() -> PathBuf {
    ryot_paths::shared_dir_for(env!("CARGO_MANIFEST_DIR"))
}

fn stories() -> PathBuf {
    shared().join("models/stories260K-f32.gguf")
}

#[test]
fn greedy_json_matches_the_llama_cpp_golden() {
    let gold: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            shared().join("golden/models/stories260K-f32.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let p = &gold["prompts"][0];
    let out = ryot()
        .args(["generate", "-m"])
        .arg(stories())
        .args(["-p", p["text"].as_str().unwrap(), "-n", "64", "--temp", "0"])
        .args(["--ignore-eos", "--json", "-t", "2", "--ctx", "512"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["prompt_ids"], p["prompt_ids"]);
    assert_eq!(v["generated_ids"], p["greedy_ids"]);
    assert_eq!(v["text"], p["greedy_text"]);
    assert!(v["timings"]["decode_tps"].as_f64().unwrap() > 0.0);
}

#[test]
fn streamed_text_is_the_continuation_only_and_stop_strings_stop() {
    let out = ryot()
        .args(["generate", "-m"])
        .arg(stories())
        .args(["-p", "Once upon a time", "-n", "64", "--temp", "0"])
        .args(["--stop", "Lily"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text, ", there was a little girl named \n");
}

#[test]
fn seeded_sampling_is_reproducible() {
    let run = |seed: &str| {
        let out = ryot()
            .args(["generate", "-m"])
            .arg(stories())
            .args(["-p", "The dog", "-n", "24", "--seed", seed, "--json"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["generated_ids"].clone()
    };
    assert_eq!(run("5"), run("5"));
    assert_ne!(run("5"), run("6"));
}

#[test]
fn bad_input_gives_clear_errors() {
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["-m".into(), "/nonexistent/model.gguf".into()], "not found"),
        (
            vec![
                "-m".into(),
                stories().display().to_string(),
                "-t".into(),
                "0".into(),
            ],
            "--threads",
        ),
        (
            vec![
                "-m".into(),
                stories().display().to_string(),
                "--ctx".into(),
                "4".into(),
            ],
            "--truncate",
        ),
        (
            vec![
                "-m".into(),
                stories().display().to_string(),
                "--top-p".into(),
                "0".into(),
            ],
            "top-p",
        ),
    ];
    for (args, want) in cases {
        let out = ryot()
            .arg("generate")
            .args(&args)
            .args(["-p", "Once upon a time there was"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // A file that is not GGUF.
    let bad = std::env::temp_dir()
        .join(format!("ryot-bad-{}.gguf", std::process::id()));
    std::fs::write(&bad, b"not a model at all").unwrap();
    let out = ryot()
        .args(["generate", "-m"])
        .arg(&bad)
        .args(["-p", "x"])
        .output()
        .unwrap();
    std::fs::remove_file(&bad).unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("GGUF"));
}

#[test]
fn perplexity_json_and_bad_text() {
    let out = ryot()
        .args(["perplexity", "-m"])
        .arg(shared().join("models/stories260K-q8_0.gguf"))
        .arg("-f")
        .arg(shared().join("golden/models/ppl.txt"))
        .args(["--ctx", "128", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["chunks"], 112);
    assert_eq!(v["ctx"], 128);
    assert!(v["ppl"].as_f64().unwrap() > 1.0);
    let bad = std::env::temp_dir()
        .join(format!("ryot-bad-{}.txt", std::process::id()));
    std::fs::write(&bad, b"ok \xff\xfe broken").unwrap();
    let out = ryot()
        .args(["perplexity", "-m"])
        .arg(stories())
        .arg("-f")
        .arg(&bad)
        .output()
        .unwrap();
    std::fs::remove_file(&bad).unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("UTF-8"));
}

#[test]
fn synth_writes_a_loadable_model_atomically() {
    let dir =
        std::env::temp_dir().join(format!("ryot-synth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.gguf");
    let out = ryot()
        .args(["synth", "--shape", "smollm2-135m", "--type", "q4_0", "-o"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = ryot()
        .args(["generate", "-m"])
        .arg(&path)
        .args([
            "-p", "hello", "-n", "3", "--temp", "0", "--json", "--ctx", "64",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["generated_ids"].as_array().unwrap().len(), 3);
    let bad = ryot()
        .args(["synth", "--shape", "nope", "--type", "q4_0", "-o"])
        .arg(dir.join("x.gguf"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}
