//! AVX-512 VNNI t2p kernels: one `vpdpbusd` multiplies 16 rows x 4 codes
//! with a broadcast dword of 4 activations.
//!
//! ```text
//! for each block of P panels, each tile of T tokens, each scale group:
//!     acc[p][t] = 0 (i32 x 16 rows)
//!     for each 64-byte line c of the group, for j in 0..4:
//!         w = (line[p] >> 2j) & 3                   // 16 rows x 4 codes
//!         acc[p][t] += dpbusd(w, broadcast(q[t][16c+4j .. +4]))
//!     f[p][t] += (f32(acc - gsum[t][g]) / act_scale[t]) * w_scale[p][g]
//! ```

use std::arch::x86_64::*;
use std::ops::Range;

use super::Job;
use super::layout::{LINE_COLS, Line};

/// Computes panels `panels` for every token of `job`.
pub(crate) fn gemm(job: &Job<'_>, panels: Range<usize>) {
    assert!(crate::isa::SimdLevel::Avx512.is_available());
    // SAFETY: the CPU supports AVX-512 F/BW/VL/DQ + VNNI (asserted above).
    unsafe { gemm_impl(job, panels) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
fn gemm_impl(job: &Job<'_>, panels: Range<usize>) {
    let n = job.a.n();
    if n == 1 {
        let mut p = panels.start;
        while p < panels.end {
            p += match (job.gemv_panels, panels.end - p) {
                (4, 4..) => {
                    tile::<4, 1>(job, p, 0);
                    4
                }
                (2 | 4, 2..) => {
                    tile::<2, 1>(job, p, 0);
                    2
                }
                _ => {
                    tile::<1, 1>(job, p, 0);
                    1
                }
            };
        }
        return;
    }
    for tokens_block in job.token_blocks(6) {
        let mut p = panels.start;
        while p < panels.end {
            if p + 2 <= panels.end {
                tokens::<2>(job, p, tokens_block.clone());
                p += 2;
            } else {
                tokens::<1>(job, p, tokens_block.clone());
                p += 1;
            }
        }
    }
}

/// Tokens `ts` for panels `p..p+P`, in tiles of up to 6 tokens.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
fn tokens<const P: usize>(job: &Job<'_>, p: usize, ts: Range<usize>) {
    let mut t = ts.start;
    while t < ts.end {
        match ts.end - t {
            1 => tile::<P, 1>(job, p, t),
            2 => tile::<P, 2>(job, p, t),
            3 => tile::<P, 3>(job, p, t),
            4 => tile::<P, 4>(job, p, t),
            5 => tile::<P, 5>(job, p, t),
            _ => tile::<P, 6>(job, p, t),
        }
        t += 6;
    }
}

/// Panels `p0..p0+P` x tokens `t0..t0+T` (clipped to `n`).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
fn tile<const P: usize, const T: usize>(job: &Job<'_>, p0: usize, t0: usize) {
    let w = job.w;
    let groups = job.groups();
    let lpg = w.group_cols() / LINE_COLS;
    let nt = (job.a.n() - t0).min(T);
    let panels: [&[Line]; P] = crate::arr::build(|i| w.panel(p0 + i));
    // Rows of q for the tile; tokens past n repeat the last one (their
    // results are not stored).
    let q: [&[i8]; T] = crate::arr::build(|i| job.a.row(t0 + i.min(nt - 1)));
    let mask = _mm512_set1_epi8(3);
    // Single-token tiles (GEMV) mask each quad in place instead of shifting
    // it down: `x & (3 << 2j)` is `4^j * code`, at most 128, still a valid
    // unsigned `vpdpbusd` operand, and quad j gets its own accumulator,
    // shifted back (exactly: it holds a multiple of 4^j) when the group
    // ends. One AND per quad instead of a shift and an AND.
    let quad_masks: [__m512i; 4] =
        crate::arr::build(|j| _mm512_set1_epi8((3u8 << (2 * j)) as i8));
    let mut facc = [[_mm512_setzero_ps(); T]; P];
    for g in 0..groups {
        // Two accumulators per (panel, token) when the tile is small, so
        // enough dpbusd dependency chains overlap (latency 5, two per
        // cycle: about 10 chains in flight); big tiles have enough already.
        // Single-token tiles use four (one per quad, see above).
        let split = usize::from(P * T < 8);
        let mut acc = [[[_mm512_setzero_si512(); 4]; T]; P];
        for c in g * lpg..(g + 1) * lpg {
            if T == 1 && job.prefetch > 0 {
                for lines in &panels {
                    let ahead = lines.as_ptr().wrapping_add(c + job.prefetch);
                    // A prefetch is a hint that never faults, even past the
                    // panel's end (wrapping_add keeps the pointer
                    // arithmetic defined).
                    _mm_prefetch::<_MM_HINT_T0>(ahead.cast());
                }
            }
            let x: [__m512i; P] = crate::arr::build(|i| {
                // SAFETY: `Line` is 64 bytes and 64-byte aligned; c is a
                // line index < chunks since g < groups.
                unsafe { _mm512_load_si512(panels[i][c].0.as_ptr().cast()) }
            });
            for (j, &quad_mask) in quad_masks.iter().enumerate() {
                let wj: [__m512i; P] = crate::arr::build(|i| {
                    if T == 1 {
                        _mm512_and_si512(x[i], quad_mask)
                    } else {
                        unpack(x[i], j, mask)
                    }
                });
                for (ti, qt) in q.iter().enumerate() {
                    let off = c * LINE_COLS + 4 * j;
                    // SAFETY: off + 4 <= k_pad(w) <= qt.len() (activation
                    // rows are padded to a multiple of 64 >= w.k_pad()).
                    let b = _mm512_set1_epi32(unsafe {
                        qt.as_ptr().add(off).cast::<i32>().read_unaligned()
                    });
                    let slot = if T == 1 { j } else { j & split };
                    for pi in 0..P {
                        let a = &mut acc[pi][ti][slot];
                        *a = _mm512_dpbusd_epi32(*a, wj[pi], b);
                    }
                }
            }
        }
        for (ti, _) in q.iter().enumerate() {
            let t = t0 + ti.min(nt - 1);
            let gsum = _mm512_set1_epi32(job.gsums[t * groups + g]);
            let act = _mm512_set1_ps(job.a.scales()[t]);
            for pi in 0..P {
                let [a0, a1, a2, a3] = acc[pi][ti];
                let s = if T == 1 {
                    _mm512_add_epi32(
                        _mm512_add_epi32(a0, _mm512_srai_epi32::<2>(a1)),
                        _mm512_add_epi32(
                            _mm512_srai_epi32::<4>(a2),
                            _mm512_srai_epi32::<6>(a3),
                        ),
                    )
                } else {
                    _mm512_add_epi32(a0, a1)
                };
                let ws = w.group_scales(p0 + pi, g);
                facc[pi][ti] = combine(facc[pi][ti], s, gsum, act, ws);
            }
        }
    }
    for (pi, row) in facc.iter().enumerate() {
        for (ti, v) in row.iter().enumerate().take(nt) {
            store(job, p0 + pi, t0 + ti, *v);
        }
    }
}

/// One group's step of the module formula for 16 rows:
/// `facc + (f32(isum - gsum) / act) * w_scale`. Every AVX-512-class t2p
/// variant (this one and AMX) combines through it, so they stay
/// bit-identical.
#[inline(always)]
pub(super) fn combine(
    facc: __m512,
    isum: __m512i,
    gsum: __m512i,
    act: __m512,
    w_scale: &[f32; 16],
) -> __m512 {
    // SAFETY: callers run with AVX-512 F enabled (inlined into them);
    // w_scale is 16 f32s.
    unsafe {
        let f = _mm512_cvtepi32_ps(_mm512_sub_epi32(isum, gsum));
        let ws = _mm512_loadu_ps(w_scale.as_ptr());
        _mm512_add_ps(facc, _mm512_mul_ps(_mm512_div_ps(f, act), ws))
    }
}

/// Writes the 16 results `v` of panel `p` for token `t`.
#[inline(always)]
pub(super) fn store(job: &Job<'_>, p: usize, t: usize, v: __m512) {
    let mut out = [0f32; 16];
    // SAFETY: callers run with AVX-512 F enabled (inlined into them); out
    // holds 16 f32s.
    unsafe { _mm512_storeu_ps(out.as_mut_ptr(), v) };
    job.store(p, t, &out);
}

/// Codes of quad `j` of a line: `(x >> 2j) & 3` per byte.
#[inline(always)]
pub(super) fn unpack(x: __m512i, j: usize, mask: __m512i) -> __m512i {
    // SAFETY: callers run with AVX-512 BW enabled (inlined into
    // `tile` and the AMX variant's `unpack_panel`).
    unsafe {
        let s = match j {
            0 => x,
            1 => _mm512_srli_epi16::<2>(x),
            2 => _mm512_srli_epi16::<4>(x),
            _ => _mm512_srli_epi16::<6>(x),
        };
        _mm512_and_si512(s, mask)
    }
}
