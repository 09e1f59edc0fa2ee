//! `ryot bench compression`: embedding pipelines from 4x to 256x on real
//! data folders (`corpus.npy`, `queries.npy`, `gt.npy`, optional
//! `queries.jsonl` with `relevant` rows), with the FAISS anchors from
//! `anchors/faiss-wordnet.json` side by side at matching ratios.
//!
//! Per pipeline: `bytes_per_vector`, `ratio` (vs f32), `recall_at_10`
//! (codes only), `recall_at_10_rescored` (top-100 candidates rescored
//! from f32) and `recall_at_10_rescored_int8` (from an int8 tier),
//! `relevant_at_10`, `train_s`, `encode_per_s` and `qps` (1 thread, k=10,
//! exhaustive, best of three passes), `entropy_bytes_per_vector` (order-0
//! estimate) and `rans_bytes_per_vector` (measured rANS size). Pipelines
//! are derived from the dimension only; every parameter is trained on
//! the data given.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ryot_compress::codec::Codec;
use ryot_compress::codec::scalar::Sq;
use ryot_compress::kernels;
use ryot_compress::rng::Rng;
use ryot_compress::search::{recall_at, relevant_at, top_k};
use ryot_compress::{Matrix, Pipeline, TrainOptions, npy};
use serde::Serialize;

use crate::error::BenchError;

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Data folders.
    pub data: Vec<PathBuf>,
    /// Pipelines (empty: [`default_pipelines`] per data set).
    pub pipelines: Vec<String>,
    /// Rows sampled (seeded) to train on.
    pub train_rows: usize,
    /// Candidates rescored from the second tier.
    pub candidates: usize,
    /// The FAISS anchors JSON, if found.
    pub anchors: Option<PathBuf>,
    /// Queries timed for `qps` (at most all of them).
    pub qps_queries: usize,
}

/// The default pipelines for dimension `d`, from 4x to 256x.
pub fn default_pipelines(d: usize) -> Vec<String> {
    let mut v = vec![
        "int8".to_string(),
        "int4".into(),
        format!("mrl:{}>int8", d / 2),
        format!("pca:{}>int8", d / 2),
        "rabitq:2".into(),
        format!("pq:{}x8", d / 4),
        format!("mrl:{}>int8", d / 4),
        format!("sparse:{}", d / 16),
        "rabitq:1".into(),
        "bin".into(),
        "itq>bin".into(),
        format!("pq:{}x4fs", d / 4),
        format!("opq:{0}>pq:{0}x4fs", d / 4),
        format!("pq:{}x8", d / 8),
        format!("opq:{0}>pq:{0}x8", d / 8),
        format!("pca:{}>bin", d / 2),
        format!("opq:{0}>pq:{0}x4fs", d / 8),
        format!("pq:{}x8", d / 16),
        format!("opq:{0}>pq:{0}x8", d / 16),
        format!("pca:{}>bin", d / 4),
        format!("pq:{}x8", d / 32),
        format!("opq:{0}>pq:{0}x8", d / 32),
        format!("pca:{}>bin", d / 8),
        format!("pq:{}x8", d / 64),
        format!("opq:{0}>pq:{0}x8", d / 64),
    ];
    // Residual quantizers at 32x-256x: one byte of each code goes to the
    // length (unit-length data), so `d/8 - 1` stages make 32x.
    for div in [8, 16, 32, 64] {
        v.push(format!("rq:{}", (d / div).saturating_sub(1)));
    }
    v.retain(|s| Pipeline::train_check(s, d));
    v
}

/// One FAISS anchor figure.
#[derive(Clone, Debug, Serialize)]
pub struct Anchor {
    /// FAISS method (index factory string).
    pub method: String,
    /// Its ratio.
    pub ratio: f64,
    /// Codes-only recall@10.
    pub recall_at_10: f64,
    /// Top-100 f32-rescored recall@10.
    pub recall_at_10_rescored: f64,
}

/// One measured pipeline.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Data folder name.
    pub dataset: String,
    /// The spec string.
    pub pipeline: String,
    /// Bytes stored per vector (codes and per-vector factors).
    pub bytes_per_vector: usize,
    /// `4 * d / bytes_per_vector`.
    pub ratio: f64,
    /// Codes-only recall@10 against `gt.npy`.
    pub recall_at_10: f64,
    /// Recall@10 after rescoring the top candidates with f32.
    pub recall_at_10_rescored: f64,
    /// The same with an int8 second tier.
    pub recall_at_10_rescored_int8: f64,
    /// Fraction of queries with a relevant row in the codes-only top 10.
    pub relevant_at_10: Option<f64>,
    /// Training wall time (s).
    pub train_s: f64,
    /// Vectors encoded per second.
    pub encode_per_s: f64,
    /// Queries per second, 1 thread, k=10, exhaustive.
    pub qps: f64,
    /// Order-0 entropy of the codes, per byte position, summed (bytes per
    /// vector): what a static per-position entropy coder (e.g. rANS)
    /// could reach at best, tables not counted.
    pub entropy_bytes_per_vector: f64,
    /// Measured size of the codes entropy-coded with rANS (one static
    /// model per byte position, tables included), bytes per vector: what
    /// an index saved with entropy coding on would store; above
    /// `bytes_per_vector` when it does not pay (then the index keeps
    /// the codes raw).
    pub rans_bytes_per_vector: f64,
    /// Best FAISS codes-only figure among methods with at least this
    /// ratio (and the best rescored one, possibly another method).
    pub faiss_best: Option<Anchor>,
    /// Best FAISS rescored figure at this ratio or above.
    pub faiss_best_rescored: Option<Anchor>,
}

/// The machine.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// CPU model.
    pub cpu: String,
    /// Kernel ISA used.
    pub isa: String,
    /// Threads (always 1).
    pub threads: usize,
    /// 1-minute load average at the start (the machine may be shared).
    pub load_average: Option<f64>,
}

/// A finished report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Where it ran.
    pub machine: Machine,
    /// Exact-search reference per data set: `(dataset, relevant_at_10)`.
    pub exact: Vec<(String, Option<f64>)>,
    /// One row per pipeline and data set.
    pub results: Vec<Row>,
    /// Every FAISS anchor read, per data set, for plots.
    pub anchors: Vec<(String, Vec<Anchor>)>,
}

/// Progress callback: `(done, total, message)`.
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize, &str);

struct Data {
    name: String,
    corpus: Matrix,
    queries: Matrix,
    gt: Vec<i32>,
    gt_k: usize,
    relevant: Option<Vec<Vec<u32>>>,
}

fn err(e: impl std::fmt::Display) -> BenchError {
    BenchError::Config(e.to_string())
}

fn load(dir: &Path) -> Result<Data, BenchError> {
    let corpus = npy::read_f32(dir.join("corpus.npy")).map_err(err)?;
    let queries = npy::read_f32(dir.join("queries.npy")).map_err(err)?;
    let (gq, gt_k, gt) = npy::read_i32(dir.join("gt.npy")).map_err(err)?;
    if gq != queries.rows || gt_k < 10 || corpus.dim != queries.dim {
        return Err(err(format!(
            "{}: gt.npy must be [{} queries, >= 10] and dimensions agree",
            dir.display(),
            queries.rows
        )));
    }
    corpus.check("corpus").map_err(err)?;
    queries.check("queries").map_err(err)?;
    let relevant = std::fs::read_to_string(dir.join("queries.jsonl"))
        .ok()
        .map(|t| {
            t.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    let v: serde_json::Value =
                        serde_json::from_str(l).unwrap_or_default();
                    v["relevant"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_u64())
                                .map(|x| x as u32)
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .collect::<Vec<Vec<u32>>>()
        })
        .filter(|r| r.len() == queries.rows);
    let name = dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    Ok(Data { name, corpus, queries, gt, gt_k, relevant })
}

/// Reads the FAISS anchors for `dataset` from the anchors JSON.
pub fn read_anchors(path: &Path, dataset: &str) -> Vec<Anchor> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    v["datasets"][dataset]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| {
                    Some(Anchor {
                        method: m["method"].as_str()?.to_string(),
                        ratio: m["ratio"].as_f64()?,
                        recall_at_10: m["recall_at_10"].as_f64()?,
                        recall_at_10_rescored: m["recall_at_10_rescored"]
                            .as_f64()?,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn best_at(anchors: &[Anchor], ratio: f64, rescored: bool) -> Option<Anchor> {
    let key = |a: &Anchor| {
        if rescored { a.recall_at_10_rescored } else { a.recall_at_10 }
    };
    anchors
        .iter()
        .filter(|a| a.ratio >= ratio * 0.999)
        .max_by(|a, b| key(a).total_cmp(&key(b)))
        .cloned()
}

fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Runs every pipeline on every data folder.
pub fn run(cfg: &Config, progress: Progress<'_>) -> Result<Report, BenchError> {
    let machine = Machine {
        cpu: ryot_machine::cpu_info().model.clone(),
        isa: kernels::isa().name().into(),
        threads: 1,
        load_average: load_average(),
    };
    let mut datas = Vec::new();
    for dir in &cfg.data {
        datas.push(load(dir)?);
    }
    let plans: Vec<Vec<String>> = datas
        .iter()
        .map(|d| {
            if cfg.pipelines.is_empty() {
                default_pipelines(d.corpus.dim)
            } else {
                cfg.pipelines.clone()
            }
        })
        .collect();
    let total: usize = plans.iter().map(Vec::len).sum();
    let mut done = 0;
    let mut results = Vec::new();
    let mut exact = Vec::new();
    let mut all_anchors = Vec::new();
    for (data, plan) in datas.iter().zip(&plans) {
        let anchors = cfg
            .anchors
            .as_deref()
            .map(|p| read_anchors(p, &data.name))
            .unwrap_or_default();
        let gt10: Vec<u32> = (0..data.queries.rows)
            .flat_map(|q| {
                data.gt[q * data.gt_k..q * data.gt_k + 10]
                    .iter()
                    .map(|&x| x as u32)
            })
            .collect();
        exact.push((
            data.name.clone(),
            data.relevant.as_ref().map(|r| relevant_at(&gt10, 10, r, 10)),
        ));
        let int8 = Sq::train(&data.corpus, 8).map_err(err)?;
        let mut int8_codes = vec![0u8; data.corpus.rows * data.corpus.dim];
        int8.encode_batch(&data.corpus, &mut int8_codes);
        let mut rng = Rng::new(0);
        let sample =
            data.corpus.select(&rng.sample(data.corpus.rows, cfg.train_rows));
        for spec in plan {
            progress(done, total, &format!("{} {spec}", data.name));
            let row =
                one(cfg, data, spec, &sample, &int8, &int8_codes, &anchors)?;
            results.push(row);
            done += 1;
        }
        all_anchors.push((data.name.clone(), anchors));
    }
    progress(total, total, "done");
    Ok(Report { machine, exact, results, anchors: all_anchors })
}

fn one(
    cfg: &Config,
    data: &Data,
    spec: &str,
    sample: &Matrix,
    int8: &Sq,
    int8_codes: &[u8],
    anchors: &[Anchor],
) -> Result<Row, BenchError> {
    let (corpus, queries) = (&data.corpus, &data.queries);
    let t = Instant::now();
    let p =
        Pipeline::train(spec, sample, TrainOptions::default()).map_err(err)?;
    let train_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let codes = p.encode(corpus).map_err(err)?;
    let encode_per_s = corpus.rows as f64 / t.elapsed().as_secs_f64();
    // Timed pass: k = 10 over the first qps_queries queries.
    let nq = cfg.qps_queries.clamp(1, queries.rows);
    let head = queries.head(nq);
    // Codes in the index's storage layout (fast-scan blocks for `..fs`),
    // as an index holds them.
    let n = corpus.rows;
    let stored = p.to_stored(&codes, n);
    // Best of three timed passes, as the FAISS anchors were measured.
    let mut qps = 0f64;
    for _ in 0..3 {
        let t = Instant::now();
        let _ = p.search_stored(&stored, n, &head, 10).map_err(err)?;
        qps = qps.max(nq as f64 / t.elapsed().as_secs_f64());
    }
    let c = cfg.candidates.max(10).min(corpus.rows);
    let res = p.search_stored(&stored, n, queries, c).map_err(err)?;
    let d = corpus.dim;
    let mut f10 = Vec::new();
    let mut rf = Vec::new();
    let mut ri = Vec::new();
    let mut s1 = [0f32];
    for (qi, r) in res.iter().enumerate() {
        f10.extend(r[..10].iter().map(|x| x.0));
        let q = queries.row(qi);
        let exact: Vec<f32> = r
            .iter()
            .map(|&(i, _)| kernels::dot(q, corpus.row(i as usize)))
            .collect();
        rf.extend(top_k(&exact, 10).iter().map(|&(j, _)| r[j as usize].0));
        let approx: Vec<f32> = r
            .iter()
            .map(|&(i, _)| {
                let i = i as usize;
                int8.scan(q, &int8_codes[i * d..(i + 1) * d], &mut s1);
                s1[0]
            })
            .collect();
        ri.extend(top_k(&approx, 10).iter().map(|&(j, _)| r[j as usize].0));
    }
    let bytes = p.code_bytes();
    let entropy_bytes_per_vector = byte_entropy(&codes, bytes);
    let rans_bytes_per_vector = ryot_compress::entropy::encode(&codes, bytes)
        .map(|b| b.len() as f64 / n as f64)
        .map_err(err)?;
    let ratio = (4 * d) as f64 / bytes as f64;
    Ok(Row {
        dataset: data.name.clone(),
        pipeline: p.spec(),
        bytes_per_vector: bytes,
        ratio,
        recall_at_10: recall_at(&f10, 10, &data.gt, data.gt_k, 10),
        recall_at_10_rescored: recall_at(&rf, 10, &data.gt, data.gt_k, 10),
        recall_at_10_rescored_int8: recall_at(&ri, 10, &data.gt, data.gt_k, 10),
        relevant_at_10: data
            .relevant
            .as_ref()
            .map(|r| relevant_at(&f10, 10, r, 10)),
        train_s,
        encode_per_s,
        qps,
        entropy_bytes_per_vector,
        rans_bytes_per_vector,
        faiss_best: best_at(anchors, ratio, false),
        faiss_best_rescored: best_at(anchors, ratio, true),
    })
}

/// Sum over byte positions of the empirical entropy (bits) / 8.
pub fn byte_entropy(codes: &[u8], stride: usize) -> f64 {
    let n = codes.len() / stride.max(1);
    if n == 0 {
        return 0.0;
    }
    let mut total = 0f64;
    for j in 0..stride {
        let mut h = [0usize; 256];
        for i in 0..n {
            h[codes[i * stride + j] as usize] += 1;
        }
        for &c in &h {
            if c > 0 {
                let p = c as f64 / n as f64;
                total -= p * p.log2();
            }
        }
    }
    total / 8.0
}

/// A fixed-width table of the report.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let m = &r.machine;
    let _ = writeln!(
        s,
        "cpu: {}  isa: {}  threads: 1  load average at start: {}",
        m.cpu,
        m.isa,
        m.load_average.map(|l| format!("{l:.1}")).unwrap_or("-".into())
    );
    for (name, rel) in &r.exact {
        let _ = writeln!(
            s,
            "{name}: exact f32 search relevant@10 = {}",
            rel.map(|v| format!("{v:.3}")).unwrap_or("-".into())
        );
    }
    let _ = writeln!(
        s,
        "{:<18} {:<22} {:>5} {:>6} {:>6} {:>6} {:>6} {:>5} {:>7} {:>8} {:>7} {:>6} {:>6}  {:<24} {:>6} {:>6}",
        "dataset",
        "pipeline",
        "B/vec",
        "ratio",
        "R@10",
        "resc",
        "rs_i8",
        "rel",
        "train_s",
        "enc/s",
        "qps",
        "H B/v",
        "rANS",
        "FAISS best (codes)",
        "R@10",
        "resc"
    );
    for x in &r.results {
        let (fm, fr) = match &x.faiss_best {
            Some(a) => (a.method.clone(), format!("{:.4}", a.recall_at_10)),
            None => ("-".into(), "-".into()),
        };
        let frr = x
            .faiss_best_rescored
            .as_ref()
            .map(|a| format!("{:.4}", a.recall_at_10_rescored))
            .unwrap_or("-".into());
        let _ = writeln!(
            s,
            "{:<18} {:<22} {:>5} {:>6.1} {:>6.4} {:>6.4} {:>6.4} {:>5} {:>7.1} {:>8.0} {:>7.0} {:>6.1} {:>6.1}  {:<24} {:>6} {:>6}",
            x.dataset,
            x.pipeline,
            x.bytes_per_vector,
            x.ratio,
            x.recall_at_10,
            x.recall_at_10_rescored,
            x.recall_at_10_rescored_int8,
            x.relevant_at_10.map(|v| format!("{v:.3}")).unwrap_or("-".into()),
            x.train_s,
            x.encode_per_s,
            x.qps,
            x.entropy_bytes_per_vector,
            x.rans_bytes_per_vector,
            fm,
            fr,
            frr
        );
    }
    s
}

/// An SVG plot of codes-only recall@10 against bytes per vector (log
/// scale), Ryot rows as filled dots, FAISS anchors as hollow ones, one
/// panel per data set.
pub fn svg(r: &Report) -> String {
    let (w, h, pad) = (560.0, 380.0, 50.0);
    let n = r.anchors.len().max(1);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{h}\" \
         font-family=\"sans-serif\" font-size=\"11\">\n",
        w * n as f64
    );
    for (pi, (name, anchors)) in r.anchors.iter().enumerate() {
        let x0 = pi as f64 * w;
        let xs =
            |b: f64| x0 + pad + (b.max(1.0).log2() / 11.0) * (w - 2.0 * pad);
        let ys = |v: f64| h - pad - v * (h - 2.0 * pad);
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"20\">{name}: recall@10 (codes only) vs bytes/vector</text>",
            x0 + pad
        );
        let _ = writeln!(
            s,
            "<rect x=\"{}\" y=\"{pad}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>",
            x0 + pad,
            w - 2.0 * pad,
            h - 2.0 * pad
        );
        for b in [2.0, 8.0, 32.0, 128.0, 512.0, 2048.0] {
            let _ = writeln!(
                s,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{b}</text>",
                xs(b),
                h - pad + 15.0
            );
        }
        for v in [0.0, 0.25, 0.5, 0.75, 1.0] {
            let _ = writeln!(
                s,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{v}</text>",
                x0 + pad - 4.0,
                ys(v) + 4.0
            );
        }
        for a in anchors {
            let bytes = dim_of(r, name) * 4.0 / a.ratio;
            let _ = writeln!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"none\" stroke=\"#c33\"><title>FAISS {} {:.4}</title></circle>",
                xs(bytes),
                ys(a.recall_at_10),
                a.method,
                a.recall_at_10
            );
        }
        for x in r.results.iter().filter(|x| &x.dataset == name) {
            let _ = writeln!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"#36c\"><title>{} {:.4}</title></circle>",
                xs(x.bytes_per_vector as f64),
                ys(x.recall_at_10),
                x.pipeline,
                x.recall_at_10
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" fill=\"#36c\">● ryot</text><text x=\"{}\" y=\"{}\" fill=\"#c33\">○ FAISS 1.15.1</text>",
            x0 + pad + 8.0,
            pad + 16.0,
            x0 + pad + 70.0,
            pad + 16.0
        );
    }
    s.push_str("</svg>\n");
    s
}

fn dim_of(r: &Report, name: &str) -> f64 {
    r.results
        .iter()
        .find(|x| x.dataset == name)
        .map(|x| x.bytes_per_vector as f64 * x.ratio / 4.0)
        .unwrap_or(0.0)
}
