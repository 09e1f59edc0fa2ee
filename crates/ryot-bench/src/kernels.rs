//! `ryot bench kernels`: every weight type x shape x batch x threads x
//! cache state, each row bracketed by DRAM read-bandwidth probes and
//! compared with an f32 GEMM from the `gemm` crate at the same shape.
//!
//! "cold" rows cycle through enough copies of the weights that every call
//! streams at least [`COLD_BYTES`] from DRAM; "hot" rows reuse one copy.
//! `weight_gbps` is bytes of weights read per second, and `pct_of_dram` is
//! that as a share of the mean of the probes taken just before and just
//! after the row, with the same thread count. Rows whose two probes differ
//! by more than 15 % are flagged (`probe_disagree`): on machines with
//! bimodal bandwidth the share is then uncertain.

use std::time::Duration;

use ryot_kernels::{SimdLevel, Weights, matmul_at};
use ryot_machine::{DramProbe, cpu_info};
use ryot_pool::ThreadPool;
use serde::Serialize;

use crate::error::BenchError;
use crate::timing::{Stats, measure};
use crate::wtype::{WType, synthetic_weights};

/// Bytes a cold measurement streams per call cycle, at least.
pub const COLD_BYTES: usize = 256 << 20;

/// The shapes (M x K): BitNet-2B class, SmolLM2, Qwen 0.5B.
pub const SHAPES: [(usize, usize); 6] = [
    (2560, 6912),
    (6912, 2560),
    (4096, 4096),
    (576, 1536),
    (1536, 576),
    (896, 4864),
];

/// What to sweep.
#[derive(Clone, Debug)]
pub struct Config {
    /// Shapes (M x K).
    pub shapes: Vec<(usize, usize)>,
    /// Batch sizes (tokens).
    pub ns: Vec<usize>,
    /// Thread counts.
    pub threads: Vec<usize>,
    /// Weight types.
    pub types: Vec<WType>,
    /// Cache states: `false` = cold, `true` = hot.
    pub hot: Vec<bool>,
    /// SIMD level.
    pub level: SimdLevel,
    /// Minimum timed duration per row.
    pub min_time: Duration,
    /// Probe buffer size.
    pub probe_bytes: usize,
    /// Measure the f32 `gemm` crate baseline.
    pub baseline: bool,
}

impl Config {
    /// The full sweep of the issue.
    pub fn full(level: SimdLevel) -> Self {
        Config {
            shapes: SHAPES.to_vec(),
            ns: vec![1, 8, 128],
            threads: vec![1, 2],
            types: WType::ALL.to_vec(),
            hot: vec![false, true],
            level,
            min_time: Duration::from_millis(120),
            probe_bytes: 512 << 20,
            baseline: true,
        }
    }

    /// A subset that finishes in well under a minute.
    pub fn quick(level: SimdLevel) -> Self {
        Config {
            shapes: vec![(6912, 2560), (2560, 6912), (1536, 576)],
            ns: vec![1, 8],
            min_time: Duration::from_millis(25),
            probe_bytes: 256 << 20,
            ..Config::full(level)
        }
    }

    /// Number of result rows this sweep produces.
    pub fn rows(&self) -> usize {
        self.shapes.len()
            * self.ns.len()
            * self.threads.len()
            * self.types.len()
            * self.hot.len()
    }
}

/// The machine a report was measured on.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// CPU model string.
    pub cpu: String,
    /// The SIMD level the kernels ran at.
    pub isa: String,
    /// The most threads used.
    pub threads: usize,
    /// Median DRAM read bandwidth over all probes at `threads` threads.
    pub dram_read_gbps: f64,
    /// Median probe bandwidth for each thread count (`"1"`, `"2"`).
    pub dram_read_gbps_by_threads: std::collections::BTreeMap<String, f64>,
    /// CPU features seen.
    pub features: Vec<String>,
    /// Cache sizes in bytes (L1d, L2, L3), when known.
    pub caches: [Option<usize>; 3],
    /// Same-run int8 peak of one core at `isa` (GOP/s), see `peak`.
    pub int8_peak_gops_per_core: Option<f64>,
    /// Same-run AMX int8 tile peak of one core (GOP/s), at the `amx` level.
    pub amx_int8_peak_gops_per_core: Option<f64>,
}

/// One measured row.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// `gemv` (n = 1) or `gemm`.
    pub op: String,
    /// Weight type name.
    pub wtype: String,
    /// Rows.
    pub m: usize,
    /// Columns.
    pub k: usize,
    /// Tokens.
    pub n: usize,
    /// Threads.
    pub threads: usize,
    /// `cold` or `hot`.
    pub cache: String,
    /// The SIMD level the kernel ran at (an AVX-512 variant not yet
    /// validated on AVX-512 hardware runs, and is reported, as avx2).
    pub isa: String,
    /// Median microseconds per call.
    pub median_us: f64,
    /// 10th and 90th percentile microseconds per call.
    pub p10_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// Timed calls.
    pub iters: usize,
    /// Operations per second (2*m*k*n), in G.
    pub gflops: f64,
    /// Weight bytes read per second, in GB/s.
    pub weight_gbps: f64,
    /// Weight bytes per call.
    pub weight_bytes: usize,
    /// `weight_gbps` as a percentage of the bracketing probes' mean.
    pub pct_of_dram: f64,
    /// Probe before the row (GB/s, same thread count).
    pub probe_before_gbps: f64,
    /// Probe after the row.
    pub probe_after_gbps: f64,
    /// The two probes differ by more than 15 %.
    pub probe_disagree: bool,
    /// f32 `gemm`-crate time at the same shape, threads and cache state,
    /// divided by this row's time.
    pub speedup_vs_f32: Option<f64>,
    /// `gflops` as a percentage of the same-run int8 peak times
    /// `threads` (integer kernels only).
    pub pct_of_int8_peak: Option<f64>,
}

/// A finished report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Where it was measured.
    pub machine: Machine,
    /// The f32 baseline rows (`wtype` = `f32_gemm_crate`).
    pub baseline: Vec<Row>,
    /// One row per configuration.
    pub results: Vec<Row>,
    /// Type and shape pairs the format cannot hold.
    pub skipped: Vec<Skipped>,
}

/// A weight type left out for a shape it cannot hold.
#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    /// Weight type name.
    pub wtype: String,
    /// Rows.
    pub m: usize,
    /// Columns.
    pub k: usize,
    /// Why.
    pub reason: String,
}

/// Progress callback: `(rows done, rows total, what runs now)`.
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize, &str);

/// Runs the sweep.
pub fn run(cfg: &Config, progress: Progress<'_>) -> Result<Report, BenchError> {
    if !cfg.level.is_available() {
        return Err(BenchError::Config(format!(
            "SIMD level {} is not available on this CPU",
            cfg.level
        )));
    }
    let max_threads = cfg.threads.iter().copied().max().unwrap_or(1).max(1);
    let pool = ThreadPool::new(max_threads);
    let probe = DramProbe::new(cfg.probe_bytes)
        .map_err(|e| BenchError::Probe(e.to_string()))?;
    let mut probes: std::collections::BTreeMap<usize, Vec<f64>> =
        Default::default();
    let mut probe_at = |threads: usize| {
        let g = probe.measure(&pool, threads, 2).gbps_best;
        probes.entry(threads).or_default().push(g);
        g
    };
    progress(0, cfg.rows(), "measuring the int8 peak");
    let peak = crate::peak::int8_gops_per_core(cfg.level);
    let amx_peak = crate::peak::amx_int8_gops_per_core(cfg.level);
    let total = cfg.rows();
    let mut results = Vec::with_capacity(total);
    let mut baseline = Vec::new();
    let mut skipped = Vec::new();
    let mut done = 0;
    for (si, &(m, k)) in cfg.shapes.iter().enumerate() {
        let mut f32_times = std::collections::HashMap::new();
        if cfg.baseline {
            progress(done, total, &format!("{m}x{k} f32 gemm-crate baseline"));
            let w = synthetic_weights(m, k, false, si as u64);
            let copies = copies_for(m * k * 4);
            let ws: Vec<Vec<f32>> = (0..copies).map(|_| w.clone()).collect();
            drop(w);
            for &n in &cfg.ns {
                let x = synthetic_weights(n, k, false, 99);
                let mut out = vec![0f32; n * m];
                for &threads in &cfg.threads {
                    for &hot in &cfg.hot {
                        let before = probe_at(threads);
                        let stats = timed(cfg, hot, ws.len(), |i| {
                            let wi =
                                if hot { &ws[0] } else { &ws[i % ws.len()] };
                            f32_gemm(wi, &x, &mut out, m, k, n, threads);
                        });
                        let after = probe_at(threads);
                        f32_times.insert((n, threads, hot), stats.median_s);
                        baseline.push(row(
                            "f32_gemm_crate",
                            m,
                            k,
                            n,
                            threads,
                            hot,
                            "gemm-crate",
                            &stats,
                            m * k * 4,
                            before,
                            after,
                            None,
                        ));
                    }
                }
            }
        }
        for &ty in &cfg.types {
            if let Some(reason) = ty.unsupported_reason(k) {
                skipped.push(Skipped { wtype: ty.name().into(), m, k, reason });
                done += cfg.ns.len() * cfg.threads.len() * cfg.hot.len();
                continue;
            }
            progress(done, total, &format!("{m}x{k} {} build", ty.name()));
            let w = synthetic_weights(m, k, ty.is_ternary(), si as u64);
            let first = ty.build(&w, m, k)?;
            drop(w);
            let bytes = first.stored_bytes();
            let mut ws: Vec<Weights> = vec![first];
            for _ in 1..copies_for(bytes) {
                ws.push(ws[0].clone());
            }
            for &n in &cfg.ns {
                let x = synthetic_weights(n, k, false, 7 + n as u64);
                let mut out = vec![0f32; n * m];
                for &threads in &cfg.threads {
                    for &hot in &cfg.hot {
                        progress(
                            done,
                            total,
                            &format!(
                                "{m}x{k} {} n={n} t={threads} {}",
                                ty.name(),
                                if hot { "hot" } else { "cold" }
                            ),
                        );
                        let mut err = None;
                        let before = probe_at(threads);
                        let stats = timed(cfg, hot, ws.len(), |i| {
                            let wi =
                                if hot { &ws[0] } else { &ws[i % ws.len()] };
                            if let Err(e) = matmul_at(
                                cfg.level, wi, &x, n, &mut out, &pool, threads,
                            ) {
                                err = Some(e);
                            }
                        });
                        if let Some(e) = err {
                            return Err(e.into());
                        }
                        let after = probe_at(threads);
                        let speedup = f32_times
                            .get(&(n, threads, hot))
                            .map(|t| t / stats.median_s);
                        let mut r = row(
                            ty.name(),
                            m,
                            k,
                            n,
                            threads,
                            hot,
                            ws[0].kernel_level(cfg.level, n).name(),
                            &stats,
                            bytes,
                            before,
                            after,
                            speedup,
                        );
                        if ty.is_integer() {
                            r.pct_of_int8_peak = peak.map(|p| {
                                100.0 * r.gflops / (p * threads as f64)
                            });
                        }
                        results.push(r);
                        done += 1;
                    }
                }
            }
        }
    }
    progress(done, total, "done");
    let info = cpu_info();
    let median = |v: &Vec<f64>| {
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let by_threads: std::collections::BTreeMap<String, f64> =
        probes.iter().map(|(t, v)| (t.to_string(), median(v))).collect();
    let machine = Machine {
        cpu: info.model.clone(),
        isa: cfg.level.name().to_string(),
        threads: max_threads,
        dram_read_gbps: probes.get(&max_threads).map(median).unwrap_or(0.0),
        dram_read_gbps_by_threads: by_threads,
        features: info.features.iter().map(|s| s.to_string()).collect(),
        caches: [info.l1d_bytes, info.l2_bytes, info.l3_bytes],
        int8_peak_gops_per_core: peak,
        amx_int8_peak_gops_per_core: amx_peak,
    };
    Ok(Report { machine, baseline, results, skipped })
}

/// Copies needed so that cycling them streams at least [`COLD_BYTES`].
fn copies_for(bytes: usize) -> usize {
    COLD_BYTES.div_ceil(bytes.max(1)).max(2)
}

fn timed(
    cfg: &Config,
    hot: bool,
    copies: usize,
    f: impl FnMut(usize),
) -> Stats {
    // Cold rows warm up through every copy once so page faults are not
    // timed; hot rows need only a few calls.
    let warmup = if hot { 3 } else { copies.min(4096) };
    measure(warmup, 5, 1_000_000, cfg.min_time, f)
}

#[allow(clippy::too_many_arguments)]
fn row(
    wtype: &str,
    m: usize,
    k: usize,
    n: usize,
    threads: usize,
    hot: bool,
    isa: &str,
    s: &Stats,
    weight_bytes: usize,
    before: f64,
    after: f64,
    speedup_vs_f32: Option<f64>,
) -> Row {
    let probe = (before + after) / 2.0;
    let weight_gbps = weight_bytes as f64 / s.median_s / 1e9;
    Row {
        op: if n == 1 { "gemv" } else { "gemm" }.into(),
        wtype: wtype.into(),
        m,
        k,
        n,
        threads,
        cache: if hot { "hot" } else { "cold" }.into(),
        isa: isa.into(),
        median_us: s.median_s * 1e6,
        p10_us: s.p10_s * 1e6,
        p90_us: s.p90_s * 1e6,
        iters: s.iters,
        gflops: 2.0 * (m * k * n) as f64 / s.median_s / 1e9,
        weight_gbps,
        weight_bytes,
        pct_of_dram: 100.0 * weight_gbps / probe,
        probe_before_gbps: before,
        probe_after_gbps: after,
        probe_disagree: (before - after).abs() > 0.15 * before.max(after),
        speedup_vs_f32,
        pct_of_int8_peak: None,
    }
}

/// `out[t][row] = sum_k w[row][k] * x[t][k]` with the `gemm` crate.
fn f32_gemm(
    w: &[f32],
    x: &[f32],
    out: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
    threads: usize,
) {
    assert!(w.len() == m * k && x.len() == n * k && out.len() == n * m);
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: dst is m x n with column stride m (out[t*m + row]), lhs is
    // m x k row-major (stride k between rows), rhs is k x n with column
    // stride k (x[t*k + kk]); the lengths are asserted above, so every
    // index gemm computes from these strides is in bounds.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            m as isize,
            1,
            false,
            w.as_ptr(),
            1,
            k as isize,
            x.as_ptr(),
            k as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_gemm_matches_naive() {
        let (m, k, n) = (5, 7, 3);
        let w = synthetic_weights(m, k, false, 1);
        let x = synthetic_weights(n, k, false, 2);
        let mut out = vec![0f32; n * m];
        f32_gemm(&w, &x, &mut out, m, k, n, 1);
        for t in 0..n {
            for r in 0..m {
                let e: f32 = (0..k).map(|c| w[r * k + c] * x[t * k + c]).sum();
                assert!((out[t * m + r] - e).abs() < 1e-5, "{t} {r}");
            }
        }
    }

    #[test]
    fn cold_copies_stream_enough() {
        assert!(copies_for(1 << 20) * (1 << 20) >= COLD_BYTES);
        assert_eq!(copies_for(1 << 30), 2);
    }
}
