//! AVX2 + FMA + F16C variant of [`super::attend`], bit-identical to the
//! scalar one.
//!
//! Keys are taken [`KEYS`] at a time: their 8 dot products run as 8
//! independent fused multiply-add chains (each in the scalar twin's lane
//! order) and are reduced together by a transpose that adds in exactly
//! [`super::reduce8`]'s tree; their 8 exponentials are one [`exp8`]. The
//! value accumulator, held in registers 64 values at a time, takes the
//! block's updates in key order, so every accumulator element sees the
//! scalar twin's operations in the scalar twin's order.

use std::arch::x86_64::*;

use super::rows::{GroupRows, Job, Rows, RowsKernel, dispatch};
use super::{EXP_C, EXP_MIN, HeadJob, KEYS, exp_poly, reduce8};

/// Whether this CPU runs this variant.
pub(super) fn is_available() -> bool {
    is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
}

/// Rounds 8 lanes to f16 and back.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn round8(v: __m256) -> __m256 {
    _mm256_cvtph_ps(_mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v))
}

/// [`super::exp_poly`] on 8 lanes, with the same operations.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(super) fn exp8(x: __m256) -> __m256 {
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm256_mul_ps(x, _mm256_set1_ps(EXP_C.log2e)),
    );
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(EXP_C.ln2_hi), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(EXP_C.ln2_lo), r);
    let z = _mm256_mul_ps(r, r);
    let mut p = _mm256_set1_ps(EXP_C.p[0]);
    for &c in &EXP_C.p[1..] {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
    }
    let y = _mm256_add_ps(_mm256_fmadd_ps(p, z, r), _mm256_set1_ps(1.0));
    let e = _mm256_slli_epi32::<23>(_mm256_add_epi32(
        _mm256_cvtps_epi32(n),
        _mm256_set1_epi32(127),
    ));
    let v = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
    // Lanes below EXP_MIN are +0, as in the scalar function.
    let keep = _mm256_cmp_ps::<_CMP_NLT_UQ>(x, _mm256_set1_ps(EXP_MIN));
    _mm256_and_ps(v, keep)
}

/// # Safety
/// AVX2, FMA and F16C must be available.
pub(super) unsafe fn attend(
    job: &HeadJob<'_>,
    q: &[f32],
    out: &mut [f32],
) -> f32 {
    struct One<'a> {
        q: &'a [f32],
        out: &'a mut [f32],
    }
    impl RowsKernel for One<'_> {
        type Out = f32;
        unsafe fn run<R: Rows, const F16: bool>(self, job: &Job<R>) -> f32 {
            self.out.fill(0.0);
            // SAFETY: forwarded.
            unsafe { attend_rows::<R, F16>(job, self.q, self.out) }
        }
    }
    assert!(q.len() == job.d && out.len() == job.d, "attend: lengths");
    // SAFETY: features by the caller; `dispatch` checks the rows.
    unsafe { dispatch(job, job.ctx, One { q, out }) }
}

/// The running softmax state of one query: the largest score so far and
/// the sum of `exp(score - max)`.
#[derive(Clone, Copy)]
pub(super) struct Soft {
    pub max: f32,
    pub sum: f32,
}

impl Soft {
    pub const START: Soft = Soft { max: f32::NEG_INFINITY, sum: 0.0 };
}

/// The kernel for one row type and accumulator mode (`F16`: round the
/// accumulator to f16 after every step).
///
/// # Safety
/// As [`attend`]; `out` is zeroed.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn attend_rows<R: Rows, const F16: bool>(
    job: &Job<R>,
    q: &[f32],
    out: &mut [f32],
) -> f32 {
    let mut st = Soft::START;
    // SAFETY: forwarded.
    unsafe { run_blocks::<R, F16>(job, q, out, &mut st, 0) };
    st.sum
}

/// Whether whole vectors never straddle an int8 scale block (and `d` is
/// a multiple of 8).
pub(super) fn vec_ok<R>(job: &Job<R>) -> bool {
    job.d.is_multiple_of(8)
        && job.off.is_multiple_of(8)
        && job.stride.is_multiple_of(8)
}

/// Runs the key blocks from `start` (a multiple of [`KEYS`]) to `job.ctx`
/// for one query, continuing from `st` and the accumulator in `out`.
///
/// # Safety
/// As [`attend`].
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn run_blocks<R: Rows, const F16: bool>(
    job: &Job<R>,
    q: &[f32],
    out: &mut [f32],
    st: &mut Soft,
    start: usize,
) {
    let vec_ok = vec_ok(job);
    let mut s = [0.0f32; KEYS];
    let mut p = [0.0f32; KEYS];
    for j0 in (start..job.ctx).step_by(KEYS) {
        let nk = KEYS.min(job.ctx - j0);
        if vec_ok && nk == KEYS {
            // SAFETY: keys j0..j0+KEYS are < ctx, bounds checked by the
            // caller; d, off and stride are multiples of 8.
            unsafe { dots(job, q, j0, &mut s) };
        } else {
            for (jj, sj) in s.iter_mut().enumerate().take(nk) {
                // SAFETY: key j0 + jj < ctx, bounds checked by the caller.
                *sj = unsafe { dot1(job, q, j0 + jj) };
            }
        }
        let alpha = softmax_block(st, &s, nk, &mut p);
        // SAFETY: keys in bounds (caller); `out` holds `d` values.
        unsafe {
            update_block::<R, F16>(job, j0, alpha, &p[..nk], out, vec_ok)
        };
    }
}

/// Folds the scores `s[..nk]` of one block into `st`: returns the factor
/// the accumulator must be rescaled by (when the maximum grew) and writes
/// the block's weights `exp(s - max)` to `p` (zero past `nk`).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(super) fn softmax_block(
    st: &mut Soft,
    s: &[f32; KEYS],
    nk: usize,
    p: &mut [f32; KEYS],
) -> Option<f32> {
    let m = if nk == KEYS {
        // SAFETY: `s` holds 8 f32.
        hmax8(unsafe { _mm256_loadu_ps(s.as_ptr()) }, st.max)
    } else {
        s[..nk].iter().fold(st.max, |m, &x| m.max(x))
    };
    let alpha = if m > st.max {
        let a = exp_poly(st.max - m);
        st.sum *= a;
        st.max = m;
        Some(a)
    } else {
        None
    };
    if nk == KEYS {
        // SAFETY: `s` and `p` hold 8 f32.
        unsafe {
            let x = _mm256_sub_ps(
                _mm256_loadu_ps(s.as_ptr()),
                _mm256_set1_ps(st.max),
            );
            _mm256_storeu_ps(p.as_mut_ptr(), exp8(x));
        }
    } else {
        for (pj, &sj) in p.iter_mut().zip(s).take(nk) {
            *pj = exp_poly(sj - st.max);
        }
    }
    p[nk..].fill(0.0);
    // SAFETY: `p` holds 8 f32.
    st.sum += sum8(unsafe { _mm256_loadu_ps(p.as_ptr()) });
    alpha
}

/// The largest of `m` and the lanes of `v`, ignoring NaN lanes, as the
/// scalar `fold(m, f32::max)` (a maximum is exact, so the order does not
/// matter; `m` is never NaN).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(super) fn hmax8(v: __m256, m: f32) -> f32 {
    // `max_ps(a, b)` returns `b` when `a` is NaN.
    let x = _mm256_max_ps(v, _mm256_set1_ps(m));
    let x =
        _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps::<1>(x));
    let x = _mm_max_ps(x, _mm_movehl_ps(x, x));
    let x = _mm_max_ss(x, _mm_shuffle_ps::<1>(x, x));
    _mm_cvtss_f32(x)
}

/// [`reduce8`] of the lanes of `v`: the same additions in the same tree.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(super) fn sum8(v: __m256) -> f32 {
    // [l0+l4, l1+l5, l2+l6, l3+l7]
    let r =
        _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    // [r0+r2, r1+r3, ..]
    let t = _mm_add_ps(r, _mm_movehl_ps(r, r));
    _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps::<1>(t, t)))
}

/// The AVX2 group kernel ([`super::rows::attend_group`]): for `G`
/// queries of one head that share the job's cache rows and differ only in
/// their context lengths, the key blocks all of them see in full run for
/// the group together (so the latency chains of narrow heads overlap and
/// each value row is loaded once), the rest query by query. Every query
/// sees exactly the operations of [`attend`], so the results are the same
/// bits. Needs AVX2, FMA and F16C.
pub(super) struct Avx2;

impl GroupRows for Avx2 {
    unsafe fn group_rows<R: Rows, const F16: bool, const G: usize>(
        job: &Job<R>,
        ctxs: [usize; G],
        qs: [&[f32]; G],
        outs: [&mut [f32]; G],
    ) -> [f32; G] {
        // SAFETY: forwarded.
        unsafe { group_rows::<R, F16, G>(job, ctxs, qs, outs) }
    }
}

/// The most queries attended together by a group kernel (the size of
/// a prefill unit; see `kv::attention`).
pub(crate) const GROUP: usize = 8;

/// [`Avx2`]'s group kernel for one row type and accumulator mode.
///
/// # Safety
/// AVX2, FMA and F16C available; the rows hold every query's context.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn group_rows<R: Rows, const F16: bool, const G: usize>(
    job: &Job<R>,
    ctxs: [usize; G],
    qs: [&[f32]; G],
    mut outs: [&mut [f32]; G],
) -> [f32; G] {
    let mut st = [Soft::START; G];
    for o in outs.iter_mut() {
        o.fill(0.0);
    }
    let cmin = ctxs.iter().copied().min().unwrap_or(0);
    // Full blocks every query sees (none when the rows need the
    // element-wise path).
    let common = if vec_ok(job) { cmin / KEYS * KEYS } else { 0 };
    let mut s = [[0.0f32; KEYS]; G];
    let mut p = [[0.0f32; KEYS]; G];
    for j0 in (0..common).step_by(KEYS) {
        for (sq, q) in s.iter_mut().zip(&qs) {
            // SAFETY: keys j0..j0+KEYS < cmin <= every ctx; d, off and
            // stride are multiples of 8.
            unsafe { dots(job, q, j0, sq) };
        }
        let mut alpha = [None; G];
        for i in 0..G {
            alpha[i] = softmax_block(&mut st[i], &s[i], KEYS, &mut p[i]);
        }
        if job.d <= 16 {
            // SAFETY: as above; every out holds d values.
            unsafe {
                update_group::<R, F16, G>(job, j0, &alpha, &p, &mut outs)
            };
        } else {
            for ((a, pq), o) in alpha.iter().zip(&p).zip(outs.iter_mut()) {
                // SAFETY: as above.
                unsafe { update_block::<R, F16>(job, j0, *a, pq, o, true) };
            }
        }
    }
    // SAFETY: forwarded.
    unsafe { finish_group::<R, F16, G>(job, ctxs, qs, outs, st, common) }
}

/// Runs each query's key blocks from `common` (where the blocks the group
/// shared end) to its own context, continuing from its state `st` and
/// accumulator; returns the softmax denominators.
///
/// # Safety
/// AVX2, FMA and F16C available; every query's keys in bounds.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn finish_group<R: Rows, const F16: bool, const G: usize>(
    job: &Job<R>,
    ctxs: [usize; G],
    qs: [&[f32]; G],
    mut outs: [&mut [f32]; G],
    mut st: [Soft; G],
    common: usize,
) -> [f32; G] {
    for (i, o) in outs.iter_mut().enumerate() {
        let one = Job { ctx: ctxs[i], ..*job };
        // SAFETY: query i's keys are in bounds (caller).
        unsafe { run_blocks::<R, F16>(&one, qs[i], o, &mut st[i], common) };
    }
    st.map(|s| s.sum)
}

/// [`update_block`] for a whole block of every query of a group at once
/// (narrow heads: `d` a multiple of 8, at most 16): per element, each
/// query's accumulator takes the same operations in the same order as in
/// [`update_chunk`], with the queries' chains interleaved.
///
/// # Safety
/// As [`update_block`] for each query; keys `j..j + KEYS` in bounds.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn update_group<R: Rows, const F16: bool, const G: usize>(
    job: &Job<R>,
    j: usize,
    alpha: &[Option<f32>; G],
    p: &[[f32; KEYS]; G],
    outs: &mut [&mut [f32]; G],
) {
    for i0 in (0..job.d).step_by(8) {
        // SAFETY: i0 + 8 <= d = every out's length.
        let mut a: [__m256; G] = ryot_kernels::arr::build(|g| unsafe {
            _mm256_loadu_ps(outs[g].as_ptr().add(i0))
        });
        for (x, al) in a.iter_mut().zip(alpha) {
            if let Some(al) = al {
                *x = _mm256_mul_ps(*x, _mm256_set1_ps(*al));
                if F16 {
                    *x = round8(*x);
                }
            }
        }
        for kk in 0..KEYS {
            let at = (j + kk) * job.stride + job.off + i0;
            // SAFETY: the row is in bounds (caller); `at` is a multiple of
            // 8 (d, off and stride are).
            let val = unsafe { job.v.load8(at) };
            for (x, pq) in a.iter_mut().zip(p) {
                *x = _mm256_fmadd_ps(val, _mm256_set1_ps(pq[kk]), *x);
                if F16 {
                    *x = round8(*x);
                }
            }
        }
        for (x, o) in a.iter().zip(outs.iter_mut()) {
            // SAFETY: as above.
            unsafe { _mm256_storeu_ps(o.as_mut_ptr().add(i0), *x) };
        }
    }
}

/// The scaled score of key `j`.
///
/// # Safety
/// Key `j` in bounds; AVX2, FMA and F16C available.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn dot1<R: Rows>(job: &Job<R>, q: &[f32], j: usize) -> f32 {
    let d = job.d;
    let full = d / 8 * 8;
    let at = j * job.stride + job.off;
    let mut acc = _mm256_setzero_ps();
    let mut i = 0;
    while i < full {
        // SAFETY: `i + 8 <= d`, the row is in bounds.
        let (qv, kv) = unsafe {
            (_mm256_loadu_ps(q.as_ptr().add(i)), load8_any(job.k, at + i))
        };
        acc = _mm256_fmadd_ps(qv, kv, acc);
        i += 8;
    }
    let mut lanes = [0.0f32; 8];
    // SAFETY: `lanes` holds 8 f32.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc) };
    for i in full..d {
        lanes[i % 8] = q[i].mul_add(job.k.get(at + i), lanes[i % 8]);
    }
    reduce8(&lanes) * job.scale
}

/// [`Rows::load8`] for any `at` (an int8 cache element by element).
///
/// # Safety
/// As [`Rows::load8`], without the alignment condition.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn load8_any<R: Rows>(rows: R, at: usize) -> __m256 {
    if R::ALIGNED && !at.is_multiple_of(8) {
        let v: [f32; 8] = std::array::from_fn(|i| rows.get(at + i));
        // SAFETY: `v` holds 8 f32.
        unsafe { _mm256_loadu_ps(v.as_ptr()) }
    } else {
        // SAFETY: forwarded from the caller.
        unsafe { rows.load8(at) }
    }
}

/// The scaled scores of keys `j..j + KEYS`.
///
/// # Safety
/// Keys in bounds; AVX2, FMA and F16C available; `d`, `off` and `stride`
/// multiples of 8.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn dots<R: Rows>(
    job: &Job<R>,
    q: &[f32],
    j: usize,
    s: &mut [f32; KEYS],
) {
    let mut acc = [_mm256_setzero_ps(); KEYS];
    let base = j * job.stride + job.off;
    let mut i = 0;
    while i < job.d {
        // SAFETY: `i + 8 <= d`; the rows are in bounds.
        let qv = unsafe { _mm256_loadu_ps(q.as_ptr().add(i)) };
        for (kk, a) in acc.iter_mut().enumerate() {
            // SAFETY: as above; aligned to 8 (multiples of 8 throughout).
            let kv = unsafe { job.k.load8(base + kk * job.stride + i) };
            *a = _mm256_fmadd_ps(qv, kv, *a);
        }
        i += 8;
    }
    // reduce8 for all 8 keys: lanes i and i+4 first (128-bit halves),
    // then (r0 + r2) and (r1 + r3), then their sum.
    let r: [__m256; 4] = ryot_kernels::arr::build(|i| {
        let lo = _mm256_permute2f128_ps::<0x20>(acc[i], acc[i + 4]);
        let hi = _mm256_permute2f128_ps::<0x31>(acc[i], acc[i + 4]);
        _mm256_add_ps(lo, hi)
    });
    let pair = |a: __m256, b: __m256| {
        _mm256_add_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b))
    };
    let (s01, s23) = (pair(r[0], r[1]), pair(r[2], r[3]));
    let t = _mm256_add_ps(
        _mm256_shuffle_ps::<0x44>(s01, s23),
        _mm256_shuffle_ps::<0xee>(s01, s23),
    );
    let t = _mm256_mul_ps(t, _mm256_set1_ps(job.scale));
    // SAFETY: `s` holds 8 f32.
    unsafe { _mm256_storeu_ps(s.as_mut_ptr(), t) };
}

/// Rescales the accumulator `out` by `alpha` (when given), then adds the
/// values of keys `j..j + p.len()` weighted by `p` (whole vectors only
/// when `vec_ok`).
///
/// # Safety
/// Keys in bounds; AVX2, FMA and F16C available; `out.len() == d`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn update_block<R: Rows, const F16: bool>(
    job: &Job<R>,
    j: usize,
    alpha: Option<f32>,
    p: &[f32],
    out: &mut [f32],
    vec_ok: bool,
) {
    let d = job.d;
    let full = if vec_ok || !R::ALIGNED { d / 8 * 8 } else { 0 };
    let mut i = 0;
    while i + 64 <= full {
        // SAFETY: forwarded from the caller; i + 64 <= full <= d.
        unsafe { update_chunk::<R, F16, 8>(job, j, alpha, p, out, i) };
        i += 64;
    }
    while i < full {
        // SAFETY: as above; i + 8 <= full.
        unsafe { update_chunk::<R, F16, 1>(job, j, alpha, p, out, i) };
        i += 8;
    }
    let round = |a: f32| half::f16::from_f32(a).to_f32();
    for (i, o) in out.iter_mut().enumerate().skip(full) {
        let mut a = *o;
        if let Some(alpha) = alpha {
            a *= alpha;
            if F16 {
                a = round(a);
            }
        }
        for (kk, &pk) in p.iter().enumerate() {
            let at = (j + kk) * job.stride + job.off;
            a = job.v.get(at + i).mul_add(pk, a);
            if F16 {
                a = round(a);
            }
        }
        *o = a;
    }
}

/// `N` vectors of the accumulator from element `i0`, through every key of
/// the block, kept in registers.
///
/// # Safety
/// As [`update_block`]; `i0 + 8 * N <= d`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn update_chunk<R: Rows, const F16: bool, const N: usize>(
    job: &Job<R>,
    j: usize,
    alpha: Option<f32>,
    p: &[f32],
    out: &mut [f32],
    i0: usize,
) {
    let ptr = out[i0..i0 + 8 * N].as_mut_ptr();
    // SAFETY: `ptr` points to 8N values of `out`.
    let mut a: [__m256; N] = ryot_kernels::arr::build(|v| unsafe {
        _mm256_loadu_ps(ptr.add(8 * v))
    });
    if let Some(alpha) = alpha {
        let av = _mm256_set1_ps(alpha);
        for x in a.iter_mut() {
            *x = _mm256_mul_ps(*x, av);
            if F16 {
                *x = round8(*x);
            }
        }
    }
    for (kk, &pk) in p.iter().enumerate() {
        let at = (j + kk) * job.stride + job.off + i0;
        let pv = _mm256_set1_ps(pk);
        for (v, x) in a.iter_mut().enumerate() {
            // SAFETY: the row is in bounds (caller); `at` is a multiple
            // of 8 whenever the rows need it (`vec_ok`).
            let val = unsafe { job.v.load8(at + 8 * v) };
            *x = _mm256_fmadd_ps(val, pv, *x);
            if F16 {
                *x = round8(*x);
            }
        }
    }
    for (v, x) in a.iter().enumerate() {
        // SAFETY: as above.
        unsafe { _mm256_storeu_ps(ptr.add(8 * v), *x) };
    }
}
