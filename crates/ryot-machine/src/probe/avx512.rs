//! AVX-512 read path: one 512-bit aligned load per 64-byte line.

use super::Line;
use std::arch::x86_64::{
    __m512i, _mm512_add_epi64, _mm512_load_si512, _mm512_reduce_add_epi64,
    _mm512_setzero_si512,
};

/// Whether this CPU can run [`sum_streams`].
pub(crate) fn is_available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// Wrapping sum of every `u64` of `lines`, reading `streams` contiguous
/// pieces interleaved; equal to [`super::scalar::sum_streams`].
///
/// # Safety
///
/// The CPU must support AVX-512F ([`is_available`]).
#[target_feature(enable = "avx512f")]
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
#[target_feature(enable = "avx512f")]
fn sum<const S: usize>(lines: &[Line]) -> u64 {
    let (m, tail) = super::pieces(lines.len(), S);
    let base = lines.as_ptr();
    let mut acc = [_mm512_setzero_si512(); S];
    for k in 0..m {
        for (s, acc) in acc.iter_mut().enumerate() {
            // SAFETY: s < S and k < m, so s * m + k < S * m <= lines.len():
            // the line is in bounds. `Line` is 64 bytes and 64-byte aligned,
            // so the aligned 64-byte load reads exactly that initialised
            // line, and AVX-512F is enabled on this function.
            let v = unsafe {
                _mm512_load_si512(base.add(s * m + k).cast::<__m512i>())
            };
            *acc = _mm512_add_epi64(*acc, v);
        }
    }
    let v =
        acc.iter().fold(_mm512_setzero_si512(), |a, &b| _mm512_add_epi64(a, b));
    let tail = super::scalar::sum_lines(&lines[tail..]);
    tail.wrapping_add(_mm512_reduce_add_epi64(v) as u64)
}
