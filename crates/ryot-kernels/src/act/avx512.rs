//! AVX-512 activation quantizer: 64 values per step, rounding with
//! `cvtps2dq` (round half to even, like `nearest_int`) and clamping with
//! the saturating down-converts.

use std::arch::x86_64::*;

/// `max |x|`.
pub(super) fn amax(x: &[f32]) -> f32 {
    assert!(crate::isa::SimdLevel::Avx512.is_supported_by_cpu());
    // SAFETY: the CPU supports AVX-512 F/BW/VL/DQ (asserted above).
    unsafe { amax_impl(x) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn amax_impl(x: &[f32]) -> f32 {
    let mut m = _mm512_setzero_ps();
    let mut chunks = x.chunks_exact(16);
    for c in &mut chunks {
        // SAFETY: c holds 16 f32s.
        let v = unsafe { _mm512_loadu_ps(c.as_ptr()) };
        m = _mm512_max_ps(m, _mm512_abs_ps(v));
    }
    let mut lanes = [0f32; 16];
    // SAFETY: lanes holds 16 f32s.
    unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), m) };
    let tail = super::scalar::amax(chunks.remainder());
    lanes.iter().fold(tail, |a, &v| a.max(v))
}

/// Quantizes `x` into `q`, returning `sum(q)`.
pub(super) fn quantize(x: &[f32], scale: f32, q: &mut [i8]) -> i32 {
    assert!(crate::isa::SimdLevel::Avx512.is_supported_by_cpu());
    assert_eq!(x.len(), q.len());
    // SAFETY: the CPU supports AVX-512 F/BW/VL/DQ (asserted above).
    unsafe { quantize_impl(x, scale, q) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn quantize_impl(x: &[f32], scale: f32, q: &mut [i8]) -> i32 {
    let s = _mm512_set1_ps(scale);
    let mut sum = _mm512_setzero_si512();
    let n = x.len() / 16 * 16;
    for (xc, qc) in x[..n].chunks_exact(16).zip(q[..n].chunks_exact_mut(16)) {
        // SAFETY: xc holds 16 f32s.
        let f = unsafe { _mm512_loadu_ps(xc.as_ptr()) };
        let v = _mm512_cvtps_epi32(_mm512_mul_ps(f, s));
        // vpmovsdb saturates to [-128, 127]: the clamp.
        let b = _mm512_cvtsepi32_epi8(v);
        // SAFETY: qc holds 16 bytes.
        unsafe { _mm_storeu_si128(qc.as_mut_ptr().cast(), b) };
        sum = _mm512_add_epi32(sum, _mm512_cvtepi8_epi32(b));
    }
    _mm512_reduce_add_epi32(sum)
        + super::scalar::quantize(&x[n..], scale, &mut q[n..])
}
