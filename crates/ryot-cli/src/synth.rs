//! `ryot synth`: a seeded random-weight GGUF with a real model's shapes.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use ryot_engine::synth::{shape, write_synth};
use ryot_quant::QuantType;

use crate::output::bar;

#[derive(Args, Debug)]
pub struct SynthArgs {
    /// smollm2-135m, qwen2.5-0.5b or bitnet-2b.
    #[arg(long)]
    pub shape: String,
    /// Weight type of the matrices (q8_0, q4_0, q4_k, q6_k, tq2_0, tq1_0,
    /// f16, ...).
    #[arg(long = "type")]
    pub wtype: String,
    /// Output file.
    #[arg(short = 'o', long)]
    pub output: PathBuf,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

pub fn run(a: SynthArgs) -> anyhow::Result<()> {
    let s = shape(&a.shape)?;
    let ty = QuantType::from_name(&a.wtype)
        .with_context(|| format!("unknown tensor type {:?}", a.wtype))?;
    let pb = bar(0);
    write_synth(s, ty, &a.output, a.seed, |done, total| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    })
    .with_context(|| format!("writing {}", a.output.display()))?;
    pb.finish_and_clear();
    let size = std::fs::metadata(&a.output).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "ryot: wrote {} ({} shape, {}, {:.1} MB)",
        a.output.display(),
        s.name,
        ty.name(),
        size as f64 / 1e6
    );
    Ok(())
}
