//! `ryot tune` and `ryot cpu`.

use anyhow::Context;
use clap::Args;
use ryot_bench::kernels::SHAPES;
use ryot_kernels::{isa, tune};
use ryot_machine::cpu_info;

use crate::bench::parse_shape;

#[derive(Args, Debug)]
pub struct TuneArgs {
    /// Shapes to tune for, as MxK (comma-separated); default: the
    /// benchmark's standard shapes.
    #[arg(long, value_delimiter = ',')]
    shapes: Vec<String>,
    /// Threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Measure and print, but don't write the tuning file.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args, Debug)]
pub struct CpuArgs {
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: TuneArgs) -> anyhow::Result<()> {
    let shapes = if a.shapes.is_empty() {
        SHAPES.to_vec()
    } else {
        a.shapes.iter().map(|s| parse_shape(s)).collect::<Result<_, _>>()?
    };
    let threads = a.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    });
    let level = isa::level();
    let info = cpu_info();
    eprintln!(
        "cpu: {} ({} logical CPUs), isa: {level}, caches L1d/L2/L3: {}",
        info.model,
        info.logical_cpus,
        [info.l1d_bytes, info.l2_bytes, info.l3_bytes]
            .iter()
            .map(|c| c
                .map(|b| format!("{} KiB", b / 1024))
                .unwrap_or("?".into()))
            .collect::<Vec<_>>()
            .join("/")
    );
    let pb = crate::output::bar(0);
    let outcome = ryot_bench::tune::run(level, threads, &shapes, &mut |msg| {
        pb.set_message(msg.to_string());
        pb.tick();
    });
    pb.finish_and_clear();
    let outcome = outcome?;
    let path = tune::tune_path();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&outcome.file)?);
    } else {
        let p = &outcome.file.params;
        println!(
            "DRAM read: {:.1} GB/s (1 thread), {:.1} GB/s ({threads} threads)",
            outcome.dram_gbps.0, outcome.dram_gbps.1
        );
        println!("t2p_gemv_panels = {}", p.t2p_gemv_panels);
        println!("t2p_prefetch_lines = {}", p.t2p_prefetch_lines);
        println!("min_bytes_per_thread = {}", p.min_bytes_per_thread);
    }
    if !a.dry_run {
        tune::save(&path, &outcome.file)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

pub fn cpu(a: CpuArgs) -> anyhow::Result<()> {
    let info = cpu_info();
    if a.json {
        println!("{}", serde_json::to_string_pretty(info)?);
        return Ok(());
    }
    println!("model:    {}", info.model);
    println!("vendor:   {}", info.vendor);
    println!("cpus:     {}", info.logical_cpus);
    println!(
        "l1d/l2/l3: {:?} / {:?} / {:?}",
        info.l1d_bytes, info.l2_bytes, info.l3_bytes
    );
    println!("features: {}", info.features.join(" "));
    println!("isa:      {} (best {})", isa::level(), isa::best_available());
    println!("tune file: {}", tune::tune_path().display());
    Ok(())
}
