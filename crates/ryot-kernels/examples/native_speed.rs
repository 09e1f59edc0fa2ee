//! Timing of the native ternary kernels (TQ2_0, TQ1_0, I2_S) against t2p
//! on the 6912 x 2560 shape: GEMV and GEMM (n = 1, 8, 128), 1 and 2
//! threads, hot (one copy) and cold (>= 256 MiB of copies cycled, so
//! every call streams from DRAM). Cold rows are bracketed by a DRAM probe
//! on the same thread count; the share is of the mean of the two probes.
//! Times are the median of 5 runs (`best`: the fastest, as GB/s).
//!
//! `cargo run --release -p ryot-kernels --example native_speed [types]
//! [ns]`: `types` keeps the weight types whose name contains it (`all`
//! for every type), `ns` is a comma-separated list of token counts.

use std::time::Instant;

use half::f16;
use ryot_kernels::act::ActI8;
use ryot_kernels::matmul::t2p_with_acts;
use ryot_kernels::native::{I2s, Tq1_0, Tq2_0};
use ryot_kernels::{SimdLevel, TernaryPanels};
use ryot_machine::DramProbe;
use ryot_pool::ThreadPool;

const M: usize = 6912;
const K: usize = 2560;
/// Bytes of weight copies cycled through for the cold rows.
const COLD_BYTES: usize = 256 << 20;

/// One weight tensor under test.
enum W {
    Tq2_0(Tq2_0),
    Tq1_0(Tq1_0),
    I2s(I2s),
    T2p(TernaryPanels),
}

impl W {
    fn bytes(&self) -> usize {
        match self {
            W::Tq2_0(w) => w.stored_bytes(),
            W::Tq1_0(w) => w.stored_bytes(),
            W::I2s(w) => w.stored_bytes(),
            W::T2p(w) => w.stored_bytes(),
        }
    }

    fn run(
        &self,
        level: SimdLevel,
        a: &ActI8,
        out: &mut [f32],
        pool: &ThreadPool,
        threads: usize,
    ) {
        match self {
            W::Tq2_0(w) => w.matmul_acts(level, a, out, pool, threads),
            W::Tq1_0(w) => w.matmul_acts(level, a, out, pool, threads),
            W::I2s(w) => w.matmul_acts(level, a, out, pool, threads),
            W::T2p(w) => t2p_with_acts(level, w, a, out, pool, threads),
        }
        .unwrap()
    }
}

/// A fixed pseudo-random sequence (xorshift).
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Ternary codes, about 1/3 zeros, as BitNet weights are.
fn codes(n: usize) -> Vec<u8> {
    let mut g = Gen(0x9E37_79B9_7F4A_7C15);
    (0..n).map(|_| (g.next() % 3) as u8).collect()
}

fn pack_tq2_0(codes: &[u8], d: f16) -> Vec<u8> {
    let mut out = Vec::with_capacity(codes.len() / 256 * 66);
    for blk in codes.chunks_exact(256) {
        let mut qs = [0u8; 64];
        for (e, &c) in blk.iter().enumerate() {
            qs[(e / 128) * 32 + e % 32] |= c << (2 * ((e % 128) / 32));
        }
        out.extend_from_slice(&qs);
        out.extend_from_slice(&d.to_le_bytes());
    }
    out
}

fn pack_tq1_0(codes: &[u8], d: f16) -> Vec<u8> {
    let byte = |t: &[u8]| {
        let v = t.iter().fold(0u32, |v, &t| v * 3 + t as u32);
        (v * 256).div_ceil(243) as u8
    };
    let mut out = Vec::with_capacity(codes.len() / 256 * 54);
    for blk in codes.chunks_exact(256) {
        for m in 0..32 {
            out.push(byte(&[0, 1, 2, 3, 4].map(|n| blk[n * 32 + m])));
        }
        for m in 0..16 {
            out.push(byte(&[0, 1, 2, 3, 4].map(|n| blk[160 + n * 16 + m])));
        }
        for j in 0..4 {
            // Four digits, then a zero fifth (ggml's `qh` encoding).
            let t = [0, 1, 2, 3, 4]
                .map(|n| if n < 4 { blk[240 + n * 4 + j] } else { 0 });
            out.push(byte(&t));
        }
        out.extend_from_slice(&d.to_le_bytes());
    }
    out
}

fn pack_i2s(codes: &[u8], scale: f32) -> Vec<u8> {
    let mut out = vec![0u8; codes.len() / 4 + 32];
    for (e, &c) in codes.iter().enumerate() {
        let o = e % 128;
        out[(e / 128) * 32 + o % 32] |= c << (6 - 2 * (o / 32));
    }
    let n = codes.len() / 4;
    out[n..n + 4].copy_from_slice(&scale.to_le_bytes());
    out
}

/// Builds one copy of a weight tensor.
type Maker<'a> = Box<dyn Fn() -> W + 'a>;

/// The median and the minimum.
fn median_min(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0])
}

fn main() {
    let filter = std::env::args().nth(1).unwrap_or_default();
    let filter = if filter == "all" { String::new() } else { filter };
    let ns: Vec<usize> = std::env::args().nth(2).map_or(vec![1, 8, 128], |s| {
        s.split(',').map(|v| v.parse().expect("token counts")).collect()
    });
    let pool = ThreadPool::new(2);
    let probe = DramProbe::new(DramProbe::DEFAULT_BYTES).expect("probe buffer");
    let c = codes(M * K);
    let d = f16::from_f32(0.75);
    let tq2 = pack_tq2_0(&c, d);
    let tq1 = pack_tq1_0(&c, d);
    let i2s = pack_i2s(&c, 0.75);
    let makers: Vec<(&str, Maker<'_>)> = vec![
        (
            "t2p",
            Box::new(|| W::T2p(TernaryPanels::from_tq2_0(&tq2, M, K).unwrap())),
        ),
        ("tq2_0", Box::new(|| W::Tq2_0(Tq2_0::from_gguf(&tq2, M, K).unwrap()))),
        ("tq1_0", Box::new(|| W::Tq1_0(Tq1_0::from_gguf(&tq1, M, K).unwrap()))),
        ("i2_s", Box::new(|| W::I2s(I2s::from_gguf(&i2s, M, K).unwrap()))),
    ];
    println!(
        "{:6} {:6} {:>4} {:>2} {:4} {:>9} {:>7} {:>7} {:>8} {:>7} {:>7} {:>6}",
        "type",
        "level",
        "n",
        "t",
        "",
        "us",
        "GB/s",
        "best",
        "GOP/s",
        "probe0",
        "probe1",
        "share"
    );
    for (name, make) in &makers {
        if !name.contains(filter.as_str()) {
            continue;
        }
        let w = make();
        let copies: Vec<W> =
            (0..COLD_BYTES.div_ceil(w.bytes())).map(|_| make()).collect();
        for &n in &ns {
            let mut g = Gen(n as u64 + 1);
            let x: Vec<f32> = (0..n * K)
                .map(|_| (g.next() % 2001) as f32 / 1000.0 - 1.0)
                .collect();
            let a = ActI8::quantize(&x, n, K).unwrap();
            let mut out = vec![0f32; n * M];
            let levels = SimdLevel::ALL
                .into_iter()
                .filter(|l| l.is_available() && *l != SimdLevel::Scalar);
            for level in levels {
                for threads in [1, 2] {
                    for cold in [false, true] {
                        let p0 = cold.then(|| {
                            probe.measure(&pool, threads, 3).gbps_median
                        });
                        let iters = if n == 128 { 4 } else { 2 * copies.len() };
                        let pick = |i: usize| {
                            if cold { &copies[i % copies.len()] } else { &w }
                        };
                        // Warm-up: fills caches (hot) or TLBs (cold).
                        for i in 0..iters.min(copies.len()) {
                            pick(i).run(level, &a, &mut out, &pool, threads);
                        }
                        let times = (0..5).map(|_| {
                            let t0 = Instant::now();
                            for i in 0..iters {
                                pick(i)
                                    .run(level, &a, &mut out, &pool, threads);
                            }
                            t0.elapsed().as_secs_f64() / iters as f64
                        });
                        let (dt, best) = median_min(times.collect());
                        let p1 = cold.then(|| {
                            probe.measure(&pool, threads, 3).gbps_median
                        });
                        let gbs = w.bytes() as f64 / dt / 1e9;
                        let best_gbs = w.bytes() as f64 / best / 1e9;
                        let (ps0, ps1, share) = match (p0, p1) {
                            (Some(a), Some(b)) => (
                                format!("{a:7.1}"),
                                format!("{b:7.1}"),
                                format!(
                                    "{:5.0}%",
                                    100.0 * gbs / ((a + b) / 2.0)
                                ),
                            ),
                            _ => (String::new(), String::new(), String::new()),
                        };
                        println!(
                            "{name:6} {level:6} {n:>4} {threads:>2} {} {:9.1} {gbs:7.1} {best_gbs:7.1} {:8.1} {ps0:>7} {ps1:>7} {share:>6}",
                            if cold { "cold" } else { "hot " },
                            dt * 1e6,
                            2.0 * (M * K * n) as f64 / dt / 1e9,
                        );
                    }
                }
            }
        }
    }
}
