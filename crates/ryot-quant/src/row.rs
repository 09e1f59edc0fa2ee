//! Conversions by [`QuantType`] on raw bytes: one row
//! ([`dequantize_row`], [`quantize_row`]), a whole `[rows, k]` matrix
//! ([`dequantize`], [`quantize`]) and typed block slices
//! ([`dequantize_blocks`], [`quantize_blocks`]).
//!
//! Byte buffers may have any alignment: blocks are read with
//! `bytemuck::pod_read_unaligned`.

use crate::blocks::{
    BlockQ2K, BlockQ3K, BlockQ4_0, BlockQ4_1, BlockQ4K, BlockQ5_0, BlockQ5_1,
    BlockQ5K, BlockQ6K, BlockQ8_0, BlockTQ1_0, BlockTQ2_0, QuantBlock,
};
use crate::util::{check_finite, dequant_bytes, quant_bytes};
use crate::{QuantError, QuantErrorKind, QuantType, float, i2s};

/// Dequantizes one row of `dst.len()` elements from `src`.
///
/// `src.len()` must be `ty.row_bytes(dst.len())`. The float order of every
/// type matches ggml's `dequantize_row_*` (and gguf-py), bit for bit.
///
/// # Errors
/// * [`QuantErrorKind::NotBlockMultiple`] if `dst.len()` is not a multiple
///   of the block size;
/// * [`QuantErrorKind::LengthMismatch`] if `src` has the wrong length;
/// * [`QuantErrorKind::NeedsWholeTensor`] for I2_S, whose scale sits after
///   the last row: use [`crate::i2s::dequantize`].
pub fn dequantize_row(
    ty: QuantType,
    src: &[u8],
    dst: &mut [f32],
) -> Result<(), QuantError> {
    if ty == QuantType::I2_S {
        return Err(QuantErrorKind::NeedsWholeTensor { ty }.into());
    }
    let expected = ty.row_bytes(dst.len())?;
    if src.len() != expected {
        return Err(QuantError::length("src (bytes)", expected, src.len()));
    }
    dequant_unchecked(ty, src, dst);
    Ok(())
}

/// Quantizes one row `src` into `dst` with llama.cpp's reference
/// (non-imatrix) quantizer for `ty`, as `ggml_quantize_chunk` runs it with
/// `imatrix = NULL`.
///
/// `dst.len()` must be `ty.row_bytes(src.len())`.
///
/// # Errors
/// * [`QuantErrorKind::NotBlockMultiple`], [`QuantErrorKind::LengthMismatch`]
///   for bad lengths;
/// * [`QuantErrorKind::NonFinite`] if a block type gets NaN or inf (F32,
///   F16 and BF16 store them as they are);
/// * [`QuantErrorKind::NeedsWholeTensor`] for I2_S: use
///   [`crate::i2s::quantize`].
pub fn quantize_row(
    ty: QuantType,
    src: &[f32],
    dst: &mut [u8],
) -> Result<(), QuantError> {
    if ty == QuantType::I2_S {
        return Err(QuantErrorKind::NeedsWholeTensor { ty }.into());
    }
    let expected = ty.row_bytes(src.len())?;
    if dst.len() != expected {
        return Err(QuantError::length("dst (bytes)", expected, dst.len()));
    }
    quant_unchecked(ty, src, dst)
}

/// Dequantizes a whole `[rows, k]` tensor of type `ty` (row-major, as in a
/// GGUF file) into `dst` (`rows * k` floats).
///
/// For I2_S this reads the tensor format of [`crate::i2s`] (codes, then the
/// scale); for every other type it is [`dequantize_row`] on each row.
///
/// # Errors
/// As [`dequantize_row`] (without the I2_S case), plus
/// [`QuantErrorKind::SizeOverflow`].
pub fn dequantize(
    ty: QuantType,
    src: &[u8],
    rows: usize,
    k: usize,
    dst: &mut [f32],
) -> Result<(), QuantError> {
    if ty == QuantType::I2_S {
        return i2s::dequantize(src, rows, k, dst);
    }
    let n = elements(rows, k)?;
    if dst.len() != n {
        return Err(QuantError::length("dst (f32 elements)", n, dst.len()));
    }
    let expected = ty.tensor_bytes(rows, k)?;
    if src.len() != expected {
        return Err(QuantError::length("src (bytes)", expected, src.len()));
    }
    // Rows are whole blocks, so the tensor is one long run of blocks.
    dequant_unchecked(ty, src, dst);
    Ok(())
}

/// Quantizes a whole `[rows, k]` tensor (row-major `src` of `rows * k`
/// floats) and returns its bytes as a GGUF file stores them.
///
/// For I2_S this is [`crate::i2s::quantize`] (one scale for the whole
/// tensor); for every other type, [`quantize_row`] on each row.
///
/// # Errors
/// As [`quantize_row`], plus [`QuantErrorKind::SizeOverflow`].
pub fn quantize(
    ty: QuantType,
    src: &[f32],
    rows: usize,
    k: usize,
) -> Result<Vec<u8>, QuantError> {
    if ty == QuantType::I2_S {
        return i2s::quantize(src, rows, k);
    }
    let n = elements(rows, k)?;
    if src.len() != n {
        return Err(QuantError::length("src (f32 elements)", n, src.len()));
    }
    let mut out = vec![0u8; ty.tensor_bytes(rows, k)?];
    quant_unchecked(ty, src, &mut out)?;
    Ok(out)
}

/// Dequantizes typed blocks into `dst` (`blocks.len() * B::ELEMS` floats).
///
/// # Errors
/// [`QuantErrorKind::LengthMismatch`] if `dst` has the wrong length.
pub fn dequantize_blocks<B: QuantBlock>(
    blocks: &[B],
    dst: &mut [f32],
) -> Result<(), QuantError> {
    let n = blocks.len().saturating_mul(B::ELEMS);
    if dst.len() != n {
        return Err(QuantError::length("dst (f32 elements)", n, dst.len()));
    }
    for (b, y) in blocks.iter().zip(dst.chunks_exact_mut(B::ELEMS)) {
        b.decode(y);
    }
    Ok(())
}

/// Quantizes `src` (`dst.len() * B::ELEMS` floats) into typed blocks with
/// the reference quantizer.
///
/// # Errors
/// [`QuantErrorKind::LengthMismatch`] for a wrong `src` length,
/// [`QuantErrorKind::NonFinite`] for NaN or inf input.
pub fn quantize_blocks<B: QuantBlock>(
    src: &[f32],
    dst: &mut [B],
) -> Result<(), QuantError> {
    let n = dst.len().saturating_mul(B::ELEMS);
    if src.len() != n {
        return Err(QuantError::length("src (f32 elements)", n, src.len()));
    }
    check_finite(src)?;
    for (x, b) in src.chunks_exact(B::ELEMS).zip(dst.iter_mut()) {
        *b = B::encode(x);
    }
    Ok(())
}

fn elements(rows: usize, k: usize) -> Result<usize, QuantError> {
    rows.checked_mul(k)
        .ok_or_else(|| QuantErrorKind::SizeOverflow { what: "rows * k" }.into())
}

/// Lengths already checked; `ty` is not I2_S.
fn dequant_unchecked(ty: QuantType, src: &[u8], dst: &mut [f32]) {
    use QuantType::*;
    match ty {
        F32 => float::f32_from_bytes(src, dst),
        F16 => float::f16_from_bytes(src, dst),
        BF16 => float::bf16_from_bytes(src, dst),
        Q4_0 => dequant_bytes::<BlockQ4_0>(src, dst),
        Q4_1 => dequant_bytes::<BlockQ4_1>(src, dst),
        Q5_0 => dequant_bytes::<BlockQ5_0>(src, dst),
        Q5_1 => dequant_bytes::<BlockQ5_1>(src, dst),
        Q8_0 => dequant_bytes::<BlockQ8_0>(src, dst),
        Q2_K => dequant_bytes::<BlockQ2K>(src, dst),
        Q3_K => dequant_bytes::<BlockQ3K>(src, dst),
        Q4_K => dequant_bytes::<BlockQ4K>(src, dst),
        Q5_K => dequant_bytes::<BlockQ5K>(src, dst),
        Q6_K => dequant_bytes::<BlockQ6K>(src, dst),
        TQ1_0 => dequant_bytes::<BlockTQ1_0>(src, dst),
        TQ2_0 => dequant_bytes::<BlockTQ2_0>(src, dst),
        I2_S => unreachable!("I2_S is handled by the callers"),
    }
}

/// Lengths already checked; `ty` is not I2_S.
fn quant_unchecked(
    ty: QuantType,
    src: &[f32],
    dst: &mut [u8],
) -> Result<(), QuantError> {
    use QuantType::*;
    match ty {
        F32 => float::f32_to_bytes(src, dst),
        F16 => float::f16_to_bytes(src, dst),
        BF16 => float::bf16_to_bytes(src, dst),
        _ => {
            check_finite(src)?;
            match ty {
                Q4_0 => quant_bytes::<BlockQ4_0>(src, dst),
                Q4_1 => quant_bytes::<BlockQ4_1>(src, dst),
                Q5_0 => quant_bytes::<BlockQ5_0>(src, dst),
                Q5_1 => quant_bytes::<BlockQ5_1>(src, dst),
                Q8_0 => quant_bytes::<BlockQ8_0>(src, dst),
                Q2_K => quant_bytes::<BlockQ2K>(src, dst),
                Q3_K => quant_bytes::<BlockQ3K>(src, dst),
                Q4_K => quant_bytes::<BlockQ4K>(src, dst),
                Q5_K => quant_bytes::<BlockQ5K>(src, dst),
                Q6_K => quant_bytes::<BlockQ6K>(src, dst),
                TQ1_0 => quant_bytes::<BlockTQ1_0>(src, dst),
                TQ2_0 => quant_bytes::<BlockTQ2_0>(src, dst),
                F32 | F16 | BF16 | I2_S => {
                    unreachable!("handled above or by the callers")
                }
            }
        }
    }
    Ok(())
}
