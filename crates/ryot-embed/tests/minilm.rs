//! all-MiniLM-L6-v2 against sentence-transformers' own vectors in
//! `shared/data/minilm-wordnet` (cosine >= 0.9999 on every sampled row),
//! plus truncation and odd inputs on the real model.

mod common;

use std::sync::OnceLock;

use ryot_embed::input::{InputFormat, read_texts};
use ryot_embed::npy::read_f32;
use ryot_embed::{EmbedOptions, Model, Precision};

/// The issue's bar for every row.
const MIN_COSINE: f32 = 0.9999;

fn model(test: &str) -> Option<&'static Model> {
    static MODEL: OnceLock<Option<Model>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let dir = common::minilm_dir(test)?;
            Some(Model::load(&dir).expect("loading all-MiniLM-L6-v2"))
        })
        .as_ref()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// Embeds rows `rows` of `name`.jsonl and compares with `name`.npy.
fn check(model: &Model, name: &str, rows: &[usize], threads: usize) {
    check_min(model, name, rows, threads, MIN_COSINE)
}

/// [`check`] with a given bar.
fn check_min(
    model: &Model,
    name: &str,
    rows: &[usize],
    threads: usize,
    min: f32,
) {
    let dir = common::shared_dir().join("data/minilm-wordnet");
    let texts =
        read_texts(&dir.join(format!("{name}.jsonl")), InputFormat::Jsonl)
            .unwrap();
    let want = read_f32(&dir.join(format!("{name}.npy"))).unwrap();
    assert_eq!(want.rows, texts.texts.len());
    let sample: Vec<&str> =
        rows.iter().map(|&i| texts.texts[i].as_str()).collect();
    let opts = EmbedOptions { threads, ..EmbedOptions::default() };
    let got = model.embed(&sample, &opts, &|_| {}).unwrap();
    assert_eq!(got.dim, want.cols);
    assert!(got.truncated.is_empty());
    let mut worst = (1.0f32, 0);
    for (k, &i) in rows.iter().enumerate() {
        let c = cosine(got.row(k), want.row(i));
        if c < worst.0 {
            worst = (c, i);
        }
        let norm: f32 = got.row(k).iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-5, "row {i} is not normalised");
    }
    eprintln!(
        "{name}: {} rows, cosine_min {:.7} (row {})",
        rows.len(),
        worst.0,
        worst.1
    );
    assert!(
        worst.0 >= min,
        "{name} row {}: cosine {} < {min}",
        worst.1,
        worst.0
    );
}

#[test]
fn corpus_sample_matches_sentence_transformers() {
    let Some(m) = model("corpus_sample_matches_sentence_transformers") else {
        return;
    };
    // 200 rows spread over the 50,000 (the corpus order is random).
    let rows: Vec<usize> = (0..200).map(|i| i * 250 + i % 7).collect();
    check(m, "corpus", &rows, 2);
}

#[test]
fn f32_precision_matches_sentence_transformers_to_1e6() {
    let Some(dir) = common::minilm_dir("f32_precision_matches_to_1e6") else {
        return;
    };
    let m = Model::load_with(&dir, Precision::F32).unwrap();
    assert_eq!(m.precision(), Precision::F32);
    let rows: Vec<usize> = (0..100).map(|i| i * 499 + i % 5).collect();
    // f32 linears do what PyTorch does up to summation order.
    check_min(&m, "corpus", &rows, 2, 0.999_999);
}

#[test]
fn query_sample_matches_sentence_transformers() {
    let Some(m) = model("query_sample_matches_sentence_transformers") else {
        return;
    };
    let rows: Vec<usize> = (0..100).map(|i| i * 10 + 3).collect();
    check(m, "queries", &rows, 1);
}

#[test]
fn vectors_do_not_depend_on_batching_or_threads() {
    let Some(m) = model("vectors_do_not_depend_on_batching_or_threads") else {
        return;
    };
    let texts = ["a small dog", "", "the capital of France", "x y z"];
    let a = m.embed(
        &texts,
        &EmbedOptions { threads: 1, chunk_texts: 1, batch_tokens: 1 },
        &|_| {},
    );
    let b = m.embed(
        &texts,
        &EmbedOptions { threads: 2, chunk_texts: 4, batch_tokens: 512 },
        &|_| {},
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.data, b.data);
    assert_eq!(m.embed_one("x y z").unwrap(), a.row(3));
}

#[test]
fn long_texts_are_truncated_at_max_seq_length() {
    let Some(m) = model("long_texts_are_truncated_at_max_seq_length") else {
        return;
    };
    let long = "word ".repeat(400);
    let t = m.tokenizer().encode(&long).unwrap();
    assert_eq!(t.ids.len(), m.config().max_seq_length);
    assert_eq!(m.config().max_seq_length, 256);
    assert!(t.truncated);
    // [CLS] first and [SEP] last, as sentence-transformers keeps them.
    assert_eq!((t.ids[0], t.ids[255]), (101, 102));
    let short = m.tokenizer().encode("word word").unwrap();
    assert_eq!(short.ids.len(), 4, "no fixed padding");
    assert!(!short.truncated);
    let e =
        m.embed(&["short", &long], &EmbedOptions::default(), &|_| {}).unwrap();
    assert_eq!(e.truncated, [1]);
}

#[test]
fn odd_texts_embed_without_errors() {
    let Some(m) = model("odd_texts_embed_without_errors") else { return };
    let texts = [
        "",
        "   ",
        "\u{0}\u{7}\t\r",
        "café naïve Ångström",
        "日本語のテキスト",
        "emoji 🦀🎉👩‍👩‍👧",
        "\u{200b}\u{feff}",
    ];
    let e = m.embed(&texts, &EmbedOptions::default(), &|_| {}).unwrap();
    for i in 0..texts.len() {
        assert!(e.row(i).iter().all(|v| v.is_finite()), "text {i}");
    }
}
