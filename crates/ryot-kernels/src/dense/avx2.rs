//! AVX2 dense kernels: a panel column is two 256-bit halves of 8 rows
//! (F16 columns are widened with `vcvtph2ps`, BF16 columns by zero
//! extension and a 16-bit shift), multiplied with a broadcast
//! activation by `vfmadd231ps`.
//!
//! ```text
//! for each block of P panels, each tile of T tokens:
//!     total[p][t][h] = 0
//!     for each chunk of 256 columns:
//!         acc[p][t][h] = 0
//!         for c in chunk:
//!             w[p][h] = load(col c of panel p, half h)      // 8 rows
//!             for t: b = broadcast(x[t][c])
//!                    acc[p][t][h] = fma(w[p][h], b, acc[p][t][h])
//!         total[p][t][h] += acc[p][t][h]
//! ```
//!
//! GEMV (`n == 1`) streams [`GEMV_PANELS`] panels at once: 8 independent
//! FMA chains and as many concurrent read streams. GEMM tiles are
//! [`GEMM_PANELS`] x [`GEMM_TOKENS`] (12 accumulators).

use std::arch::x86_64::*;
use std::ops::Range;

use super::layout::{ColBf16, ColF16, ColF32, PANEL_ROWS};
use super::{CHUNK, DensePanels, Job};

/// Panels per GEMV step.
pub(crate) const GEMV_PANELS: usize = 4;
/// Panels per GEMM tile.
pub(crate) const GEMM_PANELS: usize = 1;
/// Tokens per GEMM tile.
pub(crate) const GEMM_TOKENS: usize = 6;

/// A column type with an AVX2 load to f32.
pub(crate) trait Load {
    /// The column as two vectors of 8 rows. Only called from functions
    /// compiled with AVX2 + F16C.
    fn load(&self) -> [__m256; 2];
}

impl Load for ColF32 {
    #[inline(always)]
    fn load(&self) -> [__m256; 2] {
        let p = self.0.as_ptr();
        // SAFETY: a ColF32 is 16 f32s, 64-byte aligned, so both 32-byte
        // halves are aligned and in bounds; callers run with AVX2 enabled
        // (this is inlined into `tile`).
        unsafe { [_mm256_load_ps(p), _mm256_load_ps(p.add(8))] }
    }
}

impl Load for ColF16 {
    #[inline(always)]
    fn load(&self) -> [__m256; 2] {
        let p = self.0.as_ptr().cast::<__m128i>();
        // SAFETY: a ColF16 is 16 u16s (32 bytes), 32-byte aligned, so both
        // 16-byte halves are aligned and in bounds; callers run with AVX2
        // and F16C enabled (this is inlined into `tile`).
        unsafe {
            [
                _mm256_cvtph_ps(_mm_load_si128(p)),
                _mm256_cvtph_ps(_mm_load_si128(p.add(1))),
            ]
        }
    }
}

impl Load for ColBf16 {
    #[inline(always)]
    fn load(&self) -> [__m256; 2] {
        let p = self.0.as_ptr().cast::<__m128i>();
        // SAFETY: a ColBf16 is 16 u16s (32 bytes), 32-byte aligned, so both
        // 16-byte halves are aligned and in bounds; callers run with AVX2
        // enabled (this is inlined into `tile`).
        unsafe {
            let lo = _mm256_cvtepu16_epi32(_mm_load_si128(p));
            let hi = _mm256_cvtepu16_epi32(_mm_load_si128(p.add(1)));
            [
                _mm256_castsi256_ps(_mm256_slli_epi32::<16>(lo)),
                _mm256_castsi256_ps(_mm256_slli_epi32::<16>(hi)),
            ]
        }
    }
}

/// Computes panels `panels` for every token of `job`.
pub(crate) fn gemm<W>(job: &Job<'_, W>, panels: Range<usize>)
where
    W: DensePanels,
    W::Col: Load,
{
    assert!(crate::isa::SimdLevel::Avx2.is_available());
    // SAFETY: the CPU supports AVX2, FMA and F16C (asserted above).
    unsafe { gemm_impl(job, panels) }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn gemm_impl<W>(job: &Job<'_, W>, panels: Range<usize>)
where
    W: DensePanels,
    W::Col: Load,
{
    let n = job.x.n();
    let mut p = panels.start;
    if n == 1 {
        while p + GEMV_PANELS <= panels.end {
            tile::<W, GEMV_PANELS, 1>(job, p, 0);
            p += GEMV_PANELS;
        }
        while p < panels.end {
            tile::<W, 1, 1>(job, p, 0);
            p += 1;
        }
        return;
    }
    while p + GEMM_PANELS <= panels.end {
        tokens::<W, GEMM_PANELS>(job, p, n);
        p += GEMM_PANELS;
    }
    while p < panels.end {
        tokens::<W, 1>(job, p, n);
        p += 1;
    }
}

/// All tokens for panels `p..p+P`, in tiles of up to [`GEMM_TOKENS`].
#[target_feature(enable = "avx2,fma,f16c")]
fn tokens<W, const P: usize>(job: &Job<'_, W>, p: usize, n: usize)
where
    W: DensePanels,
    W::Col: Load,
{
    let mut t = 0;
    while t < n {
        match n - t {
            1 => tile::<W, P, 1>(job, p, t),
            2 => tile::<W, P, 2>(job, p, t),
            3 => tile::<W, P, 3>(job, p, t),
            4 => tile::<W, P, 4>(job, p, t),
            5 => tile::<W, P, 5>(job, p, t),
            _ => tile::<W, P, GEMM_TOKENS>(job, p, t),
        }
        t += GEMM_TOKENS;
    }
}

/// Panels `p0..p0+P` x tokens `t0..t0+T` (clipped to `n`).
#[target_feature(enable = "avx2,fma,f16c")]
fn tile<W, const P: usize, const T: usize>(
    job: &Job<'_, W>,
    p0: usize,
    t0: usize,
) where
    W: DensePanels,
    W::Col: Load,
{
    let k = job.w.cols();
    let nt = (job.x.n() - t0).min(T);
    let panels: [&[W::Col]; P] = crate::arr::build(|i| job.w.panel(p0 + i));
    // Tokens past n repeat the last one (their results are not stored).
    let xs: [&[f32]; T] = crate::arr::build(|i| job.x.row(t0 + i.min(nt - 1)));
    let mut total = [[[_mm256_setzero_ps(); 2]; T]; P];
    let mut c0 = 0;
    while c0 < k {
        let len = CHUNK.min(k - c0);
        let pc: [&[W::Col]; P] =
            crate::arr::build(|i| &panels[i][c0..c0 + len]);
        let xc: [&[f32]; T] = crate::arr::build(|i| &xs[i][c0..c0 + len]);
        let mut acc = [[[_mm256_setzero_ps(); 2]; T]; P];
        for c in 0..len {
            let w: [[__m256; 2]; P] = crate::arr::build(|i| {
                // SAFETY: pc[i] was sliced to exactly `len` columns above,
                // and c < len.
                unsafe { pc[i].get_unchecked(c) }.load()
            });
            for (ti, x) in xc.iter().enumerate() {
                // SAFETY: x was sliced to exactly `len` values above, and
                // c < len.
                let xv = unsafe { *x.get_unchecked(c) };
                let b = _mm256_set1_ps(xv);
                for (a, wp) in acc.iter_mut().zip(&w) {
                    for h in 0..2 {
                        a[ti][h] = _mm256_fmadd_ps(wp[h], b, a[ti][h]);
                    }
                }
            }
        }
        for (tp, ap) in total.iter_mut().zip(&acc) {
            for (tt, at) in tp.iter_mut().zip(ap) {
                for h in 0..2 {
                    tt[h] = _mm256_add_ps(tt[h], at[h]);
                }
            }
        }
        c0 += len;
    }
    for (pi, tp) in total.iter().enumerate() {
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
