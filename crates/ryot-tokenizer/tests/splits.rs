//! Pre-tokenizers without a vocab file here (llama-bpe, qwen2, smollm):
//! Ryot's splits must equal Python `regex` running llama.cpp's patterns
//! (`tests/data/splits.json`, made by `tests/gen_splits.py`).

use ryot_tokenizer::pre_tokenize;
use serde_json::Value;

#[test]
fn splits_match_python_regex() {
    let data: Value = serde_json::from_str(include_str!("data/splits.json"))
        .expect("splits.json");
    let texts = data["texts"].as_array().unwrap();
    let mut failures = 0;
    for (pre, all) in data["splits"].as_object().unwrap() {
        let mut ok = 0;
        for (text, want) in texts.iter().zip(all.as_array().unwrap()) {
            let text = text.as_str().unwrap();
            let want: Vec<&str> = want
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w.as_str().unwrap())
                .collect();
            let got = pre_tokenize(pre, text).unwrap();
            if got == want {
                ok += 1;
            } else {
                failures += 1;
                println!(
                    "FAIL {pre} {text:?}\n  got  {got:?}\n  want {want:?}"
                );
            }
        }
        println!("{pre}: {ok}/{} texts split as Python regex", texts.len());
    }
    assert_eq!(failures, 0);
}
