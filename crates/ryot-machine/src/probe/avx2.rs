//! AVX2 read path: two 256-bit aligned loads per 64-byte line.

use super::Line;
use std::arch::x86_64::{
    __m256i, _mm256_add_epi64, _mm256_extract_epi64, _mm256_load_si256,
    _mm256_setzero_si256,
};

/// Whether this CPU can run [`sum_streams`].
pub(crate) fn is_available() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// Wrapping sum of every `u64` of `lines`, reading `streams` contiguous
/// pieces interleaved; equal to [`super::scalar::sum_streams`].
///
/// # Safety
///
/// The CPU must support AVX2 ([`is_available`]).
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn sum_streams(streams: usize, lines: &[Line]) -> u64 {
    match streams {
        1 => sum::<1>(lines),
        2 => sum::<2>(lines),
        4 => sum::<4>(lines),
        8 => sum::<8>(lines),
        _ => sum::<16>(lines),
    }
}

/// [`sum_streams`] for a fixed stream count, so the inner loop unrolls.
#[target_feature(enable = "avx2")]
fn sum<const S: usize>(lines: &[Line]) -> u64 {
    let (m, tail) = super::pieces(lines.len(), S);
    let base = lines.as_ptr();
    let mut acc = [_mm256_setzero_si256(); S];
    for k in 0..m {
        for (s, acc) in acc.iter_mut().enumerate() {
            // SAFETY: s < S and k < m, so s * m + k < S * m <= lines.len():
            // the line is in bounds. `Line` is 64 bytes and 64-byte aligned,
            // so both 32-byte aligned loads read initialised memory inside
            // it, and AVX2 is enabled on this function.
            let (lo, hi) = unsafe {
                let p = base.add(s * m + k).cast::<__m256i>();
                (_mm256_load_si256(p), _mm256_load_si256(p.add(1)))
            };
            *acc = _mm256_add_epi64(*acc, _mm256_add_epi64(lo, hi));
        }
    }
    let v =
        acc.iter().fold(_mm256_setzero_si256(), |a, &b| _mm256_add_epi64(a, b));
    let lanes = [
        _mm256_extract_epi64::<0>(v),
        _mm256_extract_epi64::<1>(v),
        _mm256_extract_epi64::<2>(v),
        _mm256_extract_epi64::<3>(v),
    ];
    let tail = super::scalar::sum_lines(&lines[tail..]);
    lanes.iter().fold(tail, |a, &b| a.wrapping_add(b as u64))
}
