//! `ryot tokenize -m MODEL -p TEXT [--no-parse-special] [--no-bos]
//! [--json]`: the token ids and pieces of a text, with the model's own
//! tokenizer (as llama.cpp's `llama-tokenize`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use ryot_gguf::Gguf;
use ryot_tokenizer::Tokenizer;
use serde_json::json;

use crate::lm::resolve_model;

#[derive(Args, Debug)]
pub struct TokenizeArgs {
    /// The GGUF model (only its tokenizer metadata is read).
    #[arg(short = 'm', long)]
    model: PathBuf,
    /// The text to tokenize.
    #[arg(short = 'p', long)]
    prompt: String,
    /// Treat special-token text such as `<|im_start|>` as plain text.
    #[arg(long)]
    no_parse_special: bool,
    /// Add no BOS/EOS/SEP tokens (by default the vocabulary decides).
    #[arg(long)]
    no_bos: bool,
    /// Print `{"ids": [...], "pieces": [...]}` instead of lines.
    #[arg(long)]
    json: bool,
}

/// A piece made readable: `\n`, `\t`, `\r`, `\\` and other control
/// characters escaped; bytes that are not UTF-8 as `\xNN`.
fn escape_piece(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => {
                    out.push_str(&format!("\\u{{{:x}}}", c as u32));
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

pub fn run(a: TokenizeArgs) -> anyhow::Result<()> {
    let path = resolve_model(&a.model)?;
    let g = Gguf::open(&path)
        .with_context(|| format!("reading {}", path.display()))?;
    let tok = Tokenizer::from_gguf(&g).with_context(|| {
        format!("building the tokenizer of {}", path.display())
    })?;
    let ids = tok.encode(&a.prompt, !a.no_bos, !a.no_parse_special);
    let pieces: Vec<Vec<u8>> =
        ids.iter().map(|&id| tok.token_to_piece(id, true)).collect();
    let mut out = std::io::stdout().lock();
    if a.json {
        let pieces: Vec<String> = pieces
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        writeln!(out, "{}", json!({ "ids": ids, "pieces": pieces }))?;
    } else {
        for (id, piece) in ids.iter().zip(&pieces) {
            writeln!(out, "{id}\t{}", escape_piece(piece))?;
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::escape_piece;

    #[test]
    fn pieces_are_escaped_readably() {
        assert_eq!(escape_piece(b" Hello"), " Hello");
        assert_eq!(escape_piece(b"a\n\tb\\"), "a\\n\\tb\\\\");
        assert_eq!(escape_piece(&[0xE2, 0x96]), "\\xe2\\x96");
        assert_eq!(escape_piece("é\u{7}".as_bytes()), "é\\u{7}");
    }
}
