//! AVX-512 VNNI Q8_0/Q4_0/Q4_1/Q5_0 kernels: one `vpdpbusd` multiplies a whole
//! 64-byte line (16 rows x 4 unsigned codes) with a broadcast dword of 4
//! activation codes. Same algorithm and float order as [`super::avx2`],
//! with one vector per panel instead of two halves.
//!
//! ```text
//! Q4_0: acc = -8 * sum(x_b)
//!       for v in 0..4:  acc  = dpbusd(acc,  line[v] & 15,        bcast(x[4v..]))
//!                       acc' = dpbusd(acc', (line[v] >> 4) & 15, bcast(x[16+4v..]))
//! Q8_0: acc = -128 * sum(x_b)                      (lines hold code + 128)
//!       for j in 0..8:  acc[j & 1] = dpbusd(acc[j & 1], line[j], bcast(x[4j..]))
//! Q4_1: as Q4_0 with acc = 0
//! Q5_0: acc = -16 * sum(x_b); hs = line[4] << 4, hh = line[4]
//!       for v in 0..4:  acc  = dpbusd(acc,  (line[v] & 15) | (hs & 16),        bcast(x[4v..]))
//!                       acc' = dpbusd(acc', ((line[v] >> 4) & 15) | (hh & 16), bcast(x[16+4v..]))
//!                       hs >>= 1, hh >>= 1
//! isum = acc + acc';  acc_f = fma(f32(isum), f32(d_w) * d_x, acc_f)
//! Q4_1 also:          acc_f = fma(f32(sum(x_b)), f32(m_w) * d_x, acc_f)
//! ```
//!
//! Small tiles use two accumulators per (panel, token) so that enough
//! `vpdpbusd` dependency chains overlap (latency about 5, two per cycle);
//! big tiles have enough chains already and would run out of registers.
//! Integer addition is exact, so this does not change results.

use std::arch::x86_64::*;
use std::ops::Range;

use super::layout::{BLOCK, Kind, Line, PANEL_ROWS, Scales16};
use super::{Job, QBlock};

/// Panels per GEMV step (4 read streams, 8 dpbusd chains).
pub(crate) const GEMV_PANELS: usize = 4;
/// Panels per GEMM tile.
pub(crate) const GEMM_PANELS: usize = 2;
/// Tokens per GEMM tile.
pub(crate) const GEMM_TOKENS: usize = 6;

/// Computes panels `panels` for every token of `job`.
pub(crate) fn gemm<B: QBlock>(job: &Job<'_, B>, panels: Range<usize>) {
    assert!(crate::isa::SimdLevel::Avx512.is_available());
    // SAFETY: the CPU supports AVX-512 F/BW/VL/DQ + VNNI (asserted above).
    unsafe { gemm_impl(job, panels) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
fn gemm_impl<B: QBlock>(job: &Job<'_, B>, panels: Range<usize>) {
    let n = job.a.n();
    let mut p = panels.start;
    if n == 1 {
        while p + GEMV_PANELS <= panels.end {
            tile::<B, GEMV_PANELS, 1>(job, p, 0);
            p += GEMV_PANELS;
        }
        while p < panels.end {
            tile::<B, 1, 1>(job, p, 0);
            p += 1;
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

/// All tokens for panels `p..p+P`, in tiles of up to [`GEMM_TOKENS`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
fn tokens<B: QBlock, const P: usize>(job: &Job<'_, B>, p: usize, n: usize) {
    let mut t = 0;
    while t < n {
        match n - t {
            1 => tile::<B, P, 1>(job, p, t),
            2 => tile::<B, P, 2>(job, p, t),
            3 => tile::<B, P, 3>(job, p, t),
            4 => tile::<B, P, 4>(job, p, t),
            5 => tile::<B, P, 5>(job, p, t),
            _ => tile::<B, P, GEMM_TOKENS>(job, p, t),
        }
        t += GEMM_TOKENS;
    }
}

/// Panels `p0..p0+P` x tokens `t0..t0+T` (clipped to `n`).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
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
    let mut facc = [[_mm512_setzero_ps(); T]; P];
    for b in 0..nb {
        let bl: [&[Line]; P] =
            crate::arr::build(|i| &lines[i][b * B::LINES..(b + 1) * B::LINES]);
        let xb: [&[i8; BLOCK]; T] = crate::arr::build(|i| &xq[i][b]);
        let s: [i32; T] = crate::arr::build(|i| xsum[i][b]);
        let isum = match B::KIND {
            Kind::Q8_0 => isums_q8_0::<P, T>(&bl, &xb, &s),
            Kind::Q4_0 | Kind::Q4_1 => {
                isums_q4::<P, T>(&bl, &xb, &s, B::OFFSET)
            }
            Kind::Q5_0 => isums_q5_0::<P, T>(&bl, &xb, &s),
        };
        let sb = b * B::SCALES;
        let dw: [__m512; P] =
            crate::arr::build(|i| load_scales(&scales[i][sb]));
        for ti in 0..T {
            let dxv = _mm512_set1_ps(dx[ti][b]);
            for pi in 0..P {
                let d = _mm512_mul_ps(dw[pi], dxv);
                let f = _mm512_cvtepi32_ps(isum[pi][ti]);
                facc[pi][ti] = _mm512_fmadd_ps(f, d, facc[pi][ti]);
            }
        }
        if B::SCALES == 2 {
            // Q4_1: + m_w * d_x * sum(code_x), after the block's d term.
            let mw: [__m512; P] =
                crate::arr::build(|i| load_scales(&scales[i][sb + 1]));
            for ti in 0..T {
                let dxv = _mm512_set1_ps(dx[ti][b]);
                let f = _mm512_set1_ps(s[ti] as f32);
                for pi in 0..P {
                    let m = _mm512_mul_ps(mw[pi], dxv);
                    facc[pi][ti] = _mm512_fmadd_ps(f, m, facc[pi][ti]);
                }
            }
        }
    }
    for (pi, tp) in facc.iter().enumerate() {
        for (ti, v) in tp.iter().enumerate().take(nt) {
            let mut out = [0f32; PANEL_ROWS];
            // SAFETY: out holds 16 f32s.
            unsafe { _mm512_storeu_ps(out.as_mut_ptr(), *v) };
            job.store(p0 + pi, t0 + ti, &out);
        }
    }
}

/// 16 rows' f16 scales as f32 (exact).
#[inline(always)]
fn load_scales(s: &Scales16) -> __m512 {
    let sp = s.0.as_ptr().cast::<__m256i>();
    // SAFETY: a Scales16 is 32 bytes, 32-byte aligned; callers run with
    // AVX-512 F enabled (this is inlined into `tile`).
    unsafe { _mm512_cvtph_ps(_mm256_load_si256(sp)) }
}

/// A whole line.
#[inline(always)]
fn load(line: &Line) -> __m512i {
    // SAFETY: a Line is 64 bytes, 64-byte aligned; callers run with
    // AVX-512 F enabled (this is inlined into `tile`).
    unsafe { _mm512_load_si512(line.0.as_ptr().cast()) }
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
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
#[inline]
fn isums_q4<const P: usize, const T: usize>(
    bl: &[&[Line]; P],
    xb: &[&[i8; BLOCK]; T],
    xsum: &[i32; T],
    offset: i32,
) -> [[__m512i; T]; P] {
    let mask = _mm512_set1_epi8(0x0f);
    let split = usize::from(P * T < 8);
    let mut acc = [[[_mm512_setzero_si512(); 2]; T]; P];
    for ti in 0..T {
        let off = _mm512_set1_epi32(-offset * xsum[ti]);
        for a in acc.iter_mut() {
            a[ti][0] = off;
        }
    }
    for v in 0..4 {
        let mut lo = [_mm512_setzero_si512(); P];
        let mut hi = [_mm512_setzero_si512(); P];
        for pi in 0..P {
            let x = load(&bl[pi][v]);
            lo[pi] = _mm512_and_si512(x, mask);
            hi[pi] = _mm512_and_si512(_mm512_srli_epi16::<4>(x), mask);
        }
        for ti in 0..T {
            let xl = _mm512_set1_epi32(quad(xb[ti], v));
            let xh = _mm512_set1_epi32(quad(xb[ti], v + 4));
            for pi in 0..P {
                let a = &mut acc[pi][ti];
                a[0] = _mm512_dpbusd_epi32(a[0], lo[pi], xl);
                a[split] = _mm512_dpbusd_epi32(a[split], hi[pi], xh);
            }
        }
    }
    let mut out = [[_mm512_setzero_si512(); T]; P];
    for pi in 0..P {
        for ti in 0..T {
            out[pi][ti] = _mm512_add_epi32(acc[pi][ti][0], acc[pi][ti][1]);
        }
    }
    out
}

/// Exact integer sums of one Q5_0 block for P panels x T tokens.
// The line index also picks activation quads, so a range loop reads
// best.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
#[inline]
fn isums_q5_0<const P: usize, const T: usize>(
    bl: &[&[Line]; P],
    xb: &[&[i8; BLOCK]; T],
    xsum: &[i32; T],
) -> [[__m512i; T]; P] {
    let mask = _mm512_set1_epi8(0x0f);
    let bit4 = _mm512_set1_epi8(0x10);
    let split = usize::from(P * T < 8);
    let mut hs = [_mm512_setzero_si512(); P];
    let mut hh = [_mm512_setzero_si512(); P];
    for pi in 0..P {
        let w = load(&bl[pi][4]);
        hs[pi] = _mm512_slli_epi16::<4>(w);
        hh[pi] = w;
    }
    let mut acc = [[[_mm512_setzero_si512(); 2]; T]; P];
    for ti in 0..T {
        let off = _mm512_set1_epi32(-16 * xsum[ti]);
        for a in acc.iter_mut() {
            a[ti][0] = off;
        }
    }
    for v in 0..4 {
        let mut lo = [_mm512_setzero_si512(); P];
        let mut hi = [_mm512_setzero_si512(); P];
        for pi in 0..P {
            let x = load(&bl[pi][v]);
            let l = _mm512_and_si512(x, mask);
            let u = _mm512_and_si512(_mm512_srli_epi16::<4>(x), mask);
            lo[pi] = _mm512_or_si512(l, _mm512_and_si512(hs[pi], bit4));
            hi[pi] = _mm512_or_si512(u, _mm512_and_si512(hh[pi], bit4));
            hs[pi] = _mm512_srli_epi16::<1>(hs[pi]);
            hh[pi] = _mm512_srli_epi16::<1>(hh[pi]);
        }
        for ti in 0..T {
            let xl = _mm512_set1_epi32(quad(xb[ti], v));
            let xh = _mm512_set1_epi32(quad(xb[ti], v + 4));
            for pi in 0..P {
                let a = &mut acc[pi][ti];
                a[0] = _mm512_dpbusd_epi32(a[0], lo[pi], xl);
                a[split] = _mm512_dpbusd_epi32(a[split], hi[pi], xh);
            }
        }
    }
    let mut out = [[_mm512_setzero_si512(); T]; P];
    for pi in 0..P {
        for ti in 0..T {
            out[pi][ti] = _mm512_add_epi32(acc[pi][ti][0], acc[pi][ti][1]);
        }
    }
    out
}

/// Exact integer sums of one Q8_0 block for P panels x T tokens.
// The line index also picks activation quads, so a range loop reads
// best.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
#[inline]
fn isums_q8_0<const P: usize, const T: usize>(
    bl: &[&[Line]; P],
    xb: &[&[i8; BLOCK]; T],
    xsum: &[i32; T],
) -> [[__m512i; T]; P] {
    let split = usize::from(P * T < 8);
    let mut acc = [[[_mm512_setzero_si512(); 2]; T]; P];
    for ti in 0..T {
        // Lines hold code + 128: dpbusd adds 128 * sum(x) too much.
        let off = _mm512_set1_epi32(-128 * xsum[ti]);
        for a in acc.iter_mut() {
            a[ti][0] = off;
        }
    }
    for j in 0..8 {
        let mut w = [_mm512_setzero_si512(); P];
        for pi in 0..P {
            w[pi] = load(&bl[pi][j]);
        }
        for ti in 0..T {
            let xv = _mm512_set1_epi32(quad(xb[ti], j));
            for pi in 0..P {
                let a = &mut acc[pi][ti][j & split];
                *a = _mm512_dpbusd_epi32(*a, w[pi], xv);
            }
        }
    }
    let mut out = [[_mm512_setzero_si512(); T]; P];
    for pi in 0..P {
        for ti in 0..T {
            out[pi][ti] = _mm512_add_epi32(acc[pi][ti][0], acc[pi][ti][1]);
        }
    }
    out
}
