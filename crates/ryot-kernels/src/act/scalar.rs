//! Scalar twin of the activation quantizer.

use super::nearest_int;

/// `max |x|` (0 for an empty slice).
pub(super) fn amax(x: &[f32]) -> f32 {
    // Eight independent lanes, like the SIMD twins; max is exact, so the
    // order does not change the result.
    let mut m = [0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for (mi, v) in m.iter_mut().zip(c) {
            *mi = mi.max(v.abs());
        }
    }
    let tail = chunks.remainder().iter().fold(0f32, |a, v| a.max(v.abs()));
    m.iter().fold(tail, |a, &v| a.max(v))
}

/// `q = clamp(nearest_int(x * scale), -128, 127)`; returns `sum(q)`.
pub(super) fn quantize(x: &[f32], scale: f32, q: &mut [i8]) -> i32 {
    let mut sum = 0i32;
    for (qi, &xi) in q.iter_mut().zip(x) {
        let v = nearest_int(xi * scale).clamp(-128, 127);
        *qi = v as i8;
        sum += v;
    }
    sum
}
