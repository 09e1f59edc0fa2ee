//! Activation quantization: f32 tokens to int8, one scale per token.
//!
//! This is BitNet b1.58's per-token absmax scheme, in the exact arithmetic
//! of bitnet.cpp's `quantize_row_i8_s` so that I2_S results can be compared
//! bit for bit with its kernels:
//!
//! ```text
//! max   = max(1e-5, max_i |x_i|)          (f64)
//! scale = f32(127 / max)                   (the "act_scale")
//! q_i   = clamp(round_half_even(x_i * scale), -128, 127)
//! ```
//!
//! A dot product with ternary weights is then `sum(w*q) / scale`. Rows are
//! zero-padded to a multiple of [`ACT_ALIGN`] so kernels can read whole
//! vectors; the padding contributes nothing.

use crate::error::{KernelError, KernelErrorKind};

/// Activation rows are padded to a multiple of this many elements.
pub const ACT_ALIGN: usize = 64;

/// Rounds `k` up to the padded activation row length.
pub const fn padded_len(k: usize) -> usize {
    k.div_ceil(ACT_ALIGN) * ACT_ALIGN
}

/// A batch of `n` tokens of `k` activations, quantized to int8 per token.
#[derive(Clone, Debug)]
pub struct ActI8 {
    n: usize,
    k: usize,
    k_pad: usize,
    qs: Vec<i8>,
    scales: Vec<f32>,
    sums: Vec<i32>,
}

impl ActI8 {
    /// Quantizes `x` (`n` rows of `k`, row-major). NaN or infinite inputs
    /// are an error: they would silently poison every output.
    pub fn quantize(x: &[f32], n: usize, k: usize) -> Result<Self, KernelError> {
        if n == 0 || k == 0 {
            return Err(KernelError::shape(format!(
                "activations need n >= 1 and k >= 1 (got n = {n}, k = {k})"
            )));
        }
        let total = n.checked_mul(k).ok_or_else(|| {
            KernelError::shape(format!("n*k overflows (n = {n}, k = {k})"))
        })?;
        if x.len() != total {
            return Err(KernelError::len("activations", total, x.len()));
        }
        if x.iter().any(|v| !v.is_finite()) {
            return Err(KernelError::new(KernelErrorKind::NonFinite {
                what: "activations",
            }));
        }
        let k_pad = padded_len(k);
        let mut qs = vec![0i8; n * k_pad];
        let mut scales = Vec::with_capacity(n);
        let mut sums = Vec::with_capacity(n);
        for (row, q) in x.chunks_exact(k).zip(qs.chunks_exact_mut(k_pad)) {
            let (scale, sum) = quantize_row(row, &mut q[..k]);
            scales.push(scale);
            sums.push(sum);
        }
        Ok(ActI8 { n, k, k_pad, qs, scales, sums })
    }

    /// Number of tokens.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Logical row length.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Padded row length (a multiple of [`ACT_ALIGN`]).
    pub fn k_pad(&self) -> usize {
        self.k_pad
    }

    /// The quantized values of token `t`, zero-padded to `k_pad`.
    pub fn row(&self, t: usize) -> &[i8] {
        &self.qs[t * self.k_pad..(t + 1) * self.k_pad]
    }

    /// All quantized values, `n` rows of `k_pad`.
    pub fn qs(&self) -> &[i8] {
        &self.qs
    }

    /// Per-token scales (`127 / max|x|`): divide an integer dot by it.
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }

    /// Per-token sums of the quantized values.
    pub fn sums(&self) -> &[i32] {
        &self.sums
    }

    /// Sum of token `t`'s quantized values over `range` (padded index
    /// space; the padding is zero).
    pub fn partial_sum(&self, t: usize, range: std::ops::Range<usize>) -> i32 {
        self.row(t)[range].iter().map(|&q| q as i32).sum()
    }
}

/// Quantizes one row in place (`q.len() == x.len()`), returning the scale
/// and the sum of the quantized values.
pub fn quantize_row(x: &[f32], q: &mut [i8]) -> (f32, i32) {
    debug_assert_eq!(x.len(), q.len());
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let max = (amax as f64).max(1e-5);
    let scale = (127.0 / max) as f32;
    let mut sum = 0i32;
    for (qi, &xi) in q.iter_mut().zip(x) {
        let v = round_half_even(xi * scale).clamp(-128.0, 127.0) as i8;
        *qi = v;
        sum += v as i32;
    }
    (scale, sum)
}

/// Rounds to the nearest integer, ties to even (like `nearest_int` in ggml
/// and `cvtps2dq` under the default rounding mode).
#[inline]
pub fn round_half_even(x: f32) -> f32 {
    x.round_ties_even()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantizes_like_bitnet() {
        let x = [0.5f32, -1.0, 0.25, 0.0, 1.0 / 254.0];
        let a = ActI8::quantize(&x, 1, 5).unwrap();
        // scale = 127; 0.5*127 = 63.5 -> 64 (ties to even), 1/254*127=0.5->0
        assert_eq!(a.scales()[0], 127.0);
        assert_eq!(&a.row(0)[..5], &[64, -127, 32, 0, 0]);
        assert_eq!(a.sums()[0], 64 - 127 + 32);
        assert_eq!(a.k_pad(), 64);
        assert!(a.row(0)[5..].iter().all(|&q| q == 0));
    }

    #[test]
    fn rejects_bad_input() {
        assert!(ActI8::quantize(&[1.0, f32::NAN], 1, 2).is_err());
        assert!(ActI8::quantize(&[1.0, 2.0, 3.0], 2, 2).is_err());
        assert!(ActI8::quantize(&[], 0, 2).is_err());
    }

    #[test]
    fn zero_row_is_zero() {
        let a = ActI8::quantize(&[0.0; 8], 1, 8).unwrap();
        assert!(a.row(0).iter().all(|&q| q == 0));
        assert_eq!(a.sums()[0], 0);
    }
}
