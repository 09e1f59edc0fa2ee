//! Timing of the F32 / F16 / Q8_0 / Q4_0 GEMV and GEMM at each SIMD level,
//! hot (one copy of the weights, cache-resident where it fits) and cold
//! (cycling through copies totalling >= 256 MB, so every call streams from
//! DRAM). Cold rows are bracketed by a DRAM read probe with the same thread
//! count (`ryot_machine::DramProbe`), and the weight GB/s is reported as a
//! share of the probes' mean.
//!
//! ```text
//! cargo run --release -p ryot-kernels --example dense_speed -- \
//!     [--types f32,f16,q8_0,q4_0] [--n 1,8,128] [--threads 1,2] [--levels avx2,avx512]
//! ```
//!
//! Every call is a full `matmul_at` (activation conversion/quantization
//! included). Times are medians over calls repeated for at least 0.3 s.
//! On a shared machine the wall time of a 1-thread row includes time the
//! scheduler gave to other processes, so 1-thread rows also show the
//! calling thread's CPU time per call (`cpu us`, Linux
//! `CLOCK_THREAD_CPUTIME_ID`) and the GOP/s it implies.

use std::time::Instant;

use ryot_kernels::dense::{DenseF16, DenseF32};
use ryot_kernels::q8::{Q4_0Panels, Q8_0Panels};
use ryot_kernels::{SimdLevel, Weights, matmul_at};
use ryot_machine::DramProbe;
use ryot_pool::ThreadPool;

const M: usize = 6912;
const K: usize = 2560;
const COLD_BYTES: usize = 256 << 20;

fn arg_list(args: &[String], name: &str, default: &str) -> Vec<String> {
    let v = args
        .iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |s| s.as_str());
    v.split(',').map(str::to_string).collect()
}

fn weights(ty: &str, w: &[f32]) -> Weights {
    match ty {
        "f32" => Weights::F32(DenseF32::from_f32(w, M, K).unwrap()),
        "f16" => Weights::F16(DenseF16::from_f32(w, M, K).unwrap()),
        "q8_0" => Weights::Q8_0(Q8_0Panels::quantize(w, M, K).unwrap()),
        "q4_0" => Weights::Q4_0(Q4_0Panels::quantize(w, M, K).unwrap()),
        other => panic!("unknown type {other} (f32, f16, q8_0, q4_0)"),
    }
}

#[cfg(target_os = "linux")]
fn thread_cpu_seconds() -> f64 {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec to a valid pointer.
    unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu_seconds() -> f64 {
    f64::NAN
}

/// Median seconds per call of `f(i)` for call index i, repeated for at
/// least `min_s` seconds and 3 calls, after one warm-up call.
/// Also returns the calling thread's median CPU seconds per call.
fn time(min_s: f64, mut f: impl FnMut(usize)) -> (f64, f64) {
    f(0);
    let start = Instant::now();
    let mut samples = Vec::new();
    let mut cpu = Vec::new();
    let mut i = 1;
    while samples.len() < 3 || start.elapsed().as_secs_f64() < min_s {
        let t = Instant::now();
        let c = thread_cpu_seconds();
        f(i);
        cpu.push(thread_cpu_seconds() - c);
        samples.push(t.elapsed().as_secs_f64());
        i += 1;
    }
    samples.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    (samples[samples.len() / 2], cpu[cpu.len() / 2])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let types = arg_list(&args, "--types", "f32,f16,q8_0,q4_0");
    let ns: Vec<usize> = arg_list(&args, "--n", "1,8,128")
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let threads: Vec<usize> = arg_list(&args, "--threads", "1,2")
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let levels: Vec<SimdLevel> = arg_list(&args, "--levels", "avx2,avx512")
        .iter()
        .filter_map(|s| SimdLevel::parse(s))
        .filter(|l| l.is_available())
        .collect();
    let cpu = ryot_machine::cpu_info();
    println!("cpu: {cpu:?}");
    println!("shape {M}x{K}; levels {levels:?}");
    let pool = ThreadPool::new(threads.iter().copied().max().unwrap_or(1));
    let probe = DramProbe::new(DramProbe::DEFAULT_BYTES).unwrap();

    // Deterministic weights, roughly normal.
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let wf: Vec<f32> = (0..M * K).map(|_| next() + next() + next()).collect();
    println!(
        "{:5} {:6} {:4} {:2} {:4} {:>9} {:>7} {:>8} {:>15}",
        "type",
        "level",
        "n",
        "t",
        "",
        "us/call",
        "GB/s",
        "GOP/s",
        "probe GB/s, %"
    );
    for ty in &types {
        let w = weights(ty, &wf);
        let bytes = w.stored_bytes();
        let copies: Vec<Weights> =
            (0..COLD_BYTES.div_ceil(bytes) + 1).map(|_| w.clone()).collect();
        for &n in &ns {
            let x: Vec<f32> = (0..n * K).map(|_| next() * 4.0).collect();
            let mut out = vec![0f32; n * M];
            for &level in &levels {
                for &t in &threads {
                    for cold in [false, true] {
                        let before = cold
                            .then(|| probe.measure(&pool, t, 3).gbps_median);
                        let min_s = if n >= 128 { 1.0 } else { 0.3 };
                        let (dt, cpu) = time(min_s, |i| {
                            let ww = if cold {
                                &copies[i % copies.len()]
                            } else {
                                &w
                            };
                            matmul_at(level, ww, &x, n, &mut out, &pool, t)
                                .unwrap();
                        });
                        let gbs = bytes as f64 / dt / 1e9;
                        let probe_col = match before {
                            Some(b) => {
                                let a = probe.measure(&pool, t, 3).gbps_median;
                                let share = 100.0 * gbs / ((a + b) / 2.0);
                                let flag = if (a - b).abs() > 0.15 * a.max(b) {
                                    " !"
                                } else {
                                    ""
                                };
                                format!("{b:5.1}/{a:5.1} {share:3.0}%{flag}")
                            }
                            None => String::new(),
                        };
                        let gop = 2.0 * (M * K * n) as f64 / 1e9;
                        let (cpu_us, cpu_gops) = if t == 1 {
                            (
                                format!("{:9.1}", cpu * 1e6),
                                format!("{:8.1}", gop / cpu),
                            )
                        } else {
                            (String::new(), String::new())
                        };
                        println!(
                            "{:5} {:6} {:4} {:2} {:4} {:9.1} {:7.1} {:8.1} {:>9} {:>8} {}",
                            ty,
                            level.name(),
                            n,
                            t,
                            if cold { "cold" } else { "hot" },
                            dt * 1e6,
                            gbs,
                            gop / dt,
                            cpu_us,
                            cpu_gops,
                            probe_col
                        );
                    }
                }
            }
        }
    }
}
