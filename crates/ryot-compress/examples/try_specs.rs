//! Scratch evaluation: `cargo run --release --example try_specs DIR SPEC...`.
use std::time::Instant;

use ryot_compress::matrix::dot;
use ryot_compress::rng::Rng;
use ryot_compress::search::recall_at;
use ryot_compress::{Pipeline, TrainOptions, npy};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(&args[1]);
    let corpus = npy::read_f32(dir.join("corpus.npy")).unwrap();
    let queries = npy::read_f32(dir.join("queries.npy")).unwrap();
    let (_, gk, gt) = npy::read_i32(dir.join("gt.npy")).unwrap();
    let mut rng = Rng::new(0);
    let sample = corpus.select(&rng.sample(corpus.rows, 20000));
    for spec in &args[2..] {
        let t0 = Instant::now();
        let p =
            Pipeline::train(spec, &sample, TrainOptions::default()).unwrap();
        let tt = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let codes = p.encode(&corpus).unwrap();
        let te = t1.elapsed().as_secs_f64();
        let t2 = Instant::now();
        let res = p.search(&codes, &queries, 100).unwrap();
        let ts = t2.elapsed().as_secs_f64();
        let mut f10 = Vec::new();
        let mut fr = Vec::new();
        for (qi, r) in res.iter().enumerate() {
            f10.extend(r[..10].iter().map(|x| x.0));
            let mut c: Vec<(u32, f32)> = r
                .iter()
                .map(|&(i, _)| {
                    (i, dot(queries.row(qi), corpus.row(i as usize)))
                })
                .collect();
            c.sort_by(|a, b| b.1.total_cmp(&a.1));
            fr.extend(c[..10].iter().map(|x| x.0));
        }
        println!(
            "{:<24} B={:<4} ratio={:<7.1} R@10={:.4} resc={:.4} train={:.1}s enc={:.1}s qps={:.0}",
            p.spec(),
            p.code_bytes(),
            (4 * corpus.dim) as f64 / p.code_bytes() as f64,
            recall_at(&f10, 10, &gt, gk, 10),
            recall_at(&fr, 10, &gt, gk, 10),
            tt,
            te,
            queries.rows as f64 / ts
        );
    }
}
