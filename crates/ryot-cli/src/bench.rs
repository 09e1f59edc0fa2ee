//! `ryot bench ...`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ryot_bench::kernels::{self, Config};
use ryot_bench::table;
use ryot_bench::wtype::WType;
use ryot_kernels::{SimdLevel, isa};

use crate::output::{bar, write_json_atomic};

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// GEMV/GEMM kernels: weight types x shapes x batch x threads x cache.
    Kernels(KernelArgs),
    /// Whole models: prefill and decode tok/s, ours vs llama.cpp.
    Inference(crate::bench_inference::InferenceArgs),
    /// Embedding codecs 4x-256x: recall, rescoring, speed, vs FAISS.
    Compression(crate::compress::BenchArgs),
    /// Embedding models: passages/s on 1 and 2 threads, cosine vs the
    /// stored vectors, peak RSS, vs sentence-transformers.
    Embed(crate::embed::BenchArgs),
}

#[derive(Args, Debug)]
pub struct KernelArgs {
    /// A reduced sweep that finishes in under a minute.
    #[arg(long)]
    quick: bool,
    /// Also write the results as JSON to this path.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Weight types (comma-separated). Default: t2p, tq2_0, i2_s, tq1_0,
    /// q4_0, q8_0, f16, f32; also bf16, q4_1, q5_0, q4_k, q6_k.
    #[arg(long, value_delimiter = ',')]
    types: Vec<String>,
    /// Shapes as MxK (comma-separated), e.g. 6912x2560.
    #[arg(long, value_delimiter = ',')]
    shapes: Vec<String>,
    /// Batch sizes (comma-separated).
    #[arg(long, value_delimiter = ',')]
    n: Vec<usize>,
    /// Thread counts (comma-separated).
    #[arg(long, value_delimiter = ',')]
    threads: Vec<usize>,
    /// Only cold or only hot rows.
    #[arg(long, value_parser = ["cold", "hot"])]
    cache: Option<String>,
    /// SIMD level to run at (default: the dispatched one).
    #[arg(long)]
    isa: Option<String>,
    /// Skip the f32 gemm-crate baseline.
    #[arg(long)]
    no_baseline: bool,
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Kernels(a) => kernels_cmd(a),
        BenchCommand::Inference(a) => crate::bench_inference::run(a),
        BenchCommand::Compression(a) => crate::compress::bench(a),
        BenchCommand::Embed(a) => crate::embed::bench(a),
    }
}

fn kernels_cmd(a: KernelArgs) -> anyhow::Result<()> {
    let level = match &a.isa {
        None => isa::level(),
        Some(s) => {
            let l = SimdLevel::parse(s).with_context(|| {
                format!("unknown ISA {s:?} (scalar, avx2, avx512)")
            })?;
            if !l.is_available() {
                bail!(
                    "ISA {l} is not available on this CPU (best: {})",
                    isa::best_available()
                );
            }
            l
        }
    };
    let mut cfg =
        if a.quick { Config::quick(level) } else { Config::full(level) };
    if !a.types.is_empty() {
        cfg.types = a
            .types
            .iter()
            .map(|t| WType::parse(t))
            .collect::<Result<_, _>>()?;
    }
    if !a.shapes.is_empty() {
        cfg.shapes = a
            .shapes
            .iter()
            .map(|s| parse_shape(s))
            .collect::<Result<_, _>>()?;
    }
    if !a.n.is_empty() {
        if let Some(bad) = a.n.iter().find(|&&n| n == 0 || n > 4096) {
            bail!("--n {bad}: batch sizes must be between 1 and 4096");
        }
        cfg.ns = a.n.clone();
    }
    if !a.threads.is_empty() {
        if a.threads.contains(&0) {
            bail!("--threads must be at least 1");
        }
        cfg.threads = a.threads.clone();
    }
    if let Some(c) = &a.cache {
        cfg.hot = vec![c == "hot"];
    }
    cfg.baseline = !a.no_baseline;
    let pb = bar(cfg.rows() as u64);
    let report = kernels::run(&cfg, &mut |done, _total, msg| {
        pb.set_position(done as u64);
        pb.set_message(msg.to_string());
    });
    pb.finish_and_clear();
    let report = report?;
    print!("{}", table::render(&report));
    if let Some(path) = &a.json {
        write_json_atomic(path, &report)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Parses `MxK` (e.g. `6912x2560`).
pub fn parse_shape(s: &str) -> anyhow::Result<(usize, usize)> {
    let (m, k) = s
        .split_once(['x', 'X'])
        .with_context(|| format!("shape {s:?} is not MxK (e.g. 6912x2560)"))?;
    let m: usize =
        m.trim().parse().with_context(|| format!("bad M in {s:?}"))?;
    let k: usize =
        k.trim().parse().with_context(|| format!("bad K in {s:?}"))?;
    if m == 0 || k == 0 || m.saturating_mul(k) > 1 << 30 {
        bail!("shape {s:?}: M and K must be positive and M*K at most 2^30");
    }
    Ok((m, k))
}
