//! AVX2 t2p kernels: `vpmaddubsw` multiplies codes (u8) with activations
//! (i8) into 16-bit pair sums, which are added up for at most 16 lines
//! (64 products of at most 2*127 per lane pair: |sum| <= 32512, no
//! overflow) and then widened to i32 with `vpmaddwd` by ones. A panel's 16
//! rows are two 256-bit halves of 8 rows.
//!
//! ```text
//! for each block of P panels, each tile of T tokens, each scale group:
//!     for each run of <= 16 lines c:
//!         for j in 0..4, half h in 0..2:
//!             w = (line[p][h] >> 2j) & 3                 // 8 rows x 4 codes
//!             acc16[p][t][h] += maddubs(w, broadcast(q[t][16c+4j .. +4]))
//!         acc32[p][t][h] += madd(acc16[p][t][h], 1)
//!     f[p][t] += (f32(acc32 - gsum[t][g]) / act_scale[t]) * w_scale[p][g]
//! ```

use std::arch::x86_64::*;
use std::ops::Range;

use super::Job;
use super::layout::{LINE_COLS, Line};

/// Lines whose 16-bit sums may be added before widening (see module doc).
const FLUSH_LINES: usize = 16;

/// Computes panels `panels` for every token of `job`.
pub(crate) fn gemm(job: &Job<'_>, panels: Range<usize>) {
    assert!(crate::isa::SimdLevel::Avx2.is_available());
    // SAFETY: the CPU supports AVX2 (asserted above).
    unsafe { gemm_impl(job, panels) }
}

#[target_feature(enable = "avx2,fma,f16c")]
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
    for ts in job.token_blocks(4) {
        for p in panels.clone() {
            let mut t = ts.start;
            while t < ts.end {
                match ts.end - t {
                    1 => tile::<1, 1>(job, p, t),
                    2 => tile::<1, 2>(job, p, t),
                    3 => tile::<1, 3>(job, p, t),
                    _ => tile::<1, 4>(job, p, t),
                }
                t += 4;
            }
        }
    }
}

/// Panels `p0..p0+P` x tokens `t0..t0+T` (clipped to `n`).
#[target_feature(enable = "avx2,fma,f16c")]
fn tile<const P: usize, const T: usize>(job: &Job<'_>, p0: usize, t0: usize) {
    let w = job.w;
    let groups = job.groups();
    let lpg = w.group_cols() / LINE_COLS;
    let nt = (job.a.n() - t0).min(T);
    let panels: [&[Line]; P] = crate::arr::build(|i| w.panel(p0 + i));
    let q: [&[i8]; T] = crate::arr::build(|i| job.a.row(t0 + i.min(nt - 1)));
    let mask = _mm256_set1_epi8(3);
    let ones = _mm256_set1_epi16(1);
    let mut facc = [[[_mm256_setzero_ps(); 2]; T]; P];
    for g in 0..groups {
        let mut acc32 = [[[_mm256_setzero_si256(); 2]; T]; P];
        let mut c = g * lpg;
        let end = (g + 1) * lpg;
        while c < end {
            let run_end = (c + FLUSH_LINES).min(end);
            let mut acc16 = [[[_mm256_setzero_si256(); 2]; T]; P];
            while c < run_end {
                if T == 1 && job.prefetch > 0 {
                    for lines in &panels {
                        let ahead =
                            lines.as_ptr().wrapping_add(c + job.prefetch);
                        // A prefetch is a hint that never faults, even past
                        // the panel's end (wrapping_add keeps the pointer
                        // arithmetic defined).
                        _mm_prefetch::<_MM_HINT_T0>(ahead.cast());
                    }
                }
                let x: [[__m256i; 2]; P] = crate::arr::build(|i| {
                    let ptr = panels[i][c].0.as_ptr().cast::<__m256i>();
                    // SAFETY: a Line is 64 bytes, 64-byte aligned, so both
                    // 32-byte halves are aligned and in bounds.
                    unsafe {
                        [_mm256_load_si256(ptr), _mm256_load_si256(ptr.add(1))]
                    }
                });
                for j in 0..4 {
                    let wj: [[__m256i; 2]; P] = crate::arr::build(|i| {
                        [unpack(x[i][0], j, mask), unpack(x[i][1], j, mask)]
                    });
                    for (ti, qt) in q.iter().enumerate() {
                        let off = c * LINE_COLS + 4 * j;
                        // SAFETY: off + 4 <= w.k_pad() <= qt.len().
                        let b = _mm256_set1_epi32(unsafe {
                            qt.as_ptr().add(off).cast::<i32>().read_unaligned()
                        });
                        for pi in 0..P {
                            for h in 0..2 {
                                let a = &mut acc16[pi][ti][h];
                                let prod = _mm256_maddubs_epi16(wj[pi][h], b);
                                *a = _mm256_add_epi16(*a, prod);
                            }
                        }
                    }
                }
                c += 1;
            }
            for pi in 0..P {
                for ti in 0..T {
                    for h in 0..2 {
                        let wide = _mm256_madd_epi16(acc16[pi][ti][h], ones);
                        let a = &mut acc32[pi][ti][h];
                        *a = _mm256_add_epi32(*a, wide);
                    }
                }
            }
        }
        for ti in 0..T {
            let t = t0 + ti.min(nt - 1);
            let gsum = _mm256_set1_epi32(job.gsums[t * groups + g]);
            let act = _mm256_set1_ps(job.a.scales()[t]);
            for pi in 0..P {
                let ws = w.group_scales(p0 + pi, g);
                for h in 0..2 {
                    let s = _mm256_sub_epi32(acc32[pi][ti][h], gsum);
                    let f = _mm256_cvtepi32_ps(s);
                    // SAFETY: ws holds 16 f32s; h*8 + 8 <= 16.
                    let wsv =
                        unsafe { _mm256_loadu_ps(ws.as_ptr().add(h * 8)) };
                    let v = _mm256_mul_ps(_mm256_div_ps(f, act), wsv);
                    facc[pi][ti][h] = _mm256_add_ps(facc[pi][ti][h], v);
                }
            }
        }
    }
    for (pi, row) in facc.iter().enumerate() {
        for (ti, v) in row.iter().enumerate().take(nt) {
            let mut out = [0f32; 16];
            // SAFETY: out holds 16 f32s.
            unsafe {
                _mm256_storeu_ps(out.as_mut_ptr(), v[0]);
                _mm256_storeu_ps(out.as_mut_ptr().add(8), v[1]);
            }
            job.store(p0 + pi, t0 + ti, &out);
        }
    }
}

/// Codes of quad `j` of a half line: `(x >> 2j) & 3` per byte.
#[inline(always)]
fn unpack(x: __m256i, j: usize, mask: __m256i) -> __m256i {
    // SAFETY: callers run with AVX2 enabled (inlined into `tile`).
    unsafe {
        let s = match j {
            0 => x,
            1 => _mm256_srli_epi16::<2>(x),
            2 => _mm256_srli_epi16::<4>(x),
            _ => _mm256_srli_epi16::<6>(x),
        };
        _mm256_and_si256(s, mask)
    }
}
