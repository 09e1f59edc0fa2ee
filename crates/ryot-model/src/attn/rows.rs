//! Cache rows seen by the SIMD attention kernels: one [`Rows`] type per
//! cache type (so each kernel is compiled for one type, with no per-load
//! dispatch), the resolved [`Job`], and [`dispatch`], which checks the
//! rows and runs a [`RowsKernel`] for the job's row type and accumulator
//! mode. Shared by the AVX2 and AVX-512 variants.

use std::arch::x86_64::*;

use super::{HeadJob, KvRows, Q8_BLOCK};

/// A cache row type.
pub(super) trait Rows: Copy {
    /// The value at flat index `at` (as [`KvRows::get`]).
    fn get(self, at: usize) -> f32;

    /// Loads 8 values at `at` as f32. For an int8 cache, `at` must be a
    /// multiple of 8 (then the 8 values share one scale).
    ///
    /// # Safety
    /// `at + 8` must be in bounds; AVX2 and F16C available.
    unsafe fn load8(self, at: usize) -> __m256;

    /// Loads 8 values at `a` into the low half and 8 at `b` into the high
    /// half, as f32 ([`Rows::load8`] of each).
    ///
    /// # Safety
    /// As [`Rows::load8`] for `a` and `b`; AVX-512F available.
    #[target_feature(enable = "avx512f,avx512dq,avx2,fma,f16c")]
    #[inline]
    unsafe fn load8x2(self, a: usize, b: usize) -> __m512 {
        // SAFETY: forwarded from the caller.
        let (lo, hi) = unsafe { (self.load8(a), self.load8(b)) };
        _mm512_insertf32x8::<1>(_mm512_castps256_ps512(lo), hi)
    }

    /// Loads 16 values at `at` as f32 (`load8x2(at, at + 8)`).
    ///
    /// # Safety
    /// As [`Rows::load8x2`] for `at` and `at + 8`.
    #[target_feature(enable = "avx512f,avx512dq,avx2,fma,f16c")]
    #[inline]
    unsafe fn load16(self, at: usize) -> __m512 {
        // SAFETY: forwarded from the caller.
        unsafe { self.load8x2(at, at + 8) }
    }

    /// Whether `load8` needs `at % 8 == 0`.
    const ALIGNED: bool;
}

impl Rows for &[half::f16] {
    #[inline(always)]
    fn get(self, at: usize) -> f32 {
        self[at].to_f32()
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn load8(self, at: usize) -> __m256 {
        debug_assert!(at + 8 <= self.len());
        // SAFETY: the caller guarantees `at + 8` is in bounds.
        _mm256_cvtph_ps(unsafe {
            _mm_loadu_si128(self.as_ptr().add(at).cast())
        })
    }

    #[target_feature(enable = "avx512f,avx512dq,avx2,fma,f16c")]
    #[inline]
    unsafe fn load8x2(self, a: usize, b: usize) -> __m512 {
        debug_assert!(a + 8 <= self.len() && b + 8 <= self.len());
        // SAFETY: the caller guarantees both runs of 8 are in bounds.
        let h = unsafe {
            _mm256_inserti128_si256::<1>(
                _mm256_castsi128_si256(_mm_loadu_si128(
                    self.as_ptr().add(a).cast(),
                )),
                _mm_loadu_si128(self.as_ptr().add(b).cast()),
            )
        };
        _mm512_cvtph_ps(h)
    }

    #[target_feature(enable = "avx512f,avx512dq,avx2,fma,f16c")]
    #[inline]
    unsafe fn load16(self, at: usize) -> __m512 {
        debug_assert!(at + 16 <= self.len());
        // SAFETY: the caller guarantees `at + 16` is in bounds.
        _mm512_cvtph_ps(unsafe {
            _mm256_loadu_si256(self.as_ptr().add(at).cast())
        })
    }

    const ALIGNED: bool = false;
}

impl Rows for &[f32] {
    #[inline(always)]
    fn get(self, at: usize) -> f32 {
        self[at]
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn load8(self, at: usize) -> __m256 {
        debug_assert!(at + 8 <= self.len());
        // SAFETY: the caller guarantees `at + 8` is in bounds.
        unsafe { _mm256_loadu_ps(self.as_ptr().add(at)) }
    }

    #[target_feature(enable = "avx512f,avx512dq,avx2,fma,f16c")]
    #[inline]
    unsafe fn load16(self, at: usize) -> __m512 {
        debug_assert!(at + 16 <= self.len());
        // SAFETY: the caller guarantees `at + 16` is in bounds.
        unsafe { _mm512_loadu_ps(self.as_ptr().add(at)) }
    }

    const ALIGNED: bool = false;
}

/// An int8 cache's rows.
#[derive(Clone, Copy)]
pub(super) struct Q8Rows<'a> {
    q: &'a [i8],
    d: &'a [f32],
    kv_dim: usize,
}

impl Rows for Q8Rows<'_> {
    #[inline(always)]
    fn get(self, at: usize) -> f32 {
        KvRows::Q8 { q: self.q, d: self.d, kv_dim: self.kv_dim }.get(at)
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn load8(self, at: usize) -> __m256 {
        debug_assert!(at.is_multiple_of(8) && self.kv_dim.is_multiple_of(8));
        debug_assert!(at + 8 <= self.q.len());
        let nb = self.kv_dim.div_ceil(Q8_BLOCK);
        let (pos, i) = (at / self.kv_dim, at % self.kv_dim);
        let scale = self.d[pos * nb + i / Q8_BLOCK];
        // SAFETY: as above; 8 bytes are read. `q as f32 * d` is the
        // scalar `KvRows::get` (exact conversion, one rounding).
        let b = unsafe { _mm_loadl_epi64(self.q.as_ptr().add(at).cast()) };
        let f = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b));
        _mm256_mul_ps(f, _mm256_set1_ps(scale))
    }

    const ALIGNED: bool = true;
}

/// One head's job with the row type resolved.
#[derive(Clone, Copy)]
pub(super) struct Job<R> {
    pub k: R,
    pub v: R,
    pub stride: usize,
    pub off: usize,
    pub ctx: usize,
    pub d: usize,
    pub scale: f32,
}

impl<R> Job<R> {
    fn of(job: &HeadJob<'_>, k: R, v: R) -> Self {
        Job {
            k,
            v,
            stride: job.stride,
            off: job.off,
            ctx: job.ctx,
            d: job.d,
            scale: job.scale,
        }
    }
}

/// A kernel run over one head's cache rows, compiled once per row type
/// `R` and accumulator mode `F16` ([`dispatch`] picks them).
pub(super) trait RowsKernel {
    /// What the kernel returns.
    type Out;
    /// Runs the kernel.
    ///
    /// # Safety
    /// AVX2, FMA and F16C available (and whatever else the kernel's
    /// constructor checked); the rows hold every position the kernel
    /// attends to.
    unsafe fn run<R: Rows, const F16: bool>(self, job: &Job<R>) -> Self::Out;
}

/// Checks that the rows hold `ctx` positions, then runs `kernel` for the
/// job's row type and accumulator mode.
///
/// # Safety
/// AVX2, FMA and F16C must be available.
pub(super) unsafe fn dispatch<K: RowsKernel>(
    job: &HeadJob<'_>,
    ctx: usize,
    kernel: K,
) -> K::Out {
    let end = job.off + job.d;
    assert!(
        ctx == 0
            || ((ctx - 1) * job.stride + end <= job.k.len()
                && (ctx - 1) * job.stride + end <= job.v.len())
    );
    match (job.k, job.v) {
        (KvRows::F16(k), KvRows::F16(v)) => {
            // SAFETY: bounds checked above; features by the caller.
            unsafe { with_mode(&Job::of(job, k, v), job.f16_acc, kernel) }
        }
        (KvRows::F32(k), KvRows::F32(v)) => {
            // SAFETY: as above.
            unsafe { with_mode(&Job::of(job, k, v), job.f16_acc, kernel) }
        }
        (
            KvRows::Q8 { q: kq, d: kd, kv_dim },
            KvRows::Q8 { q: vq, d: vd, .. },
        ) => {
            let k = Q8Rows { q: kq, d: kd, kv_dim };
            let v = Q8Rows { q: vq, d: vd, kv_dim };
            // SAFETY: as above.
            unsafe { with_mode(&Job::of(job, k, v), job.f16_acc, kernel) }
        }
        _ => unreachable!("keys and values share one cache type"),
    }
}

/// Runs `kernel` with the accumulator mode picked at run time.
///
/// # Safety
/// As [`RowsKernel::run`].
unsafe fn with_mode<R: Rows, K: RowsKernel>(
    job: &Job<R>,
    f16_acc: bool,
    kernel: K,
) -> K::Out {
    // SAFETY: forwarded.
    unsafe {
        if f16_acc {
            kernel.run::<R, true>(job)
        } else {
            kernel.run::<R, false>(job)
        }
    }
}

/// A variant's kernel for a group of queries of one head (see
/// [`attend_group`]), compiled per row type and accumulator mode.
pub(super) trait GroupRows {
    /// Runs the group: returns the softmax denominators, leaves the
    /// unnormalised sums in `outs`.
    ///
    /// # Safety
    /// The variant's CPU features available; the rows hold every query's
    /// context; every query and output holds `d` values.
    unsafe fn group_rows<R: Rows, const F16: bool, const G: usize>(
        job: &Job<R>,
        ctxs: [usize; G],
        qs: [&[f32]; G],
        outs: [&mut [f32]; G],
    ) -> [f32; G];
}

/// Checks the lengths and the rows against the longest context, then runs
/// variant `V`'s group kernel for the job's row type and accumulator mode.
///
/// # Safety
/// `V`'s CPU features (at least AVX2, FMA and F16C) must be available.
pub(super) unsafe fn attend_group<V: GroupRows, const G: usize>(
    job: &HeadJob<'_>,
    ctxs: [usize; G],
    qs: [&[f32]; G],
    outs: [&mut [f32]; G],
) -> [f32; G] {
    struct Group<'a, 'b, V, const G: usize> {
        ctxs: [usize; G],
        qs: [&'a [f32]; G],
        outs: [&'b mut [f32]; G],
        variant: std::marker::PhantomData<V>,
    }
    impl<V: GroupRows, const G: usize> RowsKernel for Group<'_, '_, V, G> {
        type Out = [f32; G];
        unsafe fn run<R: Rows, const F16: bool>(
            self,
            job: &Job<R>,
        ) -> [f32; G] {
            // SAFETY: forwarded (features by `attend_group`'s caller,
            // lengths checked there, rows by `dispatch`).
            unsafe {
                V::group_rows::<R, F16, G>(job, self.ctxs, self.qs, self.outs)
            }
        }
    }
    let lens_ok = outs.iter().all(|o| o.len() == job.d)
        && qs.iter().all(|q| q.len() == job.d);
    assert!(lens_ok, "attend_group: query or output length");
    let cmax = ctxs.iter().copied().max().unwrap_or(0);
    let variant = std::marker::PhantomData::<V>;
    // SAFETY: features by the caller; `dispatch` checks the rows up to
    // the longest context.
    unsafe { dispatch(job, cmax, Group { ctxs, qs, outs, variant }) }
}
