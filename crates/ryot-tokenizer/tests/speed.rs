//! Encoding stays fast on long inputs: about 100 KB of mixed text, one
//! 100 KB word and 100 KB of spaces, for each algorithm.

mod common;

use std::time::Instant;

use ryot_gguf::Gguf;
use ryot_tokenizer::Tokenizer;

#[test]
fn hundred_kb_inputs_encode_quickly() {
    let dir = common::shared_dir().join("golden/tokenizer");
    let strings = std::fs::read_to_string(dir.join("strings.jsonl")).unwrap();
    let mut mixed = String::new();
    for line in strings.lines().cycle() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        mixed.push_str(v["text"].as_str().unwrap());
        mixed.push('\n');
        if mixed.len() > 100_000 {
            break;
        }
    }
    let inputs = [
        ("mixed", mixed),
        ("one word", "ab".repeat(50_000)),
        ("spaces", " ".repeat(100_000)),
        ("digits", "1234567890".repeat(10_000)),
    ];
    for name in ["gpt-2", "llama-spm", "bert-bge", "deepseek-llm", "phi-3"] {
        let g = Gguf::open(dir.join(format!("vocab/ggml-vocab-{name}.gguf")))
            .unwrap();
        let tok = Tokenizer::from_gguf(&g).unwrap();
        for (what, text) in &inputs {
            let t = Instant::now();
            let ids = tok.encode(text, true, true);
            let secs = t.elapsed().as_secs_f64();
            println!(
                "{name:<13} {what:<9} {} bytes -> {} ids in {:.1} ms",
                text.len(),
                ids.len(),
                secs * 1e3
            );
            assert!(!ids.is_empty());
            // Generous bound for a shared 2-core machine; typical is far
            // below (see the printed figures).
            assert!(secs < 2.0, "{name} {what}: {secs:.2} s");
        }
    }
}
