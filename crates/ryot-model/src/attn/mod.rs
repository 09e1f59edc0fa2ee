//! One query head attending over the cached keys and values: a one-pass
//! online softmax over blocks of [`KEYS`] keys, in the spirit of
//! llama.cpp's CPU flash attention (per query, f16 accumulator for an f16
//! cache).
//!
//! Per block of keys `j0..j0+KEYS` (the last block may be shorter):
//!
//! ```text
//! s_j   = reduce8(lanes of q·k_j) * scale
//! m'    = max(m, max_j s_j)
//! if m' > m:  acc *= exp(m - m'),  sum *= exp(m - m')   (then round acc)
//! p_j   = exp(s_j - m')
//! for j in order:  acc = fma(v_j, p_j, acc) (then round)
//! sum  += reduce8(p)   (p zero-padded to KEYS)
//! ```
//!
//! `exp` is [`exp_poly`], one polynomial evaluated with the same fused
//! multiply-adds in every variant, so the scalar, AVX2 and AVX-512
//! results are bit-identical: the q·k dot product sums 8 lanes with fused
//! multiply-adds (lane `l` takes elements `i ≡ l mod 8`) and reduces them
//! in a fixed tree; the value accumulator is updated with fused
//! multiply-adds and, for an f16 cache, rounded to f16 after every step as
//! llama.cpp's f16 accumulator is. Block boundaries depend only on the
//! key index, so a prompt run as one batch or token by token gives the
//! same bits.

use half::f16;
use ryot_kernels::SimdLevel;

mod avx2;
mod avx512;
mod rows;
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
        _ if wide(level, job.d) => {
            // SAFETY: `wide` checked AVX-512F, AVX2, FMA and F16C; the
            // kernel checks the lengths and the rows.
            let [sum] = unsafe {
                rows::attend_group::<avx512::Avx512, 1>(
                    job,
                    [job.ctx],
                    [q],
                    [out],
                )
            };
            sum
        }
        SimdLevel::Avx2 | SimdLevel::Avx512 | SimdLevel::Amx
            if avx2::is_available() =>
        {
            // SAFETY: `is_available` checked AVX2, FMA and F16C.
            unsafe { avx2::attend(job, q, out) }
        }
        _ => scalar::attend(job, q, out),
    };
    let inv = 1.0 / sum;
    out.iter_mut().for_each(|o| *o *= inv);
}

/// Whether heads of width `d` run on the AVX-512 kernel at `level`.
fn wide(level: SimdLevel, d: usize) -> bool {
    matches!(level, SimdLevel::Avx512 | SimdLevel::Amx)
        && avx512::is_available()
        && avx512::takes(d)
}

/// Queries [`attend_group`] takes at once.
pub(crate) use avx2::GROUP;

/// [`attend`] for `G` queries of one head: `job` with context `ctxs[i]`
/// for query `qs[i]`, written to `outs[i]`. The same bits as `G` calls of
/// [`attend`]; the SIMD kernels run the key blocks the queries share
/// together, which hides the latency of narrow heads (AVX2) or shares
/// each key and value load among the queries (AVX-512).
pub(crate) fn attend_group<const G: usize>(
    level: SimdLevel,
    job: &HeadJob<'_>,
    ctxs: [usize; G],
    qs: [&[f32]; G],
    mut outs: [&mut [f32]; G],
) {
    let sums = match level {
        _ if wide(level, job.d) => {
            // SAFETY: `wide` checked AVX-512F, AVX2, FMA and F16C; the
            // kernel checks the lengths and the rows against every
            // context.
            unsafe {
                rows::attend_group::<avx512::Avx512, G>(
                    job,
                    ctxs,
                    qs,
                    outs.each_mut().map(|o| &mut **o),
                )
            }
        }
        SimdLevel::Avx2 | SimdLevel::Avx512 | SimdLevel::Amx
            if avx2::is_available() =>
        {
            // SAFETY: `is_available` checked AVX2, FMA and F16C; the
            // kernel checks the lengths and the rows against every
            // context.
            unsafe {
                rows::attend_group::<avx2::Avx2, G>(
                    job,
                    ctxs,
                    qs,
                    outs.each_mut().map(|o| &mut **o),
                )
            }
        }
        _ => {
            for ((o, q), ctx) in outs.iter_mut().zip(qs).zip(ctxs) {
                attend(level, &HeadJob { ctx, ..*job }, q, o);
            }
            return;
        }
    };
    for (o, sum) in outs.iter_mut().zip(sums) {
        let inv = 1.0 / sum;
        o.iter_mut().for_each(|x| *x *= inv);
    }
}

/// The fixed reduction of 8 dot-product lanes.
#[inline(always)]
pub(crate) fn reduce8(l: &[f32; 8]) -> f32 {
    let r = [l[0] + l[4], l[1] + l[5], l[2] + l[6], l[3] + l[7]];
    (r[0] + r[2]) + (r[1] + r[3])
}

/// Keys per softmax block.
pub(crate) const KEYS: usize = 8;

/// Below this, [`exp_poly`] returns +0 (`exp` would be subnormal or 0).
pub(crate) const EXP_MIN: f32 = -87.33654;

/// `exp(x)` for `x <= 0`: `x = n ln2 + r` (Cody-Waite, two-part ln 2),
/// Cephes' degree-5 minimax polynomial for `exp(r)`, times `2^n`; +0 below
/// [`EXP_MIN`]. Within 2 ulp of the true value; every step is one
/// rounding done identically by the AVX2 twin (`avx2::exp8`).
#[inline(always)]
pub(crate) fn exp_poly(x: f32) -> f32 {
    if x < EXP_MIN {
        return 0.0;
    }
    let n = (x * EXP_C.log2e).round_ties_even();
    let r = n.mul_add(-EXP_C.ln2_hi, x);
    let r = n.mul_add(-EXP_C.ln2_lo, r);
    let z = r * r;
    let mut p = EXP_C.p[0];
    for &c in &EXP_C.p[1..] {
        p = p.mul_add(r, c);
    }
    let y = p.mul_add(z, r) + 1.0;
    // n is in -126..=0 here (NaN saturates to 0), so 2^n is normal.
    y * f32::from_bits((((n as i32) + 127) as u32) << 23)
}

/// The constants of [`exp_poly`].
pub(crate) struct ExpConsts {
    pub log2e: f32,
    pub ln2_hi: f32,
    pub ln2_lo: f32,
    pub p: [f32; 6],
}

/// Cody-Waite split of ln 2 and Cephes `expf` coefficients.
pub(crate) const EXP_C: ExpConsts = ExpConsts {
    log2e: std::f32::consts::LOG2_E,
    ln2_hi: 0.693_359_4,
    ln2_lo: -2.121_944_4e-4,
    p: [
        1.987_569_1e-4,
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ],
};

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

    /// The polynomial exp is within 2 ulp of the true value on its
    /// domain, exact at 0, and 0 below [`EXP_MIN`].
    #[test]
    fn exp_poly_accuracy() {
        let mut x = -87.3f32;
        let mut worst = 0f64;
        while x <= 0.0 {
            let got = exp_poly(x) as f64;
            let want = (x as f64).exp();
            let ulp = (want as f32).next_up() as f64 - want as f32 as f64;
            worst = worst.max((got - want).abs() / ulp);
            x += 0.000_731;
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
        assert_eq!(exp_poly(0.0), 1.0);
        assert_eq!(exp_poly(-100.0), 0.0);
        assert_eq!(exp_poly(f32::NEG_INFINITY), 0.0);
    }

    /// `avx2::exp8` equals `exp_poly` bit for bit on every lane.
    #[test]
    fn exp8_equals_exp_poly() {
        if !avx2::is_available() {
            eprintln!("AVX2/FMA/F16C not available: skipped");
            return;
        }
        let mut xs: Vec<f32> =
            (0..200_000).map(|i| -(i as f32) * 4.4e-4).collect();
        xs.extend([-87.33654, -87.3365, -87.4, -0.0, f32::NEG_INFINITY]);
        for c in xs.chunks(8) {
            let mut x = [0.0f32; 8];
            x[..c.len()].copy_from_slice(c);
            let mut y = [0.0f32; 8];
            // SAFETY: AVX2, FMA and F16C checked above; 8-element arrays.
            unsafe {
                use std::arch::x86_64::*;
                let v = avx2::exp8(_mm256_loadu_ps(x.as_ptr()));
                _mm256_storeu_ps(y.as_mut_ptr(), v);
            }
            for (a, b) in x.iter().zip(&y) {
                assert_eq!(exp_poly(*a).to_bits(), b.to_bits(), "x = {a}");
            }
        }
    }

    /// The AVX2 block max and sum equal the scalar fold and `reduce8`,
    /// NaN lanes ignored by the max as by `f32::max`.
    #[test]
    fn simd_block_max_and_sum_match_scalar() {
        if !avx2::is_available() {
            eprintln!("AVX2/FMA/F16C not available: skipped");
            return;
        }
        let mut seed = 3u64;
        let specials = [f32::NAN, -0.0, 0.0, f32::NEG_INFINITY, 1e30, -1e-30];
        for case in 0..2000 {
            let mut l: [f32; 8] =
                std::array::from_fn(|_| rng(&mut seed) * 50.0);
            if case % 3 == 0 {
                l[case % 8] = specials[case % specials.len()];
            }
            let m0 = if case % 5 == 0 {
                f32::NEG_INFINITY
            } else {
                rng(&mut seed) * 40.0
            };
            // SAFETY: AVX2 checked above; `l` holds 8 f32.
            let (m, s) = unsafe {
                use std::arch::x86_64::*;
                let v = _mm256_loadu_ps(l.as_ptr());
                (avx2::hmax8(v, m0), avx2::sum8(v))
            };
            let want_m = l.iter().fold(m0, |a, &x| a.max(x));
            assert_eq!(m, want_m, "{l:?} from {m0}");
            let want_s = reduce8(&l);
            assert!(
                s.to_bits() == want_s.to_bits()
                    || (s.is_nan() && want_s.is_nan()),
                "{l:?}"
            );
        }
    }

    /// One layer's cache of `n_kv` positions of two heads of width `d`,
    /// in each cache type (the int8 one quantized per 32 values).
    struct Caches {
        stride: usize,
        f: Vec<f32>,
        h: Vec<f16>,
        q: Vec<i8>,
        ds: Vec<f32>,
    }

    impl Caches {
        fn new(d: usize, n_kv: usize, seed: &mut u64) -> Self {
            let stride = 2 * d;
            let f: Vec<f32> =
                (0..n_kv * stride * 2).map(|_| rng(seed) * 3.0).collect();
            let h = f.iter().map(|&x| f16::from_f32(x)).collect();
            let nb = stride.div_ceil(Q8_BLOCK);
            let mut q = vec![0i8; f.len()];
            let mut ds = vec![0f32; 2 * n_kv * nb];
            for (p, row) in f.chunks(stride).enumerate() {
                for (b, blk) in row.chunks(Q8_BLOCK).enumerate() {
                    let amax = blk.iter().fold(0f32, |m, v| m.max(v.abs()));
                    let dd = amax / 127.0;
                    ds[p * nb + b] = dd;
                    for (i, v) in blk.iter().enumerate() {
                        q[p * stride + b * Q8_BLOCK + i] =
                            if dd > 0.0 { (v / dd).round() as i8 } else { 0 };
                    }
                }
            }
            Caches { stride, f, h, q, ds }
        }

        /// A job for head 1 (offset `d`) in each cache type and
        /// accumulator mode, context 0.
        fn jobs(&self, d: usize) -> Vec<HeadJob<'_>> {
            let half = self.f.len() / 2;
            let (kf, vf) = self.f.split_at(half);
            let (kh, vh) = self.h.split_at(half);
            let (kq, vq) = self.q.split_at(half);
            let (kd, vd) = self.ds.split_at(self.ds.len() / 2);
            let kv_dim = self.stride;
            [
                (KvRows::F16(kh), KvRows::F16(vh), true),
                (KvRows::F16(kh), KvRows::F16(vh), false),
                (KvRows::F32(kf), KvRows::F32(vf), false),
                (
                    KvRows::Q8 { q: kq, d: kd, kv_dim },
                    KvRows::Q8 { q: vq, d: vd, kv_dim },
                    false,
                ),
            ]
            .into_iter()
            .map(|(k, v, f16_acc)| HeadJob {
                k,
                v,
                stride: self.stride,
                off: d,
                ctx: 0,
                d,
                scale: 1.0 / (d as f32).sqrt(),
                f16_acc,
            })
            .collect()
        }
    }

    /// A group of queries at every level gives the bits of one scalar
    /// `attend` per query, for every cache type, narrow and wide heads, and
    /// contexts that share no, some or many full key blocks.
    #[test]
    fn group_equals_single_queries() {
        group_equals_single::<GROUP>();
        group_equals_single::<{ GROUP / 2 }>();
    }

    /// [`group_equals_single_queries`] for groups of `G`.
    fn group_equals_single<const G: usize>() {
        let mut seed = 11u64;
        for &d in &[8usize, 16, 13, 24, 32, 64, 128] {
            let caches = Caches::new(d, 48, &mut seed);
            let mut qs: Vec<f32> = (0..G * d).map(|_| rng(&mut seed)).collect();
            round_f16(&mut qs);
            let runs = |from: usize| -> [usize; G] {
                std::array::from_fn(|i| from + i)
            };
            let mixed: [usize; G] =
                std::array::from_fn(|i| [16, 8, 24, 17][i % 4] + i / 4);
            for ctxs in [runs(1), runs(9), runs(40), mixed, [48; G]] {
                for job in caches.jobs(d) {
                    for level in
                        [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512]
                    {
                        let ok = match level {
                            SimdLevel::Avx2 => avx2::is_available(),
                            SimdLevel::Avx512 => avx512::is_available(),
                            _ => true,
                        };
                        if !ok {
                            eprintln!("{level} not available: skipped");
                            continue;
                        }
                        let mut want = vec![0.0f32; G * d];
                        for (i, o) in want.chunks_exact_mut(d).enumerate() {
                            let one = HeadJob { ctx: ctxs[i], ..job };
                            let q = &qs[i * d..(i + 1) * d];
                            attend(SimdLevel::Scalar, &one, q, o);
                        }
                        let mut got = vec![f32::NAN; G * d];
                        let mut it = got.chunks_exact_mut(d);
                        let outs: [&mut [f32]; G] =
                            std::array::from_fn(|_| it.next().unwrap());
                        let q: [&[f32]; G] =
                            std::array::from_fn(|i| &qs[i * d..(i + 1) * d]);
                        attend_group(level, &job, ctxs, q, outs);
                        let bits = |v: &[f32]| {
                            v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
                        };
                        assert_eq!(
                            bits(&want),
                            bits(&got),
                            "{level} d {d} ctxs {ctxs:?} f16_acc {}",
                            job.f16_acc
                        );
                    }
                }
            }
        }
    }

    /// Scalar, AVX2 and AVX-512 (where available) agree bit for bit, for
    /// every cache type, head widths with and without a tail, and every
    /// context length.
    #[test]
    fn simd_equals_scalar() {
        if !avx2::is_available() {
            eprintln!("AVX2/FMA/F16C not available: skipped");
            return;
        }
        let mut seed = 7u64;
        for &d in &[8usize, 13, 16, 48, 64, 72, 128] {
            let caches = Caches::new(d, 40, &mut seed);
            let stride = caches.stride;
            let mut q: Vec<f32> = (0..d).map(|_| rng(&mut seed)).collect();
            round_f16(&mut q);
            for ctx in [1, 2, 7, 8, 9, 19, 40] {
                for job in caches.jobs(d) {
                    let (k, v, f16_acc) = (job.k, job.v, job.f16_acc);
                    let job = HeadJob { ctx, ..job };
                    let mut a = vec![0.0; d];
                    let mut b = vec![0.0; d];
                    attend(SimdLevel::Scalar, &job, &q, &mut a);
                    attend(SimdLevel::Avx2, &job, &q, &mut b);
                    let bits = |v: &[f32]| {
                        v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
                    };
                    assert_eq!(
                        bits(&a),
                        bits(&b),
                        "avx2 d {d} ctx {ctx} f16_acc {f16_acc}"
                    );
                    if avx512::is_available() {
                        let mut c = vec![0.0; d];
                        attend(SimdLevel::Avx512, &job, &q, &mut c);
                        assert_eq!(
                            bits(&a),
                            bits(&c),
                            "avx512 d {d} ctx {ctx} f16_acc {f16_acc}"
                        );
                    }
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
