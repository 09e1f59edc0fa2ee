//! AVX-512 dense kernels: a panel column is one 512-bit vector of 16 rows
//! (F16 columns widened with `vcvtph2ps zmm`, BF16 columns by zero
//! extension and a 16-bit shift), multiplied with a broadcast
//! activation by `vfmadd231ps`. Same algorithm and operation order as
//! [`super::avx2`], with one vector per panel instead of two halves.
//!
//! ```text
//! for each block of P panels, each tile of T tokens:
//!     total[p][t] = 0
//!     for each chunk of 256 columns:
//!         acc[p][t] = 0
//!         for c in chunk:
//!             w[p] = load(col c of panel p)                 // 16 rows
//!             for t: acc[p][t] = fma(w[p], broadcast(x[t][c]), acc[p][t])
//!         total[p][t] += acc[p][t]
//! ```

use std::arch::x86_64::*;
use std::ops::Range;

use super::layout::{ColBf16, ColF16, ColF32, PANEL_ROWS};
use super::{CHUNK, DensePanels, Job};

/// Panels per GEMV step (8 FMA chains, 8 read streams).
pub(crate) const GEMV_PANELS: usize = 8;
/// Panels per GEMM tile.
pub(crate) const GEMM_PANELS: usize = 2;
/// Tokens per GEMM tile (16 accumulators of 32).
pub(crate) const GEMM_TOKENS: usize = 8;

/// A column type with an AVX-512 load to f32.
pub(crate) trait Load {
    /// The column as one vector of 16 rows. Only called from functions
    /// compiled with AVX-512 F.
    fn load(&self) -> __m512;
}

impl Load for ColF32 {
    #[inline(always)]
    fn load(&self) -> __m512 {
        // SAFETY: a ColF32 is 16 f32s, 64-byte aligned; callers run with
        // AVX-512 F enabled (this is inlined into `tile`).
        unsafe { _mm512_load_ps(self.0.as_ptr()) }
    }
}

impl Load for ColF16 {
    #[inline(always)]
    fn load(&self) -> __m512 {
        let p = self.0.as_ptr().cast::<__m256i>();
        // SAFETY: a ColF16 is 32 bytes, 32-byte aligned; callers run with
        // AVX-512 F enabled (this is inlined into `tile`).
        unsafe { _mm512_cvtph_ps(_mm256_load_si256(p)) }
    }
}

impl Load for ColBf16 {
    #[inline(always)]
    fn load(&self) -> __m512 {
        let p = self.0.as_ptr().cast::<__m256i>();
        // SAFETY: a ColBf16 is 32 bytes, 32-byte aligned; callers run with
        // AVX-512 F enabled (this is inlined into `tile`).
        unsafe {
            let w = _mm512_cvtepu16_epi32(_mm256_load_si256(p));
            _mm512_castsi512_ps(_mm512_slli_epi32::<16>(w))
        }
    }
}

/// Computes panels `panels` for every token of `job`.
pub(crate) fn gemm<W>(job: &Job<'_, W>, panels: Range<usize>)
where
    W: DensePanels,
    W::Col: Load,
{
    assert!(crate::isa::SimdLevel::Avx512.is_available());
    // SAFETY: the CPU supports AVX-512 F/BW/VL/DQ + VNNI (asserted above).
    unsafe { gemm_impl(job, panels) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
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
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
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
            6 => tile::<W, P, 6>(job, p, t),
            7 => tile::<W, P, 7>(job, p, t),
            _ => tile::<W, P, GEMM_TOKENS>(job, p, t),
        }
        t += GEMM_TOKENS;
    }
}

/// Panels `p0..p0+P` x tokens `t0..t0+T` (clipped to `n`).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
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
    let mut total = [[_mm512_setzero_ps(); T]; P];
    let mut c0 = 0;
    while c0 < k {
        let len = CHUNK.min(k - c0);
        let pc: [&[W::Col]; P] =
            crate::arr::build(|i| &panels[i][c0..c0 + len]);
        let xc: [&[f32]; T] = crate::arr::build(|i| &xs[i][c0..c0 + len]);
        let mut acc = [[_mm512_setzero_ps(); T]; P];
        for c in 0..len {
            let w: [__m512; P] = crate::arr::build(|i| {
                // SAFETY: pc[i] was sliced to exactly `len` columns above,
                // and c < len.
                unsafe { pc[i].get_unchecked(c) }.load()
            });
            for (ti, x) in xc.iter().enumerate() {
                // SAFETY: x was sliced to exactly `len` values above, and
                // c < len.
                let xv = unsafe { *x.get_unchecked(c) };
                let b = _mm512_set1_ps(xv);
                for (a, wp) in acc.iter_mut().zip(&w) {
                    a[ti] = _mm512_fmadd_ps(*wp, b, a[ti]);
                }
            }
        }
        for (tp, ap) in total.iter_mut().zip(&acc) {
            for (tt, at) in tp.iter_mut().zip(ap) {
                *tt = _mm512_add_ps(*tt, *at);
            }
        }
        c0 += len;
    }
    for (pi, tp) in total.iter().enumerate() {
        for (ti, v) in tp.iter().enumerate().take(nt) {
            let mut out = [0f32; PANEL_ROWS];
            // SAFETY: out holds 16 f32s.
            unsafe { _mm512_storeu_ps(out.as_mut_ptr(), *v) };
            job.store(p0 + pi, t0 + ti, &out);
        }
    }
}
