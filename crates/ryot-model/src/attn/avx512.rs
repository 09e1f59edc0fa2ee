//! AVX-512 variant of [`super::attend_group`] (prefill) and, as a group
//! of one, of [`super::attend`] (decode), for heads whose width is a
//! multiple of 16; bit-identical to the scalar twin.
//!
//! The key blocks all queries of a group see in full run here; the rest
//! (at most two blocks per query) run through the AVX2 variant.
//!
//! - Scores: one 512-bit register holds the 8 lanes of two keys (`j` in
//!   the low half, `j + 4` in the high half), so 4 registers cover a
//!   block of [`KEYS`] keys and each key load is shared by [`QB`]
//!   queries. Every lane runs the scalar twin's fused multiply-add chain,
//!   and the reduction adds in exactly [`super::reduce8`]'s tree.
//! - Values: the accumulators of the group's queries are held 16 values
//!   per register, and each value row is loaded once per block for all
//!   of them; per element the operations (rescale, then one fused
//!   multiply-add per key, each rounded to f16 for an f16 cache) are the
//!   scalar twin's, in its order.

use std::arch::x86_64::*;

use super::KEYS;
use super::avx2::{self, Soft, finish_group, softmax_block, vec_ok};
use super::rows::{GroupRows, Job, Rows};

/// Whether this CPU runs this variant.
pub(super) fn is_available() -> bool {
    avx2::is_available()
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512dq")
}

/// Whether this variant takes heads of width `d`.
pub(super) fn takes(d: usize) -> bool {
    d > 0 && d.is_multiple_of(16)
}

/// Queries whose scores are computed together: 4 key pairs for each is
/// 16 accumulator registers.
const QB: usize = 4;

/// The AVX-512 group kernel ([`super::rows::attend_group`]): the key
/// blocks all queries share on AVX-512, the rest on AVX2. Needs
/// [`is_available`].
pub(super) struct Avx512;

impl GroupRows for Avx512 {
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

/// [`Avx512`]'s group kernel for one row type and accumulator mode.
///
/// # Safety
/// [`is_available`]; the rows hold every query's context.
#[target_feature(enable = "avx512f,avx512dq,avx2,fma,f16c")]
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
    // Full blocks every query sees (none unless whole vectors can be
    // loaded and the width suits this variant).
    let common =
        if vec_ok(job) && takes(job.d) { cmin / KEYS * KEYS } else { 0 };
    let mut s = [[0.0f32; KEYS]; G];
    let mut p = [[0.0f32; KEYS]; G];
    for j0 in (0..common).step_by(KEYS) {
        let mut g0 = 0;
        while g0 < G {
            if G - g0 >= QB {
                let q: [&[f32]; QB] = std::array::from_fn(|i| qs[g0 + i]);
                // SAFETY: keys j0..j0+KEYS < cmin <= every ctx (rows in
                // bounds, caller); d, off and stride are multiples of 8.
                let sc = unsafe { scores::<R, QB>(job, q, j0) };
                s[g0..g0 + QB].copy_from_slice(&sc);
                g0 += QB;
            } else {
                // SAFETY: as above.
                s[g0] = unsafe { scores::<R, 1>(job, [qs[g0]], j0) }[0];
                g0 += 1;
            }
        }
        let mut alpha = [None; G];
        for i in 0..G {
            alpha[i] = softmax_block(&mut st[i], &s[i], KEYS, &mut p[i]);
        }
        // SAFETY: as above; every out holds d values, d a multiple of 16.
        unsafe {
            if G <= QB && job.d.is_multiple_of(64) {
                update::<R, F16, G, 4>(job, j0, &alpha, &p, &mut outs);
            } else {
                update::<R, F16, G, 1>(job, j0, &alpha, &p, &mut outs);
            }
        }
    }
    // SAFETY: every query's keys are in bounds (caller); AVX2, FMA and
    // F16C come with this variant (`is_available`).
    unsafe { finish_group::<R, F16, G>(job, ctxs, qs, outs, st, common) }
}

/// The scaled scores of keys `j..j + KEYS` for `N` queries.
///
/// # Safety
/// Keys in bounds; AVX-512F, AVX2, FMA and F16C available; `d`, `off`
/// and `stride` multiples of 8; every query holds `d` values.
#[target_feature(enable = "avx512f,avx512dq,avx2,fma,f16c")]
#[inline]
unsafe fn scores<R: Rows, const N: usize>(
    job: &Job<R>,
    qs: [&[f32]; N],
    j: usize,
) -> [[f32; KEYS]; N] {
    // acc[q][pp]: lanes 0..8 key j + pp, lanes 8..16 key j + pp + 4.
    let mut acc = [[_mm512_setzero_ps(); 4]; N];
    let base = j * job.stride + job.off;
    let mut i = 0;
    while i < job.d {
        // SAFETY: `i + 8 <= d`; the rows are in bounds and every offset
        // is a multiple of 8.
        let kp: [__m512; 4] = std::array::from_fn(|pp| unsafe {
            job.k.load8x2(
                base + pp * job.stride + i,
                base + (pp + 4) * job.stride + i,
            )
        });
        for (a, q) in acc.iter_mut().zip(&qs) {
            debug_assert!(q.len() >= i + 8);
            // SAFETY: `i + 8 <= d <= q.len()`.
            let qv = _mm512_broadcast_f32x8(unsafe {
                _mm256_loadu_ps(q.as_ptr().add(i))
            });
            for (x, k) in a.iter_mut().zip(&kp) {
                *x = _mm512_fmadd_ps(qv, *k, *x);
            }
        }
        i += 8;
    }
    acc.map(|a| reduce_scores(&a, job.scale))
}

/// [`super::reduce8`] of each of the 8 keys held in `a` (as laid out by
/// [`scores`]), times `scale`: the same additions as the AVX2 twin.
#[target_feature(enable = "avx512f,avx512dq,avx2,fma,f16c")]
#[inline]
fn reduce_scores(a: &[__m512; 4], scale: f32) -> [f32; KEYS] {
    // Per 128-bit lane, r = [l0+l4, l1+l5, l2+l6, l3+l7] of one key:
    // s01 holds keys 0, 4, 1, 5 and s23 keys 2, 6, 3, 7.
    let half = |x: __m512, y: __m512| {
        _mm512_add_ps(
            _mm512_shuffle_f32x4::<0x88>(x, y),
            _mm512_shuffle_f32x4::<0xDD>(x, y),
        )
    };
    let (s01, s23) = (half(a[0], a[1]), half(a[2], a[3]));
    // [r0+r2 of x, of y, r1+r3 of x, of y] per lane (x from s01, y s23).
    let u = _mm512_add_ps(
        _mm512_unpacklo_ps(s01, s23),
        _mm512_unpackhi_ps(s01, s23),
    );
    // Elements 0, 1 of each lane: (r0+r2) + (r1+r3), keys 0/2, 4/6, 1/3,
    // 5/7.
    let t = _mm512_add_ps(u, _mm512_permute_ps::<0xEE>(u));
    let idx =
        _mm512_setr_epi32(0, 8, 1, 9, 4, 12, 5, 13, 0, 0, 0, 0, 0, 0, 0, 0);
    let t = _mm512_permutexvar_ps(idx, t);
    let t = _mm256_mul_ps(_mm512_castps512_ps256(t), _mm256_set1_ps(scale));
    let mut s = [0.0f32; KEYS];
    // SAFETY: `s` holds 8 f32.
    unsafe { _mm256_storeu_ps(s.as_mut_ptr(), t) };
    s
}

/// Rounds 16 lanes to f16 and back.
#[target_feature(enable = "avx512f,avx512dq,avx2,fma,f16c")]
#[inline]
fn round16(v: __m512) -> __m512 {
    _mm512_cvtph_ps(_mm512_cvtps_ph::<
        { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
    >(v))
}

/// Rescales each query's accumulator by its `alpha` (when given), then
/// adds the values of keys `j..j + KEYS` weighted by its `p`, `CH`
/// registers (16 values each) of every query at a time.
///
/// # Safety
/// Keys in bounds; AVX-512F, AVX2, FMA and F16C available; every out
/// holds `d` values; `d` a multiple of `16 * CH`, `off` and `stride` of 8.
#[target_feature(enable = "avx512f,avx512dq,avx2,fma,f16c")]
#[inline]
unsafe fn update<R: Rows, const F16: bool, const G: usize, const CH: usize>(
    job: &Job<R>,
    j: usize,
    alpha: &[Option<f32>; G],
    p: &[[f32; KEYS]; G],
    outs: &mut [&mut [f32]; G],
) {
    debug_assert!(job.d.is_multiple_of(16 * CH));
    for c0 in (0..job.d).step_by(16 * CH) {
        let mut a: [[__m512; CH]; G] = std::array::from_fn(|g| {
            // SAFETY: c0 + 16 * CH <= d = every out's length.
            std::array::from_fn(|c| unsafe {
                _mm512_loadu_ps(outs[g].as_ptr().add(c0 + 16 * c))
            })
        });
        for (x, al) in a.iter_mut().zip(alpha) {
            if let Some(al) = al {
                let av = _mm512_set1_ps(*al);
                for xc in x.iter_mut() {
                    *xc = _mm512_mul_ps(*xc, av);
                    if F16 {
                        *xc = round16(*xc);
                    }
                }
            }
        }
        for kk in 0..KEYS {
            let at = (j + kk) * job.stride + job.off + c0;
            // SAFETY: the row is in bounds (caller); `at` is a multiple
            // of 8 (d, off and stride are).
            let v: [__m512; CH] =
                std::array::from_fn(|c| unsafe { job.v.load16(at + 16 * c) });
            for (x, pq) in a.iter_mut().zip(p) {
                let pv = _mm512_set1_ps(pq[kk]);
                for (xc, vc) in x.iter_mut().zip(&v) {
                    *xc = _mm512_fmadd_ps(*vc, pv, *xc);
                    if F16 {
                        *xc = round16(*xc);
                    }
                }
            }
        }
        for (x, o) in a.iter().zip(outs.iter_mut()) {
            for (c, xc) in x.iter().enumerate() {
                // SAFETY: as above.
                unsafe {
                    _mm512_storeu_ps(o.as_mut_ptr().add(c0 + 16 * c), *xc)
                };
            }
        }
    }
}
