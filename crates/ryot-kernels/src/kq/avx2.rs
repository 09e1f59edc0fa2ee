//! AVX2 Q4_K/Q6_K kernels.
//!
//! A 64-byte line (a dword of each of 16 rows) is two 256-bit halves of 8
//! rows; every step below runs on one half. Integer sums per super-block
//! (exact, see [`super`]):
//!
//! ```text
//! Q4_K: unpack the 6-bit scales/mins of 8 rows at once (ggml's kmask
//!       steps on dword lanes), then for each sub-block pair c:
//!           for u in 0..8:  w = line[8c+u];  lo = w & 15, hi = w >> 4 & 15
//!               lo16 += maddubs(lo, bcast(x[64c+4u ..]))
//!               hi16 += maddubs(hi, bcast(x[64c+32+4u ..]))
//!           S += madd(lo16, (sc_2c, sc_2c)) + madd(hi16, (sc_2c+1, sc_2c+1))
//!       (an i16 lane sums 8 pairs of at most 15 * 127: |.| <= 30480)
//!       M = sum_i madd((m_2i, m_2i+1), bcast(sums32[2i], sums32[2i+1]))
//! Q6_K: for each triplet L0, L1, L2 (see [`super::layout`]): the codes
//!       0..64 of 4 column groups g, c_g = L_g & 63 (g < 3) and
//!       c_3 = (L0 & 0xc0) >> 6 | (L1 & 0xc0) >> 4 | (L2 & 0xc0) >> 2, then
//!           acc16[g] += maddubs(c_g, bcast(x[128h+32g+4q ..]))
//!       widened every 2 lines (2 lines x 2 pairs x 63 * 127 = 32004):
//!           S += madd(acc16[g], (sc_j, sc_j))
//!       S -= 32 * sum_i madd((sc_2i, sc_2i+1), bcast(bsums[2i], bsums[2i+1]))
//! then per row lane, as the scalar twin:
//!     acc = acc + (f32(d) * d_x) * f32(S)   [Q4_K: acc = acc - (f32(dmin) * d_x) * f32(M)]
//! ```
//!
//! GEMV (`n == 1`) walks [`GEMV_PANELS`] panels at once (that many
//! concurrent row streams); Q4_K takes the sums of all their row halves in
//! one pass, so each broadcast activation feeds 4 row halves (Q6_K, with
//! 4 accumulators per row half, one row half at a time: measured faster).
//! GEMM tiles are 1 panel x [`GEMM_TOKENS`] tokens, so each loaded and
//! unpacked weight vector feeds several tokens. (Software prefetching was
//! measured slower than the hardware prefetchers here.)

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
pub(crate) const GEMV_PANELS: usize = 2;
/// Tokens per GEMM tile.
pub(crate) const GEMM_TOKENS: usize = 4;

/// Computes panels `panels` for every token of `job`.
pub(crate) fn gemm<B: KBlock>(job: &Job<'_, B>, panels: Range<usize>) {
    assert!(crate::isa::SimdLevel::Avx2.is_available());
    // SAFETY: the CPU supports AVX2, FMA and F16C (asserted above).
    unsafe { gemm_impl(job, panels) }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn gemm_impl<B: KBlock>(job: &Job<'_, B>, panels: Range<usize>) {
    let n = job.a.n();
    let mut p = panels.start;
    if n == 1 {
        while p + GEMV_PANELS <= panels.end {
            match B::KIND {
                Kind::Q4K => tile::<B, { 2 * GEMV_PANELS }, 4, 1>(job, p, 0),
                Kind::Q6K => tile::<B, { 2 * GEMV_PANELS }, 1, 1>(job, p, 0),
            }
            p += GEMV_PANELS;
        }
        while p < panels.end {
            tile::<B, 2, 2, 1>(job, p, 0);
            p += 1;
        }
        return;
    }
    for p in panels {
        let mut t = 0;
        while t < n {
            match n - t {
                1 => tile::<B, 2, 2, 1>(job, p, t),
                2 => tile::<B, 2, 1, 2>(job, p, t),
                3 => tile::<B, 2, 1, 3>(job, p, t),
                _ => tile::<B, 2, 1, GEMM_TOKENS>(job, p, t),
            }
            t += GEMM_TOKENS;
        }
    }
}

/// A row half: 8 rows (half `h` of the lines) of one chunk.
type Half<'a> = (&'a [Line], usize);

/// The `R` row halves of panels `p0..p0+R/2` x tokens `t0..t0+T` (clipped
/// to `n`), their integer sums taken `G` row halves at a time (every
/// loaded activation feeds `G x T` accumulators).
#[target_feature(enable = "avx2,fma,f16c")]
fn tile<B: KBlock, const R: usize, const G: usize, const T: usize>(
    job: &Job<'_, B>,
    p0: usize,
    t0: usize,
) {
    const { assert!(R.is_multiple_of(2) && G > 0 && R.is_multiple_of(G)) };
    let nt = (job.a.n() - t0).min(T);
    // Tokens past n repeat the last one (their results are not stored).
    let tok: [usize; T] = crate::arr::build(|i| t0 + i.min(nt - 1));
    let x: [&[[i8; BLOCK]]; T] =
        crate::arr::build(|i| job.a.row(tok[i]).as_chunks::<BLOCK>().0);
    let dx: [&[f32]; T] = crate::arr::build(|i| job.a.scales(tok[i]));
    let mut facc = [[_mm256_setzero_ps(); T]; R];
    for b in 0..job.w.blocks() {
        let xb: [&[i8; BLOCK]; T] = crate::arr::build(|i| &x[i][b]);
        let dxv: [__m256; T] = crate::arr::build(|i| _mm256_set1_ps(dx[i][b]));
        for g0 in (0..R).step_by(G) {
            let rows: [Half<'_>; G] = crate::arr::build(|i| {
                (job.w.chunk(p0 + (g0 + i) / 2, b), (g0 + i) % 2)
            });
            let halves: [Half16Ref<'_>; G] = crate::arr::build(|i| {
                (job.w.halves(p0 + (g0 + i) / 2, b), (g0 + i) % 2)
            });
            match B::KIND {
                Kind::Q4K => {
                    let s32: [&[i16]; T] = crate::arr::build(|i| {
                        &job.a.sums32(tok[i])[8 * b..8 * b + 8]
                    });
                    let (s, m) = q4k_sums::<G, T>(&rows, &xb, &s32);
                    for (i, &(hv, h)) in halves.iter().enumerate() {
                        let d = widen(&hv[0], h);
                        let dmin = widen(&hv[1], h);
                        for ti in 0..T {
                            let ds = _mm256_mul_ps(d, dxv[ti]);
                            let dm = _mm256_mul_ps(dmin, dxv[ti]);
                            let f = &mut facc[g0 + i][ti];
                            let sf = _mm256_cvtepi32_ps(s[i][ti]);
                            *f = _mm256_add_ps(*f, _mm256_mul_ps(ds, sf));
                            let mf = _mm256_cvtepi32_ps(m[i][ti]);
                            *f = _mm256_sub_ps(*f, _mm256_mul_ps(dm, mf));
                        }
                    }
                }
                Kind::Q6K => {
                    let bs: [&[i16]; T] = crate::arr::build(|i| {
                        &job.a.bsums(tok[i])[16 * b..16 * b + 16]
                    });
                    let s = q6k_sums::<G, T>(&rows, &xb, &bs);
                    for (i, &(hv, h)) in halves.iter().enumerate() {
                        let d = widen(&hv[0], h);
                        for ti in 0..T {
                            let ds = _mm256_mul_ps(d, dxv[ti]);
                            let f = &mut facc[g0 + i][ti];
                            let sf = _mm256_cvtepi32_ps(s[i][ti]);
                            *f = _mm256_add_ps(*f, _mm256_mul_ps(ds, sf));
                        }
                    }
                }
            }
        }
    }
    for pi in 0..R / 2 {
        for ti in 0..nt {
            let mut out = [0f32; PANEL_ROWS];
            // SAFETY: out holds 16 f32s.
            unsafe {
                _mm256_storeu_ps(out.as_mut_ptr(), facc[2 * pi][ti]);
                _mm256_storeu_ps(out.as_mut_ptr().add(8), facc[2 * pi + 1][ti]);
            }
            job.store(p0 + pi, t0 + ti, &out);
        }
    }
}

/// The f16 scales of a row half: the chunk's scales and the half.
type Half16Ref<'a> = (&'a [Half16], usize);

/// Half `h` (rows 8h..8h+8) of a line: a dword per row.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn load_half(line: &Line, h: usize) -> __m256i {
    assert!(h < 2);
    // SAFETY: a Line is 64 bytes, 64-byte aligned, and h < 2, so the
    // 32-byte half is aligned and in bounds.
    unsafe { _mm256_load_si256(line.0.as_ptr().cast::<__m256i>().add(h)) }
}

/// Half `h` of 16 f16 scales, widened to f32 (exact).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn widen(v: &Half16, h: usize) -> __m256 {
    assert!(h < 2);
    // SAFETY: a Half16 is 32 bytes, 32-byte aligned, and h < 2, so the
    // 16-byte half is aligned and in bounds.
    _mm256_cvtph_ps(unsafe {
        _mm_load_si128(v.0.as_ptr().cast::<__m128i>().add(h))
    })
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

/// A `vpshufb` control repeating a 4-byte pattern over the dwords of both
/// 128-bit lanes; entries `< 0` give zero bytes, the others index a byte of
/// the same dword.
const fn ctrl(pat: [i8; 4]) -> [i8; 32] {
    let mut out = [0i8; 32];
    let mut i = 0;
    while i < 32 {
        let p = pat[i % 4];
        out[i] = if p < 0 { -128 } else { p + 4 * ((i % 16) / 4) as i8 };
        i += 1;
    }
    out
}

/// Byte `e` of each dword into both i16 of the dword, zero-extended.
const REP_LO: [[i8; 32]; 4] = [
    ctrl([0, -1, 0, -1]),
    ctrl([1, -1, 1, -1]),
    ctrl([2, -1, 2, -1]),
    ctrl([3, -1, 3, -1]),
];
/// Byte `e` of each dword into the high bytes of both i16 (for `>> 8`).
const REP_HI: [[i8; 32]; 4] = [
    ctrl([-1, 0, -1, 0]),
    ctrl([-1, 1, -1, 1]),
    ctrl([-1, 2, -1, 2]),
    ctrl([-1, 3, -1, 3]),
];
/// Bytes `2k`, `2k+1` of each dword into its two i16, zero-extended.
const PAIR_LO: [[i8; 32]; 2] = [ctrl([0, -1, 1, -1]), ctrl([2, -1, 3, -1])];
/// Bytes `2k`, `2k+1` into the high bytes of the two i16 (for `>> 8`).
const PAIR_HI: [[i8; 32]; 2] = [ctrl([-1, 0, -1, 1]), ctrl([-1, 2, -1, 3])];

/// `vpshufb` of `v` by a control table.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn shuf(v: __m256i, c: &[i8; 32]) -> __m256i {
    // SAFETY: c is 32 bytes; the load is unaligned.
    _mm256_shuffle_epi8(v, unsafe { _mm256_loadu_si256(c.as_ptr().cast()) })
}

/// The top 2 bits of each byte of `u`, moved to bits 4..6:
/// `((u >> 6) & 3) << 4` per byte.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn top2(u: __m256i) -> __m256i {
    let k03 = _mm256_set1_epi8(0x03);
    _mm256_slli_epi32::<4>(_mm256_and_si256(_mm256_srli_epi32::<6>(u), k03))
}

/// The packed 6-bit scales and mins of a Q4_K row half, unpacked by
/// ggml's kmask steps on the three dwords of each row: `(sc03, sc47,
/// mn03, mn47)`, byte `j` of a row's dword holding sub-block `j` (`4 + j`).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn q4k_scales(lines: &[Line], h: usize) -> [__m256i; 4] {
    let k3f = _mm256_set1_epi8(0x3f);
    let k0f = _mm256_set1_epi8(0x0f);
    let u0 = load_half(&lines[0], h);
    let u1 = load_half(&lines[1], h);
    let u2 = load_half(&lines[2], h);
    let sc03 = _mm256_and_si256(u0, k3f);
    let mn03 = _mm256_and_si256(u1, k3f);
    let sc47 = _mm256_or_si256(_mm256_and_si256(u2, k0f), top2(u0));
    let mn47 = _mm256_or_si256(
        _mm256_and_si256(_mm256_srli_epi32::<4>(u2), k0f),
        top2(u1),
    );
    [sc03, sc47, mn03, mn47]
}

/// Exact `S` and `M` (see the module doc) of `G` Q4_K row halves for `T`
/// tokens.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn q4k_sums<const G: usize, const T: usize>(
    rows: &[Half<'_>; G],
    xb: &[&[i8; BLOCK]; T],
    sums32: &[&[i16]; T],
) -> ([[__m256i; T]; G], [[__m256i; T]; G]) {
    let k0f = _mm256_set1_epi8(0x0f);
    let scales: [[__m256i; 4]; G] =
        crate::arr::build(|r| q4k_scales(rows[r].0, rows[r].1));
    let mut mins = [[_mm256_setzero_si256(); T]; G];
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
                let xs = _mm256_set1_epi32(pair(sums32[ti], i));
                *m = _mm256_add_epi32(*m, _mm256_madd_epi16(*mpi, xs));
            }
        }
    }
    let mut s = [[_mm256_setzero_si256(); T]; G];
    for c in 0..4 {
        let mut lo16 = [[_mm256_setzero_si256(); T]; G];
        let mut hi16 = [[_mm256_setzero_si256(); T]; G];
        for u in 0..8 {
            let al: [__m256i; T] = crate::arr::build(|ti| {
                _mm256_set1_epi32(quad(xb[ti], 16 * c + u))
            });
            let ah: [__m256i; T] = crate::arr::build(|ti| {
                _mm256_set1_epi32(quad(xb[ti], 16 * c + 8 + u))
            });
            for r in 0..G {
                let (lines, h) = rows[r];
                let w = load_half(&lines[Q4K_SCALE_LINES + 8 * c + u], h);
                let lo = _mm256_and_si256(w, k0f);
                let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(w), k0f);
                for ti in 0..T {
                    let pl = _mm256_maddubs_epi16(lo, al[ti]);
                    let ph = _mm256_maddubs_epi16(hi, ah[ti]);
                    lo16[r][ti] = _mm256_add_epi16(lo16[r][ti], pl);
                    hi16[r][ti] = _mm256_add_epi16(hi16[r][ti], ph);
                }
            }
        }
        for r in 0..G {
            let src = scales[r][c / 2];
            let sl = shuf(src, &REP_LO[(2 * c) % 4]);
            let sh = shuf(src, &REP_LO[(2 * c + 1) % 4]);
            for ti in 0..T {
                let v = _mm256_add_epi32(
                    _mm256_madd_epi16(lo16[r][ti], sl),
                    _mm256_madd_epi16(hi16[r][ti], sh),
                );
                s[r][ti] = _mm256_add_epi32(s[r][ti], v);
            }
        }
    }
    (s, mins)
}

/// Exact `S` (see the module doc) of `G` Q6_K row halves for `T` tokens.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn q6k_sums<const G: usize, const T: usize>(
    rows: &[Half<'_>; G],
    xb: &[&[i8; BLOCK]; T],
    bsums: &[&[i16]; T],
) -> [[__m256i; T]; G] {
    let k3f = _mm256_set1_epi8(0x3f);
    let kc0 = _mm256_set1_epi8(0xc0u8 as i8);
    let sl: [[__m256i; 4]; G] = crate::arr::build(|r| {
        crate::arr::build(|i| load_half(&rows[r].0[i], rows[r].1))
    });
    // sum_j sc_j * bsums[j], the code offset (times 32 below).
    let mut off = [[_mm256_setzero_si256(); T]; G];
    for r in 0..G {
        for i in 0..8 {
            let sp =
                _mm256_srai_epi16::<8>(shuf(sl[r][i / 2], &PAIR_HI[i % 2]));
            for (ti, o) in off[r].iter_mut().enumerate() {
                let xs = _mm256_set1_epi32(pair(bsums[ti], i));
                *o = _mm256_add_epi32(*o, _mm256_madd_epi16(sp, xs));
            }
        }
    }
    // Each sub-block scale in both i16 of each row's dword, sign-extended.
    let scl: [[__m256i; 16]; G] = crate::arr::build(|r| {
        crate::arr::build(|j| {
            _mm256_srai_epi16::<8>(shuf(sl[r][j / 4], &REP_HI[j % 4]))
        })
    });
    let mut s = [[_mm256_setzero_si256(); T]; G];
    for hh in 0..2 {
        for qp in 0..4 {
            let mut acc = [[[_mm256_setzero_si256(); 4]; T]; G];
            for q in 2 * qp..2 * qp + 2 {
                let xv: [[__m256i; 4]; T] = crate::arr::build(|ti| {
                    crate::arr::build(|g| {
                        _mm256_set1_epi32(quad(xb[ti], 32 * hh + 8 * g + q))
                    })
                });
                for r in 0..G {
                    let (lines, h) = rows[r];
                    let t0 = Q6K_SCALE_LINES + 3 * (8 * hh + q);
                    let l0 = load_half(&lines[t0], h);
                    let l1 = load_half(&lines[t0 + 1], h);
                    let l2 = load_half(&lines[t0 + 2], h);
                    // c3: (l & 0xc0) >> s per byte; after the mask the 16-bit shift
                    // brings no bits across bytes.
                    let c = [
                        _mm256_and_si256(l0, k3f),
                        _mm256_and_si256(l1, k3f),
                        _mm256_and_si256(l2, k3f),
                        _mm256_or_si256(
                            _mm256_or_si256(
                                _mm256_srli_epi16::<6>(_mm256_and_si256(
                                    l0, kc0,
                                )),
                                _mm256_srli_epi16::<4>(_mm256_and_si256(
                                    l1, kc0,
                                )),
                            ),
                            _mm256_srli_epi16::<2>(_mm256_and_si256(l2, kc0)),
                        ),
                    ];
                    for ti in 0..T {
                        for g in 0..4 {
                            let p = _mm256_maddubs_epi16(c[g], xv[ti][g]);
                            acc[r][ti][g] = _mm256_add_epi16(acc[r][ti][g], p);
                        }
                    }
                }
            }
            for r in 0..G {
                for g in 0..4 {
                    let j = 8 * hh + 2 * g + qp / 2;
                    let sc = scl[r][j];
                    for ti in 0..T {
                        let v = _mm256_madd_epi16(acc[r][ti][g], sc);
                        s[r][ti] = _mm256_add_epi32(s[r][ti], v);
                    }
                }
            }
        }
    }
    crate::arr::build(|r| {
        crate::arr::build(|ti| {
            _mm256_sub_epi32(s[r][ti], _mm256_slli_epi32::<5>(off[r][ti]))
        })
    })
}
