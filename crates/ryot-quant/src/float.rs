//! The plain float storage types F32, F16 and BF16 as little-endian bytes.
//!
//! F16 rounds to nearest even (ggml's `GGML_FP32_TO_FP16`); BF16 follows
//! `ggml_compute_fp32_to_bf16` (round to nearest even, NaN made quiet).
//! These conversions accept non-finite values: inf and NaN are
//! representable in all three types.

use half::f16;

use crate::util::{bf16_bits_to_f32, f32_to_bf16_bits};

/// F32 bytes to floats. Lengths are checked by the caller.
pub(crate) fn f32_from_bytes(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(4).zip(dst) {
        *y = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
}

/// Floats to F32 bytes.
pub(crate) fn f32_to_bytes(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.iter().zip(dst.chunks_exact_mut(4)) {
        b.copy_from_slice(&x.to_le_bytes());
    }
}

/// F16 bytes to floats.
pub(crate) fn f16_from_bytes(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(2).zip(dst) {
        *y = f16::from_le_bytes([b[0], b[1]]).to_f32();
    }
}

/// Floats to F16 bytes.
pub(crate) fn f16_to_bytes(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.iter().zip(dst.chunks_exact_mut(2)) {
        b.copy_from_slice(&f16::from_f32(*x).to_le_bytes());
    }
}

/// BF16 bytes to floats.
pub(crate) fn bf16_from_bytes(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(2).zip(dst) {
        *y = bf16_bits_to_f32(u16::from_le_bytes([b[0], b[1]]));
    }
}

/// Floats to BF16 bytes.
pub(crate) fn bf16_to_bytes(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.iter().zip(dst.chunks_exact_mut(2)) {
        b.copy_from_slice(&f32_to_bf16_bits(*x).to_le_bytes());
    }
}
