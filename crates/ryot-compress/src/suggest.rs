//! Choosing a pipeline for the user's own vectors, by measurement.
//!
//! A seeded sample of the corpus is held out as queries (or the user's
//! queries are used), the rest is subsampled into a search base whose
//! exact top-10 is the truth, every candidate pipeline (4x to 256x,
//! derived from the dimension only) is trained on the base and measured
//! (recall@10 codes only and with top-100 f32 rescoring, queries per
//! second), and the recommendation is the best recall within a byte
//! budget, or the fewest bytes reaching a target recall.

use std::fmt::Write as _;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::kernels::dot;
use crate::matrix::Matrix;
use crate::pipeline::{Pipeline, TrainOptions};
use crate::rng::Rng;
use crate::search::{exact_search, recall_at, top_k};

/// What the user wants.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Goal {
    /// The best codes-only recall@10 within this many bytes per vector.
    Budget(usize),
    /// The fewest bytes per vector reaching this codes-only recall@10.
    Recall(f64),
}

impl Goal {
    /// Checks the goal: a positive budget, a recall in (0, 1].
    pub fn check(self) -> Result<Goal> {
        match self {
            Goal::Budget(0) => Err(Error::Invalid(
                "--budget-bytes must be at least 1 byte per vector".into(),
            )),
            Goal::Recall(r) if !(r > 0.0 && r <= 1.0) => Err(Error::Invalid(
                format!("--target-recall {r} must be in (0, 1], e.g. 0.9"),
            )),
            g => Ok(g),
        }
    }
}

/// Sizes of the experiment.
#[derive(Clone, Debug)]
pub struct Options {
    /// Held-out queries (ignored when queries are given).
    pub queries: usize,
    /// Rows of the search base (the truth is exact search over it).
    pub base_rows: usize,
    /// Rows of the base used for training.
    pub train_rows: usize,
    /// Candidates rescored from f32 for `recall_at_10_rescored`.
    pub rescore: usize,
    /// Pipelines to try (empty: [`candidates`] for the dimension).
    pub pipelines: Vec<String>,
    /// Seed of the split and of training.
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            queries: 200,
            base_rows: 20_000,
            train_rows: 10_000,
            rescore: 100,
            pipelines: Vec::new(),
            seed: 0,
        }
    }
}

/// One measured candidate.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    /// The canonical spec.
    pub pipeline: String,
    /// Bytes per vector.
    pub bytes_per_vector: usize,
    /// Against f32.
    pub ratio: f64,
    /// Codes-only recall@10.
    pub recall_at_10: f64,
    /// Recall@10 after rescoring the top candidates from f32.
    pub recall_at_10_rescored: f64,
    /// Queries per second over the base (1 thread, k = 10).
    pub qps: f64,
    /// Training time (s).
    pub train_s: f64,
}

/// The measurements and the pick.
#[derive(Clone, Debug)]
pub struct Suggestion {
    /// The goal.
    pub goal: Goal,
    /// Queries measured, and whether they were held out of the corpus.
    pub queries: usize,
    /// Whether the queries were held out of the corpus.
    pub held_out: bool,
    /// Rows searched.
    pub base_rows: usize,
    /// Every candidate, fewest bytes first.
    pub rows: Vec<Measured>,
    /// Index into `rows` of the recommendation, if any meets the goal.
    pub pick: Option<usize>,
}

/// Candidate pipelines for dimension `d`, 4x to 256x (the report sorts
/// them by bytes); only shapes that fit `d` are kept.
pub fn candidates(d: usize) -> Vec<String> {
    let mut v = vec![
        "int8".to_string(),
        "int4".into(),
        format!("pca:{}>int8", d / 2),
        "rabitq:2".into(),
        format!("opq:{0}>pq:{0}x4fs", d / 4),
        format!("opq:{0}>pq:{0}x8", d / 8),
        "rabitq:1".into(),
        format!("opq:{0}>pq:{0}x8", d / 16),
        format!("opq:{0}>pq:{0}x8", d / 32),
        format!("opq:{0}>pq:{0}x8", d / 64),
        // Residual quantizers (slower to train and encode, more recall
        // per byte): a length byte plus `d/16 - 1` or `d/32 - 1` stages.
        format!("rq:{}", (d / 16).saturating_sub(1)),
        format!("rq:{}", (d / 32).saturating_sub(1)),
    ];
    v.retain(|s| Pipeline::train_check(s, d));
    v
}

/// Measures the candidates and picks one. `progress(done, total, what)`
/// is called before each step.
pub fn suggest(
    corpus: &Matrix,
    queries: Option<&Matrix>,
    goal: Goal,
    opts: &Options,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> Result<Suggestion> {
    let goal = goal.check()?;
    corpus.check("corpus")?;
    let mut rng = Rng::new(opts.seed);
    let (q, rest, held_out) = match queries {
        Some(q) => {
            q.check("queries")?;
            if q.dim != corpus.dim {
                return Err(Error::Shape(format!(
                    "queries have dimension {}, the corpus {}",
                    q.dim, corpus.dim
                )));
            }
            (q.clone(), corpus.clone(), false)
        }
        None => {
            let nq = opts.queries.min(corpus.rows / 5);
            if nq == 0 {
                return Err(Error::Invalid(format!(
                    "{} rows is too few to hold out queries (need 5+)",
                    corpus.rows
                )));
            }
            let pick = rng.sample(corpus.rows, corpus.rows);
            let (qi, ri) = pick.split_at(nq);
            (corpus.select(qi), corpus.select(ri), true)
        }
    };
    if q.rows == 0 {
        return Err(Error::Empty("queries"));
    }
    let base = rest.select(&rng.sample(rest.rows, opts.base_rows));
    if base.rows < 10 {
        return Err(Error::Invalid(format!(
            "{} base rows is too few to measure recall@10",
            base.rows
        )));
    }
    let specs = if opts.pipelines.is_empty() {
        candidates(base.dim)
    } else {
        opts.pipelines.clone()
    };
    let total = specs.len() + 1;
    progress(0, total, "exact top-10");
    let (truth, _) = exact_search(&base, &q, 10)?;
    let truth: Vec<i32> = truth.iter().map(|&v| v as i32).collect();
    let train = base.select(&rng.sample(base.rows, opts.train_rows));
    let mut rows = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        progress(i + 1, total, spec);
        rows.push(measure(spec, &base, &train, &q, &truth, opts)?);
    }
    rows.sort_by(|a, b| {
        a.bytes_per_vector
            .cmp(&b.bytes_per_vector)
            .then(b.recall_at_10.total_cmp(&a.recall_at_10))
    });
    let pick = choose(&rows, goal);
    Ok(Suggestion {
        goal,
        queries: q.rows,
        held_out,
        base_rows: base.rows,
        rows,
        pick,
    })
}

fn measure(
    spec: &str,
    base: &Matrix,
    train: &Matrix,
    q: &Matrix,
    truth: &[i32],
    opts: &Options,
) -> Result<Measured> {
    let t = Instant::now();
    let topts = TrainOptions { seed: opts.seed, ..TrainOptions::default() };
    let p = Pipeline::train(spec, train, topts)?;
    let train_s = t.elapsed().as_secs_f64();
    let n = base.rows;
    let stored = p.to_stored(&p.encode(base)?, n);
    let t = Instant::now();
    let hits = p.search_stored(&stored, n, q, 10)?;
    let qps = q.rows as f64 / t.elapsed().as_secs_f64().max(1e-9);
    let found: Vec<u32> =
        hits.iter().flat_map(|h| h.iter().map(|x| x.0)).collect();
    let c = opts.rescore.clamp(10, n);
    let wide = p.search_stored(&stored, n, q, c)?;
    let mut rescored = Vec::with_capacity(q.rows * 10);
    for (qi, cand) in wide.iter().enumerate() {
        let s: Vec<f32> = cand
            .iter()
            .map(|&(r, _)| dot(q.row(qi), base.row(r as usize)))
            .collect();
        rescored.extend(top_k(&s, 10).iter().map(|&(j, _)| cand[j as usize].0));
    }
    let bytes = p.code_bytes();
    Ok(Measured {
        pipeline: p.spec(),
        bytes_per_vector: bytes,
        ratio: (4 * base.dim) as f64 / bytes as f64,
        recall_at_10: recall_at(&found, 10, truth, 10, 10),
        recall_at_10_rescored: recall_at(&rescored, 10, truth, 10, 10),
        qps,
        train_s,
    })
}

/// The pick for `goal` among `rows` (fewest bytes first): the highest
/// recall within the budget (ties: fewer bytes), or the fewest bytes
/// reaching the target (ties: higher recall).
pub fn choose(rows: &[Measured], goal: Goal) -> Option<usize> {
    let idx = 0..rows.len();
    match goal {
        Goal::Budget(b) => {
            idx.filter(|&i| rows[i].bytes_per_vector <= b).max_by(|&i, &j| {
                rows[i].recall_at_10.total_cmp(&rows[j].recall_at_10).then(
                    rows[j].bytes_per_vector.cmp(&rows[i].bytes_per_vector),
                )
            })
        }
        Goal::Recall(r) => {
            idx.filter(|&i| rows[i].recall_at_10 >= r).min_by(|&i, &j| {
                rows[i]
                    .bytes_per_vector
                    .cmp(&rows[j].bytes_per_vector)
                    .then(rows[j].recall_at_10.total_cmp(&rows[i].recall_at_10))
            })
        }
    }
}

impl Suggestion {
    /// A readable table and the recommendation.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} {} queries against {} rows (exact top-10 as truth)",
            if self.held_out { "held out" } else { "given" },
            self.queries,
            self.base_rows
        );
        let _ = writeln!(
            s,
            "{:<24} {:>6} {:>6} {:>6} {:>9} {:>8}",
            "pipeline", "B/vec", "ratio", "R@10", "R@10 resc", "qps"
        );
        for (i, r) in self.rows.iter().enumerate() {
            let _ = writeln!(
                s,
                "{:<24} {:>6} {:>6.1} {:>6.3} {:>9.3} {:>8.0}{}",
                r.pipeline,
                r.bytes_per_vector,
                r.ratio,
                r.recall_at_10,
                r.recall_at_10_rescored,
                r.qps,
                if Some(i) == self.pick { "  <- recommended" } else { "" }
            );
        }
        let want = match self.goal {
            Goal::Budget(b) => format!("within {b} bytes per vector"),
            Goal::Recall(r) => format!("reaching recall@10 {r}"),
        };
        match self.pick {
            Some(i) => {
                let r = &self.rows[i];
                let _ = writeln!(
                    s,
                    "recommended ({want}): {}  ({} B/vector, {:.1}x, \
                     recall@10 {:.3}, {:.3} with f32 rescoring)",
                    r.pipeline,
                    r.bytes_per_vector,
                    r.ratio,
                    r.recall_at_10,
                    r.recall_at_10_rescored
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "no candidate {want}; relax the goal or rescore \
                     (see the R@10 resc column)"
                );
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(b: usize, r: f64) -> Measured {
        Measured {
            pipeline: format!("p{b}"),
            bytes_per_vector: b,
            ratio: 1.0,
            recall_at_10: r,
            recall_at_10_rescored: r,
            qps: 1.0,
            train_s: 0.0,
        }
    }

    #[test]
    fn choose_follows_the_goal() {
        let rows = [row(6, 0.2), row(12, 0.35), row(48, 0.7), row(96, 0.7)];
        assert_eq!(choose(&rows, Goal::Budget(50)), Some(2));
        assert_eq!(choose(&rows, Goal::Budget(200)), Some(2));
        assert_eq!(choose(&rows, Goal::Budget(5)), None);
        assert_eq!(choose(&rows, Goal::Recall(0.3)), Some(1));
        assert_eq!(choose(&rows, Goal::Recall(0.9)), None);
        assert!(Goal::Budget(0).check().is_err());
        assert!(Goal::Recall(0.0).check().is_err());
        assert!(Goal::Recall(f64::NAN).check().is_err());
        assert!(Goal::Recall(1.5).check().is_err());
        assert!(Goal::Recall(1.0).check().is_ok());
    }
}
