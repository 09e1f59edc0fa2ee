//! Readable tables of benchmark rows.

use std::fmt::Write;

use crate::kernels::{Report, Row};

/// Renders a report as a fixed-width table, baseline rows first.
pub fn render(report: &Report) -> String {
    let m = &report.machine;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "cpu: {}  isa: {}  DRAM read: {}",
        m.cpu,
        m.isa,
        m.dram_read_gbps_by_threads
            .iter()
            .map(|(t, g)| format!("{g:.1} GB/s ({t} thr)"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(p) = m.int8_peak_gops_per_core {
        let _ = writeln!(s, "int8 peak: {p:.0} GOP/s per core (same run)");
    }
    if let Some(p) = m.amx_int8_peak_gops_per_core {
        let _ =
            writeln!(s, "AMX int8 tile peak: {p:.0} GOP/s per core (same run)");
    }
    let _ = writeln!(
        s,
        "{:<5} {:<14} {:>5} {:>5} {:>4} {:>3} {:<4} {:>10} {:>8} {:>8} {:>7} {:>7} {:>6}",
        "op",
        "wtype",
        "m",
        "k",
        "n",
        "thr",
        "cache",
        "median_us",
        "GOP/s",
        "GB/s",
        "%DRAM",
        "x f32",
        "%peak"
    );
    for r in report.baseline.iter().chain(&report.results) {
        line(&mut s, r);
    }
    for x in &report.skipped {
        let _ =
            writeln!(s, "skipped {} at {}x{}: {}", x.wtype, x.m, x.k, x.reason);
    }
    s
}

fn line(s: &mut String, r: &Row) {
    let speed = r
        .speedup_vs_f32
        .map(|x| format!("{x:.1}"))
        .unwrap_or_else(|| "-".into());
    let _ = writeln!(
        s,
        "{:<5} {:<14} {:>5} {:>5} {:>4} {:>3} {:<4} {:>10.1} {:>8.1} {:>8.1} {:>6.0}{} {:>7} {:>6}",
        r.op,
        r.wtype,
        r.m,
        r.k,
        r.n,
        r.threads,
        r.cache,
        r.median_us,
        r.gflops,
        r.weight_gbps,
        r.pct_of_dram,
        if r.probe_disagree { "?" } else { " " },
        speed,
        r.pct_of_int8_peak
            .map(|p| format!("{p:.0}"))
            .unwrap_or_else(|| "-".into())
    );
}
