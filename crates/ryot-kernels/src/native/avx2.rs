//! AVX2 native kernels: `vpmaddubsw` multiplies decoded codes (u8) with
//! rearranged activations (i8) into 16-bit pair sums, which stay exact
//! (bounds below); one reduction per block turns 8 accumulators into one
//! vector of 8 (row, token) sums.
//!
//! ```text
//! TQ2_0 block: x0, x1 = qs[0..32], qs[32..64]
//!     for l in 0..4, h in 0..2: codes = (x_h >> 2l) & 3      (32 elements)
//! TQ1_0 block: x0, x1 = bytes 0..32, 32..64 (12 bytes past the block,
//!     matched with zero activations); r = x ^ 0x80
//!     for n in 0..5, h in 0..2: codes = (r_h > -43) + (r_h > 42); r_h *= 3
//!     (r_n = q_n - 128 with q_n = b * 3^n mod 256, and digit n of b is
//!     floor(3 q_n / 256), which is 1 from q_n = 86 and 2 from q_n = 171)
//! I2_S group:  x = 32 code bytes; for s in 0..4: codes = (x >> 6-2s) & 3
//!     (one group per row: 16-bit sums widen every 15 groups, the
//!     reduction runs once per row)
//! ```
//!
//! Bounds: a `maddubs` lane is two products of a code (<= 3) and an int8
//! (>= -128): |lane| <= 768. A TQ block adds 8 (TQ2_0) or 10 (TQ1_0, codes
//! <= 2, |lane| <= 512) of them: <= 6144; the reduction's two 16-bit
//! `hadd` levels reach 4x that, 24576 < 32767. An I2_S group adds 4 lanes
//! of <= 512 (codes <= 2): 15 groups are 30720.
//!
//! Codegen notes: the GEMV tile of TQ2_0 walks slice by slice over its 8
//! rows so the accumulators stay in registers; accumulator updates and
//! the TQ1_0 `r *= 3` chain go through `opaque`, an empty `asm!`, because
//! LLVM otherwise reassociates the adds into trees that spill (GEMM tiles)
//! and folds the chain into emulated byte multiplies.

use std::arch::x86_64::*;
use std::ops::Range;

use super::{Format, Job, Prefetch, TOKEN_GROUP, TQ1_ACT};
use crate::ternary::TQ_BLOCK;

/// I2_S groups whose 16-bit sums may be added before widening.
const I2S_FLUSH: usize = 15;

/// Computes rows `rows` for every token of `job`.
pub(crate) fn gemm(job: &Job<'_>, rows: Range<usize>) {
    assert!(crate::isa::SimdLevel::Avx2.is_available());
    // SAFETY: the CPU supports AVX2, FMA and F16C (asserted above).
    unsafe { gemm_impl(job, rows) }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn gemm_impl(job: &Job<'_>, rows: Range<usize>) {
    match job.w.fmt {
        Format::Tq2_0 => blocks::<Tq2>(job, rows),
        Format::Tq1_0 => blocks::<Tq1>(job, rows),
        Format::I2s => i2s(job, rows),
    }
}

/// Tiles of a unit range, 8 rows at a time: 1 row x 8 tokens while 8
/// tokens remain, then 2 x 4, 4 x 2 and 8 x 1 (the GEMV tile) for the
/// remainder.
#[target_feature(enable = "avx2,fma,f16c")]
fn blocks<F: BlockDot>(job: &Job<'_>, rows: Range<usize>) {
    const { assert!(TOKEN_GROUP == 8) };
    let n = job.n();
    let mut r = rows.start;
    while r < rows.end {
        let sub = |step: usize| (r..(r + 8).min(rows.end)).step_by(step);
        let mut t = 0;
        while n - t >= 8 {
            sub(1).for_each(|rr| tq_tile::<F, 1, 8>(job, rr, rows.end, t));
            t += 8;
        }
        if n - t >= 4 {
            sub(2).for_each(|rr| tq_tile::<F, 2, 4>(job, rr, rows.end, t));
            t += 4;
        }
        if n - t >= 2 {
            sub(4).for_each(|rr| tq_tile::<F, 4, 2>(job, rr, rows.end, t));
            t += 2;
        }
        if n > t {
            tq_tile::<F, 8, 1>(job, r, rows.end, t);
        }
        r += 8;
    }
}

/// One TQ block format: how to decode a block and multiply it with the
/// rearranged activations of `T` tokens.
trait BlockDot {
    /// Bytes per block.
    const BYTES: usize;
    /// Bytes of rearranged activations per block and token.
    const ACT: usize;
    /// Adds `codes . acts[t]` (16-bit pair sums) of the block at `blk` to
    /// `acc[t]`.
    ///
    /// # Safety
    ///
    /// AVX2 is available; `blk` points to a block with 64 readable bytes
    /// from it and each `acts[t]` to `ACT` readable bytes.
    unsafe fn dot<const T: usize>(
        blk: *const u8,
        acts: &[*const i8; T],
        acc: &mut [__m256i; T],
    );

    /// [`dot`](Self::dot) for the blocks of `R` rows, `acc[r][t]`.
    ///
    /// # Safety
    ///
    /// As [`dot`](Self::dot), for every `blks[r]`.
    #[inline(always)]
    unsafe fn dot_rows<const R: usize, const T: usize>(
        blks: &[*const u8; R],
        acts: &[*const i8; T],
        acc: &mut [[__m256i; T]; R],
    ) {
        for (&p, a) in blks.iter().zip(acc.iter_mut()) {
            // SAFETY: forwarded from the caller.
            unsafe { Self::dot::<T>(p, acts, a) };
        }
    }
}

/// TQ2_0.
struct Tq2;

impl BlockDot for Tq2 {
    const BYTES: usize = 66;
    const ACT: usize = TQ_BLOCK;

    #[inline(always)]
    unsafe fn dot_rows<const R: usize, const T: usize>(
        blks: &[*const u8; R],
        acts: &[*const i8; T],
        acc: &mut [[__m256i; T]; R],
    ) {
        // SAFETY: forwarded from the caller.
        unsafe {
            if T == 1 {
                Tq2::rows(blks, acts, acc)
            } else {
                for (&p, a) in blks.iter().zip(acc.iter_mut()) {
                    Self::dot::<T>(p, acts, a);
                }
            }
        }
    }

    #[inline(always)]
    unsafe fn dot<const T: usize>(
        blk: *const u8,
        acts: &[*const i8; T],
        acc: &mut [__m256i; T],
    ) {
        // SAFETY: the caller guarantees AVX2 and the readable ranges; the
        // offsets below stay under 64 (weights) and 256 (activations).
        unsafe {
            let mask = _mm256_set1_epi8(3);
            let x = [
                _mm256_loadu_si256(blk.cast()),
                _mm256_loadu_si256(blk.add(32).cast()),
            ];
            for l in 0..4 {
                for (h, &xh) in x.iter().enumerate() {
                    let c = _mm256_and_si256(shr2(xh, l), mask);
                    for (a, p) in acc.iter_mut().zip(acts) {
                        let q =
                            _mm256_loadu_si256(p.add(64 * l + 32 * h).cast());
                        *a = opaque(_mm256_add_epi16(
                            *a,
                            _mm256_maddubs_epi16(c, q),
                        ));
                    }
                }
            }
        }
    }
}

impl Tq2 {
    /// Slice by slice over all rows, so the 8 accumulators stay in
    /// registers and each activation slice is loaded once.
    #[inline(always)]
    unsafe fn rows<const R: usize, const T: usize>(
        blks: &[*const u8; R],
        acts: &[*const i8; T],
        acc: &mut [[__m256i; T]; R],
    ) {
        // SAFETY: as `BlockDot::dot_rows`.
        unsafe {
            let mask = _mm256_set1_epi8(3);
            for l in 0..4 {
                for h in 0..2 {
                    for (&p, a) in blks.iter().zip(acc.iter_mut()) {
                        let x = _mm256_loadu_si256(p.add(32 * h).cast());
                        let c = _mm256_and_si256(shr2(x, l), mask);
                        for (at, &pt) in a.iter_mut().zip(acts) {
                            let o = 64 * l + 32 * h;
                            let q = _mm256_loadu_si256(pt.add(o).cast());
                            let prod = _mm256_maddubs_epi16(c, q);
                            *at = opaque(_mm256_add_epi16(*at, prod));
                        }
                    }
                }
            }
        }
    }
}

/// TQ1_0.
struct Tq1;

impl BlockDot for Tq1 {
    const BYTES: usize = 54;
    const ACT: usize = TQ1_ACT;

    #[inline(always)]
    unsafe fn dot<const T: usize>(
        blk: *const u8,
        acts: &[*const i8; T],
        acc: &mut [__m256i; T],
    ) {
        // SAFETY: the caller guarantees AVX2 and the readable ranges; the
        // offsets below stay under 64 (weights) and 320 (activations).
        unsafe {
            let bias = _mm256_set1_epi8(-128);
            let lo = _mm256_set1_epi8(-43);
            let hi = _mm256_set1_epi8(42);
            let zero = _mm256_setzero_si256();
            let mut r = [
                _mm256_xor_si256(_mm256_loadu_si256(blk.cast()), bias),
                _mm256_xor_si256(_mm256_loadu_si256(blk.add(32).cast()), bias),
            ];
            for n in 0..5 {
                for (h, rh) in r.iter_mut().enumerate() {
                    let m1 = _mm256_cmpgt_epi8(*rh, lo);
                    let m2 = _mm256_cmpgt_epi8(*rh, hi);
                    let c = _mm256_sub_epi8(_mm256_sub_epi8(zero, m1), m2);
                    for (a, p) in acc.iter_mut().zip(acts) {
                        let q =
                            _mm256_loadu_si256(p.add(64 * n + 32 * h).cast());
                        *a = opaque(_mm256_add_epi16(
                            *a,
                            _mm256_maddubs_epi16(c, q),
                        ));
                    }
                    if n < 4 {
                        // r * 3 as two adds; `opaque` keeps LLVM from
                        // folding the chain into byte multiplies by 27
                        // and 81, which it emulates with 16-bit ones.
                        let r3 =
                            _mm256_add_epi8(*rh, _mm256_add_epi8(*rh, *rh));
                        *rh = opaque(r3);
                    }
                }
            }
        }
    }
}

/// `R` rows from `r0` (rows at or past `rend` repeat `rend - 1` and are
/// not stored) x tokens `t0..t0 + T` (all of them exist).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn tq_tile<F: BlockDot, const R: usize, const T: usize>(
    job: &Job<'_>,
    r0: usize,
    rend: usize,
    t0: usize,
) {
    const { assert!(R * T == 8) };
    assert!(t0 + T <= job.n() && F::ACT == job.acts.slot());
    let w = job.w;
    let nr = (rend - r0).min(R);
    let data = w.padded();
    let rb = w.row_bytes();
    let rowp: [*const u8; R] =
        crate::arr::build(|i| data[(r0 + i.min(nr - 1)) * rb..].as_ptr());
    let act = by_token_ps::<T>(&job.acts.a.scales()[t0..t0 + T]);
    let mut f = _mm256_setzero_ps();
    let pf = Prefetch::new(rowp[0], R * rb, w.blocks());
    for b in 0..w.blocks() {
        pf.step(b);
        let mut acc = [[_mm256_setzero_si256(); T]; R];
        // The tokens' slots of block b are `ACT` bytes apart.
        let a0 = job.acts.perm(b, t0, T).as_ptr();
        let ap: [*const i8; T] =
            crate::arr::build(|i| a0.wrapping_add(i * F::ACT));
        let bp: [*const u8; R] =
            crate::arr::build(|i| rowp[i].wrapping_add(b * F::BYTES));
        // SAFETY: AVX2 is enabled here; `bp[r]` is block b of a row < m,
        // with 64 readable bytes from it (the tensor is followed by 64
        // padding bytes); `ap[t]` is token t's `ACT`-byte slot of block b.
        unsafe { F::dot_rows::<R, T>(&bp, &ap, &mut acc) };
        let isum = reduce8_i16(crate::arr::build(|j| acc[j / T][j % T]));
        let gs = by_token::<T>(job.acts.gsums(b, t0, T));
        let o = b * F::BYTES + F::BYTES - 2;
        // SAFETY: the last two bytes of block b of a row < m.
        let dr: [u16; R] = crate::arr::build(|r| unsafe {
            rowp[r].add(o).cast::<u16>().read_unaligned()
        });
        let dh: [u16; 8] = crate::arr::build(|j| dr[j / T]);
        // SAFETY: `dh` holds 8 u16s.
        let d = unsafe { _mm256_cvtph_ps(_mm_loadu_si128(dh.as_ptr().cast())) };
        let v = _mm256_cvtepi32_ps(_mm256_sub_epi32(isum, gs));
        f = _mm256_add_ps(f, _mm256_mul_ps(_mm256_div_ps(v, act), d));
    }
    store::<R, T>(job, f, r0, nr, t0);
}

/// Lane `j` = `v[j % T]` (`v.len() == T`, a power of two up to 8): a
/// per-token value in the lane order of a tile.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn by_token<const T: usize>(v: &[i32]) -> __m256i {
    assert_eq!(v.len(), T);
    let p = v.as_ptr();
    // SAFETY: `v` holds `T` i32s; each arm reads exactly `4 * T` bytes.
    unsafe {
        match T {
            8 => _mm256_loadu_si256(p.cast()),
            4 => _mm256_broadcastsi128_si256(_mm_loadu_si128(p.cast())),
            2 => _mm256_set1_epi64x(p.cast::<i64>().read_unaligned()),
            _ => _mm256_set1_epi32(*p),
        }
    }
}

/// [`by_token`] for f32 values.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn by_token_ps<const T: usize>(v: &[f32]) -> __m256 {
    let bits: [i32; T] = crate::arr::build(|t| v[t].to_bits() as i32);
    _mm256_castsi256_ps(by_token::<T>(&bits))
}

/// Writes lane `r*T + t` of `f` to row `r0 + r`, token `t0 + t`, for the
/// `nr` valid rows.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn store<const R: usize, const T: usize>(
    job: &Job<'_>,
    f: __m256,
    r0: usize,
    nr: usize,
    t0: usize,
) {
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` holds 8 f32s.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), f) };
    for t in 0..T {
        let col: [f32; R] = crate::arr::build(|r| lanes[r * T + t]);
        job.out.write_rows(t0 + t, r0, &col[..nr]);
    }
}

/// I2_S tiles, as [`blocks`].
#[target_feature(enable = "avx2,fma,f16c")]
fn i2s(job: &Job<'_>, rows: Range<usize>) {
    let n = job.n();
    let mut r = rows.start;
    while r < rows.end {
        let sub = |step: usize| (r..(r + 8).min(rows.end)).step_by(step);
        let mut t = 0;
        while n - t >= 8 {
            sub(1).for_each(|rr| i2s_tile::<1, 8>(job, rr, rows.end, t));
            t += 8;
        }
        if n - t >= 4 {
            sub(2).for_each(|rr| i2s_tile::<2, 4>(job, rr, rows.end, t));
            t += 4;
        }
        if n - t >= 2 {
            sub(4).for_each(|rr| i2s_tile::<4, 2>(job, rr, rows.end, t));
            t += 2;
        }
        if n > t {
            i2s_tile::<8, 1>(job, r, rows.end, t);
        }
        r += 8;
    }
}

/// I2_S rows `r0..r0+R` x tokens `t0..t0+T`, clipped as in [`tq_tile`].
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn i2s_tile<const R: usize, const T: usize>(
    job: &Job<'_>,
    r0: usize,
    rend: usize,
    t0: usize,
) {
    const { assert!(R * T == 8) };
    assert!(t0 + T <= job.n() && job.acts.slot() == TQ_BLOCK);
    let w = job.w;
    let nr = (rend - r0).min(R);
    let data = w.padded();
    let rb = w.row_bytes();
    let rowp: [*const u8; R] =
        crate::arr::build(|i| data[(r0 + i.min(nr - 1)) * rb..].as_ptr());
    let groups = w.blocks();
    let mask = _mm256_set1_epi8(3);
    let ones = _mm256_set1_epi16(1);
    let mut acc32 = [_mm256_setzero_si256(); 8];
    let pf = Prefetch::new(rowp[0], R * rb, groups);
    let mut g = 0;
    while g < groups {
        let end = (g + I2S_FLUSH).min(groups);
        let mut acc = [[_mm256_setzero_si256(); T]; R];
        while g < end {
            pf.step(g);
            // Group g is half g%2 of 256-column chunk g/2.
            let a0 = job.acts.perm(g / 2, t0, T).as_ptr();
            let ap = a0.wrapping_add((g % 2) * 32);
            for (p, a) in rowp.iter().zip(acc.iter_mut()) {
                // SAFETY: AVX2 is enabled here; group g < groups of a row
                // < m is 32 readable bytes; `ap + 256t + 64s` reads 32
                // bytes inside token t's 256-byte slot of chunk g/2.
                unsafe {
                    let x = _mm256_loadu_si256(p.add(32 * g).cast());
                    for s in 0..4 {
                        let c = _mm256_and_si256(shr2(x, 3 - s), mask);
                        for (t, at) in a.iter_mut().enumerate() {
                            let o = TQ_BLOCK * t + 64 * s;
                            let q = _mm256_loadu_si256(ap.add(o).cast());
                            let prod = _mm256_maddubs_epi16(c, q);
                            *at = opaque(_mm256_add_epi16(*at, prod));
                        }
                    }
                }
            }
            g += 1;
        }
        for (j, a32) in acc32.iter_mut().enumerate() {
            let wide = _mm256_madd_epi16(acc[j / T][j % T], ones);
            *a32 = _mm256_add_epi32(*a32, wide);
        }
    }
    let isum = reduce8_i32(acc32);
    let act = by_token_ps::<T>(&job.acts.a.scales()[t0..t0 + T]);
    let gs = by_token::<T>(job.acts.gsums(0, t0, T));
    let d = _mm256_set1_ps(w.i2s_scale());
    let v = _mm256_cvtepi32_ps(_mm256_sub_epi32(isum, gs));
    let f = _mm256_add_ps(
        _mm256_setzero_ps(),
        _mm256_mul_ps(_mm256_div_ps(v, act), d),
    );
    store::<R, T>(job, f, r0, nr, t0);
}

/// `x`, through an empty `asm!` block that the optimizer cannot see into.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn opaque(mut x: __m256i) -> __m256i {
    // SAFETY: the template is empty: no instruction runs, no register
    // but `x` is named, no memory or flags are touched.
    unsafe {
        std::arch::asm!(
            "/* {0} */",
            inout(ymm_reg) x,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    x
}

/// `x >> 2j` in 16-bit lanes (callers mask each byte with 3).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn shr2(x: __m256i, j: usize) -> __m256i {
    match j {
        0 => x,
        1 => _mm256_srli_epi16::<2>(x),
        2 => _mm256_srli_epi16::<4>(x),
        _ => _mm256_srli_epi16::<6>(x),
    }
}

/// Lane `j` (i32) = the sum of the 16 i16 lanes of `a[j]`, for sums whose
/// pairs and quads fit in i16 (see the module doc).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn reduce8_i16(a: [__m256i; 8]) -> __m256i {
    let ones = _mm256_set1_epi16(1);
    // Per 128-bit half: hadd(x, y) = 4 pair sums of x, then 4 of y.
    let h01 = _mm256_hadd_epi16(a[0], a[1]);
    let h23 = _mm256_hadd_epi16(a[2], a[3]);
    let h45 = _mm256_hadd_epi16(a[4], a[5]);
    let h67 = _mm256_hadd_epi16(a[6], a[7]);
    // Per half: 2 quad sums of each of a0..a3; madd widens the pairs:
    // [a0 a1 a2 a3 | a0 a1 a2 a3] (low half's sums | high half's).
    let w0 = _mm256_madd_epi16(_mm256_hadd_epi16(h01, h23), ones);
    let w1 = _mm256_madd_epi16(_mm256_hadd_epi16(h45, h67), ones);
    combine_halves(w0, w1)
}

/// Lane `j` = the sum of the 8 i32 lanes of `a[j]`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn reduce8_i32(a: [__m256i; 8]) -> __m256i {
    let h01 = _mm256_hadd_epi32(a[0], a[1]);
    let h23 = _mm256_hadd_epi32(a[2], a[3]);
    let h45 = _mm256_hadd_epi32(a[4], a[5]);
    let h67 = _mm256_hadd_epi32(a[6], a[7]);
    let w0 = _mm256_hadd_epi32(h01, h23);
    let w1 = _mm256_hadd_epi32(h45, h67);
    combine_halves(w0, w1)
}

/// `[x0..x3 | x0'..x3']`, `[y0..y3 | y0'..y3']` -> `[x+x', y+y']`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn combine_halves(w0: __m256i, w1: __m256i) -> __m256i {
    let lo = _mm256_permute2x128_si256::<0x20>(w0, w1);
    let hi = _mm256_permute2x128_si256::<0x31>(w0, w1);
    _mm256_add_epi32(lo, hi)
}
