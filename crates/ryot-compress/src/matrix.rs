//! A row-major f32 matrix, its validation, and the few dense linear
//! algebra routines the codecs need (GEMM via the `gemm` crate, a
//! symmetric eigendecomposition, orthogonal Procrustes, random rotations).

use crate::error::{Error, Result};
use crate::rng::Rng;

/// A dense row-major matrix of `rows` x `dim` f32 values.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    /// Number of rows (vectors).
    pub rows: usize,
    /// Number of columns (dimensions).
    pub dim: usize,
    /// `rows * dim` values, row after row.
    pub data: Vec<f32>,
}

impl Matrix {
    /// Wraps `data`; fails unless `data.len() == rows * dim`.
    pub fn new(rows: usize, dim: usize, data: Vec<f32>) -> Result<Matrix> {
        if rows.checked_mul(dim) != Some(data.len()) {
            return Err(Error::Shape(format!(
                "{} values cannot form {rows} rows of {dim}",
                data.len()
            )));
        }
        Ok(Matrix { rows, dim, data })
    }

    /// A zero matrix.
    pub fn zeros(rows: usize, dim: usize) -> Matrix {
        Matrix { rows, dim, data: vec![0.0; rows * dim] }
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Row `i`, mutable.
    pub fn row_mut(&mut self, i: usize) -> &mut [f32] {
        &mut self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// The rows at `idx`, copied.
    pub fn select(&self, idx: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(idx.len() * self.dim);
        for &i in idx {
            data.extend_from_slice(self.row(i));
        }
        Matrix { rows: idx.len(), dim: self.dim, data }
    }

    /// The first `n` rows (all when `n >= rows`).
    pub fn head(&self, n: usize) -> Matrix {
        let n = n.min(self.rows);
        Matrix {
            rows: n,
            dim: self.dim,
            data: self.data[..n * self.dim].to_vec(),
        }
    }

    /// The columns `cols` of every row, as a matrix of `cols.len()`
    /// columns.
    pub fn columns(&self, cols: std::ops::Range<usize>) -> Matrix {
        let mut out = Matrix::zeros(self.rows, cols.len());
        for i in 0..self.rows {
            out.row_mut(i).copy_from_slice(&self.row(i)[cols.clone()]);
        }
        out
    }

    /// Squared length of every row.
    pub fn row_sq_norms(&self) -> Vec<f32> {
        self.data
            .chunks_exact(self.dim.max(1))
            .map(|r| r.iter().map(|v| v * v).sum())
            .collect()
    }

    /// Fails on NaN/infinite values, a zero dimension or zero rows.
    pub fn check(&self, what: &'static str) -> Result<()> {
        if self.rows == 0 {
            return Err(Error::Empty(what));
        }
        if self.dim == 0 {
            return Err(Error::Shape(format!("{what} has dimension 0")));
        }
        if let Some(p) = self.data.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                row: p / self.dim,
                col: p % self.dim,
            });
        }
        Ok(())
    }

    /// The transpose.
    pub fn transpose(&self) -> Matrix {
        let mut t = Matrix::zeros(self.dim, self.rows);
        for i in 0..self.rows {
            for j in 0..self.dim {
                t.data[j * self.rows + i] = self.data[i * self.dim + j];
            }
        }
        t
    }

    /// Per-column means.
    pub fn mean(&self) -> Vec<f32> {
        let mut m = vec![0f64; self.dim];
        for r in self.data.chunks_exact(self.dim) {
            for (a, &b) in m.iter_mut().zip(r) {
                *a += b as f64;
            }
        }
        m.iter().map(|&v| (v / self.rows.max(1) as f64) as f32).collect()
    }
}

/// `a (m x k) * b (k x n)` with the `gemm` crate, one thread.
pub fn matmul(a: &Matrix, b: &Matrix) -> Matrix {
    assert_eq!(a.dim, b.rows, "matmul inner dimensions");
    let (m, k, n) = (a.rows, a.dim, b.dim);
    let mut c = Matrix::zeros(m, n);
    if m == 0 || n == 0 || k == 0 {
        return c;
    }
    // SAFETY: the pointers come from live Vecs of exactly m*k, k*n and
    // m*n elements; the strides below describe row-major layouts of those
    // shapes, so every access gemm makes is in bounds, and `c` does not
    // alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.data.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.data.as_ptr(),
            1,
            k as isize,
            b.data.as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    c
}

/// `a (m x k) * b^T` where `b` is `n x k`.
pub fn matmul_t(a: &Matrix, b: &Matrix) -> Matrix {
    assert_eq!(a.dim, b.dim, "matmul_t inner dimensions");
    let (m, k, n) = (a.rows, a.dim, b.rows);
    let mut c = Matrix::zeros(m, n);
    if m == 0 || n == 0 || k == 0 {
        return c;
    }
    // SAFETY: as in `matmul`; `b` is read as its transpose through
    // column stride k and row stride 1, within its m*k elements.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.data.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.data.as_ptr(),
            1,
            k as isize,
            b.data.as_ptr(),
            k as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    c
}

/// Covariance (`X^T X / n`) of the rows of `x` after subtracting `mean`.
pub fn covariance(x: &Matrix, mean: &[f32]) -> Matrix {
    let mut c = x.clone();
    for r in c.data.chunks_exact_mut(x.dim) {
        for (v, m) in r.iter_mut().zip(mean) {
            *v -= m;
        }
    }
    let ct = c.transpose();
    let mut cov = matmul(&ct, &c);
    let inv = 1.0 / x.rows.max(1) as f32;
    cov.data.iter_mut().for_each(|v| *v *= inv);
    cov
}

/// Eigendecomposition of a symmetric matrix: eigenvalues in descending
/// order and the matching unit eigenvectors as the ROWS of the result.
/// Householder tridiagonalisation then implicit QL (the JAMA algorithm),
/// in f64.
pub fn sym_eigen(a: &Matrix) -> (Vec<f64>, Matrix) {
    let n = a.rows;
    let mut v: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| a.data[i * n + j] as f64).collect())
        .collect();
    let mut d = vec![0f64; n];
    let mut e = vec![0f64; n];
    if n == 0 {
        return (d, Matrix::zeros(0, 0));
    }
    tred2(&mut v, &mut d, &mut e);
    tql2(&mut v, &mut d, &mut e);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| d[j].total_cmp(&d[i]));
    let mut out = Matrix::zeros(n, n);
    for (r, &c) in order.iter().enumerate() {
        for i in 0..n {
            out.data[r * n + i] = v[i][c] as f32;
        }
    }
    (order.iter().map(|&i| d[i]).collect(), out)
}

fn tred2(v: &mut [Vec<f64>], d: &mut [f64], e: &mut [f64]) {
    let n = d.len();
    d[..n].copy_from_slice(&v[n - 1][..n]);
    for i in (1..n).rev() {
        let mut scale = 0.0;
        let mut h = 0.0;
        for k in 0..i {
            scale += d[k].abs();
        }
        if scale == 0.0 {
            e[i] = d[i - 1];
            for j in 0..i {
                d[j] = v[i - 1][j];
                v[i][j] = 0.0;
                v[j][i] = 0.0;
            }
        } else {
            for k in 0..i {
                d[k] /= scale;
                h += d[k] * d[k];
            }
            let mut f = d[i - 1];
            let mut g = h.sqrt();
            if f > 0.0 {
                g = -g;
            }
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            for ej in e.iter_mut().take(i) {
                *ej = 0.0;
            }
            for j in 0..i {
                f = d[j];
                v[j][i] = f;
                g = e[j] + v[j][j] * f;
                for k in j + 1..i {
                    g += v[k][j] * d[k];
                    e[k] += v[k][j] * f;
                }
                e[j] = g;
            }
            f = 0.0;
            for j in 0..i {
                e[j] /= h;
                f += e[j] * d[j];
            }
            let hh = f / (h + h);
            for j in 0..i {
                e[j] -= hh * d[j];
            }
            for j in 0..i {
                f = d[j];
                g = e[j];
                for k in j..i {
                    v[k][j] -= f * e[k] + g * d[k];
                }
                d[j] = v[i - 1][j];
                v[i][j] = 0.0;
            }
        }
        d[i] = h;
    }
    for i in 0..n - 1 {
        v[n - 1][i] = v[i][i];
        v[i][i] = 1.0;
        let h = d[i + 1];
        if h != 0.0 {
            for k in 0..=i {
                d[k] = v[k][i + 1] / h;
            }
            for j in 0..=i {
                let mut g = 0.0;
                for k in 0..=i {
                    g += v[k][i + 1] * v[k][j];
                }
                for k in 0..=i {
                    v[k][j] -= g * d[k];
                }
            }
        }
        for k in 0..=i {
            v[k][i + 1] = 0.0;
        }
    }
    for j in 0..n {
        d[j] = v[n - 1][j];
        v[n - 1][j] = 0.0;
    }
    v[n - 1][n - 1] = 1.0;
    e[0] = 0.0;
}

fn tql2(v: &mut [Vec<f64>], d: &mut [f64], e: &mut [f64]) {
    let n = d.len();
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    let mut f = 0.0;
    let mut tst1: f64 = 0.0;
    let eps = f64::EPSILON;
    for l in 0..n {
        tst1 = tst1.max(d[l].abs() + e[l].abs());
        let mut m = l;
        while m < n {
            if e[m].abs() <= eps * tst1 {
                break;
            }
            m += 1;
        }
        let m = m.min(n - 1);
        if m > l {
            let mut iter = 0;
            loop {
                iter += 1;
                let mut g = d[l];
                let mut p = (d[l + 1] - g) / (2.0 * e[l]);
                let mut r = p.hypot(1.0);
                if p < 0.0 {
                    r = -r;
                }
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                let dl1 = d[l + 1];
                let mut h = g - d[l];
                for di in d.iter_mut().take(n).skip(l + 2) {
                    *di -= h;
                }
                f += h;
                p = d[m];
                let mut c = 1.0;
                let mut c2 = c;
                let mut c3 = c;
                let el1 = e[l + 1];
                let mut s = 0.0;
                let mut s2 = 0.0;
                for i in (l..m).rev() {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    g = c * e[i];
                    h = c * p;
                    r = p.hypot(e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    for row in v.iter_mut() {
                        h = row[i + 1];
                        row[i + 1] = s * row[i] + c * h;
                        row[i] = c * row[i] - s * h;
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
                if e[l].abs() <= eps * tst1 || iter > 60 {
                    break;
                }
            }
        }
        d[l] += f;
        e[l] = 0.0;
    }
}

/// The orthogonal matrix `R` minimising `|A R - B|` given `m = A^T B`:
/// `R = U V^T` from the SVD of `m`, computed as `m (m^T m)^(-1/2)`.
pub fn procrustes(m: &Matrix) -> Matrix {
    let mtm = matmul(&m.transpose(), m);
    let (vals, vecs) = sym_eigen(&mtm);
    // (m^T m)^(-1/2) = V diag(1/sqrt(l)) V^T with V's columns = vecs rows.
    let n = m.dim;
    let floor = vals.first().copied().unwrap_or(1.0).max(1e-30) * 1e-12;
    let mut scaled = vecs.clone();
    for (r, &l) in vals.iter().enumerate() {
        let s = 1.0 / l.max(floor).sqrt();
        for v in scaled.row_mut(r) {
            *v = (*v as f64 * s) as f32;
        }
    }
    // inv_sqrt = vecs^T * scaled
    let inv_sqrt = matmul(&vecs.transpose(), &scaled);
    let mut r = matmul(m, &inv_sqrt);
    let _ = n;
    orthonormalise_rows(&mut r);
    r
}

/// A random orthogonal `n x n` matrix (Gram-Schmidt on Gaussian rows).
pub fn random_rotation(n: usize, rng: &mut Rng) -> Matrix {
    let mut m = Matrix::zeros(n, n);
    for v in &mut m.data {
        *v = rng.normal();
    }
    orthonormalise_rows(&mut m);
    m
}

/// Modified Gram-Schmidt on the rows, in f64, twice for stability.
pub fn orthonormalise_rows(m: &mut Matrix) {
    let n = m.dim;
    let mut rows: Vec<Vec<f64>> = (0..m.rows)
        .map(|i| m.row(i).iter().map(|&v| v as f64).collect())
        .collect();
    for _pass in 0..2 {
        for i in 0..rows.len() {
            for j in 0..i {
                let dot: f64 =
                    rows[i].iter().zip(&rows[j]).map(|(a, b)| a * b).sum();
                let (a, b) = rows.split_at_mut(i);
                for (x, y) in b[0].iter_mut().zip(&a[j]) {
                    *x -= dot * y;
                }
            }
            let norm = rows[i].iter().map(|x| x * x).sum::<f64>().sqrt();
            let inv = if norm > 1e-30 { 1.0 / norm } else { 0.0 };
            rows[i].iter_mut().for_each(|x| *x *= inv);
        }
    }
    for (i, r) in rows.iter().enumerate() {
        for j in 0..n {
            m.data[i * n + j] = r[j] as f32;
        }
    }
}

/// Dot product.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Euclidean norm.
pub fn norm(a: &[f32]) -> f32 {
    dot(a, a).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigen_reconstructs() {
        let mut rng = Rng::new(3);
        let mut x = Matrix::zeros(50, 6);
        x.data.iter_mut().for_each(|v| *v = rng.normal());
        let c = covariance(&x, &x.mean());
        let (vals, vecs) = sym_eigen(&c);
        assert!(vals.windows(2).all(|w| w[0] >= w[1]));
        for (r, &l) in vals.iter().enumerate() {
            let v = vecs.row(r);
            for i in 0..6 {
                let cv: f32 = dot(c.row(i), v);
                assert!((cv - l as f32 * v[i]).abs() < 1e-4, "{cv} vs {l}");
            }
        }
    }

    #[test]
    fn procrustes_recovers_rotation() {
        let mut rng = Rng::new(5);
        let r = random_rotation(8, &mut rng);
        let mut a = Matrix::zeros(100, 8);
        a.data.iter_mut().for_each(|v| *v = rng.normal());
        let b = matmul(&a, &r);
        let got = procrustes(&matmul(&a.transpose(), &b));
        for (x, y) in got.data.iter().zip(&r.data) {
            assert!((x - y).abs() < 1e-3);
        }
    }
}
