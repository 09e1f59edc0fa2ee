//! Recall on the real MiniLM WordNet data against FAISS's figures for the
//! same methods (read from `anchors/faiss-wordnet.json`, not copied);
//! `pq:96x4` scans float tables, `pq:96x4fs` the fast-scan u8 kernel.
//!
//! The corpus and ground truth are the full ones, the queries a seeded
//! sample of 200, and training uses a seeded 10,000-row sample. With 200
//! queries (2,000 neighbours) the standard error of recall@10 is at most
//! about 0.011, so each method must reach FAISS's figure minus 0.04
//! (3.5 standard errors); `rq:11` must beat FAISS's best 128x method by
//! that margin. Skipped, with a note, when the data is absent.

use std::path::PathBuf;

use ryot_compress::rng::Rng;
use ryot_compress::search::{exact_search, recall_at};
use ryot_compress::{Pipeline, TrainOptions, npy};

fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("RYOT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
        });
    if dir.join("data/minilm-wordnet/corpus.npy").is_file() {
        Some(dir)
    } else {
        eprintln!("skipped: shared data not found at {}", dir.display());
        None
    }
}

fn faiss(shared: &std::path::Path, method: &str) -> f64 {
    let text =
        std::fs::read_to_string(shared.join("anchors/faiss-wordnet.json"))
            .unwrap();
    // A tiny scan of the JSON: the object whose "method" is `method`,
    // then its "recall_at_10".
    let key = format!("\"method\": \"{method}\"");
    let at = text.find(&key).unwrap_or_else(|| panic!("{method} in anchors"));
    let rest = &text[at..];
    let r = rest.find("\"recall_at_10\":").unwrap() + 15;
    let end = rest[r..].find(',').unwrap();
    rest[r..r + end].trim().parse().unwrap()
}

#[test]
fn recall_matches_faiss_on_minilm_wordnet() {
    let Some(shared) = shared_dir() else { return };
    let dir = shared.join("data/minilm-wordnet");
    let corpus = npy::read_f32(dir.join("corpus.npy")).unwrap();
    let queries_all = npy::read_f32(dir.join("queries.npy")).unwrap();
    let (_, gk, gt_all) = npy::read_i32(dir.join("gt.npy")).unwrap();
    let mut rng = Rng::new(2024);
    let qi = rng.sample(queries_all.rows, 200);
    let queries = queries_all.select(&qi);
    let gt: Vec<i32> = qi
        .iter()
        .flat_map(|&q| gt_all[q * gk..(q + 1) * gk].to_vec())
        .collect();
    // Exact search reproduces the ground truth (ties allowed for).
    let (ids, _) = exact_search(&corpus, &queries, 10).unwrap();
    assert!(recall_at(&ids, 10, &gt, gk, 10) > 0.999);

    let sample = corpus.select(&rng.sample(corpus.rows, 10_000));
    let opts = TrainOptions { seed: 0, ..TrainOptions::default() };
    for (spec, method) in [
        ("int8", "SQ8"),
        ("int4", "SQ4"),
        ("bin", "sign(x-mean) 384b BinaryFlat"),
        ("pq:96x4", "PQ96x4fs"),
        ("pq:96x4fs", "PQ96x4fs"),
        ("rabitq:1", "RaBitQ"),
        ("rabitq:2", "RaBitQ2"),
    ] {
        let p = Pipeline::train(spec, &sample, opts).unwrap();
        let codes = p.encode(&corpus).unwrap();
        let hits = p.search(&codes, &queries, 10).unwrap();
        let found: Vec<u32> =
            hits.iter().flat_map(|h| h.iter().map(|x| x.0)).collect();
        let r = recall_at(&found, 10, &gt, gk, 10);
        let want = faiss(&shared, method) - 0.04;
        eprintln!(
            "{spec}: recall@10 {r:.4} (FAISS {method} - 0.04 = {want:.4})"
        );
        assert!(r >= want, "{spec}: {r:.4} < {want:.4}");
    }
    // The residual quantizer at 128x (11 stages and a length byte) must
    // beat FAISS's best 128x method outright, by more than the margin.
    let p = Pipeline::train("rq:11", &sample, opts).unwrap();
    assert_eq!(p.code_bytes(), 12);
    let codes = p.encode(&corpus).unwrap();
    let hits = p.search(&codes, &queries, 10).unwrap();
    let found: Vec<u32> =
        hits.iter().flat_map(|h| h.iter().map(|x| x.0)).collect();
    let r = recall_at(&found, 10, &gt, gk, 10);
    let faiss_best = faiss(&shared, "OPQ12,PQ12x8");
    eprintln!("rq:11: recall@10 {r:.4} (FAISS OPQ12,PQ12x8 {faiss_best:.4})");
    assert!(r >= faiss_best + 0.04, "rq:11: {r:.4} vs {faiss_best:.4}");
}
