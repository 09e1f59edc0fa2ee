//! Portable read path: plain `u64` loads. The reference the SIMD paths are
//! tested against, and the path used where no SIMD path is available.

use super::Line;

/// Wrapping sum of every `u64` of `lines`, reading `S` contiguous pieces
/// of it interleaved (see [`super::pieces`]).
pub(crate) fn sum_streams(streams: usize, lines: &[Line]) -> u64 {
    match streams {
        1 => sum::<1>(lines),
        2 => sum::<2>(lines),
        4 => sum::<4>(lines),
        8 => sum::<8>(lines),
        _ => sum::<16>(lines),
    }
}

/// [`sum_streams`] for a fixed stream count, so the inner loop unrolls.
fn sum<const S: usize>(lines: &[Line]) -> u64 {
    let (m, tail) = super::pieces(lines.len(), S);
    let mut acc = [0u64; S];
    for k in 0..m {
        for (s, acc) in acc.iter_mut().enumerate() {
            *acc =
                lines[s * m + k].0.iter().fold(*acc, |a, &w| a.wrapping_add(w));
        }
    }
    acc.iter().fold(sum_lines(&lines[tail..]), |a, &b| a.wrapping_add(b))
}

/// Wrapping sum of every `u64` of `lines`, in order, one stream.
pub(crate) fn sum_lines(lines: &[Line]) -> u64 {
    lines.iter().flat_map(|l| l.0).fold(0, u64::wrapping_add)
}
