//! Perplexity as `llama-perplexity` computes it: the text is cut into
//! chunks of `ctx` tokens, each run from an empty cache with its first
//! token replaced by BOS, and only the second half of each chunk scored.

use ryot_model::{KvType, Logits, Model};

use crate::error::{EngineError, Result};

/// The result of [`perplexity`].
#[derive(Clone, Debug, PartialEq)]
pub struct Perplexity {
    /// `exp` of the mean negative log-likelihood.
    pub ppl: f64,
    /// Its standard error (llama.cpp's estimate).
    pub ppl_stderr: f64,
    /// Chunks scored.
    pub chunks: usize,
    /// Context size.
    pub ctx: usize,
    /// Tokens scored.
    pub scored: usize,
}

/// Scores `tokens` (the whole text, tokenized once) with chunks of `ctx`
/// tokens; `bos` replaces each chunk's first token when the model adds
/// BOS. `progress(done, total)` is called after each chunk.
pub fn perplexity(
    model: &Model,
    tokens: &[u32],
    ctx: usize,
    bos: Option<u32>,
    kv: KvType,
    mut progress: impl FnMut(usize, usize),
) -> Result<Perplexity> {
    if ctx < 4 {
        return Err(EngineError::Invalid(format!(
            "context {ctx} is too small for perplexity (at least 4)"
        )));
    }
    let n_chunks = tokens.len() / ctx;
    if n_chunks == 0 || tokens.len() < 2 * ctx {
        return Err(EngineError::TextTooShort { tokens: tokens.len(), ctx });
    }
    let n_vocab = model.config().n_vocab;
    let first = ctx / 2;
    let (mut nll, mut nll2, mut count) = (0.0f64, 0.0f64, 0usize);
    for i in 0..n_chunks {
        let mut chunk = tokens[i * ctx..(i + 1) * ctx].to_vec();
        if let Some(b) = bos {
            chunk[0] = b;
        }
        let mut cache = model.new_cache(ctx, kv)?;
        let logits = model.forward(&chunk, &mut cache, Logits::All)?;
        for j in first..ctx - 1 {
            let row = &logits[j * n_vocab..(j + 1) * n_vocab];
            let v = -log_softmax(row, chunk[j + 1] as usize);
            if !v.is_finite() {
                return Err(EngineError::NonFinite);
            }
            nll += v;
            nll2 += v * v;
            count += 1;
        }
        progress(i + 1, n_chunks);
    }
    let mean = nll / count as f64;
    let ppl = mean.exp();
    let var = nll2 / count as f64 - mean * mean;
    let ppl_stderr = if var > 0.0 && count > 1 {
        (var / (count - 1) as f64).sqrt() * ppl
    } else {
        0.0
    };
    Ok(Perplexity { ppl, ppl_stderr, chunks: n_chunks, ctx, scored: count })
}

/// `log(softmax(row)[tok])`, with the sum of exponentials in f64.
pub fn log_softmax(row: &[f32], tok: usize) -> f64 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = row.iter().map(|&l| ((l - max) as f64).exp()).sum();
    (row[tok] - max) as f64 - sum.ln()
}
