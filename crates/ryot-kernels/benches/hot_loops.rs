//! Criterion benches of the hot loops at every available SIMD level:
//! t2p GEMV/GEMM (cache-hot, one thread) and activation quantization.
//! The full sweep with DRAM shares is `ryot bench kernels`.

use criterion::{
    BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use ryot_kernels::act::ActI8;
use ryot_kernels::matmul::t2p_with_acts;
use ryot_kernels::{SimdLevel, TernaryPanels};
use ryot_pool::ThreadPool;

fn weights(m: usize, k: usize) -> TernaryPanels {
    let w: Vec<f32> =
        (0..m * k).map(|i| ((i * 7919) % 3) as f32 - 1.0).collect();
    TernaryPanels::quantize_absmean(&w, m, k).expect("valid weights")
}

fn acts(n: usize, k: usize) -> Vec<f32> {
    (0..n * k).map(|i| ((i * 31) % 17) as f32 / 8.0 - 1.0).collect()
}

fn t2p(c: &mut Criterion) {
    let pool = ThreadPool::new(1);
    let (m, k) = (1536, 2048);
    let w = weights(m, k);
    for n in [1usize, 8] {
        let a = ActI8::quantize(&acts(n, k), n, k).expect("valid acts");
        let mut out = vec![0f32; n * m];
        let mut g = c.benchmark_group(format!("t2p_{m}x{k}_n{n}"));
        g.throughput(Throughput::Elements((2 * m * k * n) as u64));
        for level in SimdLevel::ALL.into_iter().filter(|l| l.is_available()) {
            g.bench_function(BenchmarkId::from_parameter(level), |b| {
                b.iter(|| {
                    t2p_with_acts(level, &w, &a, &mut out, &pool, 1)
                        .expect("runs")
                })
            });
        }
        g.finish();
    }
}

fn act_quant(c: &mut Criterion) {
    let (n, k) = (8, 4096);
    let x = acts(n, k);
    let mut g = c.benchmark_group("act_i8");
    g.throughput(Throughput::Elements((n * k) as u64));
    g.bench_function("quantize", |b| {
        b.iter(|| ActI8::quantize(&x, n, k).expect("valid"))
    });
    g.finish();
}

criterion_group!(benches, t2p, act_quant);
criterion_main!(benches);
