//! Times the 4-bit fast-scan kernel alone (best of 3 s of repeats) on
//! random codes: `RYOT_FORCE_ISA=avx2 cargo run --release -p ryot-compress
//! --example fastscan_speed [N [PAIRS [QUERIES [C]]]]` (default 50,000
//! vectors, 48 pairs = 96 sub-quantizers, 32 queries per batch, the best
//! C = 20 kept per query: k = 10 re-ranked 2x, as `pq:Mx4fs` search does).
use std::time::Instant;

use ryot_compress::kernels::{self, fastscan};
use ryot_compress::rng::Rng;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("arguments are integers"))
        .collect();
    let n = args.first().copied().unwrap_or(50_000);
    let cb = args.get(1).copied().unwrap_or(48);
    let nq = args.get(2).copied().unwrap_or(32);
    let c = args.get(3).copied().unwrap_or(20);
    let mut rng = Rng::new(1);
    let rows: Vec<u8> = (0..n * cb).map(|_| rng.next_u64() as u8).collect();
    let blocks = fastscan::to_blocks(&rows, cb, n);
    let luts: Vec<Vec<u8>> = (0..nq)
        .map(|_| {
            let t: Vec<f32> = (0..cb * 32).map(|_| rng.normal()).collect();
            fastscan::quantize_lut(&t, 2 * cb).lut
        })
        .collect();
    let refs: Vec<&[u8]> = luts.iter().map(Vec::as_slice).collect();
    let mut best = f64::MAX;
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < 3.0 {
        let t = Instant::now();
        let r = fastscan::search_batch(&refs, &blocks, cb, n, c);
        best = best.min(t.elapsed().as_secs_f64());
        std::hint::black_box(r);
    }
    println!(
        "{}: {n} vectors x {cb} pairs, {nq} queries, top {c}: {:.0} queries/s",
        kernels::isa().name(),
        nq as f64 / best
    );
}
