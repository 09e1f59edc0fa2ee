//! Activation quantizers: the scalar references a dot-product kernel must
//! reproduce.
//!
//! * [`quantize_row_q8_0`] / [`quantize_row_q8_1`]: llama.cpp's
//!   `quantize_row_q8_0_ref` / `_q8_1_ref` (`roundf`, ties away from zero,
//!   `id = 1 / (amax / 127)`). Note: ggml-cpu's AVX2 `quantize_row_q8_0`
//!   rounds ties to even and uses `127 / amax`, so on rare ties it differs
//!   from this reference by one code.
//! * [`quantize_row_q8_k`]: `quantize_row_q8_K_ref` (`iscale = -127 / max`
//!   with the signed max, ties to even, `d = 1 / iscale`, plus `bsums`);
//!   ggml-cpu uses this reference on x86.
//! * [`quantize_row_i8_s`]: bitnet.cpp's per-token activation quantizer for
//!   I2_S (see [`crate::i2s`]).
//!
//! The plain functions panic on mismatched lengths (like
//! `copy_from_slice`); the `try_` variants return a [`QuantError`]
//! instead. NaN inputs do not panic: see each function.

use crate::QuantError;
use crate::blocks::{BlockQ8_0, BlockQ8_1, BlockQ8K, QK, QK_K, sealed::Codec};
use crate::legacy::encode_q8_1;
use crate::util::nearest_int;

/// Quantizes `src` (`32 * dst.len()` floats) to Q8_0 blocks, as
/// `quantize_row_q8_0_ref`.
///
/// NaN inputs give unspecified codes (no panic); use
/// [`crate::quantize_blocks`] to reject them.
///
/// # Panics
/// If `src.len() != 32 * dst.len()`.
pub fn quantize_row_q8_0(src: &[f32], dst: &mut [BlockQ8_0]) {
    try_quantize_row_q8_0(src, dst).expect("quantize_row_q8_0");
}

/// [`quantize_row_q8_0`] returning an error on a length mismatch.
///
/// # Errors
/// [`crate::QuantErrorKind::LengthMismatch`].
pub fn try_quantize_row_q8_0(
    src: &[f32],
    dst: &mut [BlockQ8_0],
) -> Result<(), QuantError> {
    check(src, dst.len(), QK)?;
    for (x, b) in src.chunks_exact(QK).zip(dst) {
        *b = BlockQ8_0::encode(x);
    }
    Ok(())
}

/// Quantizes `src` (`32 * dst.len()` floats) to Q8_1 blocks, as
/// `quantize_row_q8_1_ref` (`s = d * sum(qs)` in f16).
///
/// # Panics
/// If `src.len() != 32 * dst.len()`.
pub fn quantize_row_q8_1(src: &[f32], dst: &mut [BlockQ8_1]) {
    try_quantize_row_q8_1(src, dst).expect("quantize_row_q8_1");
}

/// [`quantize_row_q8_1`] returning an error on a length mismatch.
///
/// # Errors
/// [`crate::QuantErrorKind::LengthMismatch`].
pub fn try_quantize_row_q8_1(
    src: &[f32],
    dst: &mut [BlockQ8_1],
) -> Result<(), QuantError> {
    check(src, dst.len(), QK)?;
    for (x, b) in src.chunks_exact(QK).zip(dst) {
        *b = encode_q8_1(x);
    }
    Ok(())
}

/// Quantizes `src` (`256 * dst.len()` floats) to Q8_K blocks, as
/// `quantize_row_q8_K_ref`: `d = max / -127` for the signed value of
/// largest magnitude, `q = min(127, nearest_int(x * -127 / max))`, and
/// `bsums` the sums of each 16 codes. An all-zero block gets `d = 0`,
/// zero codes and zero sums.
///
/// NaN inputs give unspecified codes (no panic).
///
/// # Panics
/// If `src.len() != 256 * dst.len()`.
pub fn quantize_row_q8_k(src: &[f32], dst: &mut [BlockQ8K]) {
    try_quantize_row_q8_k(src, dst).expect("quantize_row_q8_k");
}

/// [`quantize_row_q8_k`] returning an error on a length mismatch.
///
/// # Errors
/// [`crate::QuantErrorKind::LengthMismatch`].
pub fn try_quantize_row_q8_k(
    src: &[f32],
    dst: &mut [BlockQ8K],
) -> Result<(), QuantError> {
    check(src, dst.len(), QK_K)?;
    for (x, b) in src.chunks_exact(QK_K).zip(dst) {
        *b = encode_q8_k(x);
    }
    Ok(())
}

fn encode_q8_k(x: &[f32]) -> BlockQ8K {
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    let mut b: BlockQ8K = bytemuck::Zeroable::zeroed();
    if amax == 0.0 {
        return b;
    }
    let iscale = -127.0 / max;
    for (q, &v) in b.qs.iter_mut().zip(x) {
        *q = nearest_int(iscale * v).min(127) as i8;
    }
    for (s, qs) in b.bsums.iter_mut().zip(b.qs.chunks_exact(16)) {
        *s = qs.iter().map(|&q| q as i32).sum::<i32>() as i16;
    }
    b.d = 1.0 / iscale;
    b
}

/// Dequantizes Q8_K blocks (`x = d * q`), as `dequantize_row_q8_K`.
///
/// # Errors
/// [`crate::QuantErrorKind::LengthMismatch`] unless
/// `dst.len() == 256 * src.len()`.
pub fn dequantize_row_q8_k(
    src: &[BlockQ8K],
    dst: &mut [f32],
) -> Result<(), QuantError> {
    let n = src.len().saturating_mul(QK_K);
    if dst.len() != n {
        return Err(QuantError::length("dst (f32 elements)", n, dst.len()));
    }
    for (b, y) in src.iter().zip(dst.chunks_exact_mut(QK_K)) {
        for (o, &q) in y.iter_mut().zip(&b.qs) {
            *o = b.d * q as f32;
        }
    }
    Ok(())
}

/// bitnet.cpp's `quantize_row_i8_s` for one token: returns
/// `(act_scale, act_sum)` and writes `dst[i] = clamp(nearest_int(src[i] *
/// act_scale), -128, 127)`.
///
/// * `max = max(1e-5, max|x|)` in f64, `act_scale = (127.0 / max) as f32`;
/// * the product `x * act_scale` is an f32 multiply (not fused), rounded
///   half to even (ggml's `nearest_int`);
/// * `act_sum` is the i32 sum of the codes.
///
/// The weight-side dot product is [`crate::i2s::kernel_sumi`]; the output
/// is [`crate::i2s::finish`].
///
/// Non-finite input (no panic): NaN elements are skipped when taking the
/// max and quantize to 0; an infinity makes `act_scale` 0 and every code 0.
///
/// # Panics
/// If `dst.len() != src.len()`.
pub fn quantize_row_i8_s(src: &[f32], dst: &mut [i8]) -> (f32, i32) {
    try_quantize_row_i8_s(src, dst).expect("quantize_row_i8_s")
}

/// [`quantize_row_i8_s`] returning an error on a length mismatch.
///
/// # Errors
/// [`crate::QuantErrorKind::LengthMismatch`].
pub fn try_quantize_row_i8_s(
    src: &[f32],
    dst: &mut [i8],
) -> Result<(f32, i32), QuantError> {
    if dst.len() != src.len() {
        return Err(QuantError::length("dst (i8 codes)", src.len(), dst.len()));
    }
    let max = src.iter().fold(0.00001f64, |m, &v| m.max((v as f64).abs()));
    let act_scale = (127.0 / max) as f32;
    let mut sum = 0i32;
    for (q, &v) in dst.iter_mut().zip(src) {
        let c = nearest_int(v * act_scale).clamp(-128, 127);
        sum = sum.wrapping_add(c);
        *q = c as i8;
    }
    Ok((act_scale, sum))
}

fn check(src: &[f32], blocks: usize, elems: usize) -> Result<(), QuantError> {
    let n = blocks.saturating_mul(elems);
    if src.len() != n {
        return Err(QuantError::length("src (f32 elements)", n, src.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_k_block_sums_and_scale() {
        let x: Vec<f32> =
            (0..QK_K).map(|i| (i as f32 - 100.0) / 10.0).collect();
        let mut b = [bytemuck::Zeroable::zeroed(); 1];
        quantize_row_q8_k(&x, &mut b);
        // max magnitude is 15.5 (i = 255), so iscale = -127/15.5 and the
        // last code is -127.
        assert_eq!(b[0].qs[255], -127);
        assert_eq!(b[0].d, 1.0 / (-127.0f32 / 15.5));
        for g in 0..16 {
            let s: i32 =
                b[0].qs[16 * g..16 * g + 16].iter().map(|&q| q as i32).sum();
            assert_eq!(b[0].bsums[g] as i32, s);
        }
    }

    #[test]
    fn i8_s_handles_zero_and_nan() {
        let mut q = [0i8; 4];
        let (s, sum) = quantize_row_i8_s(&[0.0; 4], &mut q);
        assert_eq!(s, (127.0f64 / 0.00001) as f32);
        assert_eq!((sum, q), (0, [0; 4]));
        let (_, sum) = quantize_row_i8_s(&[f32::NAN, 1.0, -1.0, 0.5], &mut q);
        assert_eq!(q, [0, 127, -127, 64]);
        assert_eq!(sum, 64);
        assert!(try_quantize_row_i8_s(&[1.0; 3], &mut q).is_err());
    }
}
