//! Contiguous, near-equal, aligned splits of `0..len`: one range per worker.
//!
//! Kernels give each worker a single contiguous block of output rows (so
//! each thread streams one region of the weights), with boundaries on a
//! multiple of the kernel's row tile so no tile straddles two workers.

use std::ops::Range;

/// The `part`-th of `parts` contiguous pieces of `0..len`.
///
/// Pieces are as equal as `align` allows: `0..len` is cut into
/// `ceil(len / align)` units of `align` elements (the last unit may be
/// shorter), and the units are dealt out so that piece sizes differ by at
/// most one unit, earlier pieces getting the extra units. Every boundary
/// is a multiple of `align` except the final `len`. Pieces may be empty
/// (when there are fewer units than parts); taken together, for
/// `part in 0..parts`, they cover `0..len` exactly, in order.
///
/// `align == 0` is treated as `1`.
///
/// # Panics
///
/// If `part >= parts`.
///
/// ```
/// use ryot_pool::split_range;
/// assert_eq!(split_range(100, 2, 0, 1), 0..50);
/// assert_eq!(split_range(100, 3, 1, 8), 40..72);
/// assert_eq!(split_range(100, 3, 2, 8), 72..100);
/// assert_eq!(split_range(3, 4, 3, 1), 3..3);
/// ```
pub fn split_range(
    len: usize,
    parts: usize,
    part: usize,
    align: usize,
) -> Range<usize> {
    assert!(part < parts, "split_range: part {part} of {parts}");
    let align = align.max(1);
    let units = len.div_ceil(align);
    let (base, extra) = (units / parts, units % parts);
    let first = part * base + part.min(extra);
    let count = base + usize::from(part < extra);
    let start = first.saturating_mul(align).min(len);
    let end = (first + count).saturating_mul(align).min(len);
    start..end
}

#[cfg(test)]
mod tests {
    use super::split_range;

    #[test]
    fn covers_exactly_and_aligned() {
        for len in (0..200usize).chain([1000, 4096, 6912, 100_003]) {
            for parts in 1..9 {
                for align in [0, 1, 2, 3, 8, 16, 64, 256] {
                    let mut next = 0;
                    let a = align.max(1);
                    let units = len.div_ceil(a);
                    for part in 0..parts {
                        let r = split_range(len, parts, part, align);
                        assert_eq!(r.start, next, "{len} {parts} {align}");
                        assert!(r.start <= r.end);
                        assert!(r.start.is_multiple_of(a) || r.start == len);
                        assert!(r.end.is_multiple_of(a) || r.end == len);
                        // Near-equal: at most one unit above the floor.
                        let got = r.end.div_ceil(a) - r.start / a;
                        assert!(
                            got == units / parts || got == units / parts + 1
                        );
                        next = r.end;
                    }
                    assert_eq!(next, len);
                }
            }
        }
    }

    #[test]
    fn huge_len_does_not_overflow() {
        let r = split_range(usize::MAX, 2, 1, 64);
        assert_eq!(r.end, usize::MAX);
        assert_eq!(r.start % 64, 0);
    }

    #[test]
    #[should_panic(expected = "part 2 of 2")]
    fn part_out_of_range_panics() {
        let _ = split_range(10, 2, 2, 1);
    }
}
