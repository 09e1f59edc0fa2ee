//! Token samplers: penalties, top-k, top-p, min-p, temperature, seeded
//! draws, in llama.cpp's default chain order.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{EngineError, Result};

/// Sampling settings. `temperature <= 0` means greedy (argmax, first
/// maximum wins), which ignores every other setting but the penalties.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerConfig {
    /// Softmax temperature; `<= 0` is greedy.
    pub temperature: f32,
    /// Keep the `top_k` most likely tokens (0 = all).
    pub top_k: usize,
    /// Keep the smallest set whose probability reaches `top_p` (1 = all).
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely (0 =
    /// off).
    pub min_p: f32,
    /// Divide positive (multiply negative) logits of recent tokens by this
    /// (1 = off).
    pub repeat_penalty: f32,
    /// Subtract this from the logits of tokens seen recently (0 = off).
    pub presence_penalty: f32,
    /// Subtract this times the count of each recent token (0 = off).
    pub frequency_penalty: f32,
    /// How many recent tokens the penalties look at.
    pub penalty_last_n: usize,
    /// Seed of the random draws.
    pub seed: u64,
}

impl Default for SamplerConfig {
    /// llama.cpp's defaults: temperature 0.8, top-k 40, top-p 0.95, min-p
    /// 0.05, penalties off, over the last 64 tokens.
    fn default() -> Self {
        SamplerConfig {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            penalty_last_n: 64,
            seed: 0,
        }
    }
}

impl SamplerConfig {
    /// Greedy decoding.
    pub fn greedy() -> Self {
        SamplerConfig { temperature: 0.0, ..Self::default() }
    }

    /// Checks that every setting is in range.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str, v: f32| {
            Err(EngineError::InvalidSampler(format!("{what} = {v}")))
        };
        if !self.temperature.is_finite() {
            return bad("temperature", self.temperature);
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top-p (must be in (0, 1])", self.top_p);
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return bad("min-p (must be in [0, 1])", self.min_p);
        }
        if !(self.repeat_penalty.is_finite() && self.repeat_penalty > 0.0) {
            return bad("repeat penalty (must be > 0)", self.repeat_penalty);
        }
        if !self.presence_penalty.is_finite() {
            return bad("presence penalty", self.presence_penalty);
        }
        if !self.frequency_penalty.is_finite() {
            return bad("frequency penalty", self.frequency_penalty);
        }
        Ok(())
    }
}

/// A sampler: settings, the random state, and the recent tokens the
/// penalties look at.
#[derive(Debug)]
pub struct Sampler {
    cfg: SamplerConfig,
    rng: StdRng,
    recent: Vec<u32>,
}

impl Sampler {
    /// A sampler with `cfg` (checked).
    pub fn new(cfg: SamplerConfig) -> Result<Sampler> {
        cfg.validate()?;
        let rng = StdRng::seed_from_u64(cfg.seed);
        Ok(Sampler { cfg, rng, recent: Vec::new() })
    }

    /// Settings.
    pub fn config(&self) -> &SamplerConfig {
        &self.cfg
    }

    /// Records a token (prompt or generated) for the penalties.
    pub fn accept(&mut self, id: u32) {
        self.recent.push(id);
        let keep = self.cfg.penalty_last_n;
        if self.recent.len() > keep.saturating_mul(2).max(1024) {
            let cut = self.recent.len() - keep;
            self.recent.drain(..cut);
        }
    }

    /// Picks the next token from `logits` (modified in place by the
    /// penalties).
    pub fn sample(&mut self, logits: &mut [f32]) -> Result<u32> {
        if logits.is_empty() {
            return Err(EngineError::InvalidSampler("empty logits".into()));
        }
        if logits.iter().any(|v| v.is_nan()) {
            return Err(EngineError::NonFinite);
        }
        self.apply_penalties(logits);
        if self.cfg.temperature <= 0.0 {
            return Ok(argmax(logits) as u32);
        }
        let mut cand: Vec<(u32, f32)> =
            logits.iter().enumerate().map(|(i, &l)| (i as u32, l)).collect();
        // Sort by logit, descending; ties by lower id.
        let k = match self.cfg.top_k {
            0 => cand.len(),
            k => k.min(cand.len()),
        };
        let by_logit = |a: &(u32, f32), b: &(u32, f32)| {
            b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
        };
        if k < cand.len() {
            cand.select_nth_unstable_by(k - 1, by_logit);
            cand.truncate(k);
        }
        cand.sort_by(by_logit);
        // Probabilities at temperature 1 for top-p and min-p, as llama.cpp
        // applies them before the temperature.
        let probs = softmax(cand.iter().map(|c| c.1), 1.0);
        let mut keep = cand.len();
        if self.cfg.top_p < 1.0 {
            let mut cum = 0.0;
            for (i, p) in probs.iter().enumerate() {
                cum += p;
                if cum >= self.cfg.top_p as f64 {
                    keep = i + 1;
                    break;
                }
            }
        }
        if self.cfg.min_p > 0.0 {
            let floor = probs[0] * self.cfg.min_p as f64;
            let n = probs[..keep].iter().take_while(|&&p| p >= floor).count();
            keep = n.max(1);
        }
        cand.truncate(keep);
        let probs = softmax(cand.iter().map(|c| c.1), self.cfg.temperature);
        let r: f64 = self.rng.random::<f64>();
        let mut cum = 0.0;
        for (c, p) in cand.iter().zip(&probs) {
            cum += p;
            if r < cum {
                return Ok(c.0);
            }
        }
        Ok(cand.last().map(|c| c.0).unwrap_or(0))
    }

    fn apply_penalties(&self, logits: &mut [f32]) {
        let c = &self.cfg;
        if c.penalty_last_n == 0
            || (c.repeat_penalty == 1.0
                && c.presence_penalty == 0.0
                && c.frequency_penalty == 0.0)
        {
            return;
        }
        let start = self.recent.len().saturating_sub(c.penalty_last_n);
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for &t in &self.recent[start..] {
            *counts.entry(t).or_default() += 1;
        }
        for (&t, &n) in &counts {
            let Some(l) = logits.get_mut(t as usize) else { continue };
            if *l <= 0.0 {
                *l *= c.repeat_penalty;
            } else {
                *l /= c.repeat_penalty;
            }
            *l -= n as f32 * c.frequency_penalty + c.presence_penalty;
        }
    }
}

/// Index of the largest value; the first one wins ties.
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

fn softmax(logits: impl Iterator<Item = f32> + Clone, temp: f32) -> Vec<f64> {
    let max = logits.clone().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f64> =
        logits.map(|l| (((l - max) / temp) as f64).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|x| x / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SamplerConfig {
        SamplerConfig { temperature: 1.0, ..SamplerConfig::default() }
    }

    #[test]
    fn greedy_takes_the_first_maximum() {
        let mut s = Sampler::new(SamplerConfig::greedy()).unwrap();
        assert_eq!(s.sample(&mut [1.0, 3.0, 3.0, -1.0]).unwrap(), 1);
    }

    #[test]
    fn top_k_one_is_greedy() {
        let mut s = Sampler::new(SamplerConfig { top_k: 1, ..cfg() }).unwrap();
        for _ in 0..20 {
            assert_eq!(s.sample(&mut [0.5, 0.1, 2.0, 1.9]).unwrap(), 2);
        }
    }

    #[test]
    fn min_p_drops_unlikely_tokens() {
        let c = SamplerConfig { min_p: 0.5, top_k: 0, top_p: 1.0, ..cfg() };
        let mut s = Sampler::new(c).unwrap();
        // p(0) ~ 0.73, p(1) ~ 0.27 < 0.5 * 0.73: only token 0 survives.
        for _ in 0..50 {
            assert_eq!(s.sample(&mut [1.0, 0.0]).unwrap(), 0);
        }
    }

    #[test]
    fn top_p_keeps_the_nucleus() {
        let c = SamplerConfig { top_p: 0.6, top_k: 0, min_p: 0.0, ..cfg() };
        let mut s = Sampler::new(c).unwrap();
        for _ in 0..50 {
            let id = s.sample(&mut [2.0, 1.9, -5.0, -5.0]).unwrap();
            assert!(id < 2, "{id}");
        }
    }

    #[test]
    fn same_seed_same_draws_and_frequencies_follow_probabilities() {
        let c = SamplerConfig { top_k: 0, top_p: 1.0, min_p: 0.0, ..cfg() };
        let draw = |seed| {
            let mut s =
                Sampler::new(SamplerConfig { seed, ..c.clone() }).unwrap();
            (0..4000)
                .map(|_| s.sample(&mut [0.0, (3.0f32).ln()]).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        let ones = draw(7).iter().filter(|&&i| i == 1).count() as f64;
        // p(1) = 3/4; 4000 draws: sd ~ 27.
        assert!((ones - 3000.0).abs() < 150.0, "{ones}");
    }

    #[test]
    fn repeat_penalty_and_presence_penalty() {
        let c = SamplerConfig {
            repeat_penalty: 2.0,
            presence_penalty: 0.5,
            ..SamplerConfig::greedy()
        };
        let mut s = Sampler::new(c).unwrap();
        s.accept(0);
        s.accept(1);
        let mut l = [4.0, -1.0, 1.9];
        assert_eq!(s.sample(&mut l).unwrap(), 2);
        assert_eq!(l, [1.5, -2.5, 1.9]);
    }

    #[test]
    fn bad_settings_and_nan_are_errors() {
        assert!(Sampler::new(SamplerConfig { top_p: 0.0, ..cfg() }).is_err());
        assert!(
            Sampler::new(SamplerConfig { temperature: f32::NAN, ..cfg() })
                .is_err()
        );
        let mut s = Sampler::new(cfg()).unwrap();
        assert!(s.sample(&mut [0.0, f32::NAN]).is_err());
    }
}
