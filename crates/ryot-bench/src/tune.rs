//! `ryot tune`: measures the kernels' tunable parameters on this CPU and
//! picks the fastest (see `ryot_kernels::tune`).
//!
//! - `t2p_gemv_panels` (1, 2, 4) x `t2p_prefetch_lines` (0 to 256):
//!   the cold GEMV time summed over the shapes, on all threads; the
//!   smallest sum wins.
//! - `min_bytes_per_thread`: hot GEMVs of growing size on one and on all
//!   threads; the threshold is half the smallest size from which more
//!   threads are at least 10 % faster.

use std::time::Duration;

use ryot_kernels::tune::{self, TuneFile, TuneParams};
use ryot_kernels::{SimdLevel, Weights, matmul_at};
use ryot_machine::{DramProbe, cpu_info};
use ryot_pool::ThreadPool;
use serde_json::json;

use crate::error::BenchError;
use crate::kernels::COLD_BYTES;
use crate::timing::measure;
use crate::wtype::{WType, synthetic_weights};

/// What the tuner found.
#[derive(Debug)]
pub struct Outcome {
    /// The file to persist.
    pub file: TuneFile,
    /// DRAM read GB/s on 1 thread and on all threads.
    pub dram_gbps: (f64, f64),
}

/// Times candidates for `shapes` (M x K) at `level` on `threads` threads.
pub fn run(
    level: SimdLevel,
    threads: usize,
    shapes: &[(usize, usize)],
    progress: &mut dyn FnMut(&str),
) -> Result<Outcome, BenchError> {
    let threads = threads.max(1);
    let pool = ThreadPool::new(threads);
    progress("probing DRAM bandwidth");
    let probe = DramProbe::new(512 << 20)
        .map_err(|e| BenchError::Probe(e.to_string()))?;
    let dram = (
        probe.measure(&pool, 1, 3).gbps_best,
        probe.measure(&pool, threads, 3).gbps_best,
    );
    let base = TuneParams::defaults(level);
    let mut panel_times = Vec::new();
    let mut built = Vec::new();
    for &(m, k) in shapes {
        progress(&format!("building {m}x{k}"));
        let w = WType::T2p.build(&synthetic_weights(m, k, true, 1), m, k)?;
        let copies = COLD_BYTES.div_ceil(w.stored_bytes()).max(2);
        built.push(((m, k), vec![w; copies]));
    }
    for panels in [1, 2, 4] {
        for prefetch in [0, 16, 32, 64, 128, 192, 256] {
            progress(&format!(
                "t2p GEMV, {panels} panel(s), prefetch {prefetch}"
            ));
            tune::set_override(Some(TuneParams {
                t2p_gemv_panels: panels,
                t2p_prefetch_lines: prefetch,
                ..base
            }));
            let mut total = 0.0;
            for ((_, k), ws) in &built {
                total += time_gemv(level, ws, *k, &pool, threads, false)?;
            }
            panel_times.push((panels, prefetch, total));
        }
    }
    let (best_panels, best_prefetch) = panel_times
        .iter()
        .min_by(|a, b| a.2.total_cmp(&b.2))
        .map(|p| (p.0, p.1))
        .unwrap_or((base.t2p_gemv_panels, base.t2p_prefetch_lines));
    let mut size_rows = Vec::new();
    let mut min_bytes = base.min_bytes_per_thread;
    if threads > 1 {
        let mut threshold = None;
        for m in [32usize, 64, 128, 256, 512, 1024, 2048] {
            let k = 2048;
            progress(&format!("thread split, {m}x{k}"));
            let w =
                WType::T2p.build(&synthetic_weights(m, k, true, 2), m, k)?;
            let bytes = w.stored_bytes();
            tune::set_override(Some(TuneParams {
                t2p_gemv_panels: best_panels,
                t2p_prefetch_lines: best_prefetch,
                min_bytes_per_thread: 1,
            }));
            let ws = vec![w];
            let one = time_gemv(level, &ws, k, &pool, 1, true)?;
            let all = time_gemv(level, &ws, k, &pool, threads, true)?;
            size_rows.push(json!({"m": m, "k": k, "bytes": bytes,
                "us_1_thread": one * 1e6, "us_all_threads": all * 1e6}));
            if threshold.is_none() && all < 0.9 * one {
                threshold = Some(bytes);
            }
        }
        min_bytes = threshold.map(|b| b / 2).unwrap_or(usize::MAX / 2);
    }
    tune::set_override(None);
    let params = TuneParams {
        t2p_gemv_panels: best_panels,
        t2p_prefetch_lines: best_prefetch,
        min_bytes_per_thread: min_bytes,
    };
    let file = TuneFile {
        cpu_key: cpu_info().cache_key(),
        isa: level.name().to_string(),
        params,
        measurements: json!({
            "threads": threads,
            "dram_read_gbps_1_thread": dram.0,
            "dram_read_gbps_all_threads": dram.1,
            "t2p_gemv_panels_seconds": panel_times
                .iter()
                .map(|(p, f, t)| json!({"panels": p, "prefetch_lines": f, "sum_median_s": t}))
                .collect::<Vec<_>>(),
            "thread_split": size_rows,
        }),
    };
    Ok(Outcome { file, dram_gbps: dram })
}

fn time_gemv(
    level: SimdLevel,
    ws: &[Weights],
    k: usize,
    pool: &ThreadPool,
    threads: usize,
    hot: bool,
) -> Result<f64, BenchError> {
    let x = synthetic_weights(1, k, false, 5);
    let mut out = vec![0f32; ws[0].m()];
    let mut err = None;
    let warm = if hot { 3 } else { ws.len() };
    let s = measure(warm, 5, 100_000, Duration::from_millis(40), |i| {
        let w = if hot { &ws[0] } else { &ws[i % ws.len()] };
        if let Err(e) = matmul_at(level, w, &x, 1, &mut out, pool, threads) {
            err = Some(e);
        }
    });
    match err {
        Some(e) => Err(e.into()),
        None => Ok(s.median_s),
    }
}
