//! `ryot generate`: stream a continuation of a prompt.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Args;
use ryot_engine::{Control, SamplerConfig, generate};
use ryot_tokenizer::Utf8Stream;
use serde_json::json;

use crate::lm::ModelArgs;

#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The prompt. Special-token text in it (e.g. `<|im_start|>`) is
    /// parsed; BOS is added if the model says so.
    #[arg(short = 'p', long)]
    pub prompt: String,
    /// Tokens to generate.
    #[arg(short = 'n', long = "n-predict", default_value_t = 128)]
    pub n_predict: usize,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Context size in tokens (default: the model's, at most 4096).
    #[arg(short = 'c', long)]
    pub ctx: Option<usize>,
    /// If the prompt does not fit, keep its last tokens instead of failing.
    #[arg(long)]
    pub truncate: bool,
    /// Stop when the output contains this text (repeatable).
    #[arg(long = "stop")]
    pub stop: Vec<String>,
    /// Keep generating past end-of-generation tokens.
    #[arg(long)]
    pub ignore_eos: bool,
    /// Print one JSON object (prompt_ids, generated_ids, text, timings)
    /// instead of streaming text.
    #[arg(long)]
    pub json: bool,
}

/// Sampler flags (llama.cpp's names and defaults).
#[derive(Args, Debug, Clone)]
pub struct SamplingArgs {
    /// Temperature; 0 is greedy.
    #[arg(long = "temp", default_value_t = 0.8)]
    pub temp: f32,
    /// Top-k (0 = off).
    #[arg(long, default_value_t = 40)]
    pub top_k: usize,
    /// Top-p (1 = off).
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    /// Min-p (0 = off).
    #[arg(long, default_value_t = 0.05)]
    pub min_p: f32,
    /// Repetition penalty (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// Presence penalty (0 = off).
    #[arg(long, default_value_t = 0.0)]
    pub presence_penalty: f32,
    /// Frequency penalty (0 = off).
    #[arg(long, default_value_t = 0.0)]
    pub frequency_penalty: f32,
    /// Tokens the penalties look back over.
    #[arg(long, default_value_t = 64)]
    pub repeat_last_n: usize,
    /// Random seed (default: from the clock; printed with --json).
    #[arg(short = 's', long)]
    pub seed: Option<u64>,
}

impl SamplingArgs {
    pub fn config(&self) -> SamplerConfig {
        let seed = self.seed.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
        SamplerConfig {
            temperature: self.temp,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            presence_penalty: self.presence_penalty,
            frequency_penalty: self.frequency_penalty,
            penalty_last_n: self.repeat_last_n,
            seed,
        }
    }
}

/// Holds back output that might be the start of a stop string.
pub struct StopFilter {
    stops: Vec<String>,
    pending: String,
    /// Whether a stop string was seen.
    pub hit: bool,
}

impl StopFilter {
    pub fn new(stops: Vec<String>) -> Self {
        let stops = stops.into_iter().filter(|s| !s.is_empty()).collect();
        StopFilter { stops, pending: String::new(), hit: false }
    }

    /// Adds text; returns what can be shown now.
    pub fn push(&mut self, text: &str) -> String {
        self.pending.push_str(text);
        if let Some(at) =
            self.stops.iter().filter_map(|s| self.pending.find(s)).min()
        {
            self.hit = true;
            let out = self.pending[..at].to_string();
            self.pending.clear();
            return out;
        }
        // Keep the longest suffix that is a prefix of a stop string.
        let mut keep = 0;
        for s in &self.stops {
            for (i, _) in s.char_indices().skip(1) {
                if self.pending.ends_with(&s[..i]) {
                    keep = keep.max(i);
                }
            }
        }
        let cut = self.pending.len() - keep;
        let out = self.pending[..cut].to_string();
        self.pending.drain(..cut);
        out
    }

    /// Whatever is held back, at the end.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }
}

pub fn run(a: GenerateArgs) -> anyhow::Result<()> {
    let sampler_cfg = a.sampling.config();
    let seed = sampler_cfg.seed;
    let mut sampler = ryot_engine::Sampler::new(sampler_cfg)?;
    let lm = a.model.load()?;
    let (model, tok) = (&lm.model, &lm.tokenizer);
    let n_ctx = a.ctx.unwrap_or_else(|| {
        let train = model.config().n_ctx_train;
        if train == 0 { 4096 } else { train.min(4096) }
    });
    if n_ctx == 0 {
        bail!("--ctx must be at least 1");
    }
    let mut prompt = tok.encode(&a.prompt, true, true);
    if prompt.is_empty() {
        bail!("the prompt is empty and the model adds no BOS token");
    }
    if prompt.len() >= n_ctx {
        if !a.truncate {
            bail!(
                "the prompt has {} tokens, more than the context of {n_ctx} \
                 leaves room for (use --ctx, or --truncate to keep its end)",
                prompt.len()
            );
        }
        let keep = n_ctx / 2;
        prompt.drain(..prompt.len() - keep);
        eprintln!("ryot: prompt truncated to its last {keep} tokens");
    }
    let mut cache = model.new_cache(n_ctx, lm.kv)?;
    let mut utf8 = Utf8Stream::new();
    let mut stop = StopFilter::new(a.stop.clone());
    let mut text = String::new();
    let mut out = std::io::stdout().lock();
    let json = a.json;
    let ignore_eos = a.ignore_eos;
    let stats =
        generate(model, &mut cache, &prompt, a.n_predict, &mut sampler, |id| {
            if !ignore_eos && tok.is_eog(id) {
                return Ok(Control::Stop);
            }
            let piece = utf8.push(&tok.token_to_piece(id, false));
            let shown = stop.push(&piece);
            text.push_str(&shown);
            if !json {
                out.write_all(shown.as_bytes())
                    .and_then(|_| out.flush())
                    .map_err(|e| ryot_engine::EngineError::Io {
                        path: "stdout".into(),
                        source: e,
                    })?;
            }
            Ok(if stop.hit { Control::Stop } else { Control::Continue })
        });
    let stats = match stats {
        Err(ryot_engine::EngineError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            return Ok(());
        }
        other => other.context("generating")?,
    };
    if !stop.hit {
        let rest = utf8.finish();
        let tail = stop.push(&rest) + &stop.finish();
        text.push_str(&tail);
        if !json {
            out.write_all(tail.as_bytes())?;
        }
    }
    let t = json!({
        "prompt_tokens": stats.prompt_tokens,
        "generated_tokens": stats.generated.len(),
        "prefill_ms": stats.prefill.as_secs_f64() * 1e3,
        "decode_ms": stats.decode.as_secs_f64() * 1e3,
        "prefill_tps": stats.prefill_tps(),
        "decode_tps": stats.decode_tps(),
    });
    if json {
        let v = json!({
            "prompt_ids": prompt,
            "generated_ids": stats.generated,
            "text": text,
            "stop_reason": format!("{:?}", stats.stop).to_lowercase(),
            "seed": seed,
            "timings": t,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        writeln!(out)?;
        eprintln!(
            "ryot: prompt {} tokens at {:.1} tok/s, generated {} tokens at \
             {:.1} tok/s",
            stats.prompt_tokens,
            stats.prefill_tps(),
            stats.generated.len(),
            stats.decode_tps()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::StopFilter;

    #[test]
    fn stop_filter_holds_back_partial_matches() {
        let mut f = StopFilter::new(vec!["END".into()]);
        assert_eq!(f.push("abc E"), "abc ");
        assert_eq!(f.push("N"), "");
        assert_eq!(f.push("X"), "ENX");
        assert!(!f.hit);
        assert_eq!(f.push("yy EN"), "yy ");
        assert_eq!(f.push("D tail"), "");
        assert!(f.hit);
    }
}
