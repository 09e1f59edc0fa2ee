//! Prints this CPU's facts and its DRAM read bandwidth on 1 and 2 threads
//! with 1, 4 and 8 streams per thread.
//!
//! ```text
//! cargo run --release -p ryot-machine --example probe -- \
//!     [MiB] [passes] [rounds]
//! ```
//!
//! Defaults: 512 MiB, 5 passes, 3 rounds. Each round measures every
//! configuration once, interleaved, so a bandwidth mode switch on the host
//! shows up as round-to-round spread rather than as a bias of one
//! configuration. Figures are GB/s (10^9 bytes/s).

use ryot_machine::{DramProbe, ReadPath, cpu_info};
use ryot_pool::ThreadPool;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let mib = args.next().transpose()?.unwrap_or(512);
    let passes = args.next().transpose()?.unwrap_or(5);
    let rounds = args.next().transpose()?.unwrap_or(3);

    let cpu = cpu_info();
    println!(
        "cpu: {} ({}), {} logical, L1d {:?} L2 {:?} L3 {:?}",
        cpu.model,
        cpu.vendor,
        cpu.logical_cpus,
        cpu.l1d_bytes,
        cpu.l2_bytes,
        cpu.l3_bytes
    );
    println!("features: {}", cpu.features.join(" "));
    println!("cache key: {}", cpu.cache_key());
    println!(
        "probe: {mib} MiB, {passes} passes/row (best, median), \
         {rounds} rounds, loads {}",
        ReadPath::detect().name()
    );

    let probe = DramProbe::new(mib << 20)?;
    let pool = ThreadPool::new(2);
    let configs: Vec<(usize, usize)> = [1, 2]
        .into_iter()
        .flat_map(|t| [1, 4, 8].map(move |s| (t, s)))
        .collect();
    let mut bests = vec![Vec::new(); configs.len()];
    for round in 0..rounds {
        println!("round {round}:");
        for (i, &(threads, streams)) in configs.iter().enumerate() {
            let r = probe.measure_with(
                &pool,
                threads,
                passes,
                streams,
                ReadPath::detect(),
            );
            println!(
                "  threads {threads} streams {streams:>2}: best {:6.1}  \
                 median {:6.1}",
                r.gbps_best, r.gbps_median
            );
            bests[i].push(r.gbps_best);
        }
    }
    println!("best GB/s over rounds: min / median / max");
    for (&(threads, streams), b) in configs.iter().zip(&mut bests) {
        b.sort_by(f64::total_cmp);
        println!(
            "  threads {threads} streams {streams:>2}: \
             {:6.1} / {:6.1} / {:6.1}",
            b[0],
            b[b.len() / 2],
            b[b.len() - 1]
        );
    }
    Ok(())
}
