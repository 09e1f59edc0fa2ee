//! AVX2 activation quantizer: 32 values per step, rounding with
//! `cvtps2dq` (round half to even under the default MXCSR mode, like
//! `nearest_int`) and clamping with the saturating packs.

use std::arch::x86_64::*;

/// `max |x|`.
pub(super) fn amax(x: &[f32]) -> f32 {
    assert!(crate::isa::SimdLevel::Avx2.is_supported_by_cpu());
    // SAFETY: the CPU supports AVX2 (asserted above).
    unsafe { amax_impl(x) }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn amax_impl(x: &[f32]) -> f32 {
    let abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    let mut m = _mm256_setzero_ps();
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        // SAFETY: c holds 8 f32s.
        let v = unsafe { _mm256_loadu_ps(c.as_ptr()) };
        m = _mm256_max_ps(m, _mm256_and_ps(v, abs));
    }
    let mut lanes = [0f32; 8];
    // SAFETY: lanes holds 8 f32s.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), m) };
    let tail = super::scalar::amax(chunks.remainder());
    lanes.iter().fold(tail, |a, &v| a.max(v))
}

/// Quantizes `x` into `q`, returning `sum(q)`.
pub(super) fn quantize(x: &[f32], scale: f32, q: &mut [i8]) -> i32 {
    assert!(crate::isa::SimdLevel::Avx2.is_supported_by_cpu());
    assert_eq!(x.len(), q.len());
    // SAFETY: the CPU supports AVX2 (asserted above).
    unsafe { quantize_impl(x, scale, q) }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn quantize_impl(x: &[f32], scale: f32, q: &mut [i8]) -> i32 {
    let s = _mm256_set1_ps(scale);
    let fix = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    let mut sum = _mm256_setzero_si256();
    let n = x.len() / 32 * 32;
    for (xc, qc) in x[..n].chunks_exact(32).zip(q[..n].chunks_exact_mut(32)) {
        let p = xc.as_ptr();
        let v: [__m256i; 4] = crate::arr::build(|i| {
            // SAFETY: xc holds 32 f32s and i < 4.
            let f = unsafe { _mm256_loadu_ps(p.add(8 * i)) };
            _mm256_cvtps_epi32(_mm256_mul_ps(f, s))
        });
        // packs saturate to [-32768, 32767] then [-128, 127]: the clamp.
        let ab = _mm256_packs_epi32(v[0], v[1]);
        let cd = _mm256_packs_epi32(v[2], v[3]);
        let bytes =
            _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd), fix);
        // SAFETY: qc holds 32 bytes.
        unsafe { _mm256_storeu_si256(qc.as_mut_ptr().cast(), bytes) };
        // Sum the clamped bytes: widen to i16 pairs with maddubs by ones.
        let ones = _mm256_set1_epi8(1);
        let pairs = _mm256_maddubs_epi16(ones, bytes);
        sum = _mm256_add_epi32(
            sum,
            _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)),
        );
    }
    let mut lanes = [0i32; 8];
    // SAFETY: lanes holds 8 i32s.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), sum) };
    lanes.iter().sum::<i32>()
        + super::scalar::quantize(&x[n..], scale, &mut q[n..])
}
