//! Times the Q4_K / Q6_K kernels on the 6912 x 2560 shape (the up/gate
//! class of 2-3B models): n = 1, 8, 128 tokens on 1 and 2 threads, hot (one
//! copy of the weights, cache-resident where it fits) and cold (>= 256 MB
//! of copies cycled so every call streams from DRAM), each cold row
//! bracketed by a DRAM read probe with the same thread count.
//!
//! ```text
//! cargo run --release -p ryot-kernels --example kq_speed [-- --quick]
//!     [--type q4_k|q6_k] [--n N] [--threads T] [--mode hot|cold]
//! ```
//!
//! Times are medians of single calls of the full f32 entry point
//! (`matmul_at`: activation quantization included). GB/s counts the
//! weight bytes a call reads, GOP/s counts `2 * m * k * n`.

use std::time::{Duration, Instant};

use ryot_kernels::{SimdLevel, Weights, matmul_at};
use ryot_machine::{DramProbe, cpu_info};
use ryot_pool::ThreadPool;
use ryot_quant::QuantType;

const M: usize = 6912;
const K: usize = 2560;
const COLD_BYTES: usize = 256 << 20;

/// SplitMix64, so the weights are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// Random valid block bytes (every code and packed scale bit random, small
/// f16 super-scales): timing does not depend on the values.
fn random_tensor(rng: &mut Rng, ty: QuantType) -> Vec<u8> {
    let size = ty.block_bytes();
    let mut out = Vec::with_capacity(M * K / 256 * size);
    for _ in 0..M * K / 256 {
        let start = out.len();
        out.extend((0..size).map(|_| rng.next() as u8));
        let scales: &[usize] =
            if ty == QuantType::Q4_K { &[0, 2] } else { &[208] };
        for &at in scales {
            let d = half::f16::from_f32(rng.unit() * 0.01);
            out[start + at..start + at + 2].copy_from_slice(&d.to_le_bytes());
        }
    }
    out
}

/// Median, 10th and 90th percentile seconds of single calls, after a
/// warm-up, until `min_time` and at least 5 calls.
fn time(min_time: Duration, mut f: impl FnMut(usize)) -> (f64, f64, f64) {
    f(0);
    f(1);
    let mut s = Vec::new();
    let start = Instant::now();
    let mut i = 2;
    while s.len() < 5 || (start.elapsed() < min_time && s.len() < 10_000) {
        let t = Instant::now();
        f(i);
        s.push(t.elapsed().as_secs_f64());
        i += 1;
    }
    s.sort_by(f64::total_cmp);
    let at = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.1), at(0.9))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let opt = |name: &str| {
        args.iter().position(|a| a == name).and_then(|i| args.get(i + 1))
    };
    let keep = |name: &str, v: &str| opt(name).is_none_or(|o| o == v);
    let min_time = Duration::from_millis(if quick { 200 } else { 1000 });
    let level = ryot_kernels::isa::level();
    let cpu = cpu_info();
    // k-quants have no AMX variant: that level runs the AVX-512 kernel.
    let runs = level.min(SimdLevel::Avx512);
    println!(
        "cpu: {} | level: {level} (kq kernels run {runs}) | shape {M} x {K}",
        cpu.model
    );
    let pool = ThreadPool::new(2);
    let probe = keep("--mode", "cold").then(|| {
        DramProbe::new(DramProbe::DEFAULT_BYTES).expect("probe buffer")
    });
    let mut rng = Rng(1);
    let x: Vec<f32> = (0..128 * K).map(|_| rng.unit()).collect();
    println!(
        "{:<5} {:>4} {:>3} {:<4} {:>10} {:>17} {:>7} {:>7} {:>13} {:>6}",
        "type",
        "n",
        "thr",
        "mode",
        "median us",
        "p10..p90 us",
        "GB/s",
        "GOP/s",
        "probe GB/s",
        "share"
    );
    for ty in [QuantType::Q4_K, QuantType::Q6_K] {
        if !keep("--type", &ty.name().to_lowercase()) {
            continue;
        }
        let bytes = random_tensor(&mut rng, ty);
        let w = Weights::from_gguf(ty, &bytes, M, K).expect("weights");
        let wbytes = w.stored_bytes();
        let copies = COLD_BYTES.div_ceil(wbytes) + 1;
        let cold: Vec<Weights> = match probe {
            Some(_) => (0..copies).map(|_| w.clone()).collect(),
            None => Vec::new(),
        };
        for n in [1, 8, 128] {
            if !keep("--n", &n.to_string()) {
                continue;
            }
            let mut out = vec![0f32; n * M];
            let xs = &x[..n * K];
            for threads in [1, 2] {
                if !keep("--threads", &threads.to_string()) {
                    continue;
                }
                for mode in ["hot", "cold"] {
                    if !keep("--mode", mode) {
                        continue;
                    }
                    let before = (mode == "cold")
                        .then(|| {
                            probe.as_ref().expect("cold rows have a probe")
                        })
                        .map(|p| p.measure(&pool, threads, 3).gbps_median);
                    let (med, p10, p90) = time(min_time, |i| {
                        let w =
                            if mode == "hot" { &w } else { &cold[i % copies] };
                        matmul_at(level, w, xs, n, &mut out, &pool, threads)
                            .expect("matmul");
                    });
                    let after = probe
                        .as_ref()
                        .filter(|_| before.is_some())
                        .map(|p| p.measure(&pool, threads, 3).gbps_median);
                    let gbps = wbytes as f64 / med / 1e9;
                    let gops = 2.0 * (M * K * n) as f64 / med / 1e9;
                    let (probe_s, share) = match (before, after) {
                        (Some(b), Some(a)) => (
                            format!("{b:.1}/{a:.1}"),
                            format!("{:.0}%", 100.0 * gbps / (0.5 * (a + b))),
                        ),
                        _ => ("-".into(), "-".into()),
                    };
                    println!(
                        "{:<5} {n:>4} {threads:>3} {mode:<4} {:>10.1} {:>17} {gbps:>7.1} {gops:>7.1} {probe_s:>13} {share:>6}",
                        w.type_name(),
                        med * 1e6,
                        format!("{:.1}..{:.1}", p10 * 1e6, p90 * 1e6),
                    );
                }
            }
        }
    }
}
