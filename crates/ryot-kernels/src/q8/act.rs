//! Q8_0 activations: each token quantized into 32-element blocks exactly as
//! llama.cpp's `quantize_row_q8_0_ref` (`ryot_quant::act::quantize_row_q8_0`):
//!
//! ```text
//! amax = max |x|;  d = amax / 127;  id = d != 0 ? 1 / d : 0
//! q    = roundf(x * id)            (ties away from zero)
//! stored scale: f16(d)             (nearest even)
//! ```
//!
//! The AVX2 quantizer (`super::avx2::quantize_acts`) performs the same IEEE
//! operations and gives identical blocks (tested). Besides the codes, each
//! block keeps its scale widened to f32 and the sum of its codes (the
//! kernels subtract `offset * sum` when weights are stored unsigned).
//!
//! Codes are within -127..=127 except when `1 / d` overflows (`amax` below
//! about `3.7e-37`): then `roundf` of infinity gives the reference's
//! saturated -128/127, but the f16 scale of such a block is 0, so the block
//! contributes nothing whatever its integer sum.

use half::f16;
use ryot_quant::BlockQ8_0;

use super::layout::BLOCK;
use crate::error::{KernelError, KernelErrorKind};
use crate::isa::SimdLevel;

/// A batch of `n` tokens of `k` activations as Q8_0 blocks.
#[derive(Clone, Debug)]
pub struct ActQ8_0 {
    n: usize,
    k: usize,
    /// Codes, `n` rows of `k`.
    qs: Vec<i8>,
    /// f16 scales, `[n][k / 32]`.
    d: Vec<f16>,
    /// The same scales as f32.
    dx: Vec<f32>,
    /// Sum of each block's codes, `[n][k / 32]`.
    sums: Vec<i32>,
}

impl ActQ8_0 {
    /// Quantizes `x` (`n` rows of `k`, row-major) at the dispatched SIMD
    /// level. `k` must be a multiple of 32; NaN or infinite inputs are an
    /// error.
    pub fn quantize(
        x: &[f32],
        n: usize,
        k: usize,
    ) -> Result<Self, KernelError> {
        Self::quantize_at(crate::isa::level(), x, n, k)
    }

    /// [`ActQ8_0::quantize`] at an explicit level (the result is the same
    /// at every level). A level this CPU lacks falls back to scalar.
    pub fn quantize_at(
        level: SimdLevel,
        x: &[f32],
        n: usize,
        k: usize,
    ) -> Result<Self, KernelError> {
        if n == 0 || k == 0 {
            return Err(KernelError::shape(format!(
                "activations need n >= 1 and k >= 1 (got n = {n}, k = {k})"
            )));
        }
        if !k.is_multiple_of(BLOCK) {
            return Err(KernelError::new(KernelErrorKind::NotBlockMultiple {
                ty: "q8_0 activations",
                k,
                block: BLOCK,
            }));
        }
        let total = n.checked_mul(k).ok_or_else(|| {
            KernelError::shape(format!("n*k overflows (n = {n}, k = {k})"))
        })?;
        if x.len() != total {
            return Err(KernelError::len("activations", total, x.len()));
        }
        KernelError::check_finite("activations", x)?;
        let blocks = total / BLOCK;
        let mut a = ActQ8_0 {
            n,
            k,
            qs: vec![0; total],
            d: vec![f16::ZERO; blocks],
            dx: vec![0.0; blocks],
            sums: vec![0; blocks],
        };
        #[cfg(target_arch = "x86_64")]
        if level >= SimdLevel::Avx2 && level.is_available() {
            super::avx2::quantize_acts(x, &mut a.qs, &mut a.d, &mut a.sums);
            a.dx = a.d.iter().map(|d| d.to_f32()).collect();
            return Ok(a);
        }
        let _ = level;
        let mut blk = [BlockQ8_0 { d: f16::ZERO, qs: [0; BLOCK] }];
        for (i, xb) in x.chunks_exact(BLOCK).enumerate() {
            ryot_quant::act::quantize_row_q8_0(xb, &mut blk);
            a.qs[i * BLOCK..(i + 1) * BLOCK].copy_from_slice(&blk[0].qs);
            a.d[i] = blk[0].d;
            a.dx[i] = blk[0].d.to_f32();
            a.sums[i] = blk[0].qs.iter().map(|&q| q as i32).sum();
        }
        Ok(a)
    }

    /// Number of tokens.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Row length.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Blocks per token.
    pub fn blocks(&self) -> usize {
        self.k / BLOCK
    }

    /// Token `t`'s `k` codes.
    #[inline]
    pub fn row(&self, t: usize) -> &[i8] {
        &self.qs[t * self.k..(t + 1) * self.k]
    }

    /// Token `t`'s block scales as f32 (exact widenings of the f16 `d`).
    #[inline]
    pub fn scales(&self, t: usize) -> &[f32] {
        let nb = self.blocks();
        &self.dx[t * nb..(t + 1) * nb]
    }

    /// Token `t`'s per-block sums of codes.
    #[inline]
    pub fn sums(&self, t: usize) -> &[i32] {
        let nb = self.blocks();
        &self.sums[t * nb..(t + 1) * nb]
    }

    /// Token `t` as ggml Q8_0 blocks.
    pub fn to_blocks(&self, t: usize) -> Vec<BlockQ8_0> {
        let nb = self.blocks();
        (0..nb)
            .map(|b| {
                let mut qs = [0i8; BLOCK];
                qs.copy_from_slice(&self.row(t)[b * BLOCK..(b + 1) * BLOCK]);
                BlockQ8_0 { d: self.d[t * nb + b], qs }
            })
            .collect()
    }
}
