//! RaBitQ-style codes (Gao & Long 2024; multi-bit as in extended RaBitQ):
//! centre on the mean `c`, rotate randomly (`P`, `D x d` with orthonormal
//! columns, `D` = `d` rounded up to a multiple of 8), normalise to
//! `o = P(x-c)/|x-c|`, and store `B`-bit grid codes `u` (as bit planes)
//! with one correction factor `f`:
//!
//! With `g = u - (2^B-1)/2` and `ĝ = g/|g|`, the unbiased estimator of
//! `<q', o>` is `<q', ĝ> / <ĝ, o>`, so
//! `<q, x> = <q, c> + |x-c| <Pq, o> ≈ <q, c> + f (<Pq, u> - mid Σ Pq)`
//! with `f = |x-c| / (<ĝ, o> |g|)`. `<q, c>` is the same for every code
//! and is left out of the score. Per vector: `B*D/8 + 4` bytes.

use super::{Codec, check_dim};
use crate::bytes::{Reader, Writer};
use crate::error::{Error, Result};
use crate::kernels;
use crate::matrix::{Matrix, matmul_t, random_rotation};
use crate::rng::Rng;

/// MSE-optimal uniform step for a unit Gaussian with `2^B` levels.
const GAUSS_STEP: [f32; 8] =
    [1.596, 0.996, 0.586, 0.335, 0.188, 0.104, 0.057, 0.031];

/// A trained RaBitQ codec.
#[derive(Debug, Clone)]
pub struct RaBitQ {
    bits: u32,
    mean: Vec<f32>,
    /// `D x d`, orthonormal columns.
    rot: Matrix,
}

impl RaBitQ {
    /// Learns the mean of `sample` and draws the rotation from `rng`.
    pub fn train(sample: &Matrix, bits: u32, rng: &mut Rng) -> Result<Self> {
        sample.check("training sample")?;
        if !(1..=8).contains(&bits) {
            return Err(Error::Invalid(format!("rabitq:{bits}: bits 1..=8")));
        }
        let d = sample.dim;
        let big = d.div_ceil(8) * 8;
        let full = random_rotation(big, rng);
        let mut rot = Matrix::zeros(big, d);
        for i in 0..big {
            rot.row_mut(i).copy_from_slice(&full.row(i)[..d]);
        }
        Ok(RaBitQ { bits, mean: sample.mean(), rot })
    }

    fn big(&self) -> usize {
        self.rot.rows
    }

    fn mid(&self) -> f32 {
        ((1u32 << self.bits) - 1) as f32 / 2.0
    }

    pub(crate) fn load(r: &mut Reader) -> Result<Self> {
        let bits = r.u32()?;
        let mean = r.f32s()?;
        let rot = r.matrix()?;
        let d = check_dim(mean.len(), "rabitq codec")?;
        if !(1..=8).contains(&bits)
            || rot.dim != d
            || rot.rows != d.div_ceil(8) * 8
        {
            return Err(Error::Corrupt("rabitq codec shape".into()));
        }
        Ok(RaBitQ { bits, mean, rot })
    }

    /// Grid codes and factor for one rotated residual `r` (length D).
    fn quantise(&self, r: &[f32]) -> (Vec<u8>, f32) {
        let big = r.len();
        let norm = r.iter().map(|v| v * v).sum::<f32>().sqrt();
        let top = ((1u32 << self.bits) - 1) as f32;
        let mid = self.mid();
        if norm <= 0.0 {
            return (vec![mid.floor() as u8; big], 0.0);
        }
        let o: Vec<f32> = r.iter().map(|v| v / norm).collect();
        let mut best = (Vec::new(), f32::NEG_INFINITY, 0f32);
        let scales: &[f32] = if self.bits == 1 {
            &[1.0]
        } else {
            &[0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2, 1.35, 1.5]
        };
        let sigma = 1.0 / (big as f32).sqrt();
        for &s in scales {
            let t = 1.0 / (GAUSS_STEP[self.bits as usize - 1] * s * sigma);
            let u: Vec<u8> = o
                .iter()
                .map(|&v| (v * t + mid).round().clamp(0.0, top) as u8)
                .collect();
            let (mut ip, mut gn) = (0f32, 0f32);
            for (&ui, &oi) in u.iter().zip(&o) {
                let g = ui as f32 - mid;
                ip += g * oi;
                gn += g * g;
            }
            let cos = ip / gn.sqrt().max(1e-30);
            if cos > best.1 {
                best = (u, cos, ip);
            }
        }
        // f = norm / (<ĝ,o> |g|) = norm / <g, o>.
        let f = if best.2 > 0.0 { norm / best.2 } else { 0.0 };
        (best.0, f)
    }

    fn rotate(&self, x: &[f32], centre: bool) -> Vec<f32> {
        let v: Vec<f32> = if centre {
            x.iter().zip(&self.mean).map(|(a, m)| a - m).collect()
        } else {
            x.to_vec()
        };
        (0..self.big()).map(|i| kernels::dot(self.rot.row(i), &v)).collect()
    }

    fn pack(&self, u: &[u8], f: f32, code: &mut [u8]) {
        let nb = self.big() / 8;
        code.fill(0);
        for (j, &v) in u.iter().enumerate() {
            for p in 0..self.bits as usize {
                if (v >> p) & 1 == 1 {
                    code[p * nb + j / 8] |= 1 << (j % 8);
                }
            }
        }
        let at = self.bits as usize * nb;
        code[at..at + 4].copy_from_slice(&f.to_le_bytes());
    }
}

impl Codec for RaBitQ {
    fn spec(&self) -> String {
        format!("rabitq:{}", self.bits)
    }
    fn dim(&self) -> usize {
        self.mean.len()
    }
    fn code_bytes(&self) -> usize {
        self.bits as usize * self.big() / 8 + 4
    }
    fn encode(&self, x: &[f32], code: &mut [u8]) {
        let r = self.rotate(x, true);
        let (u, f) = self.quantise(&r);
        self.pack(&u, f, code);
    }
    fn encode_batch(&self, x: &Matrix, codes: &mut [u8]) {
        let mut c = x.clone();
        for row in c.data.chunks_exact_mut(x.dim) {
            row.iter_mut().zip(&self.mean).for_each(|(a, m)| *a -= m);
        }
        let rotated = matmul_t(&c, &self.rot);
        let cb = self.code_bytes();
        for i in 0..x.rows {
            let (u, f) = self.quantise(rotated.row(i));
            self.pack(&u, f, &mut codes[i * cb..(i + 1) * cb]);
        }
    }
    fn decode(&self, code: &[u8], out: &mut [f32]) {
        let nb = self.big() / 8;
        let at = self.bits as usize * nb;
        let f = f32::from_le_bytes([
            code[at],
            code[at + 1],
            code[at + 2],
            code[at + 3],
        ]);
        let mid = self.mid();
        let mut g = vec![0f32; self.big()];
        for (j, gv) in g.iter_mut().enumerate() {
            let mut u = 0u32;
            for p in 0..self.bits as usize {
                u |= (((code[p * nb + j / 8] >> (j % 8)) & 1) as u32) << p;
            }
            *gv = u as f32 - mid;
        }
        // x ≈ c + P^T (f g): unbiased for inner products (not for
        // length: it is |x-c| / cos(ĝ, o) long).
        for (j, o) in out.iter_mut().enumerate() {
            let mut s = 0f32;
            for (i, gv) in g.iter().enumerate() {
                s += self.rot.data[i * self.dim() + j] * gv;
            }
            *o = self.mean[j] + f * s;
        }
    }
    fn scan(&self, q: &[f32], codes: &[u8], scores: &mut [f32]) {
        let qr = self.rotate(q, false);
        let nb = self.big() / 8;
        let mut lut = vec![0f32; nb * 256];
        for m in 0..nb {
            let t = &mut lut[m * 256..(m + 1) * 256];
            for v in 1..256usize {
                let low = v.trailing_zeros() as usize;
                t[v] = t[v & (v - 1)] + qr[8 * m + low];
            }
        }
        let sum_q: f32 = qr.iter().sum();
        let cb = self.code_bytes();
        kernels::scan_adc(&lut, nb, self.bits as usize, codes, cb, scores);
        let mid = self.mid();
        let at = self.bits as usize * nb;
        for (i, s) in scores.iter_mut().enumerate() {
            let c = &codes[i * cb + at..i * cb + at + 4];
            let f = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            *s = f * (*s - mid * sum_q);
        }
    }
    fn save(&self, w: &mut Writer) {
        w.u32(self.bits);
        w.f32s(&self.mean);
        w.matrix(&self.rot);
    }
}
