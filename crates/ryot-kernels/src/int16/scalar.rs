//! The portable int16 kernels: the reference the SIMD ones are tested
//! against, bit for bit.

use super::{
    BLOCK_PAIRS, Int16Acts, Int16Weights, PANEL_ROWS, X_MAX, quantize_row,
};
use crate::error::KernelError;

/// Quantizes `x` (rows of `k`) into `q` (rows of `stride`, zero-padded)
/// and `scales`, row by row with [`quantize_row`].
pub(crate) fn quantize_rows(
    x: &[f32],
    k: usize,
    stride: usize,
    q: &mut [i16],
    scales: &mut [f32],
) -> Result<(), KernelError> {
    for ((row, out), s) in
        x.chunks_exact(k).zip(q.chunks_exact_mut(stride)).zip(scales)
    {
        KernelError::check_finite("int16 activations", row)?;
        *s = quantize_row(row, X_MAX, &mut out[..k]);
        out[k..].fill(0);
    }
    Ok(())
}

/// See [`super::gemm`].
pub(crate) fn gemm(w: &Int16Weights, x: &Int16Acts, out: &mut [f32]) {
    let (m, pairs) = (w.m(), w.pairs());
    for t in 0..x.n() {
        let xr = x.row(t);
        let xs = x.scales()[t];
        for p in 0..w.panels() {
            let panel = w.panel(p);
            let ws = w.panel_scales(p);
            for r in 0..PANEL_ROWS.min(m - p * PANEL_ROWS) {
                let mut f = 0f32;
                for b in (0..pairs).step_by(BLOCK_PAIRS) {
                    let mut s = 0i32;
                    for j in b..(b + BLOCK_PAIRS).min(pairs) {
                        let wp = &panel[(j * PANEL_ROWS + r) * 2..][..2];
                        s += xr[2 * j] as i32 * wp[0] as i32
                            + xr[2 * j + 1] as i32 * wp[1] as i32;
                    }
                    f += s as f32;
                }
                let o = &mut out[t * m + p * PANEL_ROWS + r];
                *o += (f * xs) * ws[r];
            }
        }
    }
}
