//! Timing of the native ternary kernels (TQ2_0, TQ1_0, I2_S) against t2p
//! on the 6912 x 2560 shape: GEMV and GEMM (n = 1, 8, 128), 1 and 2
//! threads, hot (one copy) and cold (>= 256 MiB of copies cycled, so
//! every call streams from DRAM). Cold rows are bracketed by a DRAM probe
//! on the same thread count; the share is of the mean of the two probes.
//!
//! `cargo run --release -p ryot-kernels --example native_speed [filter]`
//! (`filter` keeps the weight types whose name contains it).

use std::time::Instant;

use half::f16;
use ryot_kernels::act::ActI8;
use ryot_kernels::matmul::t2p_with_acts;
use ryot_kernels::native::{I2s, Tq1_0, Tq2_0};
use ryot_kernels::{SimdLevel, TernaryPanels};
use ryot_machine::DramProbe;
use ryot_pool::ThreadPool;

static M_ENV: std::sync::LazyLock<usize> = std::sync::LazyLock::new(|| std::env::var("M").map_or(6912, |v| v.parse().unwrap()));
const M0: usize = 6912;
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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let n: usize = std::env::args().nth(1).map_or(1, |s| s.parse().unwrap());
    let threads: usize = std::env::args().nth(2).map_or(1, |s| s.parse().unwrap());
    let filter = std::env::args().nth(3).unwrap_or_default();
    let cold = std::env::args().nth(4).is_some_and(|s| s == "cold");
    let pool = ThreadPool::new(2);
    let c = codes((*M_ENV) * K);
    let d = f16::from_f32(0.75);
    let tq2 = pack_tq2_0(&c, d);
    let tq1 = pack_tq1_0(&c, d);
    let i2s = pack_i2s(&c, 0.75);
    let names = ["t2p", "tq2_0", "tq1_0", "i2_s"];
    let copies = if cold { 28 } else { 1 };
    let mk = |name: &str| -> Vec<W> { (0..copies).map(|_| match name {
        "t2p" => W::T2p(TernaryPanels::from_tq2_0(&tq2, (*M_ENV), K).unwrap()),
        "tq2_0" => W::Tq2_0(Tq2_0::from_gguf(&tq2, (*M_ENV), K).unwrap()),
        "tq1_0" => W::Tq1_0(Tq1_0::from_gguf(&tq1, (*M_ENV), K).unwrap()),
        _ => W::I2s(I2s::from_gguf(&i2s, (*M_ENV), K).unwrap()),
    }).collect() };
    let ws: Vec<(&str, Vec<W>)> = names.iter().filter(|n| n.contains(filter.as_str())).map(|n| (*n, mk(n))).collect();
    let mut g = Gen(7);
    let x: Vec<f32> = (0..n * K).map(|_| (g.next() % 2001) as f32 / 1000.0 - 1.0).collect();
    let a = ActI8::quantize(&x, n, K).unwrap();
    let mut out = vec![0f32; n * (*M_ENV)];
    let mut best = vec![f64::MAX; ws.len()];
    let iters = if n >= 64 { 3 } else { 100 };
    for _ in 0..12 {
        for (i, (name, w)) in ws.iter().enumerate() {
            let _ = name;
            let t0 = Instant::now();
            for it in 0..iters { w[it % w.len()].run(SimdLevel::Avx2, &a, &mut out, &pool, threads); }
            best[i] = best[i].min(t0.elapsed().as_secs_f64() / iters as f64);
        }
    }
    for (i, (name, w)) in ws.iter().enumerate() {
        if best[i] == f64::MAX { continue; }
        println!("{name:6} n={n} t={threads} {:9.1} us {:6.1} GB/s {:7.1} GOP/s", best[i]*1e6, w[0].bytes() as f64/best[i]/1e9, 2.0*((*M_ENV)*K*n) as f64/best[i]/1e9);
    }
    let _ = (median, DramProbe::MIN_BYTES, COLD_BYTES);
}
