//! `ryot compress fit|encode|search|eval` and `ryot bench compression`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ryot_bench::compression::{self, Config};
use ryot_compress::index::{load_codec, save_codec};
use ryot_compress::rng::Rng;
use ryot_compress::search::recall_at;
use ryot_compress::{Index, Pipeline, TierKind, TrainOptions, npy};

use crate::output::{bar, write_json_atomic};

#[derive(Subcommand, Debug)]
pub enum CompressCommand {
    /// Train a pipeline (spec string) on a corpus sample; write a codec.
    Fit(FitArgs),
    /// Encode a corpus with a codec into an index file.
    Encode(EncodeArgs),
    /// Search an index with query vectors.
    Search(SearchArgs),
    /// Search and compare with ground truth (recall@k).
    Eval(EvalArgs),
    /// Measure candidate pipelines on your vectors and recommend one.
    Suggest(SuggestArgs),
}

#[derive(Args, Debug)]
pub struct SuggestArgs {
    /// Corpus vectors (.npy, float32 [n, d]).
    #[arg(short, long)]
    input: PathBuf,
    /// Query vectors (default: a seeded held-out sample of the corpus).
    #[arg(long)]
    queries: Option<PathBuf>,
    /// Best recall within this many bytes per vector.
    #[arg(
        long,
        conflicts_with = "target_recall",
        required_unless_present = "target_recall"
    )]
    budget_bytes: Option<usize>,
    /// Fewest bytes per vector reaching this codes-only recall@10.
    #[arg(long)]
    target_recall: Option<f64>,
    /// Rows searched (subsampled, seeded).
    #[arg(long, default_value_t = 20_000)]
    base_rows: usize,
    /// Pipelines to try (comma-separated; default: a 4x-256x set).
    #[arg(long, value_delimiter = ',')]
    pipelines: Vec<String>,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct FitArgs {
    /// Corpus vectors (.npy, float32 [n, d]).
    #[arg(short, long)]
    input: PathBuf,
    /// Pipeline spec, e.g. `rq:47`, `opq:48>pq:48x8` or `pca:128>rabitq:2`.
    #[arg(short, long)]
    pipeline: String,
    /// Codec file to write.
    #[arg(short, long)]
    output: PathBuf,
    /// Rows sampled (seeded) for training.
    #[arg(long, default_value_t = 20_000)]
    sample: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args, Debug)]
pub struct EncodeArgs {
    /// Codec file from `fit`.
    #[arg(short, long)]
    codec: PathBuf,
    /// Corpus vectors (.npy, float32).
    #[arg(short, long)]
    input: PathBuf,
    /// Index file to write.
    #[arg(short, long)]
    output: PathBuf,
    /// Optional ids (.npy int32, one per row); default: row numbers.
    #[arg(long)]
    ids: Option<PathBuf>,
    /// Second tier kept for rescoring.
    #[arg(long, value_parser = ["none", "int8", "f32"], default_value = "none")]
    tier: String,
    /// Entropy-code the stored codes (rANS) when that makes them smaller.
    #[arg(long)]
    entropy: bool,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// Index file.
    #[arg(short, long)]
    index: PathBuf,
    /// Query vectors (.npy, float32).
    #[arg(short, long)]
    queries: PathBuf,
    /// Hits per query.
    #[arg(short, default_value_t = 10)]
    k: usize,
    /// Rescore the top candidates from the index's second tier.
    #[arg(long, value_parser = ["f32", "int8"])]
    rescore: Option<String>,
    /// Candidates to rescore.
    #[arg(long, default_value_t = 100)]
    candidates: usize,
    /// Memory-map the f32 tier instead of reading it.
    #[arg(long)]
    mmap: bool,
    /// Print JSON (`{"results": [{"hits": [{"id", "score"}]}]}`).
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    search: SearchArgs,
    /// Ground truth (.npy int32 [queries, >= k]).
    #[arg(long)]
    gt: PathBuf,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Data folders (default: ../shared/data/{minilm,wordllama}-wordnet).
    #[arg(long, value_delimiter = ',')]
    data: Vec<PathBuf>,
    /// Also write the results as JSON to this path.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Also write an SVG plot of recall against bytes per vector.
    #[arg(long, value_name = "PATH")]
    svg: Option<PathBuf>,
    /// Pipelines (comma-separated specs; default: a 4x-256x set).
    #[arg(long, value_delimiter = ',')]
    pipelines: Vec<String>,
    /// Rows sampled to train on.
    #[arg(long, default_value_t = 20_000)]
    train_rows: usize,
    /// Queries timed for qps.
    #[arg(long, default_value_t = 300)]
    qps_queries: usize,
    /// FAISS anchors JSON (default: <data>/../../anchors/faiss-wordnet.json).
    #[arg(long)]
    anchors: Option<PathBuf>,
}

pub fn run(cmd: CompressCommand) -> anyhow::Result<()> {
    match cmd {
        CompressCommand::Fit(a) => fit(a),
        CompressCommand::Encode(a) => encode(a),
        CompressCommand::Search(a) => search(a, None),
        CompressCommand::Eval(a) => search(a.search, Some(a.gt)),
        CompressCommand::Suggest(a) => suggest(a),
    }
}

fn suggest(a: SuggestArgs) -> anyhow::Result<()> {
    use ryot_compress::suggest::{Goal, Options};
    let goal = match (a.budget_bytes, a.target_recall) {
        (Some(b), _) => Goal::Budget(b),
        (None, Some(r)) => Goal::Recall(r),
        (None, None) => bail!("give --budget-bytes B or --target-recall R"),
    }
    .check()?;
    let x = read(&a.input)?;
    let q = a.queries.as_deref().map(read).transpose()?;
    let opts = Options {
        base_rows: a.base_rows,
        pipelines: a.pipelines.clone(),
        seed: a.seed,
        ..Options::default()
    };
    let pb = bar(0);
    let s = ryot_compress::suggest::suggest(
        &x,
        q.as_ref(),
        goal,
        &opts,
        &mut |done, total, msg| {
            pb.set_length(total as u64);
            pb.set_position(done as u64);
            pb.set_message(msg.to_string());
        },
    );
    pb.finish_and_clear();
    let s = s?;
    if !a.json {
        print!("{}", s.render());
        return Ok(());
    }
    let rows: Vec<_> = s
        .rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "pipeline": r.pipeline, "bytes_per_vector": r.bytes_per_vector,
                "ratio": r.ratio, "recall_at_10": r.recall_at_10,
                "recall_at_10_rescored": r.recall_at_10_rescored,
                "qps": r.qps, "train_s": r.train_s,
            })
        })
        .collect();
    let goal = match s.goal {
        Goal::Budget(b) => serde_json::json!({ "budget_bytes": b }),
        Goal::Recall(r) => serde_json::json!({ "target_recall": r }),
    };
    println!(
        "{}",
        serde_json::json!({
            "goal": goal, "queries": s.queries, "held_out": s.held_out,
            "base_rows": s.base_rows, "results": rows,
            "recommended": s.pick.map(|i| s.rows[i].pipeline.clone()),
        })
    );
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<ryot_compress::Matrix> {
    npy::read_f32(path).with_context(|| format!("reading {}", path.display()))
}

fn fit(a: FitArgs) -> anyhow::Result<()> {
    let x = read(&a.input)?;
    ryot_compress::Spec::parse(&a.pipeline)?;
    let mut rng = Rng::new(a.seed);
    let sample = x.select(&rng.sample(x.rows, a.sample));
    let pb = bar(1);
    pb.set_message(format!("training {} on {} rows", a.pipeline, sample.rows));
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    let t = Instant::now();
    let opts = TrainOptions { seed: a.seed, ..TrainOptions::default() };
    let p = Pipeline::train(&a.pipeline, &sample, opts);
    pb.finish_and_clear();
    let p = p?;
    save_codec(&p, &a.output)?;
    eprintln!(
        "trained {} in {:.1}s: {} bytes/vector ({:.1}x); wrote {}",
        p.spec(),
        t.elapsed().as_secs_f64(),
        p.code_bytes(),
        (4 * p.dim()) as f64 / p.code_bytes() as f64,
        a.output.display()
    );
    Ok(())
}

fn encode(a: EncodeArgs) -> anyhow::Result<()> {
    let p = load_codec(&a.codec)
        .with_context(|| format!("reading {}", a.codec.display()))?;
    let x = read(&a.input)?;
    let ids: Vec<u64> = match &a.ids {
        None => (0..x.rows as u64).collect(),
        Some(path) => {
            let (r, c, v) = npy::read_i32(path)?;
            if r * c != x.rows || v.iter().any(|&i| i < 0) {
                bail!("{}: need {} non-negative ids", path.display(), x.rows);
            }
            v.into_iter().map(|i| i as u64).collect()
        }
    };
    let tier = match a.tier.as_str() {
        "int8" => TierKind::Int8,
        "f32" => TierKind::F32,
        _ => TierKind::None,
    };
    let mut index = Index::new(p, tier);
    index.set_entropy_coding(a.entropy);
    let chunk = 4096;
    let pb = bar(x.rows as u64);
    pb.set_message("encoding");
    for start in (0..x.rows).step_by(chunk) {
        let end = (start + chunk).min(x.rows);
        let rows: Vec<usize> = (start..end).collect();
        index.add(&ids[start..end], &x.select(&rows))?;
        pb.set_position(end as u64);
    }
    pb.finish_and_clear();
    index.save(&a.output)?;
    eprintln!("encoded {} vectors; wrote {}", index.len(), a.output.display());
    Ok(())
}

fn search(a: SearchArgs, gt: Option<PathBuf>) -> anyhow::Result<()> {
    let index = Index::open(&a.index, a.mmap)
        .with_context(|| format!("reading {}", a.index.display()))?;
    let q = read(&a.queries)?;
    if let Some(r) = &a.rescore {
        let want = if r == "f32" { TierKind::F32 } else { TierKind::Int8 };
        if index.tier() != want {
            bail!(
                "--rescore {r}: the index holds a {} tier (encode with \
                 --tier {r})",
                format!("{:?}", index.tier()).to_lowercase()
            );
        }
    }
    let cand = a.rescore.as_ref().map(|_| a.candidates);
    let t = Instant::now();
    let hits = index.search(&q, a.k, cand)?;
    let secs = t.elapsed().as_secs_f64();
    if let Some(gt) = gt {
        let (gq, gk, g) = npy::read_i32(&gt)?;
        if gq != q.rows || gk < a.k {
            bail!("{}: need [{} queries, >= {}]", gt.display(), q.rows, a.k);
        }
        let found: Vec<u32> =
            hits.iter().flat_map(|h| h.iter().map(|x| x.id as u32)).collect();
        let r = recall_at(&found, a.k, &g, gk, a.k);
        if a.json {
            println!(
                "{}",
                serde_json::json!({
                    "recall_at_k": r, "k": a.k, "queries": q.rows,
                    "qps": q.rows as f64 / secs,
                })
            );
        } else {
            println!(
                "recall@{}: {r:.4}  ({} queries, {:.0} qps)",
                a.k,
                q.rows,
                q.rows as f64 / secs
            );
        }
        return Ok(());
    }
    if a.json {
        let v: Vec<_> = hits
            .iter()
            .map(|h| {
                serde_json::json!({"hits": h.iter().map(|x| serde_json::json!({
                    "id": x.id, "score": x.score})).collect::<Vec<_>>()})
            })
            .collect();
        println!("{}", serde_json::json!({ "results": v }));
    } else {
        for (i, h) in hits.iter().enumerate() {
            let s: Vec<String> =
                h.iter().map(|x| format!("{}:{:.4}", x.id, x.score)).collect();
            println!("{i}\t{}", s.join(" "));
        }
    }
    Ok(())
}

pub fn bench(a: BenchArgs) -> anyhow::Result<()> {
    let data = if a.data.is_empty() {
        let shared = std::env::var_os("RYOT_SHARED")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("../shared"));
        vec![
            shared.join("data/minilm-wordnet"),
            shared.join("data/wordllama-wordnet"),
        ]
    } else {
        a.data.clone()
    };
    let anchors = a.anchors.clone().or_else(|| {
        data.first()
            .map(|d| d.join("../../anchors/faiss-wordnet.json"))
            .filter(|p| p.is_file())
    });
    let cfg = Config {
        data,
        pipelines: a.pipelines.clone(),
        train_rows: a.train_rows,
        candidates: 100,
        anchors,
        qps_queries: a.qps_queries,
    };
    let pb = bar(0);
    let report = compression::run(&cfg, &mut |done, total, msg| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
        pb.set_message(msg.to_string());
    });
    pb.finish_and_clear();
    let report = report?;
    print!("{}", compression::render(&report));
    if let Some(path) = &a.json {
        write_json_atomic(path, &report)?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &a.svg {
        ryot_compress::npy::write_atomic(
            path,
            compression::svg(&report).as_bytes(),
        )?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
