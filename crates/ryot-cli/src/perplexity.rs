//! `ryot perplexity`: llama-perplexity's score of a text file.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde_json::json;

use crate::lm::ModelArgs;
use crate::output::bar;

#[derive(Args, Debug)]
pub struct PerplexityArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The text file to score (UTF-8).
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// Tokens per chunk.
    #[arg(short = 'c', long = "ctx", default_value_t = 512)]
    pub ctx: usize,
    /// Print `{"ppl", "ppl_stderr", "chunks", "ctx"}` as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: PerplexityArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&a.file)
        .with_context(|| format!("reading {}", a.file.display()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{} is not valid UTF-8 (first bad byte at offset {})",
            a.file.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
    let lm = a.model.load()?;
    let tokens = lm.tokenizer.encode(&text, true, false);
    let bos = if lm.tokenizer.add_bos() { lm.tokenizer.bos() } else { None };
    let n_chunks = (tokens.len() / a.ctx.max(1)) as u64;
    let pb = bar(n_chunks);
    let r = ryot_engine::perplexity(
        &lm.model,
        &tokens,
        a.ctx,
        bos,
        lm.kv,
        |done, _| pb.set_position(done as u64),
    )?;
    pb.finish_and_clear();
    let mut out = std::io::stdout().lock();
    if a.json {
        let v = json!({
            "ppl": r.ppl, "ppl_stderr": r.ppl_stderr,
            "chunks": r.chunks, "ctx": r.ctx, "tokens_scored": r.scored,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        writeln!(
            out,
            "{} tokens, {} chunks of {}, {} scored",
            tokens.len(),
            r.chunks,
            r.ctx,
            r.scored
        )?;
        writeln!(out, "perplexity: {:.4} +/- {:.5}", r.ppl, r.ppl_stderr)?;
    }
    Ok(())
}
