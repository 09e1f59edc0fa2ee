//! The engine against llama.cpp's goldens: prompt token ids through the
//! GGUF's own tokenizer, and perplexity on `ppl.txt` within 0.5 % of
//! `llama-perplexity`'s figure.

use std::path::PathBuf;

use ryot_engine::perplexity;
use ryot_gguf::Gguf;
use ryot_model::{KvType, LoadOptions, Model};
use ryot_tokenizer::Tokenizer;
use serde_json::Value;

fn shared() -> PathBuf {
    ryot_paths::shared_dir_for(env!("CARGO_MANIFEST_DIR"))
}

fn goldens() -> Vec<(String, Value)> {
    let dir = shared().join("golden/models");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().to_string();
            let v = serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
                .unwrap();
            (stem, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 12, "expected a golden per model file");
    out
}

#[test]
fn prompt_ids_equal_llama_cpp() {
    for (stem, gold) in goldens() {
        let g =
            Gguf::open(shared().join(format!("models/{stem}.gguf"))).unwrap();
        let tok = Tokenizer::from_gguf(&g).unwrap();
        assert_eq!(
            tok.add_bos(),
            gold["add_bos"].as_bool().unwrap(),
            "{stem}: add_bos"
        );
        for p in gold["prompts"].as_array().unwrap() {
            let want: Vec<u32> = p["prompt_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            let text = p["text"].as_str().unwrap();
            // llama_tokenize(add_special = true, parse_special = false).
            let got = tok.encode(text, true, false);
            assert_eq!(got, want, "{stem}/{}", p["name"]);
        }
    }
}

#[test]
fn perplexity_within_half_a_percent_of_llama_cpp() {
    let text = std::fs::read_to_string(shared().join("golden/models/ppl.txt"))
        .unwrap();
    let mut checked = 0;
    for (stem, gold) in goldens() {
        let Some(p) = gold.get("perplexity") else { continue };
        let want = p["ppl"].as_f64().unwrap();
        let ctx = p["ctx_size"].as_u64().unwrap() as usize;
        let g =
            Gguf::open(shared().join(format!("models/{stem}.gguf"))).unwrap();
        let tok = Tokenizer::from_gguf(&g).unwrap();
        let model = Model::load(&g, LoadOptions::default(), 2).unwrap();
        let tokens = tok.encode(&text, true, false);
        let bos = if tok.add_bos() { tok.bos() } else { None };
        let r = perplexity(&model, &tokens, ctx, bos, KvType::F16, |_, _| {})
            .unwrap();
        assert_eq!(r.chunks as u64, p["chunks"].as_u64().unwrap(), "{stem}");
        let rel = (r.ppl - want).abs() / want;
        eprintln!(
            "{stem}: ppl {:.4} vs llama.cpp {want} ({:.3} %)",
            r.ppl,
            rel * 100.0
        );
        assert!(rel < 0.005, "{stem}: ppl {} vs {want}", r.ppl);
        checked += 1;
    }
    assert!(checked >= 6, "perplexity goldens found: {checked}");
}
