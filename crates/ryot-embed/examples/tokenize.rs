//! Prints the token ids of each text, as `tests/check_tokenize.py` needs.
//!
//! Usage: `tokenize MODEL_DIR < texts.jsonl` (one `{"text": ...}` per
//! line); writes one JSON line `{"ids": [...], "truncated": bool}` per
//! text.

use std::io::{BufRead, Write};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: tokenize MODEL_DIR")?;
    let model = ryot_embed::Model::load(dir.as_ref())?;
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout());
    for line in stdin.lock().lines() {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        let text = v["text"].as_str().ok_or("no text field")?;
        let t = model.tokenizer().encode(text)?;
        let j = serde_json::json!({ "ids": t.ids, "truncated": t.truncated });
        writeln!(out, "{j}")?;
    }
    Ok(())
}
