//! Benchmarks of Ryot's kernels: shapes, timing, tables and JSON reports.
//!
//! [`kernels::run`] sweeps weight types, shapes, batch sizes, thread counts
//! and cache states, measures every row against a DRAM read-bandwidth probe
//! taken right before and after it, and against an f32 GEMM from the
//! `gemm` crate at the same shape. [`tune::run`] times the kernels' tunable
//! parameters and picks the fastest. The `ryot` binary prints the results
//! as a table and writes them as JSON.
#![deny(missing_docs)]

pub mod compression;
pub mod embed;
pub mod error;
pub mod inference;
pub mod kernels;
pub mod peak;
pub mod table;
pub mod timing;
pub mod tune;
pub mod wtype;

pub use error::BenchError;
