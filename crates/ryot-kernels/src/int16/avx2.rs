//! AVX2 int16 kernels: `vpmaddwd` multiplies a broadcast column pair of a
//! token with the same pair of 8 rows and adds the two products in i32;
//! a tile of up to 6 tokens x one 16-row panel keeps 12 i32 accumulators
//! in registers, flushed to f32 every [`BLOCK_PAIRS`] pairs.

use std::arch::x86_64::*;

use super::{BLOCK_PAIRS, Int16Acts, Int16Weights, PANEL_ROWS, X_MAX};
use crate::error::KernelError;

/// Tokens per register tile.
const TILE: usize = 6;

/// Quantizes rows like [`super::scalar::quantize_rows`], 8 values at a time:
/// the same absmax (a max of exact values), the same `round_ties_even`
/// (`vroundps` to nearest) and clamp, so the same codes and scales.
pub(crate) fn quantize_rows(
    x: &[f32],
    k: usize,
    stride: usize,
    q: &mut [i16],
    scales: &mut [f32],
) -> Result<(), KernelError> {
    assert!(crate::isa::SimdLevel::Avx2.is_available());
    for ((row, out), s) in
        x.chunks_exact(k).zip(q.chunks_exact_mut(stride)).zip(scales)
    {
        // SAFETY: the CPU supports AVX2 and FMA (asserted above).
        *s = unsafe { quantize_row(row, &mut out[..k]) }?;
        out[k..].fill(0);
    }
    Ok(())
}

#[target_feature(enable = "avx2,fma")]
fn quantize_row(x: &[f32], out: &mut [i16]) -> Result<f32, KernelError> {
    let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    let inf = _mm256_set1_ps(f32::INFINITY);
    let chunks = x.chunks_exact(8);
    let tail = chunks.remainder();
    let mut mx = _mm256_setzero_ps();
    // Lanes that are NaN or infinite (unordered or >= inf).
    let mut bad = _mm256_setzero_ps();
    for c in chunks.clone() {
        // SAFETY: c holds 8 f32s.
        let v = _mm256_and_ps(unsafe { _mm256_loadu_ps(c.as_ptr()) }, abs_mask);
        bad = _mm256_or_ps(bad, _mm256_cmp_ps::<_CMP_NLT_UQ>(v, inf));
        mx = _mm256_max_ps(mx, v);
    }
    let mut lanes = [0f32; 8];
    // SAFETY: lanes holds 8 f32s.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), mx) };
    let mut absmax = lanes.iter().fold(0f32, |a, v| a.max(*v));
    for v in tail {
        if !v.is_finite() {
            return Err(non_finite());
        }
        absmax = absmax.max(v.abs());
    }
    if _mm256_movemask_ps(bad) != 0 {
        return Err(non_finite());
    }
    if absmax == 0.0 {
        out.fill(0);
        return Ok(0.0);
    }
    let inv = X_MAX as f32 / absmax;
    let lim = X_MAX as f32;
    let (invv, hi, lo) =
        (_mm256_set1_ps(inv), _mm256_set1_ps(lim), _mm256_set1_ps(-lim));
    let mut outs = out.chunks_exact_mut(8);
    for (c, o) in chunks.zip(&mut outs) {
        // SAFETY: c holds 8 f32s, o 8 i16s (16 bytes).
        unsafe {
            let v = _mm256_mul_ps(_mm256_loadu_ps(c.as_ptr()), invv);
            let r = _mm256_round_ps::<
                { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
            >(v);
            let r = _mm256_max_ps(_mm256_min_ps(r, hi), lo);
            let i = _mm256_cvttps_epi32(r);
            let packed = _mm_packs_epi32(
                _mm256_castsi256_si128(i),
                _mm256_extracti128_si256::<1>(i),
            );
            _mm_storeu_si128(o.as_mut_ptr().cast(), packed);
        }
    }
    for (o, &v) in outs.into_remainder().iter_mut().zip(tail) {
        *o = (v * inv).round_ties_even().clamp(-lim, lim) as i16;
    }
    Ok(absmax / X_MAX as f32)
}

fn non_finite() -> KernelError {
    KernelError::non_finite("int16 activations")
}

/// See [`super::gemm`].
pub(crate) fn gemm(w: &Int16Weights, x: &Int16Acts, out: &mut [f32]) {
    assert!(crate::isa::SimdLevel::Avx2.is_available());
    // SAFETY: the CPU supports AVX2 (asserted above).
    unsafe { gemm_impl(w, x, out) }
}

#[target_feature(enable = "avx2,fma")]
fn gemm_impl(w: &Int16Weights, x: &Int16Acts, out: &mut [f32]) {
    let n = x.n();
    // Token blocks whose codes (about 96 KiB) stay in L2 while every
    // panel passes over them.
    let row_bytes = 4 * w.pairs();
    let per = ((96 << 10) / row_bytes).max(TILE) / TILE * TILE;
    for t0 in (0..n).step_by(per) {
        let t_end = (t0 + per).min(n);
        for p in 0..w.panels() {
            let mut t = t0;
            while t < t_end {
                match t_end - t {
                    1 => tile::<1>(w, x, p, t, out),
                    2 => tile::<2>(w, x, p, t, out),
                    3 => tile::<3>(w, x, p, t, out),
                    4 => tile::<4>(w, x, p, t, out),
                    5 => tile::<5>(w, x, p, t, out),
                    _ => tile::<6>(w, x, p, t, out),
                }
                t += TILE;
            }
        }
    }
}

/// Tokens `t0..t0+T` x panel `p`.
#[target_feature(enable = "avx2,fma")]
fn tile<const T: usize>(
    w: &Int16Weights,
    x: &Int16Acts,
    p: usize,
    t0: usize,
    out: &mut [f32],
) {
    let pairs = w.pairs();
    let panel = w.panel(p);
    let rows: [&[i16]; T] = crate::arr::build(|i| x.row(t0 + i));
    // f32 partial sums per token and half panel, kept in memory: touched
    // once per block.
    let mut f = [[0f32; PANEL_ROWS]; T];
    let mut b = 0;
    while b < pairs {
        let end = (b + BLOCK_PAIRS).min(pairs);
        let mut acc = [[_mm256_setzero_si256(); 2]; T];
        for j in b..end {
            // SAFETY: panel holds pairs * 32 i16s; j < pairs, so both
            // 16-element halves at j * 32 are in bounds.
            let (w0, w1) = unsafe {
                let ptr = panel.as_ptr().add(j * 32).cast::<__m256i>();
                (_mm256_loadu_si256(ptr), _mm256_loadu_si256(ptr.add(1)))
            };
            for (ti, row) in rows.iter().enumerate() {
                // SAFETY: a row holds 2 * pairs i16s; 2j + 2 <= 2 * pairs.
                let v = unsafe {
                    row.as_ptr().add(2 * j).cast::<i32>().read_unaligned()
                };
                let xv = _mm256_set1_epi32(v);
                acc[ti][0] =
                    _mm256_add_epi32(acc[ti][0], _mm256_madd_epi16(xv, w0));
                acc[ti][1] =
                    _mm256_add_epi32(acc[ti][1], _mm256_madd_epi16(xv, w1));
            }
        }
        for (fr, a) in f.iter_mut().zip(&acc) {
            for (h, &ah) in a.iter().enumerate() {
                // SAFETY: fr holds 16 f32s; h * 8 + 8 <= 16.
                unsafe {
                    let ptr = fr.as_mut_ptr().add(h * 8);
                    let s = _mm256_cvtepi32_ps(ah);
                    _mm256_storeu_ps(
                        ptr,
                        _mm256_add_ps(_mm256_loadu_ps(ptr), s),
                    );
                }
            }
        }
        b = end;
    }
    let m = w.m();
    let valid = PANEL_ROWS.min(m - p * PANEL_ROWS);
    let ws = w.panel_scales(p);
    for (ti, fr) in f.iter().enumerate() {
        let t = t0 + ti;
        let xs = _mm256_set1_ps(x.scales()[t]);
        let o = &mut out[t * m + p * PANEL_ROWS..][..valid];
        let mut v = [0f32; PANEL_ROWS];
        for h in 0..2 {
            // SAFETY: fr, ws and v hold 16 f32s; h * 8 + 8 <= 16.
            unsafe {
                let s =
                    _mm256_mul_ps(_mm256_loadu_ps(fr.as_ptr().add(h * 8)), xs);
                let s =
                    _mm256_mul_ps(s, _mm256_loadu_ps(ws.as_ptr().add(h * 8)));
                _mm256_storeu_ps(v.as_mut_ptr().add(h * 8), s);
            }
        }
        for (o, v) in o.iter_mut().zip(v) {
            *o += v;
        }
    }
}
