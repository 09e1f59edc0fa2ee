//! The scalar twin of the dense kernels: the reference the SIMD variants
//! are tested against, bit for bit. `f32::mul_add` is a fused
//! multiply-add (one rounding), like `vfmadd`.

use std::ops::Range;

use super::layout::PANEL_ROWS;
use super::{CHUNK, DensePanels, Job};

/// Computes panels `panels` for every token of `job`.
pub(crate) fn gemm<W: DensePanels>(job: &Job<'_, W>, panels: Range<usize>) {
    for p in panels {
        let cols = job.w.panel(p);
        for t in 0..job.x.n() {
            let x = job.x.row(t);
            let mut total = [0f32; PANEL_ROWS];
            for (cc, xc) in cols.chunks(CHUNK).zip(x.chunks(CHUNK)) {
                let mut acc = [0f32; PANEL_ROWS];
                for (col, &xv) in cc.iter().zip(xc) {
                    let w = W::widen(col);
                    for (a, wr) in acc.iter_mut().zip(w) {
                        *a = wr.mul_add(xv, *a);
                    }
                }
                for (s, a) in total.iter_mut().zip(acc) {
                    *s += a;
                }
            }
            job.store(p, t, &total);
        }
    }
}
