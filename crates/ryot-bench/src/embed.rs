//! `ryot bench embed`: embedding throughput and fidelity of
//! sentence-transformers models on Ryot, against sentence-transformers
//! itself run in the same session.
//!
//! Rows: the WordNet glosses (`corpus.jsonl`, or its first `limit` rows)
//! on each thread count, compared row by row with the stored
//! sentence-transformers vectors (`corpus.npy`); the 1,000 queries; and
//! long passages (consecutive glosses joined to at least 200 words, cut at
//! the model's 256 tokens) to show the cost of sequence length. The peer
//! (`embed_peer.py`: sentence-transformers on PyTorch, CPU, batch 64) runs
//! on the same texts (or their first `peer_limit`) and thread count right
//! after each of our rows, so both see the same machine load; it is
//! skipped with a note when Python or sentence-transformers is missing.
//! With all 50,000 glosses, relevant@10 of the queries is measured end to
//! end from text: exact search and each compression pipeline on our
//! vectors, and exact search on the stored vectors for comparison.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ryot_embed::input::{InputFormat, read_texts};
use ryot_embed::npy::read_f32;
use ryot_embed::{EmbedOptions, Model, Precision};
use ryot_machine::cpu_info;
use serde::Serialize;

use crate::error::BenchError;

/// The peer script, written to a temporary file when run.
const PEER_SCRIPT: &str = include_str!("embed_peer.py");

/// What to measure.
#[derive(Clone, Debug)]
pub struct Config {
    /// The sentence-transformers folder.
    pub model_dir: PathBuf,
    /// `shared/data/minilm-wordnet` (corpus/queries `.jsonl` and `.npy`).
    pub data_dir: PathBuf,
    /// Only the first `limit` glosses (all 50,000 when `None`).
    pub limit: Option<usize>,
    /// Thread counts.
    pub threads: Vec<usize>,
    /// Number of long passages (0 skips that set).
    pub long_passages: usize,
    /// Run sentence-transformers too.
    pub peer: bool,
    /// The Python interpreter for the peer.
    pub python: String,
    /// Precision of our linear layers.
    pub precision: Precision,
    /// Model name for the JSON rows.
    pub model_name: String,
    /// Compression pipelines whose relevant@10 is measured on our
    /// vectors (only when all 50,000 glosses are embedded).
    pub pipelines: Vec<String>,
    /// The peer embeds only the first `peer_limit` texts of each set
    /// (all when `None`); its rate is compared with ours per text.
    pub peer_limit: Option<usize>,
}

/// The machine and the peer, as JSON.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// CPU model string.
    pub cpu: String,
    /// The SIMD level the kernels ran at.
    pub isa: String,
    /// The most threads used.
    pub threads: usize,
    /// CPU features seen.
    pub features: Vec<String>,
    /// 1-minute load average before and after the run (the machine may
    /// be shared; both sides of a row see the same load).
    pub load_avg: [Option<f64>; 2],
    /// Peer package versions, when the peer ran.
    pub peer_versions: Option<serde_json::Value>,
}

/// One measured row.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Model name.
    pub model: String,
    /// Text set: `wordnet-glosses`, `wordnet-queries` or `long-passages`.
    pub set: String,
    /// Our linear layers' precision.
    pub precision: String,
    /// Threads (ours and the peer's).
    pub threads: usize,
    /// Texts embedded.
    pub passages: usize,
    /// Tokens, [CLS] and [SEP] included.
    pub tokens: usize,
    /// Texts cut at the model's limit.
    pub truncated: usize,
    /// Wall seconds.
    pub seconds: f64,
    /// Passages per wall second.
    pub passages_per_s: f64,
    /// Tokens per wall second.
    pub tokens_per_s: f64,
    /// CPU seconds of this process (all threads) during the row.
    pub cpu_seconds: Option<f64>,
    /// Same-run sentence-transformers passages per wall second.
    pub peer_passages_per_s: Option<f64>,
    /// The peer's CPU seconds.
    pub peer_cpu_seconds: Option<f64>,
    /// The peer's peak RSS (MB).
    pub peer_peak_rss_mb: Option<f64>,
    /// `passages_per_s / peer_passages_per_s`.
    pub ratio: Option<f64>,
    /// Texts the peer embedded (its first `peer_limit` of the set).
    pub peer_passages: Option<usize>,
    /// Passages per CPU second, ours over the peer's (fairer than the
    /// wall ratio on a loaded machine).
    pub cpu_ratio: Option<f64>,
    /// Smallest cosine with the stored sentence-transformers vectors
    /// (only for sets that have them).
    pub cosine_min: Option<f32>,
    /// Mean cosine with the stored vectors.
    pub cosine_mean: Option<f32>,
    /// This process's peak RSS so far (MB).
    pub peak_rss_mb: Option<f64>,
}

/// A full report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The machine.
    pub machine: Machine,
    /// One row per set and thread count.
    pub results: Vec<Row>,
    /// Relevant@10 of the reverse-dictionary queries, end to end from
    /// text (exact float search first, then each pipeline).
    pub retrieval: Vec<Retrieval>,
    /// Why something was skipped.
    pub notes: Vec<String>,
}

/// Retrieval quality of our vectors.
#[derive(Clone, Debug, Serialize)]
pub struct Retrieval {
    /// `exact` (float inner product) or a compression pipeline spec.
    pub pipeline: String,
    /// `ryot` (embedded from text in this run) or `stored` (the
    /// sentence-transformers `.npy` vectors, for comparison).
    pub vectors: String,
    /// Fraction of queries with a relevant row in the top 10.
    pub relevant_at_10: f64,
    /// `relevant_at_10` minus the exact search's on the same vectors.
    pub delta_vs_exact: f64,
    /// Code bytes per vector (4 x dim for exact).
    pub bytes_per_vector: usize,
}

/// A set of texts with optional reference vectors.
struct Set {
    name: &'static str,
    texts: Vec<String>,
    reference: Option<Vec<f32>>,
    jsonl: PathBuf,
}

fn err(e: impl std::fmt::Display) -> BenchError {
    BenchError::Config(e.to_string())
}

/// Runs the benchmark; `progress` receives one line per step.
pub fn run(
    cfg: &Config,
    progress: &mut dyn FnMut(&str),
) -> Result<Report, BenchError> {
    if cfg.threads.is_empty() || cfg.threads.contains(&0) {
        return Err(err("thread counts must be at least 1"));
    }
    let load_before = load_average();
    let tmp = std::env::temp_dir()
        .join(format!("ryot-bench-embed-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(err)?;
    let result = run_in(cfg, &tmp, progress);
    let _ = std::fs::remove_dir_all(&tmp);
    let (results, retrieval, notes, versions) = result?;
    let info = cpu_info();
    Ok(Report {
        machine: Machine {
            cpu: info.model.clone(),
            isa: ryot_kernels::isa::level().name().to_string(),
            threads: cfg.threads.iter().copied().max().unwrap_or(1),
            features: info.features.iter().map(|s| s.to_string()).collect(),
            load_avg: [load_before, load_average()],
            peer_versions: versions,
        },
        results,
        retrieval,
        notes,
    })
}

type Outcome =
    (Vec<Row>, Vec<Retrieval>, Vec<String>, Option<serde_json::Value>);

fn run_in(
    cfg: &Config,
    tmp: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<Outcome, BenchError> {
    progress(&format!("loading {}", cfg.model_dir.display()));
    let model = Model::load_with(&cfg.model_dir, cfg.precision).map_err(err)?;
    let sets = load_sets(cfg, tmp)?;
    let mut notes = Vec::new();
    let mut peer_ok = cfg.peer;
    let mut versions = None;
    let script = tmp.join("embed_peer.py");
    std::fs::write(&script, PEER_SCRIPT).map_err(err)?;
    let _ = model.embed(&["warm up"], &EmbedOptions::default(), &|_| {});
    let mut rows = Vec::new();
    let (mut glosses, mut queries) = (None, None);
    let max_threads = cfg.threads.iter().copied().max().unwrap_or(1);
    for set in &sets {
        let threads: Vec<usize> = if set.name == "wordnet-queries" {
            vec![max_threads]
        } else {
            cfg.threads.clone()
        };
        for &t in &threads {
            progress(&format!(
                "{}: {} texts, {t} threads",
                set.name,
                set.texts.len()
            ));
            let (mut row, vecs) = ours(cfg, &model, set, t)?;
            match set.name {
                "wordnet-glosses" => glosses = Some(vecs),
                "wordnet-queries" => queries = Some(vecs),
                _ => {}
            }
            if peer_ok {
                progress(&format!(
                    "{}: sentence-transformers, {t} threads",
                    set.name
                ));
                match peer(cfg, &script, set, t) {
                    Ok(v) => {
                        let pps = v["passages_per_s"].as_f64();
                        row.peer_passages_per_s = pps;
                        row.peer_cpu_seconds = v["cpu_seconds"].as_f64();
                        row.peer_peak_rss_mb = v["peak_rss_mb"].as_f64();
                        row.ratio = pps.map(|p| row.passages_per_s / p);
                        row.peer_passages =
                            v["passages"].as_u64().map(|p| p as usize);
                        let ours = row
                            .cpu_seconds
                            .map(|c| row.passages as f64 / c.max(1e-9));
                        let theirs = v["cpu_seconds"]
                            .as_f64()
                            .zip(v["passages"].as_f64())
                            .map(|(c, p)| p / c.max(1e-9));
                        row.cpu_ratio = ours.zip(theirs).map(|(a, b)| a / b);
                        versions = Some(v["versions"].clone());
                    }
                    Err(e) => {
                        notes.push(format!("peer skipped: {e}"));
                        peer_ok = false;
                    }
                }
            }
            rows.push(row);
        }
    }
    let mut retrieval = Vec::new();
    if let (Some(g), Some(q)) = (glosses, queries) {
        if g.len() == sets[0].reference.as_ref().map_or(0, |r| r.len())
            && cfg.limit.is_none()
        {
            progress("relevant@10 of the queries");
            retrieval = relevance(cfg, &g, &q, model.dim(), "ryot")?;
            if let (Some(rc), Some(rq)) =
                (&sets[0].reference, &sets[1].reference)
            {
                let exact = Config { pipelines: Vec::new(), ..cfg.clone() };
                retrieval.extend(relevance(
                    &exact,
                    rc,
                    rq,
                    model.dim(),
                    "stored",
                )?);
            }
        } else {
            notes.push(
                "relevant@10 needs all 50,000 glosses (no --limit)".into(),
            );
        }
    }
    Ok((rows, retrieval, notes, versions))
}

/// Relevant@10 on our own vectors: exact, then per pipeline.
fn relevance(
    cfg: &Config,
    corpus: &[f32],
    queries: &[f32],
    dim: usize,
    vectors: &str,
) -> Result<Vec<Retrieval>, BenchError> {
    use ryot_compress::{Index, Matrix, Pipeline, TierKind, TrainOptions};
    let text = std::fs::read_to_string(cfg.data_dir.join("queries.jsonl"))
        .map_err(err)?;
    let relevant: Vec<Vec<u32>> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).map_err(err)?;
            Ok(v["relevant"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_u64())
                        .map(|x| x as u32)
                        .collect()
                })
                .unwrap_or_default())
        })
        .collect::<Result<_, BenchError>>()?;
    let c =
        Matrix::new(corpus.len() / dim, dim, corpus.to_vec()).map_err(err)?;
    let q =
        Matrix::new(queries.len() / dim, dim, queries.to_vec()).map_err(err)?;
    let (ids, _) =
        ryot_compress::search::exact_search(&c, &q, 10).map_err(err)?;
    let exact = ryot_compress::search::relevant_at(&ids, 10, &relevant, 10);
    let mut out = vec![Retrieval {
        pipeline: "exact".into(),
        vectors: vectors.into(),
        relevant_at_10: exact,
        delta_vs_exact: 0.0,
        bytes_per_vector: 4 * dim,
    }];
    let row_ids: Vec<u64> = (0..c.rows as u64).collect();
    for spec in &cfg.pipelines {
        let p =
            Pipeline::train(spec, &c, TrainOptions::default()).map_err(err)?;
        let bytes_per_vector = p.code_bytes();
        let mut idx = Index::new(p, TierKind::None);
        idx.add(&row_ids, &c).map_err(err)?;
        let hits = idx.search(&q, 10, None).map_err(err)?;
        let found: Vec<u32> =
            hits.iter().flat_map(|h| h.iter().map(|x| x.id as u32)).collect();
        let r = ryot_compress::search::relevant_at(&found, 10, &relevant, 10);
        out.push(Retrieval {
            pipeline: spec.clone(),
            vectors: vectors.into(),
            relevant_at_10: r,
            delta_vs_exact: r - exact,
            bytes_per_vector,
        });
    }
    Ok(out)
}

fn load_sets(cfg: &Config, tmp: &Path) -> Result<Vec<Set>, BenchError> {
    let dir = &cfg.data_dir;
    let corpus_path = dir.join("corpus.jsonl");
    let corpus = read_texts(&corpus_path, InputFormat::Jsonl).map_err(err)?;
    let corpus_vecs = read_f32(&dir.join("corpus.npy")).map_err(err)?;
    let n = cfg.limit.unwrap_or(corpus.texts.len()).min(corpus.texts.len());
    let dim = corpus_vecs.cols;
    let mut sets = vec![Set {
        name: "wordnet-glosses",
        texts: corpus.texts[..n].to_vec(),
        reference: Some(corpus_vecs.data[..n * dim].to_vec()),
        jsonl: corpus_path,
    }];
    let q_path = dir.join("queries.jsonl");
    let queries = read_texts(&q_path, InputFormat::Jsonl).map_err(err)?;
    let q_vecs = read_f32(&dir.join("queries.npy")).map_err(err)?;
    sets.push(Set {
        name: "wordnet-queries",
        texts: queries.texts,
        reference: Some(q_vecs.data),
        jsonl: q_path,
    });
    if cfg.long_passages > 0 {
        let long = long_passages(&corpus.texts, cfg.long_passages);
        let path = tmp.join("long.jsonl");
        let lines: String = long
            .iter()
            .map(|t| serde_json::json!({ "text": t }).to_string() + "\n")
            .collect();
        std::fs::write(&path, lines).map_err(err)?;
        sets.push(Set {
            name: "long-passages",
            texts: long,
            reference: None,
            jsonl: path,
        });
    }
    Ok(sets)
}

/// `count` passages of at least 200 words: consecutive glosses joined
/// with ". " (deterministic, from the start of the corpus).
pub fn long_passages(glosses: &[String], count: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(count);
    let mut it = glosses.iter().cycle();
    while out.len() < count && !glosses.is_empty() {
        let mut p = String::new();
        while p.split_whitespace().count() < 200 {
            let Some(g) = it.next() else { break };
            if !p.is_empty() {
                p.push_str(". ");
            }
            p.push_str(g);
        }
        out.push(p);
    }
    out
}

fn ours(
    cfg: &Config,
    model: &Model,
    set: &Set,
    threads: usize,
) -> Result<(Row, Vec<f32>), BenchError> {
    let texts: Vec<&str> = set.texts.iter().map(String::as_str).collect();
    let opts = EmbedOptions { threads, ..EmbedOptions::default() };
    let c0 = cpu_seconds();
    let t0 = Instant::now();
    let e = model.embed(&texts, &opts, &|_| {}).map_err(err)?;
    let seconds = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds().zip(c0).map(|(b, a)| b - a);
    let (cosine_min, cosine_mean) = match &set.reference {
        Some(r) if r.len() == e.data.len() => {
            let cs: Vec<f32> = (0..e.len())
                .map(|i| cosine(e.row(i), &r[i * e.dim..(i + 1) * e.dim]))
                .collect();
            let min = cs.iter().copied().fold(f32::INFINITY, f32::min);
            let mean = cs.iter().sum::<f32>() / cs.len().max(1) as f32;
            (Some(min), Some(mean))
        }
        _ => (None, None),
    };
    let row = Row {
        model: cfg.model_name.clone(),
        set: set.name.to_string(),
        precision: cfg.precision.name().to_string(),
        threads,
        passages: e.len(),
        tokens: e.tokens,
        truncated: e.truncated.len(),
        seconds,
        passages_per_s: e.len() as f64 / seconds,
        tokens_per_s: e.tokens as f64 / seconds,
        cpu_seconds: cpu,
        peer_passages_per_s: None,
        peer_cpu_seconds: None,
        peer_peak_rss_mb: None,
        ratio: None,
        peer_passages: None,
        cpu_ratio: None,
        cosine_min,
        cosine_mean,
        peak_rss_mb: peak_rss_mb(),
    };
    Ok((row, e.data))
}

/// Runs the peer script on the set's texts; its JSON line.
fn peer(
    cfg: &Config,
    script: &Path,
    set: &Set,
    threads: usize,
) -> Result<serde_json::Value, String> {
    let out = Command::new(&cfg.python)
        .arg(script)
        .arg(&cfg.model_dir)
        .arg(&set.jsonl)
        .arg(
            cfg.peer_limit
                .unwrap_or(usize::MAX)
                .min(set.texts.len())
                .to_string(),
        )
        .arg(threads.to_string())
        .arg("64")
        .env("OMP_NUM_THREADS", threads.to_string())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", cfg.python))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(line).map_err(|_| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(2).collect();
        format!("sentence-transformers run failed: {}", tail.join(" | "))
    })?;
    if let Some(e) = v.get("error") {
        return Err(format!(
            "sentence-transformers unavailable ({e}); pip install \
             sentence-transformers"
        ));
    }
    Ok(v)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb).max(f32::MIN_POSITIVE)
}

/// This process's user + system CPU seconds (Linux `/proc/self/stat`).
fn cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = s.rsplit(')').next()?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 =
        f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every Linux configuration Ryot targets.
    Some(ticks / 100.0)
}

/// Peak resident set size (`VmHWM` of `/proc/self/status`), MB.
pub fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn load_average() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// The report as a text table.
pub fn render(r: &Report) -> String {
    let mut s = format!(
        "cpu: {} ({}), load {:?} -> {:?}\n",
        r.machine.cpu,
        r.machine.isa,
        r.machine.load_avg[0],
        r.machine.load_avg[1]
    );
    s.push_str(&format!(
        "{:<16} {:>3} {:>6} {:>8} {:>9} {:>7} {:>9} {:>6} {:>7} {:>10} \
         {:>10} {:>7}\n",
        "set",
        "thr",
        "texts",
        "tok/text",
        "passage/s",
        "cpu-s",
        "peer p/s",
        "ratio",
        "cpu-rat",
        "cosine_min",
        "cos_mean",
        "rss MB"
    ));
    let opt = |v: Option<f64>, p: usize| {
        v.map_or("-".to_string(), |x| format!("{x:.p$}"))
    };
    for row in &r.results {
        s.push_str(&format!(
            "{:<16} {:>3} {:>6} {:>8.1} {:>9.1} {:>7} {:>9} {:>6} {:>7} \
             {:>10} {:>10} {:>7}\n",
            row.set,
            row.threads,
            row.passages,
            row.tokens as f64 / row.passages.max(1) as f64,
            row.passages_per_s,
            opt(row.cpu_seconds, 1),
            opt(row.peer_passages_per_s, 1),
            opt(row.ratio, 2),
            opt(row.cpu_ratio, 2),
            row.cosine_min.map_or("-".into(), |c| format!("{c:.7}")),
            row.cosine_mean.map_or("-".into(), |c| format!("{c:.7}")),
            opt(row.peak_rss_mb, 0),
        ));
    }
    for x in &r.retrieval {
        s.push_str(&format!(
            "relevant@10 {:<20} {:<6} {:>5} B  {:.3} ({:+.3} vs exact)\n",
            x.pipeline,
            x.vectors,
            x.bytes_per_vector,
            x.relevant_at_10,
            x.delta_vs_exact
        ));
    }
    for n in &r.notes {
        s.push_str(&format!("note: {n}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_passages_have_200_words() {
        let g: Vec<String> =
            (0..30).map(|i| format!("gloss {i} has five words")).collect();
        let p = long_passages(&g, 3);
        assert_eq!(p.len(), 3);
        assert!(p.iter().all(|t| t.split_whitespace().count() >= 200));
        assert_ne!(p[0], p[1]);
        assert!(long_passages(&[], 3).is_empty());
    }
}
