//! `ryot bench inference`: whole-model prefill/decode speed, ours vs
//! llama.cpp's `llama-bench` on the same files in the same run.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use ryot_bench::inference::{self, Config, ModelCase};
use ryot_model::TernaryLayout;
use serde_json::json;

use crate::lm::ryot_home;
use crate::output::{bar, write_json_atomic};

#[derive(Args, Debug)]
pub struct InferenceArgs {
    /// Only the TinyStories model and SmolLM2-135M Q8_0, shorter runs.
    #[arg(long)]
    quick: bool,
    /// Also write the results as JSON to this path.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Thread counts.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    /// Measure these GGUF files instead of the standard set.
    #[arg(short = 'm', long = "model")]
    models: Vec<PathBuf>,
    /// Prompt tokens (default 512; 128 with --quick).
    #[arg(long)]
    n_prompt: Option<usize>,
    /// Decode tokens (default 128; 32 with --quick).
    #[arg(long)]
    n_gen: Option<usize>,
    /// Repetitions per row (median kept).
    #[arg(long, default_value_t = 1)]
    reps: usize,
    /// llama.cpp's llama-bench binary (default: $RYOT_LLAMA_BENCH, or
    /// llama-bench on PATH); measured on the same files when found.
    #[arg(long)]
    peer: Option<PathBuf>,
    /// Where synthetic model files are written (default
    /// $RYOT_HOME/synth).
    #[arg(long)]
    synth_dir: Option<PathBuf>,
}

fn find_peer(a: &InferenceArgs) -> Option<PathBuf> {
    if let Some(p) = &a.peer {
        return Some(p.clone());
    }
    if let Some(p) = std::env::var_os("RYOT_LLAMA_BENCH") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("llama-bench"))
        .find(|p| p.is_file())
}

fn shared_models() -> PathBuf {
    ryot_paths::shared_dir().join("models")
}

pub fn run(a: InferenceArgs) -> anyhow::Result<()> {
    if a.threads.iter().any(|&t| t == 0 || t > 256) {
        anyhow::bail!("--threads values must be in 1..=256");
    }
    let synth_dir =
        a.synth_dir.clone().unwrap_or_else(|| ryot_home().join("synth"));
    let cases = if a.models.is_empty() {
        inference::standard_cases(&synth_dir, &shared_models(), a.quick, |m| {
            eprintln!("ryot: {m}")
        })
        .context("preparing the model files")?
    } else {
        a.models
            .iter()
            .map(|p| ModelCase {
                model: p
                    .file_stem()
                    .map_or("model".into(), |s| s.to_string_lossy().into()),
                wtype: "-".into(),
                path: p.clone(),
                ternary: TernaryLayout::Panels,
                peer: true,
            })
            .collect()
    };
    let peer = find_peer(&a);
    match &peer {
        Some(p) => eprintln!("ryot: peer llama-bench: {}", p.display()),
        None => eprintln!(
            "ryot: no llama-bench found (--peer, $RYOT_LLAMA_BENCH or PATH): \
             measuring Ryot only"
        ),
    }
    let cfg = Config {
        cases,
        threads: a.threads.clone(),
        n_prompt: a.n_prompt.unwrap_or(if a.quick { 128 } else { 512 }),
        n_gen: a.n_gen.unwrap_or(if a.quick { 32 } else { 128 }),
        reps: a.reps,
        peer,
    };
    let pb = bar(0);
    let rows = inference::run(&cfg, |done, total, msg| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
        pb.set_message(msg.to_string());
    })?;
    pb.finish_and_clear();
    print!("{}", inference::table(&rows));
    if let Some(path) = &a.json {
        let cpu = ryot_machine::cpu_info();
        let probes: Vec<_> = rows.iter().map(|r| r.probe_gbps).collect();
        let v = json!({
            "machine": {
                "cpu": cpu.model,
                "isa": ryot_kernels::isa::level().to_string(),
                "threads": a.threads,
                "dram_read_gbps": probes.iter().copied().fold(0.0, f64::max),
            },
            "config": {"n_prompt": cfg.n_prompt, "n_gen": cfg.n_gen, "reps": cfg.reps},
            "results": rows,
        });
        write_json_atomic(path, &v)?;
        eprintln!("ryot: wrote {}", path.display());
    }
    Ok(())
}
