//! GEMV/GEMM on Ryot's own ternary panel layout ("t2p"), see [`layout`].
//!
//! For each 16-row panel, token and scale group the kernels compute the
//! exact integer sums `isum[r] = sum(code * q) - sum(q)` (codes 0..2, so
//! this is `sum(w * q)` with `w` in -1..1), then combine groups in order:
//!
//! ```text
//! acc[r] = 0
//! for each group g:  acc[r] = acc[r] + (f32(isum_g[r]) / act_scale) * w_scale_g[r]
//! ```
//!
//! Integer sums are exact in every variant and the f32 steps are the same
//! IEEE operations in the same order (no FMA), so scalar, AVX2 and AVX-512
//! results are bit-identical, for any batch size `n` and thread split.
//! With one scale per row this is bitnet.cpp's I2_S formula exactly.

pub mod layout;
pub(crate) mod scalar;

#[cfg(target_arch = "x86_64")]
pub(crate) mod amx;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;

use std::ops::Range;

use crate::act::ActI8;
use crate::isa::SimdLevel;
use crate::out::OutMatrix;
pub use layout::TernaryPanels;

/// One call's inputs, shared by all workers.
pub(crate) struct Job<'a> {
    /// The weights.
    pub w: &'a TernaryPanels,
    /// The quantized activations.
    pub a: &'a ActI8,
    /// `sum(q)` per token and group: `[n][groups]`.
    pub gsums: Vec<i32>,
    /// The output.
    pub out: &'a OutMatrix<'a>,
    /// Panels a GEMV walks at once (1, 2 or 4).
    pub gemv_panels: usize,
    /// Software prefetch distance in lines for GEMVs (0: none).
    pub prefetch: usize,
}

impl<'a> Job<'a> {
    /// Prepares a call (shapes already checked by the caller).
    pub(crate) fn new(
        w: &'a TernaryPanels,
        a: &'a ActI8,
        out: &'a OutMatrix<'a>,
    ) -> Self {
        let gc = w.group_cols();
        let groups = w.k_pad() / gc;
        let gsums = if groups == 1 {
            // One group spans the whole (zero-padded) row: the token sums
            // the quantizer already computed.
            a.sums().to_vec()
        } else {
            let mut v = Vec::with_capacity(a.n() * groups);
            for t in 0..a.n() {
                for g in 0..groups {
                    v.push(a.partial_sum(t, g * gc..(g + 1) * gc));
                }
            }
            v
        };
        let params = crate::tune::current();
        Job {
            w,
            a,
            gsums,
            out,
            gemv_panels: params.t2p_gemv_panels,
            prefetch: params.t2p_prefetch_lines,
        }
    }

    /// Number of scale groups per row.
    pub(crate) fn groups(&self) -> usize {
        self.w.k_pad() / self.w.group_cols()
    }

    /// Token ranges a GEMM walks one after another: each block's
    /// activations (about 192 KiB) stay in L2 while all panels pass over
    /// them. Block lengths are multiples of the kernel's token `tile`.
    pub(crate) fn token_blocks(
        &self,
        tile: usize,
    ) -> impl Iterator<Item = Range<usize>> + use<> {
        let n = self.a.n();
        let per = ((192 << 10) / self.a.k_pad()).max(tile) / tile * tile;
        (0..n).step_by(per).map(move |t| t..(t + per).min(n))
    }

    /// Writes the 16 results of panel `p` for token `t`, dropping padding
    /// rows.
    #[inline]
    pub(crate) fn store(&self, p: usize, t: usize, acc: &[f32; 16]) {
        self.out.write_panel(t, p, acc);
    }
}

/// Fewest tokens for which the AMX variant runs (below, unpacking the codes
/// into tiles costs more than the tile unit saves; GEMVs never use it).
pub const AMX_MIN_TOKENS: usize = 16;

/// Runs panels `panels` of `job` at `level`.
pub(crate) fn run(level: SimdLevel, job: &Job<'_>, panels: Range<usize>) {
    match level {
        SimdLevel::Scalar => scalar::gemm(job, panels),
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2 => avx2::gemm(job, panels),
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 => avx512::gemm(job, panels),
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Amx if job.a.n() >= AMX_MIN_TOKENS => amx::gemm(job, panels),
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Amx => avx512::gemm(job, panels),
        #[cfg(not(target_arch = "x86_64"))]
        _ => scalar::gemm(job, panels),
    }
}
