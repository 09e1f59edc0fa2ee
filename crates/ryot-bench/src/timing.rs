//! Repeated timing of a closure: warm-up, then calls until a minimum time
//! and count, reporting the median and the spread.

use std::time::{Duration, Instant};

/// What one measurement found.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    /// Median seconds per call.
    pub median_s: f64,
    /// 10th percentile seconds per call.
    pub p10_s: f64,
    /// 90th percentile seconds per call.
    pub p90_s: f64,
    /// Timed calls.
    pub iters: usize,
}

/// Calls `f(i)` `warmup` times untimed, then times single calls until at
/// least `min_time` has passed and `min_iters` calls were made (at most
/// `max_iters`).
pub fn measure(
    warmup: usize,
    min_iters: usize,
    max_iters: usize,
    min_time: Duration,
    mut f: impl FnMut(usize),
) -> Stats {
    for i in 0..warmup {
        f(i);
    }
    let mut samples = Vec::with_capacity(min_iters.max(16));
    let start = Instant::now();
    let mut i = warmup;
    while samples.len() < max_iters
        && (samples.len() < min_iters || start.elapsed() < min_time)
    {
        let t = Instant::now();
        f(i);
        samples.push(t.elapsed().as_secs_f64());
        i += 1;
    }
    samples.sort_by(f64::total_cmp);
    let at =
        |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Stats {
        median_s: at(0.5),
        p10_s: at(0.1),
        p90_s: at(0.9),
        iters: samples.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_orders() {
        let mut calls = 0;
        let s = measure(2, 5, 100, Duration::ZERO, |_| calls += 1);
        assert_eq!(s.iters, 5);
        assert_eq!(calls, 7);
        assert!(s.p10_s <= s.median_s && s.median_s <= s.p90_s);
    }
}
