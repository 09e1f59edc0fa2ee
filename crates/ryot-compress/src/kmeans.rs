//! k-means with k-means++ seeding (Arthur & Vassilvitskii 2007) and Lloyd
//! iterations; distances through GEMM. Empty clusters are re-seeded by
//! splitting the largest one.

use crate::matrix::{Matrix, covariance, matmul, matmul_t, sym_eigen};
use crate::rng::Rng;

/// The nearest centroid of every row of `x`, and the squared distance.
pub fn assign(x: &Matrix, cent: &Matrix) -> (Vec<u32>, Vec<f32>) {
    let cn = cent.row_sq_norms();
    let xn = x.row_sq_norms();
    let mut lab = vec![0u32; x.rows];
    let mut dist = vec![0f32; x.rows];
    for start in (0..x.rows).step_by(4096) {
        let end = (start + 4096).min(x.rows);
        let idx: Vec<usize> = (start..end).collect();
        let xb = x.select(&idx);
        let ip = matmul_t(&xb, cent);
        for r in 0..xb.rows {
            let row = ip.row(r);
            let mut best = (0u32, f32::INFINITY);
            for (c, (&v, &n)) in row.iter().zip(&cn).enumerate() {
                let d = n - 2.0 * v;
                if d < best.1 {
                    best = (c as u32, d);
                }
            }
            lab[start + r] = best.0;
            dist[start + r] = (best.1 + xn[start + r]).max(0.0);
        }
    }
    (lab, dist)
}

/// k-means++ seeding: the first centre uniformly, then each next one with
/// probability proportional to the squared distance to the nearest centre.
pub fn kmeanspp(x: &Matrix, k: usize, rng: &mut Rng) -> Matrix {
    let d = x.dim;
    let mut cent = Matrix::zeros(k, d);
    let first = rng.below(x.rows);
    cent.row_mut(0).copy_from_slice(x.row(first));
    let mut dist: Vec<f32> =
        (0..x.rows).map(|i| sqdist(x.row(i), cent.row(0))).collect();
    for c in 1..k {
        let total: f64 = dist.iter().map(|&v| v as f64).sum();
        let pick = if total <= 0.0 {
            rng.below(x.rows)
        } else {
            let mut t = rng.uniform() * total;
            let mut p = x.rows - 1;
            for (i, &v) in dist.iter().enumerate() {
                t -= v as f64;
                if t <= 0.0 {
                    p = i;
                    break;
                }
            }
            p
        };
        cent.row_mut(c).copy_from_slice(x.row(pick));
        for (i, dv) in dist.iter_mut().enumerate() {
            let nd = sqdist(x.row(i), cent.row(c));
            if nd < *dv {
                *dv = nd;
            }
        }
    }
    cent
}

fn sqdist(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Trains `k` centroids on the rows of `x` (k-means++ then `iters` Lloyd
/// steps). With fewer distinct rows than `k`, some centroids repeat.
pub fn kmeans(x: &Matrix, k: usize, iters: usize, rng: &mut Rng) -> Matrix {
    let cent = kmeanspp(x, k, rng);
    lloyd(x, cent, iters, rng)
}

/// Rounds of [`kmeans_progressive`].
pub const PROGRESSIVE_STEPS: u32 = 10;

/// k-means in a growing number of principal dimensions (the progressive
/// scheme of FAISS's `ProgressiveDimClustering`): rows are rotated onto
/// their principal axes, clustered on the first `d^(t/steps)` of them
/// from random rows, and each round starts from the previous round's
/// centroids with zeros in the new dimensions. On nearly isotropic data
/// (residuals of earlier quantizers) this finds the splits along the
/// directions of largest spread that seeding in full dimension misses.
pub fn kmeans_progressive(
    x: &Matrix,
    k: usize,
    iters: usize,
    rng: &mut Rng,
) -> Matrix {
    let d = x.dim;
    let mean = x.mean();
    let (_, axes) = sym_eigen(&covariance(x, &mean));
    let mut xc = x.clone();
    for r in xc.data.chunks_exact_mut(d) {
        for (v, m) in r.iter_mut().zip(&mean) {
            *v -= m;
        }
    }
    // Principal coordinates: rows of `axes` are the unit eigenvectors.
    let xr = matmul_t(&xc, &axes);
    let mut cent: Option<Matrix> = None;
    let mut prev = 0;
    for t in 1..=PROGRESSIVE_STEPS {
        let dt = ((d as f64).powf(t as f64 / PROGRESSIVE_STEPS as f64).round()
            as usize)
            .clamp(1, d);
        if dt <= prev {
            continue;
        }
        let sub = xr.columns(0..dt);
        let init = match &cent {
            None => random_rows(&sub, k, rng),
            Some(c) => {
                let mut z = Matrix::zeros(k, dt);
                for i in 0..k {
                    z.row_mut(i)[..prev].copy_from_slice(c.row(i));
                }
                z
            }
        };
        cent = Some(lloyd(&sub, init, iters, rng));
        prev = dt;
    }
    let cent = cent.unwrap_or_else(|| random_rows(&xr, k, rng));
    // Back to the input space: c = c_pca * axes + mean.
    let mut out = matmul(&cent, &axes);
    for r in out.data.chunks_exact_mut(d) {
        for (v, m) in r.iter_mut().zip(&mean) {
            *v += m;
        }
    }
    out
}

/// `k` distinct rows of `x` picked uniformly (all rows, repeated, when
/// there are fewer than `k`).
pub fn random_rows(x: &Matrix, k: usize, rng: &mut Rng) -> Matrix {
    let mut idx = rng.sample(x.rows, k.min(x.rows));
    while idx.len() < k {
        idx.push(idx.len() % x.rows);
    }
    x.select(&idx)
}

/// `iters` Lloyd steps from the centroids `cent` (empty clusters are
/// re-seeded by splitting the largest).
pub fn lloyd(
    x: &Matrix,
    mut cent: Matrix,
    iters: usize,
    rng: &mut Rng,
) -> Matrix {
    let k = cent.rows;
    let d = x.dim;
    for _ in 0..iters {
        let (lab, _) = assign(x, &cent);
        let mut sums = vec![0f64; k * d];
        let mut counts = vec![0usize; k];
        for (i, &l) in lab.iter().enumerate() {
            counts[l as usize] += 1;
            for (s, &v) in sums[l as usize * d..(l as usize + 1) * d]
                .iter_mut()
                .zip(x.row(i))
            {
                *s += v as f64;
            }
        }
        for c in 0..k {
            if counts[c] > 0 {
                for j in 0..d {
                    cent.data[c * d + j] =
                        (sums[c * d + j] / counts[c] as f64) as f32;
                }
            }
        }
        // Empty clusters: copy the largest cluster's centre, nudged.
        for c in 0..k {
            if counts[c] == 0 {
                let big = (0..k).max_by_key(|&j| counts[j]).unwrap_or(0);
                if counts[big] < 2 {
                    continue;
                }
                for j in 0..d {
                    let v = cent.data[big * d + j];
                    let eps = 1e-4 * (rng.uniform() as f32 - 0.5);
                    cent.data[c * d + j] = v * (1.0 + eps);
                    cent.data[big * d + j] = v * (1.0 - eps);
                }
                counts[c] = counts[big] / 2;
                counts[big] -= counts[c];
            }
        }
    }
    cent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_separated_clusters() {
        let mut rng = Rng::new(1);
        let centres = [[0.0f32, 0.0], [10.0, 0.0], [0.0, 10.0]];
        let mut x = Matrix::zeros(300, 2);
        for i in 0..300 {
            let c = centres[i % 3];
            x.row_mut(i)[0] = c[0] + 0.1 * rng.normal();
            x.row_mut(i)[1] = c[1] + 0.1 * rng.normal();
        }
        let cent = kmeans(&x, 3, 10, &mut rng);
        for c in centres {
            let best = (0..3)
                .map(|j| sqdist(cent.row(j), &c))
                .fold(f32::INFINITY, f32::min);
            assert!(best < 0.05, "{best}");
        }
    }
}
