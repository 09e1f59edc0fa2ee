//! Q8_K activations: each token quantized into 256-element blocks exactly
//! as llama.cpp's `quantize_row_q8_K_ref`
//! (`ryot_quant::act::quantize_row_q8_k`):
//!
//! ```text
//! max = the value of largest magnitude;  iscale = -127 / max
//! q   = min(127, nearest_int(iscale * x))      (half to even)
//! d   = 1 / iscale                             (f32, kept as is)
//! bsums[j] = sum of codes 16j .. 16j+16
//! ```
//!
//! Codes are within -127..=127 (`|iscale * x| <= 127`; when `iscale`
//! overflows, every code is 0 and `d` is 0). Besides the codes, scales and
//! `bsums`, each block keeps the eight 32-element sums (`bsums[2j] +
//! bsums[2j+1]`) that the Q4_K min term needs, as i16.
//!
//! Quantization is the scalar reference at every SIMD level: it is a
//! vanishing part of a matmul (`k` floats per token against `m * k`
//! weights) and the result must not depend on the level.

use ryot_quant::BlockQ8K;

use super::layout::BLOCK;
use crate::error::{KernelError, KernelErrorKind};

/// A batch of `n` tokens of `k` activations as Q8_K blocks.
#[derive(Clone, Debug)]
pub struct ActQ8K {
    n: usize,
    k: usize,
    /// Codes, `n` rows of `k`.
    qs: Vec<i8>,
    /// Scales, `[n][k / 256]`.
    d: Vec<f32>,
    /// Sums of 16 codes, `[n][k / 256][16]`.
    bsums: Vec<i16>,
    /// Sums of 32 codes, `[n][k / 256][8]`.
    sums32: Vec<i16>,
}

impl ActQ8K {
    /// Quantizes `x` (`n` rows of `k`, row-major). `k` must be a multiple
    /// of 256; NaN or infinite inputs are an error.
    pub fn quantize(
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
                ty: "q8_k activations",
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
        let mut a = ActQ8K {
            n,
            k,
            qs: vec![0; total],
            d: vec![0.0; blocks],
            bsums: vec![0; blocks * 16],
            sums32: vec![0; blocks * 8],
        };
        let mut blk = [bytemuck::Zeroable::zeroed()];
        for (i, xb) in x.chunks_exact(BLOCK).enumerate() {
            ryot_quant::act::quantize_row_q8_k(xb, &mut blk);
            let b: &BlockQ8K = &blk[0];
            a.qs[i * BLOCK..(i + 1) * BLOCK].copy_from_slice(&b.qs);
            a.d[i] = b.d;
            a.bsums[i * 16..(i + 1) * 16].copy_from_slice(&b.bsums);
            for j in 0..8 {
                // |sum| <= 32 * 127: fits i16.
                a.sums32[i * 8 + j] = b.bsums[2 * j] + b.bsums[2 * j + 1];
            }
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

    /// Token `t`'s block scales.
    #[inline]
    pub fn scales(&self, t: usize) -> &[f32] {
        let nb = self.blocks();
        &self.d[t * nb..(t + 1) * nb]
    }

    /// Token `t`'s sums of 16 codes, 16 per block.
    #[inline]
    pub fn bsums(&self, t: usize) -> &[i16] {
        let nb = self.blocks();
        &self.bsums[t * nb * 16..(t + 1) * nb * 16]
    }

    /// Token `t`'s sums of 32 codes, 8 per block.
    #[inline]
    pub fn sums32(&self, t: usize) -> &[i16] {
        let nb = self.blocks();
        &self.sums32[t * nb * 8..(t + 1) * nb * 8]
    }

    /// Token `t` as ggml Q8_K blocks.
    pub fn to_blocks(&self, t: usize) -> Vec<BlockQ8K> {
        (0..self.blocks())
            .map(|b| {
                let mut qs = [0i8; BLOCK];
                qs.copy_from_slice(&self.row(t)[b * BLOCK..(b + 1) * BLOCK]);
                let mut bsums = [0i16; 16];
                bsums.copy_from_slice(&self.bsums(t)[b * 16..(b + 1) * 16]);
                BlockQ8K { d: self.scales(t)[b], qs, bsums }
            })
            .collect()
    }
}
