//! The generation loop: prefill the prompt in batches, then decode one
//! token at a time, handing each to a callback that may stop the loop.

use std::time::{Duration, Instant};

use ryot_model::{KvCache, Logits, Model};

use crate::error::{EngineError, Result};
use crate::sampler::Sampler;

/// What the token callback asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Keep generating.
    Continue,
    /// Stop after this token (end of generation, stop string, ...).
    Stop,
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// `max_tokens` were generated.
    Length,
    /// The callback asked to stop (EOS, stop string).
    Callback,
    /// The context is full.
    ContextFull,
}

/// Timings and counts of one generation.
#[derive(Clone, Debug)]
pub struct GenerationStats {
    /// Prompt tokens run.
    pub prompt_tokens: usize,
    /// Time spent on the prompt.
    pub prefill: Duration,
    /// Tokens generated.
    pub generated: Vec<u32>,
    /// Time spent generating after the prompt (first token included).
    pub decode: Duration,
    /// Why it stopped.
    pub stop: StopReason,
}

impl GenerationStats {
    /// Prompt tokens per second.
    pub fn prefill_tps(&self) -> f64 {
        rate(self.prompt_tokens, self.prefill)
    }

    /// Generated tokens per second, counting decode steps (the first
    /// token comes from the prefill's logits, so `n - 1` steps).
    pub fn decode_tps(&self) -> f64 {
        rate(self.generated.len().saturating_sub(1), self.decode)
    }
}

fn rate(n: usize, t: Duration) -> f64 {
    if t.is_zero() { 0.0 } else { n as f64 / t.as_secs_f64() }
}

/// Largest batch a prefill call runs at once.
pub const PREFILL_BATCH: usize = 512;

/// Runs `prompt` through `model` after what `cache` holds, in batches of at
/// most `batch` tokens, and returns the last position's logits.
pub fn prefill(
    model: &Model,
    cache: &mut KvCache,
    prompt: &[u32],
    batch: usize,
) -> Result<Vec<f32>> {
    if prompt.is_empty() {
        return Err(EngineError::Invalid("the prompt has no tokens".into()));
    }
    if cache.len() + prompt.len() > cache.n_ctx() {
        return Err(EngineError::PromptTooLong {
            prompt: prompt.len(),
            n_ctx: cache.n_ctx() - cache.len(),
        });
    }
    let batch = batch.max(1);
    let mut last = Vec::new();
    let n_chunks = prompt.len().div_ceil(batch);
    for (i, chunk) in prompt.chunks(batch).enumerate() {
        let want = if i + 1 == n_chunks { Logits::Last } else { Logits::None };
        last = model.forward(chunk, cache, want)?;
    }
    Ok(last)
}

/// Generates up to `max_tokens` tokens after `prompt`, calling `on_token`
/// with each one as soon as it is sampled.
pub fn generate(
    model: &Model,
    cache: &mut KvCache,
    prompt: &[u32],
    max_tokens: usize,
    sampler: &mut Sampler,
    mut on_token: impl FnMut(u32) -> Result<Control>,
) -> Result<GenerationStats> {
    let t0 = Instant::now();
    let mut logits = prefill(model, cache, prompt, PREFILL_BATCH)?;
    let prefill_time = t0.elapsed();
    prompt.iter().for_each(|&t| sampler.accept(t));
    let t1 = Instant::now();
    let mut generated = Vec::new();
    let mut stop = StopReason::Length;
    while generated.len() < max_tokens {
        let id = sampler.sample(&mut logits)?;
        sampler.accept(id);
        generated.push(id);
        if on_token(id)? == Control::Stop {
            stop = StopReason::Callback;
            break;
        }
        if generated.len() == max_tokens {
            break;
        }
        if cache.len() >= cache.n_ctx() {
            stop = StopReason::ContextFull;
            break;
        }
        logits = model.forward(&[id], cache, Logits::Last)?;
    }
    Ok(GenerationStats {
        prompt_tokens: prompt.len(),
        prefill: prefill_time,
        generated,
        decode: t1.elapsed(),
        stop,
    })
}
