//! End-to-end checks of `ryot tokenize` against llama.cpp's goldens.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn ryot() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ryot"))
}

fn tokenizer_dir() -> PathBuf {
    ryot_paths::shared_dir_for(env!("CARGO_MANIFEST_DIR"))
        .join("golden/tokenizer")
}

/// The golden record of `text` for vocab `name`.
fn golden(name: &str, text: &str) -> Value {
    let all =
        std::fs::read_to_string(tokenizer_dir().join(format!("{name}.jsonl")))
            .unwrap();
    all.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["text"] == text)
        .unwrap()
}

fn run_json(vocab: &str, text: &str, flags: &[&str]) -> Value {
    let model = tokenizer_dir().join(format!("vocab/ggml-vocab-{vocab}.gguf"));
    let out = ryot()
        .arg("tokenize")
        .arg("-m")
        .arg(&model)
        .args(["-p", text, "--json"])
        .args(flags)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn json_ids_match_llama_cpp_in_each_mode() {
    for (vocab, text) in [
        ("llama-spm", "<s>hello</s>"),
        ("phi-3", "<|im_start|>user\nhi<|im_end|>"),
        ("deepseek-llm", "Hello, world!"),
        ("bert-bge", "[CLS] hello [SEP]"),
    ] {
        let g = golden(vocab, text);
        for (flags, mode) in [
            (&[][..], "parse1_add1"),
            (&["--no-parse-special"][..], "parse0_add1"),
            (&["--no-bos"][..], "parse1_add0"),
            (&["--no-bos", "--no-parse-special"][..], "parse0_add0"),
        ] {
            let v = run_json(vocab, text, flags);
            assert_eq!(v["ids"], g[mode]["ids"], "{vocab} {text:?} {mode}");
            assert_eq!(
                v["pieces"].as_array().unwrap().len(),
                v["ids"].as_array().unwrap().len()
            );
        }
    }
}

#[test]
fn text_output_is_one_escaped_line_per_token() {
    let model = tokenizer_dir().join("vocab/ggml-vocab-llama-spm.gguf");
    let out = ryot()
        .arg("tokenize")
        .arg("-m")
        .arg(&model)
        .args(["-p", "<s>hi\nthere"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let v = run_json("llama-spm", "<s>hi\nthere", &[]);
    assert_eq!(lines.len(), v["ids"].as_array().unwrap().len());
    assert_eq!(lines[0], "1\t<s>");
    assert_eq!(lines[1], "1\t<s>");
    assert!(lines.contains(&"13\t\\n"), "{text}");
    for l in &lines {
        let (id, _) = l.split_once('\t').unwrap();
        id.parse::<u32>().unwrap();
    }
}

#[test]
fn bad_model_is_an_error_not_a_panic() {
    let out = ryot()
        .args(["tokenize", "-m", "/nonexistent/model.gguf", "-p", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not found"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
