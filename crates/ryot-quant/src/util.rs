//! Small helpers shared by the format modules: ggml's `nearest_int`, the
//! f16/bf16 conversions ggml uses, and the byte-level block loops.

use half::f16;

use crate::blocks::QuantBlock;
use crate::{QuantError, QuantErrorKind};

/// ggml's `nearest_int`: round to nearest, ties to even, via the
/// `x + 1.5 * 2^23` trick. Exact for `|x| <= 4194303`; outside that range
/// it returns the same (meaningless) bits as the C code, so ports stay
/// bit-exact even on degenerate inputs.
#[inline]
pub(crate) fn nearest_int(fval: f32) -> i32 {
    let val = fval + 12_582_912.0;
    (val.to_bits() as i32 & 0x007f_ffff) - 0x0040_0000
}

/// `GGML_FP32_TO_FP16`: round to nearest even.
#[inline]
pub(crate) fn to_f16(x: f32) -> f16 {
    f16::from_f32(x)
}

/// `GGML_FP16_TO_FP32`: exact.
#[inline]
pub(crate) fn f16_to_f32(h: f16) -> f32 {
    h.to_f32()
}

/// `ggml_compute_fp32_to_bf16`: NaN becomes a quiet NaN with the top
/// payload bits kept, everything else rounds to nearest even (no flush of
/// subnormals in current ggml).
#[inline]
pub(crate) fn f32_to_bf16_bits(x: f32) -> u16 {
    let u = x.to_bits();
    if (u & 0x7fff_ffff) > 0x7f80_0000 {
        return ((u >> 16) | 64) as u16;
    }
    (u.wrapping_add(0x7fff + ((u >> 16) & 1)) >> 16) as u16
}

/// `ggml_compute_bf16_to_fp32`: exact.
#[inline]
pub(crate) fn bf16_bits_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// The first non-finite element of `src`, as an error.
pub(crate) fn check_finite(src: &[f32]) -> Result<(), QuantError> {
    match src.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(index) => {
            Err(QuantErrorKind::NonFinite { index, value: src[index] }.into())
        }
    }
}

/// Dequantizes whole blocks stored as (possibly unaligned) bytes.
/// `src.len()` is a multiple of `B::BYTES` and `dst.len()` the matching
/// multiple of `B::ELEMS`; callers check.
pub(crate) fn dequant_bytes<B: QuantBlock>(src: &[u8], dst: &mut [f32]) {
    for (bytes, y) in
        src.chunks_exact(B::BYTES).zip(dst.chunks_exact_mut(B::ELEMS))
    {
        let block: B = bytemuck::pod_read_unaligned(bytes);
        block.decode(y);
    }
}

/// Quantizes whole blocks into bytes; lengths as [`dequant_bytes`] and the
/// input already checked to be finite.
pub(crate) fn quant_bytes<B: QuantBlock>(src: &[f32], dst: &mut [u8]) {
    for (x, bytes) in
        src.chunks_exact(B::ELEMS).zip(dst.chunks_exact_mut(B::BYTES))
    {
        let block = B::encode(x);
        bytes.copy_from_slice(bytemuck::bytes_of(&block));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_rounds_half_to_even() {
        assert_eq!(nearest_int(0.5), 0);
        assert_eq!(nearest_int(1.5), 2);
        assert_eq!(nearest_int(2.5), 2);
        assert_eq!(nearest_int(-0.5), 0);
        assert_eq!(nearest_int(-1.5), -2);
        assert_eq!(nearest_int(-2.4), -2);
        assert_eq!(nearest_int(126.7), 127);
        // NaN comes out as 0, as in C on x86.
        assert_eq!(nearest_int(f32::NAN), 0);
    }

    #[test]
    fn bf16_rounding_matches_ggml() {
        assert_eq!(f32_to_bf16_bits(1.0), 0x3f80);
        // 1 + 2^-8 is a tie between 1.0 and 1 + 2^-7: round to even (1.0).
        assert_eq!(f32_to_bf16_bits(1.0 + 1.0 / 256.0), 0x3f80);
        assert_eq!(f32_to_bf16_bits(1.0 + 3.0 / 256.0), 0x3f82);
        assert_eq!(f32_to_bf16_bits(f32::NAN) & 0x7fc0, 0x7fc0);
        assert_eq!(bf16_bits_to_f32(0xbf80), -1.0);
    }
}
