//! A shared view of an `n x m` output that threads fill by disjoint rows.
//!
//! GEMM output is token-major (`out[t * m + row]`), so one thread's rows
//! are strided, not a contiguous sub-slice. `OutMatrix` hands out writes by
//! (token, row); the matmul driver gives each thread a disjoint row range.

use std::marker::PhantomData;

/// Writable `n x m` f32 output shared by the threads of one call.
pub(crate) struct OutMatrix<'a> {
    ptr: *mut f32,
    n: usize,
    m: usize,
    _borrow: PhantomData<&'a mut [f32]>,
}

// SAFETY: an OutMatrix is only shared among the workers of one matmul
// call, and each worker writes a disjoint set of rows (see `write`), so no
// two threads touch the same element.
unsafe impl Sync for OutMatrix<'_> {}
// SAFETY: as above; the pointer stays valid for 'a.
unsafe impl Send for OutMatrix<'_> {}

impl<'a> OutMatrix<'a> {
    /// Wraps `out`, which must hold `n * m` values.
    pub(crate) fn new(out: &'a mut [f32], n: usize, m: usize) -> Self {
        assert_eq!(out.len(), n * m, "OutMatrix shape");
        OutMatrix { ptr: out.as_mut_ptr(), n, m, _borrow: PhantomData }
    }

    /// Writes the results of 16-row panel `p` for token `t`, dropping the
    /// padding rows of a last, partial panel.
    #[inline]
    pub(crate) fn write_panel(&self, t: usize, p: usize, acc: &[f32; 16]) {
        let row0 = p * 16;
        let rows = (self.m - row0).min(16);
        self.write_rows(t, row0, &acc[..rows]);
    }

    /// Writes `vals[i]` to rows `row0 + i` of token `t`.
    #[inline]
    pub(crate) fn write_rows(&self, t: usize, row0: usize, vals: &[f32]) {
        assert!(t < self.n && row0 + vals.len() <= self.m, "OutMatrix rows");
        // SAFETY: bounds checked above; rows row0.. belong to this worker.
        unsafe {
            std::ptr::copy_nonoverlapping(
                vals.as_ptr(),
                self.ptr.add(t * self.m + row0),
                vals.len(),
            )
        }
    }
}
