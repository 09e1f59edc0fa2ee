//! AVX-512 VNNI Q4_K/Q6_K kernels: a 64-byte line (a dword of each of 16
//! rows) is one zmm, and `vpdpbusd` multiplies it with a broadcast dword of
//! 4 activation codes into one i32 sum per row.
//!
//! The algorithm is the AVX2 one (see [`super::avx2`]) with the i16 steps
//! replaced by exact i32 ones:
//!
//! ```text
//! Q4_K: per sub-block pair c:
//!           lo = sum_u dpbusd(line[8c+u] & 15, bcast(x[64c+4u ..]))
//!           hi = sum_u dpbusd(line[8c+u] >> 4 & 15, bcast(x[64c+32+4u ..]))
//!           S += lo * sc_2c + hi * sc_2c+1                       (vpmulld)
//!       (|lo|, |hi| <= 32 * 15 * 127 = 60960; |S| <= 8 * 63 * 60960)
//!       M = sum_i dpwssd((m_2i, m_2i+1), bcast(sums32[2i], sums32[2i+1]))
//! Q6_K: per half hh, sub-block quarter sb, column group g (codes c_g
//!       unpacked from the triplets as in AVX2):
//!           acc_g = sum_{q in 4sb..4sb+4} dpbusd(c_g(q), bcast(x[128hh+32g+4q ..]))
//!       (|acc_g| <= 16 * 63 * 127 = 128016)
//!           S += acc_g * sc_(8hh+2g+sb)                          (vpmulld)
//!       S -= 32 * sum_i dpwssd((sc_2i, sc_2i+1), bcast(bsums[2i], bsums[2i+1]))
//! then per row lane, as the scalar twin:
//!     acc = acc + (f32(d) * d_x) * f32(S)   [Q4_K: acc = acc - (f32(dmin) * d_x) * f32(M)]
//! ```
//!
//! GEMV walks [`GEMV_PANELS`] panels at once and takes the sums of `G`
//! chunks per pass (each broadcast activation feeds `G` chunks); GEMM
//! tiles are 1 panel x [`GEMM_TOKENS`] tokens.
//!
//! The machine this was written on had no AVX-512, so this file has not
//! been executed: it mirrors the tested AVX2 kernel (the same generic tile,
//! a whole 16-row chunk in place of a row half) step for step, and its
//! integer steps replace AVX2's with exact wider ones.

// Tile loops index several arrays by the same (panel, token, half, group)
// indices, as in the pseudo-code above.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;
use std::ops::Range;

use super::Job;
use super::layout::{
    BLOCK, Half16, KBlock, Kind, Line, PANEL_ROWS, Q4K_SCALE_LINES,
    Q6K_SCALE_LINES,
};

/// Panels per GEMV step.
pub(crate) const GEMV_PANELS: usize = 4;
/// Tokens per GEMM tile.
pub(crate) const GEMM_TOKENS: usize = 4;

/// Computes panels `panels` for every token of `job`.
pub(crate) fn gemm<B: KBlock>(job: &Job<'_, B>, panels: Range<usize>) {
    assert!(crate::isa::SimdLevel::Avx512.is_available());
    // SAFETY: the CPU supports AVX-512 F/BW/VL/DQ + VNNI (asserted above).
    unsafe { gemm_impl(job, panels) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
fn gemm_impl<B: KBlock>(job: &Job<'_, B>, panels: Range<usize>) {
    let n = job.a.n();
    let mut p = panels.start;
    if n == 1 {
        while p + GEMV_PANELS <= panels.end {
            match B::KIND {
                Kind::Q4K => tile::<B, GEMV_PANELS, 4, 1>(job, p, 0),
                Kind::Q6K => tile::<B, GEMV_PANELS, 2, 1>(job, p, 0),
            }
            p += GEMV_PANELS;
        }
        while p < panels.end {
            tile::<B, 1, 1, 1>(job, p, 0);
            p += 1;
        }
        return;
    }
    for p in panels {
        let mut t = 0;
        while t < n {
            match n - t {
                1 => tile::<B, 1, 1, 1>(job, p, t),
                2 => tile::<B, 1, 1, 2>(job, p, t),
                3 => tile::<B, 1, 1, 3>(job, p, t),
                _ => tile::<B, 1, 1, GEMM_TOKENS>(job, p, t),
            }
            t += GEMM_TOKENS;
        }
    }
}

/// Panels `p0..p0+P` x tokens `t0..t0+T` (clipped to `n`), their integer
/// sums taken `G` chunks at a time (every loaded activation feeds `G x T`
/// accumulators).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
fn tile<B: KBlock, const P: usize, const G: usize, const T: usize>(
    job: &Job<'_, B>,
    p0: usize,
    t0: usize,
) {
    const { assert!(G > 0 && P.is_multiple_of(G)) };
    let nt = (job.a.n() - t0).min(T);
    // Tokens past n repeat the last one (their results are not stored).
    let tok: [usize; T] = crate::arr::build(|i| t0 + i.min(nt - 1));
    let x: [&[[i8; BLOCK]]; T] =
        crate::arr::build(|i| job.a.row(tok[i]).as_chunks::<BLOCK>().0);
    let dx: [&[f32]; T] = crate::arr::build(|i| job.a.scales(tok[i]));
    let mut facc = [[_mm512_setzero_ps(); T]; P];
    for b in 0..job.w.blocks() {
        let xb: [&[i8; BLOCK]; T] = crate::arr::build(|i| &x[i][b]);
        let dxv: [__m512; T] = crate::arr::build(|i| _mm512_set1_ps(dx[i][b]));
        for g0 in (0..P).step_by(G) {
            let chunks: [&[Line]; G] =
                crate::arr::build(|i| job.w.chunk(p0 + g0 + i, b));
            let halves: [&[Half16]; G] =
                crate::arr::build(|i| job.w.halves(p0 + g0 + i, b));
            match B::KIND {
                Kind::Q4K => {
                    let s32: [&[i16]; T] = crate::arr::build(|i| {
                        &job.a.sums32(tok[i])[8 * b..8 * b + 8]
                    });
                    let (s, m) = q4k_sums::<G, T>(&chunks, &xb, &s32);
                    for (i, hv) in halves.iter().enumerate() {
                        let d = widen(&hv[0]);
                        let dmin = widen(&hv[1]);
                        for ti in 0..T {
                            let ds = _mm512_mul_ps(d, dxv[ti]);
                            let dm = _mm512_mul_ps(dmin, dxv[ti]);
                            let f = &mut facc[g0 + i][ti];
                            let sf = _mm512_cvtepi32_ps(s[i][ti]);
                            *f = _mm512_add_ps(*f, _mm512_mul_ps(ds, sf));
                            let mf = _mm512_cvtepi32_ps(m[i][ti]);
                            *f = _mm512_sub_ps(*f, _mm512_mul_ps(dm, mf));
                        }
                    }
                }
                Kind::Q6K => {
                    let bs: [&[i16]; T] = crate::arr::build(|i| {
                        &job.a.bsums(tok[i])[16 * b..16 * b + 16]
                    });
                    let s = q6k_sums::<G, T>(&chunks, &xb, &bs);
                    for (i, hv) in halves.iter().enumerate() {
                        let d = widen(&hv[0]);
                        for ti in 0..T {
                            let ds = _mm512_mul_ps(d, dxv[ti]);
                            let f = &mut facc[g0 + i][ti];
                            let sf = _mm512_cvtepi32_ps(s[i][ti]);
                            *f = _mm512_add_ps(*f, _mm512_mul_ps(ds, sf));
                        }
                    }
                }
            }
        }
    }
    for pi in 0..P {
        for ti in 0..nt {
            let mut out = [0f32; PANEL_ROWS];
            // SAFETY: out holds 16 f32s.
            unsafe { _mm512_storeu_ps(out.as_mut_ptr(), facc[pi][ti]) };
            job.store(p0 + pi, t0 + ti, &out);
        }
    }
}

/// A whole line: a dword of each of 16 rows.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
#[inline]
fn load(line: &Line) -> __m512i {
    // SAFETY: a Line is 64 bytes and 64-byte aligned.
    unsafe { _mm512_load_si512(line.0.as_ptr().cast()) }
}

/// 16 f16 scales widened to f32 (exact).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
#[inline]
fn widen(v: &Half16) -> __m512 {
    // SAFETY: a Half16 is 32 bytes and 32-byte aligned.
    _mm512_cvtph_ps(unsafe { _mm256_load_si256(v.0.as_ptr().cast()) })
}

/// The 4 codes of quad `i` (columns 4i..4i+4) as one dword.
#[inline(always)]
fn quad(xb: &[i8; BLOCK], i: usize) -> i32 {
    let q = xb.as_chunks::<4>().0[i];
    i32::from_le_bytes([q[0] as u8, q[1] as u8, q[2] as u8, q[3] as u8])
}

/// `s[2i]` and `s[2i + 1]` as the two i16 of one dword.
#[inline(always)]
fn pair(s: &[i16], i: usize) -> i32 {
    (s[2 * i] as u16 as u32 | ((s[2 * i + 1] as u16 as u32) << 16)) as i32
}

/// A `vpshufb` control repeating a 4-byte pattern over the dwords of all
/// four 128-bit lanes; entries `< 0` give zero bytes, the others index a
/// byte of the same dword.
const fn ctrl(pat: [i8; 4]) -> [i8; 64] {
    let mut out = [0i8; 64];
    let mut i = 0;
    while i < 64 {
        let p = pat[i % 4];
        out[i] = if p < 0 { -128 } else { p + 4 * ((i % 16) / 4) as i8 };
        i += 1;
    }
    out
}

/// Byte `e` of each dword as the dword, zero-extended.
const REP32: [[i8; 64]; 4] = [
    ctrl([0, -1, -1, -1]),
    ctrl([1, -1, -1, -1]),
    ctrl([2, -1, -1, -1]),
    ctrl([3, -1, -1, -1]),
];
/// Byte `e` of each dword into its top byte (for `>> 24`).
const REP32_TOP: [[i8; 64]; 4] = [
    ctrl([-1, -1, -1, 0]),
    ctrl([-1, -1, -1, 1]),
    ctrl([-1, -1, -1, 2]),
    ctrl([-1, -1, -1, 3]),
];
/// Bytes `2k`, `2k+1` of each dword into its two i16, zero-extended.
const PAIR_LO: [[i8; 64]; 2] = [ctrl([0, -1, 1, -1]), ctrl([2, -1, 3, -1])];
/// Bytes `2k`, `2k+1` into the high bytes of the two i16 (for `>> 8`).
const PAIR_HI: [[i8; 64]; 2] = [ctrl([-1, 0, -1, 1]), ctrl([-1, 2, -1, 3])];

/// `vpshufb` of `v` by a control table.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
#[inline]
fn shuf(v: __m512i, c: &[i8; 64]) -> __m512i {
    // SAFETY: c is 64 bytes; the load is unaligned.
    _mm512_shuffle_epi8(v, unsafe { _mm512_loadu_si512(c.as_ptr().cast()) })
}

/// The top 2 bits of each byte of `u`, moved to bits 4..6:
/// `((u >> 6) & 3) << 4` per byte.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
#[inline]
fn top2(u: __m512i) -> __m512i {
    let k03 = _mm512_set1_epi8(0x03);
    _mm512_slli_epi32::<4>(_mm512_and_si512(_mm512_srli_epi32::<6>(u), k03))
}

/// The packed 6-bit scales and mins of a Q4_K chunk, unpacked by ggml's
/// kmask steps on the three dwords of each row: `(sc03, sc47, mn03,
/// mn47)`, byte `j` of a row's dword holding sub-block `j` (`4 + j`).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
#[inline]
fn q4k_scales(lines: &[Line]) -> [__m512i; 4] {
    let k3f = _mm512_set1_epi8(0x3f);
    let k0f = _mm512_set1_epi8(0x0f);
    let u0 = load(&lines[0]);
    let u1 = load(&lines[1]);
    let u2 = load(&lines[2]);
    let sc03 = _mm512_and_si512(u0, k3f);
    let mn03 = _mm512_and_si512(u1, k3f);
    let sc47 = _mm512_or_si512(_mm512_and_si512(u2, k0f), top2(u0));
    let mn47 = _mm512_or_si512(
        _mm512_and_si512(_mm512_srli_epi32::<4>(u2), k0f),
        top2(u1),
    );
    [sc03, sc47, mn03, mn47]
}

/// Exact `S` and `M` (see the module doc) of `G` Q4_K chunks for `T`
/// tokens.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
#[inline]
fn q4k_sums<const G: usize, const T: usize>(
    chunks: &[&[Line]; G],
    xb: &[&[i8; BLOCK]; T],
    sums32: &[&[i16]; T],
) -> ([[__m512i; T]; G], [[__m512i; T]; G]) {
    let k0f = _mm512_set1_epi8(0x0f);
    let scales: [[__m512i; 4]; G] =
        crate::arr::build(|r| q4k_scales(chunks[r]));
    let mut mins = [[_mm512_setzero_si512(); T]; G];
    for r in 0..G {
        let [_, _, mn03, mn47] = scales[r];
        let mp = [
            shuf(mn03, &PAIR_LO[0]),
            shuf(mn03, &PAIR_LO[1]),
            shuf(mn47, &PAIR_LO[0]),
            shuf(mn47, &PAIR_LO[1]),
        ];
        for (ti, m) in mins[r].iter_mut().enumerate() {
            for (i, mpi) in mp.iter().enumerate() {
                let xs = _mm512_set1_epi32(pair(sums32[ti], i));
                *m = _mm512_dpwssd_epi32(*m, *mpi, xs);
            }
        }
    }
    let mut s = [[_mm512_setzero_si512(); T]; G];
    for c in 0..4 {
        let mut lo32 = [[_mm512_setzero_si512(); T]; G];
        let mut hi32 = [[_mm512_setzero_si512(); T]; G];
        for u in 0..8 {
            let al: [__m512i; T] = crate::arr::build(|ti| {
                _mm512_set1_epi32(quad(xb[ti], 16 * c + u))
            });
            let ah: [__m512i; T] = crate::arr::build(|ti| {
                _mm512_set1_epi32(quad(xb[ti], 16 * c + 8 + u))
            });
            for r in 0..G {
                let w = load(&chunks[r][Q4K_SCALE_LINES + 8 * c + u]);
                let lo = _mm512_and_si512(w, k0f);
                let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(w), k0f);
                for ti in 0..T {
                    lo32[r][ti] = _mm512_dpbusd_epi32(lo32[r][ti], lo, al[ti]);
                    hi32[r][ti] = _mm512_dpbusd_epi32(hi32[r][ti], hi, ah[ti]);
                }
            }
        }
        for r in 0..G {
            let src = scales[r][c / 2];
            let sl = shuf(src, &REP32[(2 * c) % 4]);
            let sh = shuf(src, &REP32[(2 * c + 1) % 4]);
            for ti in 0..T {
                let v = _mm512_add_epi32(
                    _mm512_mullo_epi32(lo32[r][ti], sl),
                    _mm512_mullo_epi32(hi32[r][ti], sh),
                );
                s[r][ti] = _mm512_add_epi32(s[r][ti], v);
            }
        }
    }
    (s, mins)
}

/// Exact `S` (see the module doc) of `G` Q6_K chunks for `T` tokens.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
#[inline]
fn q6k_sums<const G: usize, const T: usize>(
    chunks: &[&[Line]; G],
    xb: &[&[i8; BLOCK]; T],
    bsums: &[&[i16]; T],
) -> [[__m512i; T]; G] {
    let k3f = _mm512_set1_epi8(0x3f);
    let kc0 = _mm512_set1_epi8(0xc0u8 as i8);
    let sl: [[__m512i; 4]; G] =
        crate::arr::build(|r| crate::arr::build(|i| load(&chunks[r][i])));
    // sum_j sc_j * bsums[j], the code offset (times 32 below).
    let mut off = [[_mm512_setzero_si512(); T]; G];
    for r in 0..G {
        for i in 0..8 {
            let sp =
                _mm512_srai_epi16::<8>(shuf(sl[r][i / 2], &PAIR_HI[i % 2]));
            for (ti, o) in off[r].iter_mut().enumerate() {
                let xs = _mm512_set1_epi32(pair(bsums[ti], i));
                *o = _mm512_dpwssd_epi32(*o, sp, xs);
            }
        }
    }
    let mut s = [[_mm512_setzero_si512(); T]; G];
    for hh in 0..2 {
        for sb in 0..2 {
            let mut acc = [[[_mm512_setzero_si512(); 4]; T]; G];
            for q in 4 * sb..4 * sb + 4 {
                let xv: [[__m512i; 4]; T] = crate::arr::build(|ti| {
                    crate::arr::build(|g| {
                        _mm512_set1_epi32(quad(xb[ti], 32 * hh + 8 * g + q))
                    })
                });
                for r in 0..G {
                    let t0 = Q6K_SCALE_LINES + 3 * (8 * hh + q);
                    let l0 = load(&chunks[r][t0]);
                    let l1 = load(&chunks[r][t0 + 1]);
                    let l2 = load(&chunks[r][t0 + 2]);
                    // c3: (l & 0xc0) >> s per byte; after the mask the
                    // 16-bit shift brings no bits across bytes.
                    let c = [
                        _mm512_and_si512(l0, k3f),
                        _mm512_and_si512(l1, k3f),
                        _mm512_and_si512(l2, k3f),
                        _mm512_or_si512(
                            _mm512_or_si512(
                                _mm512_srli_epi16::<6>(_mm512_and_si512(
                                    l0, kc0,
                                )),
                                _mm512_srli_epi16::<4>(_mm512_and_si512(
                                    l1, kc0,
                                )),
                            ),
                            _mm512_srli_epi16::<2>(_mm512_and_si512(l2, kc0)),
                        ),
                    ];
                    for ti in 0..T {
                        for g in 0..4 {
                            acc[r][ti][g] = _mm512_dpbusd_epi32(
                                acc[r][ti][g],
                                c[g],
                                xv[ti][g],
                            );
                        }
                    }
                }
            }
            for r in 0..G {
                for g in 0..4 {
                    let j = 8 * hh + 2 * g + sb;
                    let sc = _mm512_srai_epi32::<24>(shuf(
                        sl[r][j / 4],
                        &REP32_TOP[j % 4],
                    ));
                    for ti in 0..T {
                        let v = _mm512_mullo_epi32(acc[r][ti][g], sc);
                        s[r][ti] = _mm512_add_epi32(s[r][ti], v);
                    }
                }
            }
        }
    }
    crate::arr::build(|r| {
        crate::arr::build(|ti| {
            _mm512_sub_epi32(s[r][ti], _mm512_slli_epi32::<5>(off[r][ti]))
        })
    })
}
