//! GEMV/GEMM with Q4_K or Q6_K weights and Q8_K activations (the
//! K-quants of real small GGUFs such as Qwen2.5 and SmolLM2).
//!
//! Weights are repacked at load time into 16-row panels ([`layout`]: a
//! 64-byte line holds one dword of each row, lossless); activations are
//! quantized per token into Q8_K blocks ([`act`], llama.cpp's reference
//! quantizer). For each row, token and 256-column super-block `b`, every
//! variant computes exact integer sums with the sub-block scales applied
//! in integer, as llama.cpp's `ggml_vec_dot_q4_K_q8_K` /
//! `ggml_vec_dot_q6_K_q8_K` do, then combines blocks in order:
//!
//! ```text
//! Q4_K (x = d * sc_j * q - dmin * m_j, q in 0..16, 8 sub-blocks of 32):
//!     S = sum_j sc_j * sum_{e in j} q_e * x_e            (exact, i32)
//!     M = sum_j m_j * (bsums[2j] + bsums[2j+1])          (exact, i32)
//!     acc = acc + (f32(d) * d_x) * f32(S)
//!     acc = acc - (f32(dmin) * d_x) * f32(M)
//! Q6_K (x = d * sc_j * (q - 32), q in 0..64, 16 sub-blocks of 16):
//!     S = sum_j sc_j * sum_{e in j} (q_e - 32) * x_e     (exact, i32)
//!     acc = acc + (f32(d) * d_x) * f32(S)
//! out[t][row] = acc       (acc starts at 0, blocks in order)
//! ```
//!
//! The integer sums are exact in every variant (bounds in each ISA file),
//! and the f32 steps are the same IEEE operations in the same order, with
//! no FMA, lane-wise per row (`f32(S)` rounds once `|S| > 2^24`, which
//! Q4_K's `|S| <= 8 * 63 * 32 * 15 * 127` allows, the same way everywhere). So results are bit-identical across SIMD
//! levels, batch sizes `n`, tilings and thread counts. (llama.cpp sums the
//! same per-block terms but reduces SIMD lanes in an ISA-dependent order.)
//!
//! Integer sums per ISA:
//! * AVX-512 VNNI: `vpdpbusd(codes, broadcast(4 codes of x))` per
//!   sub-block, times the sub-block scale (`vpmulld`); the Q4_K min term
//!   and the Q6_K `-32` offset are `vpdpwssd` of i16 scale pairs with
//!   `bsums`.
//! * AVX2: `vpmaddubsw(codes, broadcast(x))` summed in i16 (8 lines for
//!   Q4_K, 2 for Q6_K: no overflow), then `vpmaddwd` by the sub-block scale
//!   duplicated in both i16 of each row's dword (llama.cpp's trick); the
//!   min/offset terms with `vpmaddwd` of scale pairs and `bsums`.

pub mod act;
pub mod layout;
pub(crate) mod scalar;

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;

use std::ops::Range;

pub use act::ActQ8K;
use layout::PANEL_ROWS;
pub use layout::{KBlock, KPanels, Q4KPanels, Q6KPanels};

use crate::error::KernelError;
use crate::isa::SimdLevel;
use crate::matmul::{Kernel, drive};
use crate::out::OutMatrix;

/// One call's inputs, shared by all workers.
pub(crate) struct Job<'a, B> {
    /// The weights.
    pub w: &'a KPanels<B>,
    /// The quantized activations.
    pub a: &'a ActQ8K,
    /// The output.
    pub out: &'a OutMatrix<'a>,
}

impl<B: KBlock> Job<'_, B> {
    /// Writes the 16 results of panel `p` for token `t`, dropping padding
    /// rows.
    #[inline]
    pub(crate) fn store(&self, p: usize, t: usize, acc: &[f32; PANEL_ROWS]) {
        self.out.write_panel(t, p, acc);
    }
}

/// Runs panels `panels` of `job` at `level`.
pub(crate) fn run<B: KBlock>(
    level: SimdLevel,
    job: &Job<'_, B>,
    panels: Range<usize>,
) {
    match level {
        SimdLevel::Scalar => scalar::gemm(job, panels),
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2 => avx2::gemm(job, panels),
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 | SimdLevel::Amx => avx512::gemm(job, panels),
        #[cfg(not(target_arch = "x86_64"))]
        _ => scalar::gemm(job, panels),
    }
}

impl<B: KBlock> Kernel for KPanels<B> {
    type Acts = ActQ8K;

    fn m(&self) -> usize {
        KPanels::m(self)
    }

    fn prepare_acts(&self, x: &[f32], n: usize) -> Result<ActQ8K, KernelError> {
        ActQ8K::quantize(x, n, self.k())
    }

    fn n(acts: &ActQ8K) -> usize {
        acts.n()
    }

    fn units(&self) -> usize {
        self.panels()
    }

    fn weight_bytes(&self) -> usize {
        self.stored_bytes()
    }

    fn run(
        &self,
        level: SimdLevel,
        acts: &ActQ8K,
        units: Range<usize>,
        out: &OutMatrix<'_>,
    ) {
        run(level, &Job { w: self, a: acts, out }, units);
    }
}

/// Q4_K/Q6_K panels times already-quantized activations (`a.k()` must
/// equal `w.k()`), on `threads` workers of `pool`.
pub fn matmul_q8k_acts<B: KBlock>(
    level: SimdLevel,
    w: &KPanels<B>,
    a: &ActQ8K,
    out: &mut [f32],
    pool: &ryot_pool::ThreadPool,
    threads: usize,
) -> Result<(), KernelError> {
    if a.k() != w.k() {
        return Err(KernelError::shape(format!(
            "activations have k = {} but the weights have k = {}",
            a.k(),
            w.k()
        )));
    }
    drive(level, w, a, out, pool, threads)
}
