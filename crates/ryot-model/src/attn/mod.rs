//! One query head attending over the cached keys and values: llama.cpp's
//! one-pass online softmax (its CPU flash attention's per-query path).
//!
//! Every variant computes the same operations in the same order, so the
//! scalar and AVX2 results are bit-identical: the q·k dot product sums 8
//! lanes with fused multiply-adds (lane `l` takes elements `i ≡ l mod 8`)
//! and reduces them in a fixed tree; the value accumulator is updated with
//! fused multiply-adds and, for an f16 cache, rounded to f16 after every
//! step as llama.cpp's f16 accumulator is.

use half::f16;
use ryot_kernels::SimdLevel;

mod avx2;
mod scalar;

/// Cached rows of one layer, `[pos][kv_dim]`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum KvRows<'a> {
    /// Half precision.
    F16(&'a [f16]),
    /// Single precision.
    F32(&'a [f32]),
    /// Int8 with one f32 scale per block of [`Q8_BLOCK`] values of a
    /// position's row.
    Q8 {
        /// Codes, `[pos][kv_dim]`.
        q: &'a [i8],
        /// Scales, `[pos][kv_dim.div_ceil(Q8_BLOCK)]`.
        d: &'a [f32],
        /// Values per position.
        kv_dim: usize,
    },
}

/// Values sharing one scale in an int8 cache.
pub(crate) const Q8_BLOCK: usize = 32;

impl KvRows<'_> {
    /// The value at flat index `at`.
    #[inline(always)]
    pub(crate) fn get(self, at: usize) -> f32 {
        match self {
            KvRows::F16(x) => x[at].to_f32(),
            KvRows::F32(x) => x[at],
            KvRows::Q8 { q, d, kv_dim } => {
                let nb = kv_dim.div_ceil(Q8_BLOCK);
                let (pos, i) = (at / kv_dim, at % kv_dim);
                q[at] as f32 * d[pos * nb + i / Q8_BLOCK]
            }
        }
    }

    /// Number of values held.
    pub(crate) fn len(self) -> usize {
        match self {
            KvRows::F16(x) => x.len(),
            KvRows::F32(x) => x.len(),
            KvRows::Q8 { q, .. } => q.len(),
        }
    }
}

/// One query head's job.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeadJob<'a> {
    /// Keys.
    pub k: KvRows<'a>,
    /// Values (same type as keys).
    pub v: KvRows<'a>,
    /// Elements per cached position (`kv_dim`).
    pub stride: usize,
    /// Offset of this head's slice within a position.
    pub off: usize,
    /// Positions to attend over (`0..ctx`).
    pub ctx: usize,
    /// Head width.
    pub d: usize,
    /// Score scale (`1/sqrt(d)`).
    pub scale: f32,
    /// Round the accumulator to f16 after each step.
    pub f16_acc: bool,
}

/// Attends `q` (`d` values, already rounded to the cache type) over the
/// job's positions; writes the normalised output to `out`.
pub(crate) fn attend(
    level: SimdLevel,
    job: &HeadJob<'_>,
    q: &[f32],
    out: &mut [f32],
) {
    debug_assert!(q.len() == job.d && out.len() == job.d);
    let sum = match level {
        SimdLevel::Avx2 | SimdLevel::Avx512 if avx2::is_available() => {
            // SAFETY: `is_available` checked AVX2, FMA and F16C.
            unsafe { avx2::attend(job, q, out) }
        }
        _ => scalar::attend(job, q, out),
    };
    let inv = 1.0 / sum;
    out.iter_mut().for_each(|o| *o *= inv);
}

/// The fixed reduction of 8 dot-product lanes.
#[inline(always)]
pub(crate) fn reduce8(l: &[f32; 8]) -> f32 {
    let r = [l[0] + l[4], l[1] + l[5], l[2] + l[6], l[3] + l[7]];
    (r[0] + r[2]) + (r[1] + r[3])
}

/// `x.exp()` for the softmax's `x <= 0`, skipping the library's slow
/// underflow path: below -104 the f32 result is exactly +0 either way.
#[inline(always)]
pub(crate) fn exp_le0(x: f32) -> f32 {
    if x < -104.0 { 0.0 } else { x.exp() }
}

/// Rounds every value to the nearest f16 (ties to even).
#[inline(always)]
pub(crate) fn round_f16(v: &mut [f32]) {
    v.iter_mut().for_each(|x| *x = f16::from_f32(*x).to_f32());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng(seed: &mut u64) -> f32 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        (*seed >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }

    /// The underflow shortcut changes no result.
    #[test]
    fn exp_le0_equals_exp() {
        let mut x = -300.0f32;
        while x <= 0.0 {
            assert_eq!(exp_le0(x).to_bits(), x.exp().to_bits(), "x = {x}");
            x += 0.0137;
        }
        for x in [f32::NEG_INFINITY, -104.0, -103.97, f32::NAN] {
            assert_eq!(exp_le0(x).to_bits(), x.exp().to_bits(), "x = {x}");
        }
    }

    /// Scalar and AVX2 agree bit for bit, for f16 and f32 caches, head
    /// widths with and without a tail, and every context length.
    #[test]
    fn avx2_equals_scalar() {
        if !avx2::is_available() {
            eprintln!("AVX2/FMA/F16C not available: skipped");
            return;
        }
        let mut seed = 7u64;
        for &d in &[8usize, 13, 64, 72, 128] {
            let (n_kv, heads) = (40usize, 2usize);
            let stride = d * heads;
            let raw: Vec<f32> =
                (0..n_kv * stride * 2).map(|_| rng(&mut seed) * 3.0).collect();
            let (kf, vf) = raw.split_at(n_kv * stride);
            let kh: Vec<f16> = kf.iter().map(|&x| f16::from_f32(x)).collect();
            let vh: Vec<f16> = vf.iter().map(|&x| f16::from_f32(x)).collect();
            let q8 = |x: &[f32]| {
                let nb = stride.div_ceil(Q8_BLOCK);
                let mut q = vec![0i8; x.len()];
                let mut ds = vec![0f32; n_kv * nb];
                for (p, row) in x.chunks(stride).enumerate() {
                    for (b, blk) in row.chunks(Q8_BLOCK).enumerate() {
                        let amax = blk.iter().fold(0f32, |m, v| m.max(v.abs()));
                        let dd = amax / 127.0;
                        ds[p * nb + b] = dd;
                        for (i, v) in blk.iter().enumerate() {
                            q[p * stride + b * Q8_BLOCK + i] = if dd > 0.0 {
                                (v / dd).round() as i8
                            } else {
                                0
                            };
                        }
                    }
                }
                (q, ds)
            };
            let (kq, kd) = q8(kf);
            let (vq, vd) = q8(vf);
            let mut q: Vec<f32> = (0..d).map(|_| rng(&mut seed)).collect();
            round_f16(&mut q);
            for ctx in [1, 2, 7, 8, 19, 40] {
                for (k, v, f16_acc) in [
                    (KvRows::F16(&kh), KvRows::F16(&vh), true),
                    (KvRows::F16(&kh), KvRows::F16(&vh), false),
                    (KvRows::F32(kf), KvRows::F32(vf), false),
                    (
                        KvRows::Q8 { q: &kq, d: &kd, kv_dim: stride },
                        KvRows::Q8 { q: &vq, d: &vd, kv_dim: stride },
                        false,
                    ),
                ] {
                    let job = HeadJob {
                        k,
                        v,
                        stride,
                        off: d,
                        ctx,
                        d,
                        scale: 1.0 / (d as f32).sqrt(),
                        f16_acc,
                    };
                    let mut a = vec![0.0; d];
                    let mut b = vec![0.0; d];
                    attend(SimdLevel::Scalar, &job, &q, &mut a);
                    attend(SimdLevel::Avx2, &job, &q, &mut b);
                    assert_eq!(
                        a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                        b.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                        "d {d} ctx {ctx} f16_acc {f16_acc}"
                    );
                    // And against a plain two-pass softmax in f64.
                    let kr =
                        |j: usize, i: usize| k.get(j * stride + d + i) as f64;
                    let vr =
                        |j: usize, i: usize| v.get(j * stride + d + i) as f64;
                    let s: Vec<f64> = (0..ctx)
                        .map(|j| {
                            (0..d).map(|i| q[i] as f64 * kr(j, i)).sum::<f64>()
                                / (d as f64).sqrt()
                        })
                        .collect();
                    let m = s.iter().cloned().fold(f64::MIN, f64::max);
                    let w: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
                    let z: f64 = w.iter().sum();
                    for (i, &ai) in a.iter().enumerate() {
                        let want: f64 =
                            (0..ctx).map(|j| w[j] * vr(j, i)).sum::<f64>() / z;
                        // f16 accumulation: relative 2^-11 per step.
                        let tol = if f16_acc { 4e-3 } else { 1e-4 } * 3.0;
                        assert!(
                            (ai as f64 - want).abs()
                                <= tol * (1.0 + want.abs()),
                            "d {d} ctx {ctx} i {i}: {ai} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
