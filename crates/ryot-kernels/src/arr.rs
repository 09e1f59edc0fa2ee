//! [`build`], `std::array::from_fn` for hot SIMD loops.
//!
//! A closure written inside a `#[target_feature]` function inherits the
//! function's features, and then cannot be inlined into
//! `std::array::from_fn`, which has none: every element becomes a call
//! (measured as `tile::{{closure}}` and `from_fn` symbols taking 5-7 % of a
//! small-matrix GEMV). [`build`] is always inlined into its caller, so
//! the closure is called, and inlined, in a function that has the
//! features.

/// `[f(0), f(1), ..., f(N - 1)]`, evaluated in index order.
///
/// # Panics
/// At compile time if `N == 0` (the first element seeds the array).
#[inline(always)]
pub fn build<T: Copy, const N: usize>(mut f: impl FnMut(usize) -> T) -> [T; N] {
    const { assert!(N > 0) };
    let mut out = [f(0); N];
    for (i, o) in out.iter_mut().enumerate().skip(1) {
        *o = f(i);
    }
    out
}
