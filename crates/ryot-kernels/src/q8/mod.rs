//! GEMV/GEMM with Q8_0, Q4_0, Q4_1 or Q5_0 weights and Q8_0 activations.
//!
//! Weights are repacked at load time into 16-row panels whose lines hold 4
//! columns of 16 rows ([`layout`]); activations are quantized per token
//! into Q8_0 blocks ([`act`], llama.cpp's reference quantizer; llama.cpp
//! pairs Q4_1 with Q8_1, whose codes and `d` are the same as Q8_0's, and
//! whose `s = d * sum(q)` we take from the exact block sums instead). For
//! each panel, token and 32-column block `b`, every variant computes the
//! exact integer dot product of each row's codes with the token's codes,
//! then combines blocks in order, lane-wise per row:
//!
//! ```text
//! acc[r] = 0
//! for each block b:
//!     isum[r] = sum_{c in b} code_w[r][c] * code_x[c]        (exact, i32)
//!     d[r]    = f32(d_w[r][b]) * f32(d_x[b])                 (exact)
//!     acc[r]  = fma(f32(isum[r]), d[r], acc[r])              (one rounding)
//!     Q4_1 only (x_w = d_w * q + m_w, code_w = q):
//!     mx[r]   = f32(m_w[r][b]) * f32(d_x[b])                 (exact)
//!     acc[r]  = fma(f32(sum_{c in b} code_x[c]), mx[r], acc[r])
//! out[t][r] = acc[r]
//! ```
//!
//! `f32(isum)` is exact (`|isum| <= 32 * 128 * 128 < 2^24`), so is
//! `f32(sum(code_x))`, and so is the product of two f16 values in f32
//! (11 + 11 significant bits), so the only roundings are the fused
//! multiply-adds, done in the same order by the scalar twin
//! (`f32::mul_add`) and the SIMD variants (`vfmadd`). Results are
//! therefore bit-identical across SIMD levels, batch sizes `n` and thread
//! counts. llama.cpp's `ggml_vec_dot_q8_0_q8_0` uses the same per-block
//! formula (`sumf += sumi * (d_x * d_y)`), but reduces partial sums across
//! lanes in an ISA-dependent order.
//!
//! Integer sums per ISA, with stored unsigned codes `q = code + OFFSET`
//! (Q8_0 128, Q4_0 8, Q5_0 16, Q4_1 0; see [`layout`]):
//! * AVX-512 VNNI: `vpdpbusd(line, broadcast(4 codes of x))` with the
//!   weights as the unsigned operand, the accumulator starting at
//!   `-OFFSET * sum(x_b)`.
//! * AVX2: nibble formats `vpmaddubsw(q, x)` summed in i16 (at most 16
//!   products of 15 * 128 for 4-bit `q`, 8 products of 31 * 128 for Q5_0's
//!   5-bit `q`, between widenings: no overflow), then `vpmaddwd` by ones
//!   and `- OFFSET * sum(x_b)`; Q8_0 `vpmaddubsw(|w|, sign(x, w))`
//!   (llama.cpp's trick), widened to i32 for every line.

pub mod act;
pub mod layout;
pub(crate) mod scalar;

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;

use std::ops::Range;

pub use act::ActQ8_0;
use layout::PANEL_ROWS;
pub use layout::{
    Q4_0Panels, Q4_1Panels, Q5_0Panels, Q8_0Panels, QBlock, QPanels,
};

use crate::error::KernelError;
use crate::isa::SimdLevel;
use crate::matmul::{Kernel, drive};
use crate::out::OutMatrix;

/// One call's inputs, shared by all workers.
pub(crate) struct Job<'a, B> {
    /// The weights.
    pub w: &'a QPanels<B>,
    /// The quantized activations.
    pub a: &'a ActQ8_0,
    /// The output.
    pub out: &'a OutMatrix<'a>,
}

impl<B: QBlock> Job<'_, B> {
    /// Writes the 16 results of panel `p` for token `t`, dropping padding
    /// rows.
    #[inline]
    pub(crate) fn store(&self, p: usize, t: usize, acc: &[f32; PANEL_ROWS]) {
        self.out.write_panel(t, p, acc);
    }
}

/// Runs panels `panels` of `job` at `level`.
pub(crate) fn run<B: QBlock>(
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

impl<B: QBlock> Kernel for QPanels<B> {
    type Acts = ActQ8_0;

    fn m(&self) -> usize {
        QPanels::m(self)
    }

    fn prepare_acts(
        &self,
        x: &[f32],
        n: usize,
    ) -> Result<ActQ8_0, KernelError> {
        ActQ8_0::quantize(x, n, self.k())
    }

    fn n(acts: &ActQ8_0) -> usize {
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
        acts: &ActQ8_0,
        units: Range<usize>,
        out: &OutMatrix<'_>,
    ) {
        run(level, &Job { w: self, a: acts, out }, units);
    }
}

/// Q8_0/Q4_0/Q4_1/Q5_0 panels times already-quantized activations (`a.k()` must
/// equal `w.k()`), on `threads` workers of `pool`.
pub fn matmul_q8_acts<B: QBlock>(
    level: SimdLevel,
    w: &QPanels<B>,
    a: &ActQ8_0,
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
