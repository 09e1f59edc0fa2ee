//! Times a pipeline's search alone on a data folder (best of PASSES
//! passes, 1 thread, k = 10): `cargo run --release -p ryot-compress
//! --example search_speed DIR [SPEC [QUERIES [PASSES]]]` (default
//! `pq:96x4fs`, 1000 queries, 3 passes). Training uses the first 20,000
//! corpus rows.
use std::time::Instant;

use ryot_compress::npy;
use ryot_compress::pipeline::{Pipeline, TrainOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = std::path::Path::new(
        args.first().ok_or("usage: DIR [SPEC [QUERIES [PASSES]]]")?,
    );
    let spec = args.get(1).map_or("pq:96x4fs", String::as_str);
    let corpus = npy::read_f32(dir.join("corpus.npy"))?;
    let queries = npy::read_f32(dir.join("queries.npy"))?;
    let nq = args.get(2).map_or(Ok(1000), |s| s.parse())?.min(queries.rows);
    let passes: usize = args.get(3).map_or(Ok(3), |s| s.parse())?;
    let head = queries.head(nq);
    let p = Pipeline::train(
        spec,
        &corpus.head(20_000.min(corpus.rows)),
        TrainOptions::default(),
    )?;
    let n = corpus.rows;
    let stored = p.to_stored(&p.encode(&corpus)?, n);
    let mut best = f64::MAX;
    for _ in 0..passes.max(1) {
        let t = Instant::now();
        std::hint::black_box(p.search_stored(&stored, n, &head, 10)?);
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{spec} ({}): {n} vectors, {nq} queries: {:.0} queries/s",
        ryot_compress::kernels::isa().name(),
        nq as f64 / best
    );
    Ok(())
}
