//! The scale searches behind llama.cpp's reference K-quant quantizers
//! (`make_qx_quants`, `make_q3_quants`, `make_qkx2_quants` in
//! `ggml/src/ggml-quants.c`), restricted to the arguments the non-imatrix
//! path uses.
//!
//! These loops are where a port most easily loses bit-exactness: every sum
//! is accumulated left to right in f32, every product is evaluated in C's
//! left-to-right order (`w*x*l` is `(w*x)*l`), ints are converted to f32 at
//! the same point as in C, and nothing is fused (Rust never contracts
//! `a*b + c` into an FMA).

use crate::util::nearest_int;

/// `GROUP_MAX_EPS`: a group whose largest |x| is below this is all zero.
pub(crate) const GROUP_MAX_EPS: f32 = 1e-15;

/// Largest-magnitude value of `x` (signed, first wins) and its magnitude.
fn signed_absmax(x: &[f32]) -> (f32, f32) {
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    (max, amax)
}

/// `make_qx_quants(n, nmax, x, L, rmse_type = 1, qw = NULL)`: symmetric
/// codes `L[i]` in `0..2*nmax` (stored with `+nmax`), weights `x^2`, and a
/// search over 18 trial scales. Returns the scale.
pub(crate) fn make_qx_quants(nmax: i32, x: &[f32], ls: &mut [i8]) -> f32 {
    let (max, amax) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        ls.fill(0);
        return 0.0;
    }
    let clamp = |l: i32| l.clamp(-nmax, nmax - 1);
    let mut iscale = -(nmax as f32) / max;
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for (li, &xi) in ls.iter_mut().zip(x) {
        let l = clamp(nearest_int(iscale * xi));
        *li = (l + nmax) as i8;
        let w = xi * xi;
        let lf = l as f32;
        sumlx += w * xi * lf;
        suml2 += w * lf * lf;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmax as f32 + 0.1f32 * is as f32) / max;
        sumlx = 0.0;
        suml2 = 0.0;
        for &xi in x {
            let lf = clamp(nearest_int(iscale * xi)) as f32;
            let w = xi * xi;
            sumlx += w * xi * lf;
            suml2 += w * lf * lf;
        }
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (li, &xi) in ls.iter_mut().zip(x) {
                *li = (nmax + clamp(nearest_int(iscale * xi))) as i8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// `make_q3_quants(n, nmax, x, L, do_rmse = true)`: symmetric codes with
/// `+nmax` offset, refined by up to 5 passes of coordinate descent on the
/// `x^2`-weighted error. Returns the scale.
pub(crate) fn make_q3_quants(nmax: i32, x: &[f32], ls: &mut [i8]) -> f32 {
    let (max, amax) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        ls.fill(0);
        return 0.0;
    }
    let clamp = |l: i32| l.clamp(-nmax, nmax - 1);
    let iscale = -(nmax as f32) / max;
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for (li, &xi) in ls.iter_mut().zip(x) {
        let l = clamp(nearest_int(iscale * xi));
        *li = l as i8;
        let w = xi * xi;
        let lf = l as f32;
        sumlx += w * xi * lf;
        suml2 += w * lf * lf;
    }
    for _ in 0..5 {
        let mut n_changed = 0;
        for (li, &xi) in ls.iter_mut().zip(x) {
            let w = xi * xi;
            let cur = *li as f32;
            let mut slx = sumlx - w * xi * cur;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * cur * cur;
                let new_l = clamp(nearest_int(xi * sl2 / slx));
                if new_l != *li as i32 {
                    let nf = new_l as f32;
                    slx += w * xi * nf;
                    sl2 += w * nf * nf;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        *li = new_l as i8;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed += 1;
                    }
                }
            }
        }
        if n_changed == 0 {
            break;
        }
    }
    for li in ls.iter_mut() {
        *li += nmax as i8;
    }
    if suml2 > 0.0 { sumlx / suml2 } else { 0.0 }
}

/// Parameters of one `make_qkx2_quants` call.
pub(crate) struct Qkx2 {
    /// Largest code.
    pub nmax: i32,
    /// First trial offset added to `nmax`.
    pub rmin: f32,
    /// Step between trial offsets.
    pub rdelta: f32,
    /// Number of steps (the search tries `nstep + 1` scales).
    pub nstep: i32,
    /// Weighted absolute error instead of squared error.
    pub use_mad: bool,
}

/// `make_qkx2_quants`: asymmetric codes `0..=nmax` with a min, fitted by
/// weighted least squares over a grid of trial scales. Writes the codes to
/// `ls` and returns `(scale, -min)`.
pub(crate) fn make_qkx2_quants(
    p: &Qkx2,
    x: &[f32],
    weights: &[f32],
    ls: &mut [u8],
) -> (f32, f32) {
    let n = x.len();
    let nmax = p.nmax;
    let mut laux = [0u8; 32];
    let laux = &mut laux[..n];

    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        ls.fill(0);
        return (0.0, -min);
    }
    let err = |diff: f32| if p.use_mad { diff.abs() } else { diff * diff };
    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for i in 0..n {
        let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
        ls[i] = l as u8;
        let diff = scale * ls[i] as f32 + min - x[i];
        best_error += weights[i] * err(diff);
    }
    if p.nstep < 1 {
        return (scale, -min);
    }
    for is in 0..=p.nstep {
        iscale = (p.rmin + p.rdelta * is as f32 + nmax as f32) / (max - min);
        let mut sum_l = 0.0f32;
        let mut sum_l2 = 0.0f32;
        let mut sum_xl = 0.0f32;
        for i in 0..n {
            let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            laux[i] = l as u8;
            let w = weights[i];
            let lf = l as f32;
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let d = sum_w * sum_l2 - sum_l * sum_l;
        if d > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / d;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0.0f32;
            for i in 0..n {
                let diff = this_scale * laux[i] as f32 + this_min - x[i];
                cur_error += weights[i] * err(diff);
            }
            if cur_error < best_error {
                ls[..n].copy_from_slice(laux);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_groups_give_zero_scale() {
        let x = [0.0f32; 16];
        let mut l = [5i8; 16];
        assert_eq!(make_qx_quants(32, &x, &mut l), 0.0);
        assert_eq!(l, [0; 16]);
        let mut l = [5i8; 16];
        assert_eq!(make_q3_quants(4, &x, &mut l), 0.0);
        assert_eq!(l, [0; 16]);
    }

    #[test]
    fn qkx2_fits_an_exact_grid() {
        // x = 0.5 * q - 1 for q = 0..=15: the fit must find it.
        let x: Vec<f32> =
            (0..32).map(|i| 0.5 * (i % 16) as f32 - 1.0).collect();
        let w = vec![1.0f32; 32];
        let mut l = [0u8; 32];
        let p = Qkx2 {
            nmax: 15,
            rmin: -1.0,
            rdelta: 0.1,
            nstep: 20,
            use_mad: false,
        };
        let (scale, neg_min) = make_qkx2_quants(&p, &x, &w, &mut l);
        assert!((scale - 0.5).abs() < 1e-6, "{scale}");
        assert!((neg_min - 1.0).abs() < 1e-6, "{neg_min}");
        for (i, &li) in l.iter().enumerate() {
            assert_eq!(li as usize, i % 16);
        }
    }
}
