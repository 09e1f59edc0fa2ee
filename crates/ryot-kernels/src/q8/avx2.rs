//! AVX2 Q8_0/Q4_0/Q4_1/Q5_0 kernels and the AVX2 Q8_0 activation
//! quantizer.
//!
//! A 64-byte line (16 rows x 4 columns) is two 256-bit halves of 8 rows.
//! Integer sums per block (exact, see [`super`]):
//!
//! ```text
//! Q4_0: for v in 0..4:  lo = line[v] & 15, hi = (line[v] >> 4) & 15
//!           acc16 += maddubs(lo, bcast(x[4v..])) + maddubs(hi, bcast(x[16+4v..]))
//!       isum = madd(acc16, 1) - 8 * sum(x_b)
//!       (an i16 lane sums 16 products of at most 15 * 128: |.| <= 30720)
//! Q4_1: as Q4_0 without the offset (its minimum is a second fma below)
//! Q5_0: hs = line[4] << 4, hh = line[4]               (fifth bits)
//!       for v in 0..4:  lo = (line[v] & 15) | (hs & 16), hi = ((line[v] >> 4) & 15) | (hh & 16)
//!           acc16 += maddubs(lo, bcast(x[4v..])) + maddubs(hi, bcast(x[16+4v..]))
//!           hs >>= 1, hh >>= 1      (16-bit shifts; bit 4 of a byte never
//!                                    comes from another byte)
//!           after v = 1 and v = 3:  acc32 += madd(acc16, 1), acc16 = 0
//!       isum = acc32 - 16 * sum(x_b)
//!       (an i16 lane sums 8 products of at most 31 * 128: |.| <= 31744)
//! Q8_0: for j in 0..8:  w = line[j] ^ 0x80 (signed code)
//!           isum += madd(maddubs(|w|, sign(bcast(x[4j..]), w)), 1)
//!       (a pair of products is at most 2 * 128 * 127 = 32512 when
//!        |x| <= 127; see [`super::act`] for the one case where x = -128
//!        and why it does not matter)
//! then per row lane:  acc = fma(f32(isum), f32(d_w) * d_x, acc)
//!          Q4_1 also:  acc = fma(f32(sum(x_b)), f32(m_w) * d_x, acc)
//! ```
//!
//! GEMV (`n == 1`) streams [`GEMV_PANELS_Q8_0`], [`GEMV_PANELS_Q4_0`]
//! (also Q4_1) or [`GEMV_PANELS_Q5_0`] panels at once (measured: 4 read streams move Q8_0 from DRAM faster
//! than 2; Q4_0's unpacking needs more registers, and 4 panels spill
//! without streaming faster); GEMM tiles are
//! [`GEMM_PANELS`] x [`GEMM_TOKENS`], so each loaded and unpacked weight
//! vector feeds several tokens.

use std::arch::x86_64::*;
use std::ops::Range;

use half::f16;

use super::layout::{BLOCK, Kind, Line, PANEL_ROWS, Scales16};
use super::{Job, QBlock};

/// Panels per GEMV step for Q8_0.
pub(crate) const GEMV_PANELS_Q8_0: usize = 4;
/// Panels per GEMV step for Q4_0 and Q4_1.
pub(crate) const GEMV_PANELS_Q4_0: usize = 2;
/// Panels per GEMV step for Q5_0 (its fifth bits need 4 more registers
/// per panel, so 2 panels spill; on a busy shared 2-core machine 1 and 2
/// measured within noise of each other).
pub(crate) const GEMV_PANELS_Q5_0: usize = 1;
/// Panels per GEMM tile.
pub(crate) const GEMM_PANELS: usize = 1;
/// Tokens per GEMM tile.
pub(crate) const GEMM_TOKENS: usize = 4;

/// Computes panels `panels` for every token of `job`.
pub(crate) fn gemm<B: QBlock>(job: &Job<'_, B>, panels: Range<usize>) {
    assert!(crate::isa::SimdLevel::Avx2.is_available());
    // SAFETY: the CPU supports AVX2, FMA and F16C (asserted above).
    unsafe { gemm_impl(job, panels) }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn gemm_impl<B: QBlock>(job: &Job<'_, B>, panels: Range<usize>) {
    let n = job.a.n();
    let mut p = panels.start;
    if n == 1 {
        match B::KIND {
            Kind::Q8_0 => gemv::<B, GEMV_PANELS_Q8_0>(job, panels),
            Kind::Q4_0 | Kind::Q4_1 => gemv::<B, GEMV_PANELS_Q4_0>(job, panels),
            Kind::Q5_0 => gemv::<B, GEMV_PANELS_Q5_0>(job, panels),
        }
        return;
    }
    while p + GEMM_PANELS <= panels.end {
        tokens::<B, GEMM_PANELS>(job, p, n);
        p += GEMM_PANELS;
    }
    while p < panels.end {
        tokens::<B, 1>(job, p, n);
        p += 1;
    }
}

/// One token, `P` panels at a time.
#[target_feature(enable = "avx2,fma,f16c")]
fn gemv<B: QBlock, const P: usize>(job: &Job<'_, B>, panels: Range<usize>) {
    let mut p = panels.start;
    while p + P <= panels.end {
        tile::<B, P, 1>(job, p, 0);
        p += P;
    }
    while p < panels.end {
        tile::<B, 1, 1>(job, p, 0);
        p += 1;
    }
}

/// All tokens for panels `p..p+P`, in tiles of up to [`GEMM_TOKENS`].
#[target_feature(enable = "avx2,fma,f16c")]
fn tokens<B: QBlock, const P: usize>(job: &Job<'_, B>, p: usize, n: usize) {
    let mut t = 0;
    while t < n {
        match n - t {
            1 => tile::<B, P, 1>(job, p, t),
            2 => tile::<B, P, 2>(job, p, t),
            3 => tile::<B, P, 3>(job, p, t),
            _ => tile::<B, P, GEMM_TOKENS>(job, p, t),
        }
        t += GEMM_TOKENS;
    }
}

/// Panels `p0..p0+P` x tokens `t0..t0+T` (clipped to `n`).
#[target_feature(enable = "avx2,fma,f16c")]
fn tile<B: QBlock, const P: usize, const T: usize>(
    job: &Job<'_, B>,
    p0: usize,
    t0: usize,
) {
    let nb = job.w.blocks();
    let nt = (job.a.n() - t0).min(T);
    let lines: [&[Line]; P] = crate::arr::build(|i| job.w.panel_lines(p0 + i));
    let scales: [&[Scales16]; P] =
        crate::arr::build(|i| job.w.panel_scales(p0 + i));
    // Tokens past n repeat the last one (their results are not stored).
    let tok: [usize; T] = crate::arr::build(|i| t0 + i.min(nt - 1));
    let xq: [&[[i8; BLOCK]]; T] =
        crate::arr::build(|i| job.a.row(tok[i]).as_chunks::<BLOCK>().0);
    let dx: [&[f32]; T] = crate::arr::build(|i| job.a.scales(tok[i]));
    let xsum: [&[i32]; T] = crate::arr::build(|i| job.a.sums(tok[i]));
    let mut facc = [[[_mm256_setzero_ps(); 2]; T]; P];
    for b in 0..nb {
        let bl: [&[Line]; P] =
            crate::arr::build(|i| &lines[i][b * B::LINES..(b + 1) * B::LINES]);
        let xb: [&[i8; BLOCK]; T] = crate::arr::build(|i| &xq[i][b]);
        let s: [i32; T] = crate::arr::build(|i| xsum[i][b]);
        let isum = match B::KIND {
            Kind::Q8_0 => isums_q8_0::<P, T>(&bl, &xb),
            Kind::Q4_0 | Kind::Q4_1 => {
                isums_q4::<P, T>(&bl, &xb, &s, B::OFFSET)
            }
            Kind::Q5_0 => isums_q5_0::<P, T>(&bl, &xb, &s),
        };
        let sb = b * B::SCALES;
        let dw: [[__m256; 2]; P] =
            crate::arr::build(|i| load_scales(&scales[i][sb]));
        for ti in 0..T {
            let dxv = _mm256_set1_ps(dx[ti][b]);
            for pi in 0..P {
                for h in 0..2 {
                    let d = _mm256_mul_ps(dw[pi][h], dxv);
                    let f = _mm256_cvtepi32_ps(isum[pi][ti][h]);
                    facc[pi][ti][h] = _mm256_fmadd_ps(f, d, facc[pi][ti][h]);
                }
            }
        }
        if B::SCALES == 2 {
            // Q4_1: + m_w * d_x * sum(code_x), after the block's d term.
            let mw: [[__m256; 2]; P] =
                crate::arr::build(|i| load_scales(&scales[i][sb + 1]));
            for ti in 0..T {
                let dxv = _mm256_set1_ps(dx[ti][b]);
                let f = _mm256_set1_ps(s[ti] as f32);
                for pi in 0..P {
                    for h in 0..2 {
                        let m = _mm256_mul_ps(mw[pi][h], dxv);
                        facc[pi][ti][h] =
                            _mm256_fmadd_ps(f, m, facc[pi][ti][h]);
                    }
                }
            }
        }
    }
    for (pi, tp) in facc.iter().enumerate() {
        for (ti, v) in tp.iter().enumerate().take(nt) {
            let mut out = [0f32; PANEL_ROWS];
            // SAFETY: out holds 16 f32s.
            unsafe {
                _mm256_storeu_ps(out.as_mut_ptr(), v[0]);
                _mm256_storeu_ps(out.as_mut_ptr().add(8), v[1]);
            }
            job.store(p0 + pi, t0 + ti, &out);
        }
    }
}

/// 16 rows' f16 scales as two vectors of 8 f32 (exact).
#[inline(always)]
fn load_scales(s: &Scales16) -> [__m256; 2] {
    let sp = s.0.as_ptr().cast::<__m128i>();
    // SAFETY: a Scales16 is 32 bytes, 32-byte aligned, so both 16-byte
    // halves are aligned and in bounds; callers run with AVX2 and F16C
    // enabled (this is inlined into `tile`).
    unsafe {
        [
            _mm256_cvtph_ps(_mm_load_si128(sp)),
            _mm256_cvtph_ps(_mm_load_si128(sp.add(1))),
        ]
    }
}

/// Half `h` (rows 8h..8h+8) of a line.
#[inline(always)]
fn load_half(line: &Line, h: usize) -> __m256i {
    debug_assert!(h < 2);
    // SAFETY: a Line is 64 bytes, 64-byte aligned, and h < 2, so the
    // 32-byte half is aligned and in bounds; callers run with AVX2 enabled
    // (this is inlined into `tile`).
    unsafe { _mm256_load_si256(line.0.as_ptr().cast::<__m256i>().add(h)) }
}

/// The 4 codes of quad `j` (columns 4j..4j+4) as one dword.
#[inline(always)]
fn quad(xb: &[i8; BLOCK], j: usize) -> i32 {
    let q = &xb[4 * j..4 * j + 4];
    i32::from_le_bytes([q[0] as u8, q[1] as u8, q[2] as u8, q[3] as u8])
}

/// Exact integer sums of one Q4_0 (`offset` 8) or Q4_1 (`offset` 0)
/// block for P panels x T tokens.
// The line index also picks activation quads, so a range loop reads
// best.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn isums_q4<const P: usize, const T: usize>(
    bl: &[&[Line]; P],
    xb: &[&[i8; BLOCK]; T],
    xsum: &[i32; T],
    offset: i32,
) -> [[[__m256i; 2]; T]; P] {
    let mask = _mm256_set1_epi8(0x0f);
    let mut acc16 = [[[_mm256_setzero_si256(); 2]; T]; P];
    for v in 0..4 {
        let mut lo = [[_mm256_setzero_si256(); 2]; P];
        let mut hi = [[_mm256_setzero_si256(); 2]; P];
        for pi in 0..P {
            for h in 0..2 {
                let x = load_half(&bl[pi][v], h);
                lo[pi][h] = _mm256_and_si256(x, mask);
                hi[pi][h] = _mm256_and_si256(_mm256_srli_epi16::<4>(x), mask);
            }
        }
        for ti in 0..T {
            let xl = _mm256_set1_epi32(quad(xb[ti], v));
            let xh = _mm256_set1_epi32(quad(xb[ti], v + 4));
            for pi in 0..P {
                for h in 0..2 {
                    let a = _mm256_maddubs_epi16(lo[pi][h], xl);
                    let b = _mm256_maddubs_epi16(hi[pi][h], xh);
                    let s = &mut acc16[pi][ti][h];
                    *s = _mm256_add_epi16(*s, _mm256_add_epi16(a, b));
                }
            }
        }
    }
    let ones = _mm256_set1_epi16(1);
    let mut out = [[[_mm256_setzero_si256(); 2]; T]; P];
    for ti in 0..T {
        let off = _mm256_set1_epi32(offset * xsum[ti]);
        for pi in 0..P {
            for h in 0..2 {
                let wide = _mm256_madd_epi16(acc16[pi][ti][h], ones);
                out[pi][ti][h] = _mm256_sub_epi32(wide, off);
            }
        }
    }
    out
}

/// Exact integer sums of one Q5_0 block for P panels x T tokens.
// The line index also picks activation quads, so a range loop reads
// best.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn isums_q5_0<const P: usize, const T: usize>(
    bl: &[&[Line]; P],
    xb: &[&[i8; BLOCK]; T],
    xsum: &[i32; T],
) -> [[[__m256i; 2]; T]; P] {
    let mask = _mm256_set1_epi8(0x0f);
    let bit4 = _mm256_set1_epi8(0x10);
    let ones = _mm256_set1_epi16(1);
    let mut hs = [[_mm256_setzero_si256(); 2]; P];
    let mut hh = [[_mm256_setzero_si256(); 2]; P];
    for pi in 0..P {
        for h in 0..2 {
            let w = load_half(&bl[pi][4], h);
            hs[pi][h] = _mm256_slli_epi16::<4>(w);
            hh[pi][h] = w;
        }
    }
    let mut acc16 = [[[_mm256_setzero_si256(); 2]; T]; P];
    let mut acc = [[[_mm256_setzero_si256(); 2]; T]; P];
    for v in 0..4 {
        let mut lo = [[_mm256_setzero_si256(); 2]; P];
        let mut hi = [[_mm256_setzero_si256(); 2]; P];
        for pi in 0..P {
            for h in 0..2 {
                let x = load_half(&bl[pi][v], h);
                let l = _mm256_and_si256(x, mask);
                let u = _mm256_and_si256(_mm256_srli_epi16::<4>(x), mask);
                let hl = _mm256_and_si256(hs[pi][h], bit4);
                let hu = _mm256_and_si256(hh[pi][h], bit4);
                lo[pi][h] = _mm256_or_si256(l, hl);
                hi[pi][h] = _mm256_or_si256(u, hu);
                hs[pi][h] = _mm256_srli_epi16::<1>(hs[pi][h]);
                hh[pi][h] = _mm256_srli_epi16::<1>(hh[pi][h]);
            }
        }
        for ti in 0..T {
            let xl = _mm256_set1_epi32(quad(xb[ti], v));
            let xh = _mm256_set1_epi32(quad(xb[ti], v + 4));
            for pi in 0..P {
                for h in 0..2 {
                    let a = _mm256_maddubs_epi16(lo[pi][h], xl);
                    let b = _mm256_maddubs_epi16(hi[pi][h], xh);
                    let s = &mut acc16[pi][ti][h];
                    *s = _mm256_add_epi16(*s, _mm256_add_epi16(a, b));
                }
            }
        }
        if v % 2 == 1 {
            // Widen every 8 products, before an i16 lane could overflow.
            for (ap, sp) in acc.iter_mut().zip(acc16.iter_mut()) {
                for (at, st) in ap.iter_mut().zip(sp.iter_mut()) {
                    for h in 0..2 {
                        let wide = _mm256_madd_epi16(st[h], ones);
                        at[h] = _mm256_add_epi32(at[h], wide);
                        st[h] = _mm256_setzero_si256();
                    }
                }
            }
        }
    }
    for ti in 0..T {
        let off = _mm256_set1_epi32(16 * xsum[ti]);
        for ap in acc.iter_mut() {
            for h in 0..2 {
                ap[ti][h] = _mm256_sub_epi32(ap[ti][h], off);
            }
        }
    }
    acc
}

/// Exact integer sums of one Q8_0 block for P panels x T tokens.
// The line index also picks activation quads, so a range loop reads
// best.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn isums_q8_0<const P: usize, const T: usize>(
    bl: &[&[Line]; P],
    xb: &[&[i8; BLOCK]; T],
) -> [[[__m256i; 2]; T]; P] {
    let flip = _mm256_set1_epi8(0x80u8 as i8);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[[_mm256_setzero_si256(); 2]; T]; P];
    for j in 0..8 {
        let mut w = [[_mm256_setzero_si256(); 2]; P];
        let mut aw = [[_mm256_setzero_si256(); 2]; P];
        for pi in 0..P {
            for h in 0..2 {
                w[pi][h] = _mm256_xor_si256(load_half(&bl[pi][j], h), flip);
                aw[pi][h] = _mm256_abs_epi8(w[pi][h]);
            }
        }
        for ti in 0..T {
            let xv = _mm256_set1_epi32(quad(xb[ti], j));
            for pi in 0..P {
                for h in 0..2 {
                    let sx = _mm256_sign_epi8(xv, w[pi][h]);
                    let prod = _mm256_maddubs_epi16(aw[pi][h], sx);
                    let s = &mut acc[pi][ti][h];
                    *s = _mm256_add_epi32(*s, _mm256_madd_epi16(prod, ones));
                }
            }
        }
    }
    acc
}

/// Quantizes `x` into Q8_0 blocks exactly like
/// `ryot_quant::act::quantize_row_q8_0`: codes into `qs`, f16 scales into
/// `d`, per-block code sums into `sums`.
///
/// # Panics
/// If AVX2 is unavailable or the lengths disagree (`x.len() == qs.len() ==
/// 32 * d.len() == 32 * sums.len()`); callers check both.
pub(crate) fn quantize_acts(
    x: &[f32],
    qs: &mut [i8],
    d: &mut [f16],
    sums: &mut [i32],
) {
    assert!(crate::isa::SimdLevel::Avx2.is_available());
    assert!(
        x.len() == qs.len()
            && x.len() == BLOCK * d.len()
            && d.len() == sums.len()
    );
    // SAFETY: the CPU supports AVX2, FMA and F16C (asserted above).
    unsafe { quantize_impl(x, qs, d, sums) }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn quantize_impl(x: &[f32], qs: &mut [i8], d: &mut [f16], sums: &mut [i32]) {
    let sign = _mm256_set1_ps(-0.0);
    let xs = x.as_chunks::<BLOCK>().0;
    let qs = qs.as_chunks_mut::<BLOCK>().0;
    for (((xb, qb), db), sb) in xs.iter().zip(qs).zip(d).zip(sums) {
        let p = xb.as_ptr();
        // SAFETY: xb holds 32 f32s; 8i + 8 <= 32.
        let v: [__m256; 4] =
            crate::arr::build(|i| unsafe { _mm256_loadu_ps(p.add(8 * i)) });
        let mut amax = _mm256_andnot_ps(sign, v[0]);
        for vi in &v[1..] {
            amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, *vi));
        }
        let m = _mm_max_ps(
            _mm256_castps256_ps128(amax),
            _mm256_extractf128_ps::<1>(amax),
        );
        let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        let m = _mm_max_ss(m, _mm_movehdup_ps(m));
        let scale = _mm_cvtss_f32(m) / 127.0;
        let id = if scale != 0.0 { 1.0 / scale } else { 0.0 };
        *db = f16::from_f32(scale);
        let idv = _mm256_set1_ps(id);
        let q: [__m256i; 4] =
            crate::arr::build(|i| round_away(_mm256_mul_ps(v[i], idv)));
        let s = _mm256_add_epi32(
            _mm256_add_epi32(q[0], q[1]),
            _mm256_add_epi32(q[2], q[3]),
        );
        let s = _mm_add_epi32(
            _mm256_castsi256_si128(s),
            _mm256_extracti128_si256::<1>(s),
        );
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
        *sb = _mm_cvtsi128_si32(s);
        // packs interleave 128-bit lanes; the permute restores order.
        let a = _mm256_packs_epi32(q[0], q[1]);
        let b = _mm256_packs_epi32(q[2], q[3]);
        let c = _mm256_packs_epi16(a, b);
        let c = _mm256_permutevar8x32_epi32(
            c,
            _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7),
        );
        // SAFETY: qb holds 32 bytes.
        unsafe { _mm256_storeu_si256(qb.as_mut_ptr().cast::<__m256i>(), c) };
    }
}

/// `roundf` (ties away from zero) then Rust's saturating `as i8` rules
/// (NaN to 0, clamp to -128..=127), as i32 lanes.
#[inline(always)]
fn round_away(y: __m256) -> __m256i {
    // SAFETY: callers run with AVX2 enabled (inlined into
    // `quantize_impl`); no memory is touched.
    unsafe {
        let sign = _mm256_set1_ps(-0.0);
        let t =
            _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(y);
        // y - trunc(y) is exact; round away when its magnitude is >= 0.5.
        let frac = _mm256_andnot_ps(sign, _mm256_sub_ps(y, t));
        let up = _mm256_cmp_ps::<_CMP_GE_OQ>(frac, _mm256_set1_ps(0.5));
        let one = _mm256_or_ps(_mm256_set1_ps(1.0), _mm256_and_ps(y, sign));
        let r = _mm256_add_ps(t, _mm256_and_ps(up, one));
        let r = _mm256_and_ps(r, _mm256_cmp_ps::<_CMP_ORD_Q>(r, r));
        let r = _mm256_min_ps(
            _mm256_max_ps(r, _mm256_set1_ps(-128.0)),
            _mm256_set1_ps(127.0),
        );
        _mm256_cvttps_epi32(r)
    }
}
