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

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod scalar;

use crate::error::KernelError;
use crate::isa::SimdLevel;

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
        let total = n.checked_mul(k).ok_or_else(|| {
            KernelError::shape(format!("n*k overflows (n = {n}, k = {k})"))
        })?;
        if x.len() != total {
            return Err(KernelError::len("activations", total, x.len()));
        }
        KernelError::check_finite("activations", x)?;
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

/// Quantizes one row in place (`q.len() == x.len()`) at the dispatched
/// SIMD level, returning the scale and the sum of the quantized values.
/// Every level gives identical results.
pub fn quantize_row(x: &[f32], q: &mut [i8]) -> (f32, i32) {
    quantize_row_at(crate::isa::level(), x, q)
}

/// [`quantize_row`] at an explicit level (which must be available).
pub fn quantize_row_at(
    level: SimdLevel,
    x: &[f32],
    q: &mut [i8],
) -> (f32, i32) {
    assert_eq!(x.len(), q.len(), "quantize_row: lengths differ");
    let amax = match level {
        SimdLevel::Scalar => scalar::amax(x),
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2 => avx2::amax(x),
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 | SimdLevel::Amx => avx512::amax(x),
        #[cfg(not(target_arch = "x86_64"))]
        _ => scalar::amax(x),
    };
    let scale = act_scale(amax);
    let sum = match level {
        SimdLevel::Scalar => scalar::quantize(x, scale, q),
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2 => avx2::quantize(x, scale, q),
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 | SimdLevel::Amx => avx512::quantize(x, scale, q),
        #[cfg(not(target_arch = "x86_64"))]
        _ => scalar::quantize(x, scale, q),
    };
    (scale, sum)
}

/// `f32(127 / max(1e-5, amax))` with the division in f64, as bitnet.cpp.
pub fn act_scale(amax: f32) -> f32 {
    (127.0 / (amax as f64).max(1e-5)) as f32
}

/// Rounds to the nearest integer, ties to even, for `|x| < 2^22`, as
/// ggml's `nearest_int` does: adding 1.5 * 2^23 leaves the rounded integer
/// in the low mantissa bits (under the default rounding mode). Unlike
/// `f32::round_ties_even` this needs no libm call on baseline x86-64, so
/// the loop above vectorizes.
#[inline]
pub fn nearest_int(x: f32) -> i32 {
    debug_assert!(x.abs() < (1 << 22) as f32);
    let v = x + 12582912.0;
    (v.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
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
    fn nearest_int_rounds_half_to_even() {
        for (x, want) in [
            (0.5, 0),
            (1.5, 2),
            (2.5, 2),
            (-0.5, 0),
            (-1.5, -2),
            (126.5, 126),
            (127.4, 127),
            (-127.6, -128),
            (0.49999997, 0),
        ] {
            assert_eq!(nearest_int(x), want, "{x}");
            assert_eq!(nearest_int(x), x.round_ties_even() as i32, "{x}");
        }
    }

    #[test]
    fn every_level_quantizes_identically() {
        let mut seed = 12345u64;
        for len in [1usize, 7, 8, 15, 16, 31, 32, 33, 64, 100, 257, 1000] {
            let x: Vec<f32> = (0..len)
                .map(|_| {
                    seed =
                        seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    ((seed >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * 7.0
                })
                .collect();
            let mut want = vec![0i8; len];
            let w = quantize_row_at(SimdLevel::Scalar, &x, &mut want);
            for level in SimdLevel::ALL.into_iter().filter(|l| l.is_available())
            {
                let mut got = vec![0i8; len];
                let g = quantize_row_at(level, &x, &mut got);
                assert_eq!(
                    (g.0.to_bits(), g.1),
                    (w.0.to_bits(), w.1),
                    "{level} {len}"
                );
                assert_eq!(got, want, "{level} len={len}");
            }
        }
    }

    #[test]
    fn zero_row_is_zero() {
        let a = ActI8::quantize(&[0.0; 8], 1, 8).unwrap();
        assert!(a.row(0).iter().all(|&q| q == 0));
        assert_eq!(a.sums()[0], 0);
    }
}
