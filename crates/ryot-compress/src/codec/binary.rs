//! Binary sign codes: one bit per dimension, `x_j > mean_j`, searched by
//! Hamming distance (the query is binarised the same way). Put a `rot` or
//! `itq` transform before it for a random or ITQ-learned rotation.

use super::{Codec, check_dim};
use crate::bytes::{Reader, Writer};
use crate::error::Result;
use crate::kernels;
use crate::matrix::Matrix;

/// A trained sign-code codec.
#[derive(Debug, Clone)]
pub struct Binary {
    mean: Vec<f32>,
    /// Mean absolute deviation per dimension, for decoding.
    amp: Vec<f32>,
}

impl Binary {
    /// Learns the per-dimension thresholds (means) on `sample`.
    pub fn train(sample: &Matrix) -> Result<Binary> {
        sample.check("training sample")?;
        let mean = sample.mean();
        let d = sample.dim;
        let mut amp = vec![0f64; d];
        for r in sample.data.chunks_exact(d) {
            for j in 0..d {
                amp[j] += (r[j] - mean[j]).abs() as f64;
            }
        }
        let amp = amp.iter().map(|a| (a / sample.rows as f64) as f32).collect();
        Ok(Binary { mean, amp })
    }

    pub(crate) fn load(r: &mut Reader) -> Result<Binary> {
        let mean = r.f32s()?;
        let amp = r.f32s()?;
        check_dim(mean.len(), "bin codec")?;
        if amp.len() != mean.len() {
            return Err(crate::Error::Corrupt("bin codec: lengths".into()));
        }
        Ok(Binary { mean, amp })
    }
}

impl Codec for Binary {
    fn spec(&self) -> String {
        "bin".into()
    }
    fn dim(&self) -> usize {
        self.mean.len()
    }
    fn code_bytes(&self) -> usize {
        self.dim().div_ceil(8)
    }
    fn encode(&self, x: &[f32], code: &mut [u8]) {
        code.fill(0);
        for (j, (&v, &m)) in x.iter().zip(&self.mean).enumerate() {
            if v > m {
                code[j / 8] |= 1 << (j % 8);
            }
        }
    }
    fn decode(&self, code: &[u8], out: &mut [f32]) {
        for (j, o) in out.iter_mut().enumerate() {
            let bit = (code[j / 8] >> (j % 8)) & 1 == 1;
            let a = self.amp[j];
            *o = self.mean[j] + if bit { a } else { -a };
        }
    }
    fn scan(&self, q: &[f32], codes: &[u8], scores: &mut [f32]) {
        let mut qc = vec![0u8; self.code_bytes()];
        self.encode(q, &mut qc);
        let mut h = vec![0u32; scores.len()];
        kernels::hamming(&qc, codes, self.code_bytes(), &mut h);
        for (s, d) in scores.iter_mut().zip(h) {
            *s = -(d as f32);
        }
    }
    fn symmetric(&self) -> bool {
        true
    }
    fn save(&self, w: &mut Writer) {
        w.f32s(&self.mean);
        w.f32s(&self.amp);
    }
}
