//! Linear transforms that precede a quantizer: `y = M (x - mean)` for the
//! corpus. Queries skip the centring (`y = M q`) unless the quantizer is
//! symmetric: for inner products that only shifts every score of a query
//! by the same `<M q, M mean>`, so rankings are unchanged.
//!
//! - `pca:n`: the top-`n` principal directions of the sample.
//! - `mrl:n`: the first `n` coordinates (Matryoshka prefix).
//! - `rot`: a random orthogonal rotation.
//! - `itq`: ITQ (Gong & Lazebnik 2011): a rotation learned so that sign
//!   codes lose as little as possible.
//! - `opq:m`: OPQ (Ge et al. 2013): a rotation learned jointly with an
//!   `m`-sub-space 8-bit PQ, alternating PQ training and Procrustes.

use super::pq::Pq;
use crate::bytes::{Reader, Writer};
use crate::error::{Error, Result};
use crate::matrix::{
    Matrix, covariance, matmul, matmul_t, procrustes, random_rotation,
    sym_eigen,
};
use crate::rng::Rng;

/// A trained linear transform.
#[derive(Debug, Clone)]
pub struct Linear {
    spec: String,
    in_dim: usize,
    /// Subtracted from corpus vectors first (empty: none).
    mean: Vec<f32>,
    /// `out x in`; `None` means "keep the first `out` coordinates".
    mat: Option<Matrix>,
    out_dim: usize,
}

impl Linear {
    /// The spec token (e.g. `pca:128`).
    pub fn spec(&self) -> &str {
        &self.spec
    }
    /// Input dimension.
    pub fn in_dim(&self) -> usize {
        self.in_dim
    }
    /// Output dimension.
    pub fn out_dim(&self) -> usize {
        self.out_dim
    }

    /// Applies the transform to every row; `centre` subtracts the mean.
    pub fn apply(&self, x: &Matrix, centre: bool) -> Matrix {
        let mut c = x.clone();
        if centre && !self.mean.is_empty() {
            for r in c.data.chunks_exact_mut(x.dim) {
                r.iter_mut().zip(&self.mean).for_each(|(a, m)| *a -= m);
            }
        }
        match &self.mat {
            Some(m) => matmul_t(&c, m),
            None => c.columns(0..self.out_dim),
        }
    }

    /// Matryoshka prefix truncation to `n` coordinates.
    pub fn mrl(dim: usize, n: usize) -> Result<Linear> {
        if n == 0 || n > dim {
            return Err(Error::Invalid(format!(
                "mrl:{n}: must be between 1 and the dimension {dim}"
            )));
        }
        Ok(Linear {
            spec: format!("mrl:{n}"),
            in_dim: dim,
            mean: Vec::new(),
            mat: None,
            out_dim: n,
        })
    }

    /// PCA to `n` dimensions.
    pub fn pca(sample: &Matrix, n: usize) -> Result<Linear> {
        sample.check("training sample")?;
        if n == 0 || n > sample.dim {
            return Err(Error::Invalid(format!(
                "pca:{n}: must be between 1 and the dimension {}",
                sample.dim
            )));
        }
        let mean = sample.mean();
        let (_, vecs) = sym_eigen(&covariance(sample, &mean));
        Ok(Linear {
            spec: format!("pca:{n}"),
            in_dim: sample.dim,
            mean,
            mat: Some(vecs.head(n)),
            out_dim: n,
        })
    }

    /// A random rotation.
    pub fn rot(dim: usize, rng: &mut Rng) -> Linear {
        Linear {
            spec: "rot".into(),
            in_dim: dim,
            mean: Vec::new(),
            mat: Some(random_rotation(dim, rng)),
            out_dim: dim,
        }
    }

    /// ITQ rotation, `iters` alternations, from a random start.
    pub fn itq(sample: &Matrix, iters: usize, rng: &mut Rng) -> Result<Self> {
        sample.check("training sample")?;
        let mean = sample.mean();
        let d = sample.dim;
        let mut v = sample.clone();
        for r in v.data.chunks_exact_mut(d) {
            r.iter_mut().zip(&mean).for_each(|(a, m)| *a -= m);
        }
        let vt = v.transpose();
        // r: d x d, y = v r.
        let mut r = random_rotation(d, rng);
        for _ in 0..iters {
            let mut b = matmul(&v, &r);
            b.data
                .iter_mut()
                .for_each(|x| *x = if *x > 0.0 { 1.0 } else { -1.0 });
            r = procrustes(&matmul(&vt, &b));
        }
        Ok(Linear {
            spec: "itq".into(),
            in_dim: d,
            mean,
            mat: Some(r.transpose()),
            out_dim: d,
        })
    }

    /// OPQ rotation for an `m`-sub-space PQ of `bits`-bit codes: `iters`
    /// outer alternations, each refining the codebooks with `inner`
    /// Lloyd steps.
    pub fn opq(
        sample: &Matrix,
        (m, bits): (usize, u32),
        iters: usize,
        inner: usize,
        rng: &mut Rng,
    ) -> Result<Linear> {
        sample.check("training sample")?;
        let d = sample.dim;
        Pq::check(d, m, 8)?;
        let xt = sample.transpose();
        // Start from PCA with eigenvalue allocation: spread the leading
        // directions round-robin over sub-spaces so each gets a similar
        // share of the variance (Ge et al., "parametric" OPQ).
        let mean = sample.mean();
        let (_, vecs) = sym_eigen(&covariance(sample, &mean));
        let ds = d / m;
        let mut r = Matrix::zeros(d, d);
        for (k, e) in (0..d).enumerate() {
            let sub = k % m;
            let slot = k / m;
            let col = sub * ds + slot;
            for i in 0..d {
                r.data[i * d + col] = vecs.data[e * d + i];
            }
        }
        let mut y = matmul(sample, &r);
        let mut pq = Pq::train(&y, m, bits, inner, rng)?;
        for _ in 0..iters {
            let ids = pq.assign_all(&y);
            let rec = pq.reconstruct(&ids, y.rows);
            r = procrustes(&matmul(&xt, &rec));
            y = matmul(sample, &r);
            pq.refine(&y, inner);
        }
        Ok(Linear {
            spec: format!("opq:{m}"),
            in_dim: d,
            mean: Vec::new(),
            mat: Some(r.transpose()),
            out_dim: d,
        })
    }

    /// Writes the transform (spec included).
    pub fn save(&self, w: &mut Writer) {
        w.str(&self.spec);
        w.u32(self.in_dim as u32);
        w.u32(self.out_dim as u32);
        w.f32s(&self.mean);
        match &self.mat {
            Some(m) => {
                w.u32(1);
                w.matrix(m);
            }
            None => w.u32(0),
        }
    }

    /// Reads a transform written by [`Linear::save`].
    pub fn load(r: &mut Reader) -> Result<Linear> {
        let spec = r.str()?;
        let in_dim = r.u32()? as usize;
        let out_dim = r.u32()? as usize;
        let mean = r.f32s()?;
        let mat = match r.u32()? {
            0 => None,
            1 => Some(r.matrix()?),
            t => return Err(Error::Corrupt(format!("transform kind {t}"))),
        };
        let ok = in_dim > 0
            && out_dim > 0
            && (mean.is_empty() || mean.len() == in_dim)
            && match &mat {
                Some(m) => m.rows == out_dim && m.dim == in_dim,
                None => out_dim <= in_dim,
            };
        if !ok {
            return Err(Error::Corrupt(format!("transform {spec} shape")));
        }
        Ok(Linear { spec, in_dim, mean, mat, out_dim })
    }
}
