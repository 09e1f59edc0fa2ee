//! bitnet.cpp's I2_S ternary tensor format (x86 build, 128/32 layout), its
//! activation dot product, and the absmean ternarization that precedes it.
//!
//! Sources: bitnet.cpp `src/ggml-bitnet-mad.cpp` (commit `16da220a`,
//! `quantize_i2_s` and `ggml_vec_dot_i2_i8_s_*`), the llama.cpp fork
//! `Eddie-Wang1120/llama.cpp@406a5036` (`quantize_row_i8_s`, the final
//! scaling in `ggml.c`), and `utils/convert-hf-to-gguf-bitnet.py`. See
//! `shared/golden/quants/README.md`, section I2_S, for line references.
//!
//! # Layout
//!
//! A `[m, k]` tensor (`k % 128 == 0`) is one flat row-major run of `m * k`
//! 2-bit codes (0 = -1, 1 = 0, 2 = +1; 3 is never written), then one
//! little-endian f32 scale for the whole tensor, then 28 bytes that readers
//! ignore (zero when written here):
//!
//! ```text
//! [ m*k/4 code bytes | f32 scale | 28 bytes ]      total m*k/4 + 32
//! ```
//!
//! Every 128 consecutive elements form a 32-byte group; byte `p` (0..32) of
//! the group holds elements `p`, `p + 32`, `p + 64`, `p + 96` at bit shifts
//! 6, 4, 2, 0. Rows are not padded: row `r` starts at byte `r * k / 4`.
//! ARM builds of bitnet.cpp (64/16 groups) and x86 builds without
//! `ACT_PARALLEL` (4-row interleave) use other layouts; this module only
//! implements the layout the Python converters write.
//!
//! # Dot product
//!
//! Per token, activations are quantized with
//! [`crate::act::quantize_row_i8_s`] to codes `q` with `act_scale` and
//! `act_sum = sum(q)`. The AVX2 kernel computes `sumi = sum(code * q)` in
//! 16 int16 lanes that wrap, over runs of up to 32 groups (see
//! [`kernel_sumi`]), and the output is
//! `((sumi as f32 - act_sum as f32) / act_scale) * scale` ([`finish`]).

use crate::act::try_quantize_row_i8_s;
use crate::util::check_finite;
use crate::{QuantError, QuantErrorKind, QuantType};

/// Elements per packing group.
pub const GROUP: usize = 128;
/// Bytes per packing group.
pub const GROUP_BYTES: usize = 32;
/// Bytes after the codes: the f32 scale and 28 ignored bytes.
pub const TRAILER_BYTES: usize = 32;

/// Groups of this many 128-element groups are summed in 16-bit lanes by the
/// AVX2 kernel before widening (4096 elements).
pub const KERNEL_RUN_GROUPS: usize = 32;

/// Code bytes of a `[m, k]` tensor (`m * k / 4`), checking `k`.
fn code_bytes(m: usize, k: usize) -> Result<usize, QuantError> {
    if !k.is_multiple_of(GROUP) {
        return Err(QuantErrorKind::NotBlockMultiple {
            ty: QuantType::I2_S,
            k,
            block: GROUP,
        }
        .into());
    }
    m.checked_mul(k / 4).ok_or_else(|| {
        QuantErrorKind::SizeOverflow { what: "I2_S codes" }.into()
    })
}

/// Total bytes of a `[m, k]` I2_S tensor: `m * k / 4 + 32`.
///
/// # Errors
/// [`QuantErrorKind::NotBlockMultiple`] unless `k % 128 == 0`;
/// [`QuantErrorKind::SizeOverflow`] for absurd sizes.
pub fn tensor_bytes(m: usize, k: usize) -> Result<usize, QuantError> {
    code_bytes(m, k)?.checked_add(TRAILER_BYTES).ok_or_else(|| {
        QuantErrorKind::SizeOverflow { what: "I2_S bytes" }.into()
    })
}

/// Quantizes a `[m, k]` tensor as `quantize_i2_s` does in one call:
/// `scale = max|x|` (in f64, stored as f32) and per element code 1 if
/// `|x| < 1e-6`, else 2 if `x > 0`, else 0.
///
/// The input is expected to be ternary already (`{-c, 0, +c}`, see
/// [`ternarize_absmean`]); raw weights come out as `sign(x) * max|x|`.
/// Returns [`tensor_bytes`]`(m, k)` bytes with a zero tail.
///
/// # Errors
/// Bad `k` or `src.len() != m * k`; [`QuantErrorKind::NonFinite`] for NaN
/// or inf input.
pub fn quantize(
    src: &[f32],
    m: usize,
    k: usize,
) -> Result<Vec<u8>, QuantError> {
    let ncodes = code_bytes(m, k)?;
    let n = ncodes * 4;
    if src.len() != n {
        return Err(QuantError::length("src (f32 elements)", n, src.len()));
    }
    check_finite(src)?;
    let scale = src.iter().fold(0.0f64, |mx, &v| mx.max((v as f64).abs()));
    let mut out = vec![0u8; ncodes + TRAILER_BYTES];
    for (x, bytes) in
        src.chunks_exact(GROUP).zip(out.chunks_exact_mut(GROUP_BYTES))
    {
        for (j, &v) in x.iter().enumerate() {
            let v = v as f64;
            let c = if v.abs() < 1e-6 {
                1u8
            } else if v * scale > 0.0 {
                2
            } else {
                0
            };
            bytes[j % 32] |= c << (6 - 2 * (j / 32));
        }
    }
    out[ncodes..ncodes + 4].copy_from_slice(&(scale as f32).to_le_bytes());
    Ok(out)
}

/// The per-tensor scale of a `[m, k]` I2_S tensor.
///
/// # Errors
/// Bad `k`, or `src.len() != tensor_bytes(m, k)`.
pub fn scale(src: &[u8], m: usize, k: usize) -> Result<f32, QuantError> {
    let ncodes = code_bytes(m, k)?;
    let total = ncodes + TRAILER_BYTES;
    if src.len() != total {
        return Err(QuantError::length(
            "src (I2_S tensor bytes)",
            total,
            src.len(),
        ));
    }
    let b = &src[ncodes..ncodes + 4];
    Ok(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Dequantizes a `[m, k]` I2_S tensor into `dst` (`m * k` floats):
/// `scale * [-1, 0, +1, 0][code]` in f32, as bitnet.cpp's
/// `dequantize_row_i2_s` (code 3, never written, reads as 0). Zero codes
/// give `+0.0`.
///
/// # Errors
/// Bad `k`, `src.len() != tensor_bytes(m, k)` or `dst.len() != m * k`.
pub fn dequantize(
    src: &[u8],
    m: usize,
    k: usize,
    dst: &mut [f32],
) -> Result<(), QuantError> {
    let s = scale(src, m, k)?;
    let ncodes = src.len() - TRAILER_BYTES;
    if dst.len() != ncodes * 4 {
        return Err(QuantError::length(
            "dst (f32 elements)",
            ncodes * 4,
            dst.len(),
        ));
    }
    const MAP: [f32; 4] = [-1.0, 0.0, 1.0, 0.0];
    for (bytes, y) in
        src[..ncodes].chunks_exact(GROUP_BYTES).zip(dst.chunks_exact_mut(GROUP))
    {
        for (j, o) in y.iter_mut().enumerate() {
            let c = (bytes[j % 32] >> (6 - 2 * (j / 32))) & 3;
            *o = s * MAP[c as usize];
        }
    }
    Ok(())
}

/// The code (0, 1, 2 or 3) of flat element `idx` (`row * k + col`) in the
/// code bytes of an I2_S tensor: bits `6 - 2 * (i / 32)` of byte
/// `32 * (idx / 128) + i % 32`, where `i = idx % 128`.
///
/// # Panics
/// If the 32-byte group of `idx` is not inside `src_codes`; see [`get_code`] for a checked version.
pub fn code(src_codes: &[u8], idx: usize) -> u8 {
    get_code(src_codes, idx).expect("I2_S element index out of range")
}

/// [`code`], or `None` if the group of `idx` is not inside `src_codes`.
pub fn get_code(src_codes: &[u8], idx: usize) -> Option<u8> {
    let g = idx / GROUP;
    let i = idx % GROUP;
    // The element's whole 32-byte group must be present.
    let group = src_codes.get(GROUP_BYTES * g..GROUP_BYTES * (g + 1))?;
    Some((group[i % 32] >> (6 - 2 * (i / 32))) & 3)
}

/// BitNet's absmean ternarization, as `BitnetModel.weight_quant` in
/// bitnet.cpp's `convert-hf-to-gguf-bitnet.py` does it in f32 torch:
/// `s = 1 / max(mean|W|, 1e-5)`, `W_t = clamp(round(W * s), -1, 1) / s`
/// with round half to even. Returns `(W_t, 1 / s)`; the second value is
/// the scale [`quantize`] will store (when any `W_t` is non-zero).
///
/// Summation-order caveat: the last bits of `mean|W|` depend on how the sum
/// is taken. This function sums `|W|` in f64 and rounds the mean to f32
/// (the "nearest f32 to the exact mean" the golden files use); torch,
/// numpy's pairwise f32 sum and a naive f32 loop can differ by a few ulps.
/// The codes almost never change, but the scale's last bits can.
///
/// Expects finite input; NaN or inf make the result NaN (which
/// [`quantize`] then rejects).
pub fn ternarize_absmean(src: &[f32]) -> (Vec<f32>, f32) {
    let sum: f64 = src.iter().map(|&v| (v as f64).abs()).sum();
    let mean = (sum / src.len() as f64) as f32;
    let s = 1.0f32 / mean.max(1e-5);
    let t = src
        .iter()
        .map(|&w| (w * s).round_ties_even().clamp(-1.0, 1.0) / s)
        .collect();
    (t, 1.0 / s)
}

/// The AVX2 kernel's `sumi = sum(code * q)` for one weight row, bit-exact
/// including its 16-bit wraparound.
///
/// `row_codes` is the row's `k / 4` code bytes, `q` the token's `k` i8
/// activations. Lane `l` (0..16) of the kernel adds the products at
/// positions `32 g + 2 l` and `32 g + 2 l + 1` (g < 4) of every group in a
/// run of up to [`KERNEL_RUN_GROUPS`] groups, wrapping at 16 bits; then the
/// lanes are widened and summed in i32. Only runs of 17+ groups (k >= 2176)
/// can wrap.
///
/// # Errors
/// [`QuantErrorKind::NotBlockMultiple`] unless `q.len() % 128 == 0`;
/// [`QuantErrorKind::LengthMismatch`] unless
/// `row_codes.len() == q.len() / 4`.
pub fn kernel_sumi(row_codes: &[u8], q: &[i8]) -> Result<i32, QuantError> {
    let nbytes = code_bytes(1, q.len())?;
    if row_codes.len() != nbytes {
        return Err(QuantError::length(
            "row codes (bytes)",
            nbytes,
            row_codes.len(),
        ));
    }
    let mut sumi = 0i32;
    let ngroups = q.len() / GROUP;
    for run in (0..ngroups).step_by(KERNEL_RUN_GROUPS) {
        let mut lanes = [0i16; 16];
        for g in run..ngroups.min(run + KERNEL_RUN_GROUPS) {
            let bytes = &row_codes[GROUP_BYTES * g..GROUP_BYTES * (g + 1)];
            for sub in 0..4 {
                let shift = 6 - 2 * sub;
                let qs = &q[GROUP * g + 32 * sub..GROUP * g + 32 * (sub + 1)];
                for (l, lane) in lanes.iter_mut().enumerate() {
                    let c0 = ((bytes[2 * l] >> shift) & 3) as i16;
                    let c1 = ((bytes[2 * l + 1] >> shift) & 3) as i16;
                    let pair =
                        c0 * qs[2 * l] as i16 + c1 * qs[2 * l + 1] as i16;
                    *lane = lane.wrapping_add(pair);
                }
            }
        }
        for lane in lanes {
            sumi = sumi.wrapping_add(lane as i32);
        }
    }
    Ok(sumi)
}

/// The output value: `((sumi as f32 - act_sum as f32) / act_scale) * scale`
/// in f32, in that order (fork `ggml.c:12493`). `sumi - act_sum` is the
/// ternary dot product `sum((code - 1) * q)`.
pub fn finish(sumi: i32, act_sum: i32, act_scale: f32, scale: f32) -> f32 {
    (sumi as f32 - act_sum as f32) / act_scale * scale
}

/// Scalar reference of bitnet.cpp's I2_S matmul: for each of `n_tokens`
/// rows of `act` (`k` floats each), quantize with
/// [`crate::act::quantize_row_i8_s`], then for each weight row `r`
/// compute [`finish`]`(`[`kernel_sumi`]`)`. Writes `out[t * m + r]`
/// (`[token][weight row]`).
///
/// # Errors
/// Bad `k`, or a buffer length that does not match `m`, `k`, `n_tokens`.
pub fn reference_matmul(
    weights: &[u8],
    m: usize,
    k: usize,
    act: &[f32],
    n_tokens: usize,
    out: &mut [f32],
) -> Result<(), QuantError> {
    let s = scale(weights, m, k)?;
    let n_act = n_tokens
        .checked_mul(k)
        .ok_or(QuantErrorKind::SizeOverflow { what: "n_tokens * k" })?;
    if act.len() != n_act {
        return Err(QuantError::length("act (f32 elements)", n_act, act.len()));
    }
    let n_out = n_tokens
        .checked_mul(m)
        .ok_or(QuantErrorKind::SizeOverflow { what: "n_tokens * m" })?;
    if out.len() != n_out {
        return Err(QuantError::length("out (f32 elements)", n_out, out.len()));
    }
    if k == 0 {
        out.fill(0.0);
        return Ok(());
    }
    let mut q = vec![0i8; k];
    for (x, o) in act.chunks_exact(k).zip(out.chunks_exact_mut(m.max(1))) {
        let (act_scale, act_sum) = try_quantize_row_i8_s(x, &mut q)?;
        for (r, y) in o.iter_mut().enumerate().take(m) {
            let codes = &weights[r * k / 4..(r + 1) * k / 4];
            *y = finish(kernel_sumi(codes, &q)?, act_sum, act_scale, s);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraparound_example_from_the_readme() {
        // K = 4096, every code 2, activations all 1.0 (I2_S.json).
        let k = 4096;
        let mut w = vec![0xAAu8; k / 4];
        w.extend_from_slice(&1.0f32.to_le_bytes());
        w.extend_from_slice(&[0u8; 28]);
        let q = vec![127i8; k];
        assert_eq!(kernel_sumi(&w[..k / 4], &q).unwrap(), -8192);
        let mut out = [0.0f32];
        reference_matmul(&w, 1, k, &vec![1.0; k], 1, &mut out).unwrap();
        assert_eq!(
            out[0].to_bits(),
            u32::from_le_bytes([0x08, 0x04, 0x82, 0xc5])
        );
        assert_eq!(out[0], -4160.504);
    }

    #[test]
    fn code_layout() {
        let x: Vec<f32> = (0..256).map(|i| [-1.0, 0.0, 1.0][i % 3]).collect();
        let t = quantize(&x, 2, 128).unwrap();
        for (i, &v) in x.iter().enumerate() {
            assert_eq!(code(&t[..64], i), (v + 1.0) as u8);
        }
        assert_eq!(get_code(&t[..64], 256), None);
        assert_eq!(scale(&t, 2, 128).unwrap(), 1.0);
    }
}
