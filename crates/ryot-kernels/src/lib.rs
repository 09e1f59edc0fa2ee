//! Low-bit GEMV/GEMM kernels for CPUs, with run-time SIMD dispatch.
//!
//! Weights come in as GGUF (or bitnet.cpp) bytes and are prepared once
//! ([`Weights`]): kept in their native block layout, or repacked into
//! Ryot's own ternary panel layout ([`t2p`]). Activations are quantized per
//! call ([`act`]). [`matmul`] computes `out[t][row] = sum_k w[row][k] *
//! x[t][k]` for `n` tokens, splitting the rows into one contiguous range
//! per thread of a persistent pool.
//!
//! Every kernel exists as `scalar`, `avx2` and `avx512` variants; [`isa`]
//! picks one per process (`RYOT_FORCE_ISA` lowers it). Results for one row
//! are bit-identical whatever `n`, the thread count or (for the ternary
//! kernels) the SIMD level.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod act;
#[cfg(target_arch = "x86_64")]
pub mod amx;
pub mod arr;
pub(crate) mod blocks;
pub mod dense;
pub mod error;
pub mod int16;
pub mod isa;
pub mod kq;
pub mod matmul;
pub mod native;
pub(crate) mod out;
pub mod q8;
pub mod t2p;
pub mod ternary;
pub mod tune;

pub use act::ActI8;
pub use error::{KernelError, KernelErrorKind};
pub use isa::SimdLevel;
pub use matmul::{Weights, matmul, matmul_at};
pub use t2p::TernaryPanels;
