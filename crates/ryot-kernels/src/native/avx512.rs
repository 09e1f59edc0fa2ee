//! AVX-512 VNNI native kernels: `vpdpbusd` multiplies decoded codes (u8)
//! with rearranged activations (i8) straight into i32 lanes; one reduction
//! per block turns 16 accumulators into one vector of 16 (row, token)
//! sums. The structure is the AVX2 kernels' with 64-byte vectors.
//!
//! ```text
//! TQ2_0 block: x = qs[0..64] (one whole block)
//!     for l in 0..4: codes = (x >> 2l) & 3
//!     (low 32 bytes: elements 32l.., high 32: 128+32l..; the activations
//!     are rearranged to match, see `NativeActs`)
//! TQ1_0 block: q_0 = bytes 0..64 (10 bytes past the block, matched with
//!     zero activations); q_(n+1) = 3 q_n (mod 256, per byte)
//!     for n in 0..5: a3 += q_n . acts_n; a1 += q_(n+1) . acts_n
//!     block sum = (3 a3 - a1) >> 8
//!     (digit n of byte b is floor(3 q_n / 256) = (3 q_n - q_(n+1)) / 256
//!     exactly, so no digit is ever extracted; `vpdpbusd` does not
//!     saturate, unlike AVX2's `vpmaddubsw`, which is why AVX2 extracts)
//! I2_S chunk:  x = 64 code bytes (two groups; an odd last group reads 32
//!     bytes past the row, matched with zero activations)
//!     for s in 0..4: codes = (x >> 6-2s) & 3; one reduction per row
//! ```
//!
//! Bounds: a TQ2_0 lane adds 16 products of <= 3 * 128: 6144; a TQ1_0
//! lane of `3 a3 - a1` is 256 times 20 digit products (<= 2 * 128): 1.3M,
//! 16 lanes 21M; an I2_S row is at most `k * 2 * 128` (k <= 2^22).
//!
//! This machine class was not available when these kernels were written;
//! they are tested only where AVX-512 VNNI is present.

use std::arch::x86_64::*;
use std::ops::Range;

use super::{Format, Job, Prefetch, TOKEN_GROUP, TQ1_ACT};
use crate::ternary::TQ_BLOCK;

/// Computes rows `rows` for every token of `job`.
pub(crate) fn gemm(job: &Job<'_>, rows: Range<usize>) {
    assert!(crate::isa::SimdLevel::Avx512.is_available());
    // SAFETY: the CPU supports AVX-512 F/BW/VL/DQ + VNNI and AVX2, FMA,
    // F16C (asserted above).
    unsafe { gemm_impl(job, rows) }
}

#[target_feature(
    enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c"
)]
fn gemm_impl(job: &Job<'_>, rows: Range<usize>) {
    match job.w.fmt {
        Format::Tq2_0 => tiles::<Tq2>(job, rows),
        Format::Tq1_0 => tiles::<Tq1>(job, rows),
        Format::I2s => tiles::<I2s>(job, rows),
    }
}

/// Tiles of a unit range, 16 rows at a time: 2 rows x 8 tokens while 8
/// tokens remain (a token tile must lie inside one group of
/// [`TOKEN_GROUP`] rearranged tokens), then 4 x 4, 8 x 2 and 16 x 1 (the
/// GEMV tile) for the remainder. TQ1_0 keeps two temporary accumulators
/// per token and row, so its widest tile is 4 x 4 (the 32 zmm registers).
#[target_feature(
    enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c"
)]
fn tiles<F: Dot>(job: &Job<'_>, rows: Range<usize>) {
    const { assert!(TOKEN_GROUP == 8) };
    let n = job.n();
    let mut r = rows.start;
    while r < rows.end {
        let sub = |step: usize| (r..(r + 16).min(rows.end)).step_by(step);
        let mut t = 0;
        while F::MAX_T >= 8 && n - t >= 8 {
            sub(2).for_each(|rr| tile::<F, 2, 8>(job, rr, rows.end, t));
            t += 8;
        }
        while n - t >= 4 {
            sub(4).for_each(|rr| tile::<F, 4, 4>(job, rr, rows.end, t));
            t += 4;
        }
        if n - t >= 2 {
            sub(8).for_each(|rr| tile::<F, 8, 2>(job, rr, rows.end, t));
            t += 2;
        }
        if n > t {
            tile::<F, 16, 1>(job, r, rows.end, t);
        }
        r += 16;
    }
}

/// One native format: how to multiply a step of a row (a TQ block, two
/// I2_S groups) with the rearranged activations of `T` tokens.
trait Dot {
    /// Weight bytes per step.
    const BYTES: usize;
    /// Rearranged activation bytes per step and token.
    const ACT: usize;
    /// Whether each step has its own scale (TQ) or the row has one (I2_S).
    const PER_STEP: bool;
    /// The widest token tile worth using.
    const MAX_T: usize = 8;
    /// Adds `codes . acts[t]` of the step at `w` to `acc[t]` (i32 lanes).
    ///
    /// # Safety
    ///
    /// AVX-512 F/BW + VNNI are available; `w` points to 64 readable bytes
    /// and each `acts[t]` to `ACT` readable bytes.
    unsafe fn dot<const T: usize>(
        w: *const u8,
        acts: &[*const i8; T],
        acc: &mut [__m512i; T],
    );
    /// Turns the reduced lane sums into `sum(code * q)`.
    ///
    /// # Safety
    ///
    /// AVX-512 F is available.
    unsafe fn finish(v: __m512i) -> __m512i {
        v
    }
}

/// TQ2_0: a step is one 66-byte block.
struct Tq2;

impl Dot for Tq2 {
    const BYTES: usize = 66;
    const ACT: usize = TQ_BLOCK;
    const PER_STEP: bool = true;

    #[inline(always)]
    unsafe fn dot<const T: usize>(
        w: *const u8,
        acts: &[*const i8; T],
        acc: &mut [__m512i; T],
    ) {
        // SAFETY: the caller guarantees the features and the readable
        // ranges; activation offsets stay under 256.
        unsafe {
            let mask = _mm512_set1_epi8(3);
            let x = _mm512_loadu_si512(w.cast());
            for l in 0..4 {
                let c = _mm512_and_si512(shr2(x, l), mask);
                for (a, p) in acc.iter_mut().zip(acts) {
                    let q = _mm512_loadu_si512(p.add(64 * l).cast());
                    *a = _mm512_dpbusd_epi32(*a, c, q);
                }
            }
        }
    }
}

/// TQ1_0: a step is one 54-byte block.
struct Tq1;

impl Dot for Tq1 {
    const BYTES: usize = 54;
    const ACT: usize = TQ1_ACT;
    const PER_STEP: bool = true;
    const MAX_T: usize = 4;

    #[inline(always)]
    unsafe fn dot<const T: usize>(
        w: *const u8,
        acts: &[*const i8; T],
        acc: &mut [__m512i; T],
    ) {
        // SAFETY: the caller guarantees the features and the readable
        // ranges; activation offsets stay under 320.
        unsafe {
            let zero = _mm512_setzero_si512();
            let mut q = _mm512_loadu_si512(w.cast());
            let mut a3 = [zero; T];
            let mut a1 = [zero; T];
            for n in 0..5 {
                // q * 3 as two adds; `opaque` keeps LLVM from folding
                // the chain into byte multiplies by 9, 27 and 81, which
                // it emulates with 16-bit ones.
                let q3 = opaque(_mm512_add_epi8(q, _mm512_add_epi8(q, q)));
                for t in 0..T {
                    let a = _mm512_loadu_si512(acts[t].add(64 * n).cast());
                    a3[t] = _mm512_dpbusd_epi32(a3[t], q, a);
                    a1[t] = _mm512_dpbusd_epi32(a1[t], q3, a);
                }
                q = q3;
            }
            for t in 0..T {
                let x3 =
                    _mm512_add_epi32(a3[t], _mm512_add_epi32(a3[t], a3[t]));
                acc[t] = _mm512_add_epi32(acc[t], _mm512_sub_epi32(x3, a1[t]));
            }
        }
    }

    #[inline(always)]
    unsafe fn finish(v: __m512i) -> __m512i {
        // Every lane is 256 times an integer: the shift is exact.
        // SAFETY: the caller guarantees AVX-512 F.
        unsafe { _mm512_srai_epi32::<8>(v) }
    }
}

/// I2_S: a step is two 32-byte groups (64 code bytes).
struct I2s;

impl Dot for I2s {
    const BYTES: usize = 64;
    const ACT: usize = TQ_BLOCK;
    const PER_STEP: bool = false;

    #[inline(always)]
    unsafe fn dot<const T: usize>(
        w: *const u8,
        acts: &[*const i8; T],
        acc: &mut [__m512i; T],
    ) {
        // SAFETY: the caller guarantees the features and the readable
        // ranges; activation offsets stay under 256.
        unsafe {
            let mask = _mm512_set1_epi8(3);
            let x = _mm512_loadu_si512(w.cast());
            for s in 0..4 {
                let c = _mm512_and_si512(shr2(x, 3 - s), mask);
                for (a, p) in acc.iter_mut().zip(acts) {
                    let q = _mm512_loadu_si512(p.add(64 * s).cast());
                    *a = _mm512_dpbusd_epi32(*a, c, q);
                }
            }
        }
    }
}

/// `R` rows from `r0` (rows at or past `rend` repeat `rend - 1` and are
/// not stored) x tokens `t0..t0 + T` (all of them exist).
#[target_feature(
    enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c"
)]
#[inline]
fn tile<F: Dot, const R: usize, const T: usize>(
    job: &Job<'_>,
    r0: usize,
    rend: usize,
    t0: usize,
) {
    const { assert!(R * T == 16) };
    assert!(t0 + T <= job.n() && F::ACT == job.acts.slot());
    let w = job.w;
    let nr = (rend - r0).min(R);
    let data = w.padded();
    let rb = w.row_bytes();
    let rowp: [*const u8; R] =
        crate::arr::build(|i| data[(r0 + i.min(nr - 1)) * rb..].as_ptr());
    let act = by_token_ps::<T>(&job.acts.a.scales()[t0..t0 + T]);
    // TQ: one step per block. I2_S: one step per two groups.
    let steps = if F::PER_STEP { w.blocks() } else { w.blocks().div_ceil(2) };
    let mut f = _mm512_setzero_ps();
    let mut acc = [[_mm512_setzero_si512(); T]; R];
    let pf = Prefetch::new(rowp[0], R * rb, steps);
    for b in 0..steps {
        pf.step(b);
        // The tokens' slots of step b are `ACT` bytes apart.
        let a0 = job.acts.perm(b, t0, T).as_ptr();
        let ap: [*const i8; T] =
            crate::arr::build(|i| a0.wrapping_add(i * F::ACT));
        for (p, a) in rowp.iter().zip(acc.iter_mut()) {
            // SAFETY: the features are enabled here; `p + b * BYTES` is
            // step b of a row < m, with 64 readable bytes from it (the
            // tensor is followed by 64 padding bytes); `ap[t]` is token
            // t's `ACT`-byte slot of step b.
            unsafe { F::dot::<T>(p.add(b * F::BYTES), &ap, a) };
        }
        if F::PER_STEP {
            let flat = crate::arr::build(|j| acc[j / T][j % T]);
            // SAFETY: AVX-512 F is enabled here.
            let isum = unsafe { F::finish(reduce16(flat)) };
            let gs = by_token::<T>(job.acts.gsums(b, t0, T));
            let o = b * F::BYTES + F::BYTES - 2;
            // SAFETY: the last two bytes of block b of a row < m.
            let dr: [u16; R] = crate::arr::build(|r| unsafe {
                rowp[r].add(o).cast::<u16>().read_unaligned()
            });
            let dh: [u16; 16] = crate::arr::build(|j| dr[j / T]);
            // SAFETY: `dh` holds 16 u16s.
            let d = unsafe {
                _mm512_cvtph_ps(_mm256_loadu_si256(dh.as_ptr().cast()))
            };
            let v = _mm512_cvtepi32_ps(_mm512_sub_epi32(isum, gs));
            f = _mm512_add_ps(f, _mm512_mul_ps(_mm512_div_ps(v, act), d));
            acc = [[_mm512_setzero_si512(); T]; R];
        }
    }
    if !F::PER_STEP {
        let flat = crate::arr::build(|j| acc[j / T][j % T]);
        // SAFETY: AVX-512 F is enabled here.
        let isum = unsafe { F::finish(reduce16(flat)) };
        let gs = by_token::<T>(job.acts.gsums(0, t0, T));
        let d = _mm512_set1_ps(w.i2s_scale());
        let v = _mm512_cvtepi32_ps(_mm512_sub_epi32(isum, gs));
        f = _mm512_add_ps(f, _mm512_mul_ps(_mm512_div_ps(v, act), d));
    }
    let mut lanes = [0f32; 16];
    // SAFETY: `lanes` holds 16 f32s.
    unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), f) };
    for t in 0..T {
        let col: [f32; R] = crate::arr::build(|r| lanes[r * T + t]);
        job.out.write_rows(t0 + t, r0, &col[..nr]);
    }
}

/// Lane `j` = `v[j % T]` (`v.len() == T`, a power of two up to 16): a
/// per-token value in the lane order of a tile.
#[target_feature(enable = "avx512f")]
#[inline]
fn by_token<const T: usize>(v: &[i32]) -> __m512i {
    assert_eq!(v.len(), T);
    let lanes: [i32; 16] = crate::arr::build(|j| v[j % T]);
    // SAFETY: `lanes` holds 16 i32s.
    unsafe { _mm512_loadu_si512(lanes.as_ptr().cast()) }
}

/// [`by_token`] for f32 values.
#[target_feature(enable = "avx512f")]
#[inline]
fn by_token_ps<const T: usize>(v: &[f32]) -> __m512 {
    let bits: [i32; T] = crate::arr::build(|t| v[t].to_bits() as i32);
    _mm512_castsi512_ps(by_token::<T>(&bits))
}

/// `x`, through an empty `asm!` block that the optimizer cannot see into.
#[target_feature(enable = "avx512f")]
#[inline]
fn opaque(mut x: __m512i) -> __m512i {
    // SAFETY: the template is empty: no instruction runs, no register
    // but `x` is named, no memory or flags are touched.
    unsafe {
        std::arch::asm!(
            "/* {0} */",
            inout(zmm_reg) x,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    x
}

/// `x >> 2j` in 16-bit lanes (callers mask each byte with 3).
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn shr2(x: __m512i, j: usize) -> __m512i {
    match j {
        0 => x,
        1 => _mm512_srli_epi16::<2>(x),
        2 => _mm512_srli_epi16::<4>(x),
        _ => _mm512_srli_epi16::<6>(x),
    }
}

/// Lane `j` = the sum of the 16 i32 lanes of `v[j]`.
///
/// Four halving steps; each adds two rearrangements of a pair of vectors
/// (`shuffle_i64x2` picks 128-bit blocks: the low two from the first
/// operand, the high two from the second).
#[target_feature(enable = "avx512f")]
#[inline]
fn reduce16(v: [__m512i; 16]) -> __m512i {
    // A: w = [fold(v_a) (8 lanes), fold(v_b)], fold(x)_i = x_i + x_(i+8),
    // for (a, b) = (j, j+4) and (j+8, j+12), j < 4.
    let fold = |a: __m512i, b: __m512i| {
        _mm512_add_epi32(
            _mm512_shuffle_i64x2::<0x44>(a, b), // a.b0 a.b1 b.b0 b.b1
            _mm512_shuffle_i64x2::<0xEE>(a, b), // a.b2 a.b3 b.b2 b.b3
        )
    };
    let w: [__m512i; 8] = crate::arr::build(|i| {
        let a = if i < 4 { i } else { i + 4 };
        fold(v[a], v[a + 4])
    });
    // B: z_j = [v_j, v_(j+4), v_(j+8), v_(j+12)] as 4-lane partial sums.
    let z: [__m512i; 4] = crate::arr::build(|j| {
        let (a, b) = (w[j], w[j + 4]);
        _mm512_add_epi32(
            _mm512_shuffle_i64x2::<0x88>(a, b), // a.b0 a.b2 b.b0 b.b2
            _mm512_shuffle_i64x2::<0xDD>(a, b), // a.b1 a.b3 b.b1 b.b3
        )
    });
    // C: per 128-bit block k, u0 = [2 partials of v_(4k), 2 of v_(4k+2)],
    // u1 = [2 of v_(4k+1), 2 of v_(4k+3)].
    let half = |a: __m512i, b: __m512i| {
        _mm512_add_epi32(
            _mm512_unpacklo_epi64(a, b),
            _mm512_unpackhi_epi64(a, b),
        )
    };
    let u0 = half(z[0], z[2]);
    let u1 = half(z[1], z[3]);
    // D: per block, p = [v0a v1a v0b v1b], q = [v2a v3a v2b v3b] (v_i meaning
    // v_(4k+i)); then [v0a v1a v2a v3a] + [v0b v1b v2b v3b].
    let p = _mm512_unpacklo_epi32(u0, u1);
    let q = _mm512_unpackhi_epi32(u0, u1);
    _mm512_add_epi32(_mm512_unpacklo_epi64(p, q), _mm512_unpackhi_epi64(p, q))
}
