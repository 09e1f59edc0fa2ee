//! Sparse top-k codes: the `k` largest-magnitude coordinates of each
//! vector, as (u16 index, f16 value) pairs: 4 bytes per kept coordinate.

use half::f16;

use super::{Codec, check_dim};
use crate::bytes::{Reader, Writer};
use crate::error::{Error, Result};

/// A sparse top-k codec.
#[derive(Debug, Clone)]
pub struct Sparse {
    dim: usize,
    k: usize,
}

impl Sparse {
    /// A codec keeping `k` of `dim` coordinates (`k <= dim <= 65536`).
    pub fn new(dim: usize, k: usize) -> Result<Sparse> {
        if k == 0 || k > dim || dim > 1 << 16 {
            return Err(Error::Invalid(format!(
                "sparse:{k} needs 1 <= k <= dim ({dim}) <= 65536"
            )));
        }
        Ok(Sparse { dim, k })
    }

    pub(crate) fn load(r: &mut Reader) -> Result<Sparse> {
        let dim = check_dim(r.u32()? as usize, "sparse codec")?;
        let k = r.u32()? as usize;
        Sparse::new(dim, k).map_err(|e| Error::Corrupt(e.to_string()))
    }
}

impl Codec for Sparse {
    fn spec(&self) -> String {
        format!("sparse:{}", self.k)
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn code_bytes(&self) -> usize {
        4 * self.k
    }
    fn encode(&self, x: &[f32], code: &mut [u8]) {
        let mut idx: Vec<usize> = (0..self.dim).collect();
        idx.select_nth_unstable_by(self.k - 1, |&a, &b| {
            x[b].abs().total_cmp(&x[a].abs())
        });
        let mut keep = idx[..self.k].to_vec();
        keep.sort_unstable();
        for (c, &j) in code.chunks_exact_mut(4).zip(&keep) {
            c[..2].copy_from_slice(&(j as u16).to_le_bytes());
            c[2..].copy_from_slice(&f16::from_f32(x[j]).to_le_bytes());
        }
    }
    fn decode(&self, code: &[u8], out: &mut [f32]) {
        out.fill(0.0);
        for c in code.chunks_exact(4) {
            let j = u16::from_le_bytes([c[0], c[1]]) as usize;
            if j < out.len() {
                out[j] = f16::from_le_bytes([c[2], c[3]]).to_f32();
            }
        }
    }
    fn scan(&self, q: &[f32], codes: &[u8], scores: &mut [f32]) {
        let cb = self.code_bytes();
        for (i, s) in scores.iter_mut().enumerate() {
            let mut acc = 0f32;
            for c in codes[i * cb..(i + 1) * cb].chunks_exact(4) {
                let j = u16::from_le_bytes([c[0], c[1]]) as usize;
                let v = f16::from_le_bytes([c[2], c[3]]).to_f32();
                acc += q.get(j).copied().unwrap_or(0.0) * v;
            }
            *s = acc;
        }
    }
    fn save(&self, w: &mut Writer) {
        w.u32(self.dim as u32);
        w.u32(self.k as u32);
    }
}
