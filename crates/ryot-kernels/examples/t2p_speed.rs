//! Quick timing of the t2p GEMV/GEMM (hot and cold) at each level:
//! `cargo run --release -p ryot-kernels --example t2p_speed [M K]`
//! (default 6912 x 2560).
use std::time::Instant;

use ryot_kernels::act::ActI8;
use ryot_kernels::matmul::t2p_with_acts;
use ryot_kernels::{SimdLevel, TernaryPanels};
use ryot_pool::ThreadPool;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("M and K are integers"))
        .collect();
    let (m, k) = match args[..] {
        [m, k] => (m, k),
        _ => (6912, 2560),
    };
    let w: Vec<f32> =
        (0..m * k).map(|i| ((i * 7919) % 13) as f32 - 6.0).collect();
    let w = TernaryPanels::quantize_absmean(&w, m, k).unwrap();
    let copies: Vec<TernaryPanels> = (0..64).map(|_| w.clone()).collect();
    let pool = ThreadPool::new(2);
    for n in [1usize, 8, 128] {
        let x: Vec<f32> =
            (0..n * k).map(|i| ((i * 31) % 17) as f32 - 8.0).collect();
        let a = ActI8::quantize(&x, n, k).unwrap();
        let mut out = vec![0f32; n * m];
        for level in SimdLevel::ALL
            .into_iter()
            .filter(|l| l.is_available() && *l != SimdLevel::Scalar)
        {
            for threads in [1, 2] {
                for cold in [false, true] {
                    let iters = if n == 128 { 5 } else { 64 };
                    let t0 = Instant::now();
                    for i in 0..iters {
                        let ww = if cold { &copies[i % 64] } else { &w };
                        t2p_with_acts(level, ww, &a, &mut out, &pool, threads)
                            .unwrap();
                    }
                    let dt = t0.elapsed().as_secs_f64() / iters as f64;
                    println!(
                        "{level} n={n} t={threads} {} {:8.1} us  {:6.1} GB/s  {:7.1} GOP/s",
                        if cold { "cold" } else { "hot " },
                        dt * 1e6,
                        w.stored_bytes() as f64 / dt / 1e9,
                        2.0 * (m * k * n) as f64 / dt / 1e9
                    );
                }
            }
        }
    }
}
