//! Facts about the machine under Ryot, and its DRAM read bandwidth.
//!
//! Ryot runs on small cloud machines whose CPU changes between runs (AMD
//! Zen with a bimodal DRAM bandwidth, Intel Xeon with AMX; see
//! `/work/shared/anchors/machines.md`). Kernel results are only comparable
//! as shares of limits measured in the same run, on the same CPU, so this
//! crate provides both halves:
//!
//! - [`cpu_info`]: model, vendor, logical CPUs, cache sizes and SIMD
//!   features (detected once), with a [`CpuInfo::cache_key`] for tuner
//!   files;
//! - [`DramProbe`]: a streaming read-bandwidth probe over a large buffer,
//!   one contiguous share per thread, several streams per thread, widest
//!   loads available.
//!
//! ```no_run
//! use ryot_machine::{DramProbe, cpu_info};
//! use ryot_pool::ThreadPool;
//!
//! let cpu = cpu_info();
//! println!("{} ({})", cpu.model, cpu.cache_key());
//! println!("avx512f: {}", cpu.has("avx512f"));
//! let probe = DramProbe::new(DramProbe::DEFAULT_BYTES)?;
//! let r = probe.measure(ThreadPool::global(), 2, 5);
//! println!("{:.1} GB/s (median {:.1})", r.gbps_best, r.gbps_median);
//! # Ok::<(), ryot_machine::ProbeError>(())
//! ```
#![deny(missing_docs)]

mod cpu;
mod probe;
mod x86;

pub use cpu::{CpuInfo, KNOWN_FEATURES, cpu_info};
pub use probe::{DramProbe, ProbeError, ProbeResult, ReadPath};
