//! Row-parallel element-wise work (norms, RoPE, activations, residuals)
//! for prefill batches. Every row is computed exactly as on one thread,
//! so results do not depend on the split.

use std::sync::Mutex;

use ryot_pool::{ThreadPool, split_range};

/// Fewest rows worth handing to more than one worker.
const MIN_ROWS: usize = 8;

/// Calls `f(first_row, rows)` on disjoint chunks of whole rows of `x`
/// (rows of `width` values), on up to `threads` workers of `pool`.
pub(crate) fn rows_mut<F>(
    pool: &ThreadPool,
    threads: usize,
    width: usize,
    x: &mut [f32],
    f: F,
) where
    F: Fn(usize, &mut [f32]) + Sync,
{
    let n = x.len().checked_div(width).unwrap_or(0);
    let nt = if n >= MIN_ROWS { threads.min(n).max(1) } else { 1 };
    if nt == 1 {
        f(0, x);
        return;
    }
    let mut parts = Vec::with_capacity(nt);
    let (mut rest, mut r0) = (x, 0);
    for i in 0..nt {
        let rows = split_range(n, nt, i, 1).len();
        let (a, b) = rest.split_at_mut(rows * width);
        parts.push(Mutex::new((r0, a)));
        r0 += rows;
        rest = b;
    }
    pool.run(nt, |i, _| {
        // Each index is run once, so its lock is never contended (and
        // never poisoned: a panic in `f` is resumed by `run`).
        if let Ok(mut g) = parts[i].lock() {
            let (r0, chunk) = &mut *g;
            f(*r0, chunk);
        }
    });
}
