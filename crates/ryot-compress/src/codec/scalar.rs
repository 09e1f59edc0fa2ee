//! Per-dimension scalar codes: raw `f32`/`f16`, and `int8`/`int4`
//! calibrated on a sample (per-dimension minimum and maximum).

use half::f16;

use super::{Codec, check_dim};
use crate::bytes::{Reader, Writer};
use crate::error::{Error, Result};
use crate::kernels;
use crate::matrix::Matrix;

/// Uncompressed floats: `f32` (4 bytes/dim) or `f16` (2 bytes/dim).
#[derive(Debug, Clone)]
pub struct Float {
    dim: usize,
    half: bool,
}

impl Float {
    /// A float codec of dimension `dim`; `half` selects f16.
    pub fn new(dim: usize, half: bool) -> Float {
        Float { dim, half }
    }

    pub(crate) fn load(spec: &str, r: &mut Reader) -> Result<Float> {
        let dim = check_dim(r.u32()? as usize, "float codec")?;
        Ok(Float { dim, half: spec == "f16" })
    }
}

impl Codec for Float {
    fn spec(&self) -> String {
        if self.half { "f16" } else { "f32" }.into()
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn code_bytes(&self) -> usize {
        self.dim * if self.half { 2 } else { 4 }
    }
    fn encode(&self, x: &[f32], code: &mut [u8]) {
        if self.half {
            for (c, v) in code.chunks_exact_mut(2).zip(x) {
                c.copy_from_slice(&f16::from_f32(*v).to_le_bytes());
            }
        } else {
            for (c, v) in code.chunks_exact_mut(4).zip(x) {
                c.copy_from_slice(&v.to_le_bytes());
            }
        }
    }
    fn decode(&self, code: &[u8], out: &mut [f32]) {
        if self.half {
            for (o, c) in out.iter_mut().zip(code.chunks_exact(2)) {
                *o = f16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        } else {
            for (o, c) in out.iter_mut().zip(code.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
    }
    fn scan(&self, q: &[f32], codes: &[u8], scores: &mut [f32]) {
        let cb = self.code_bytes();
        let mut v = vec![0f32; self.dim];
        for (i, s) in scores.iter_mut().enumerate() {
            self.decode(&codes[i * cb..(i + 1) * cb], &mut v);
            *s = kernels::dot(q, &v);
        }
    }
    fn save(&self, w: &mut Writer) {
        w.u32(self.dim as u32);
    }
}

/// Scalar quantisation to 8 or 4 bits per dimension:
/// `x ≈ lo + u * step`, `u` in `0..=255` (or `0..=15`).
#[derive(Debug, Clone)]
pub struct Sq {
    bits: u32,
    lo: Vec<f32>,
    step: Vec<f32>,
}

impl Sq {
    /// Calibrates per-dimension ranges on `sample` for `bits` = 8 or 4.
    pub fn train(sample: &Matrix, bits: u32) -> Result<Sq> {
        sample.check("training sample")?;
        if bits != 8 && bits != 4 {
            return Err(Error::Invalid(format!("int{bits}: use 8 or 4")));
        }
        let d = sample.dim;
        let mut lo = vec![f32::INFINITY; d];
        let mut hi = vec![f32::NEG_INFINITY; d];
        for r in sample.data.chunks_exact(d) {
            for j in 0..d {
                lo[j] = lo[j].min(r[j]);
                hi[j] = hi[j].max(r[j]);
            }
        }
        let levels = ((1u32 << bits) - 1) as f32;
        let step = lo
            .iter()
            .zip(&hi)
            .map(|(l, h)| ((h - l) / levels).max(1e-12))
            .collect();
        Ok(Sq { bits, lo, step })
    }

    fn levels(&self) -> f32 {
        ((1u32 << self.bits) - 1) as f32
    }

    fn q(&self, j: usize, v: f32) -> u8 {
        ((v - self.lo[j]) / self.step[j]).round().clamp(0.0, self.levels())
            as u8
    }

    pub(crate) fn load(spec: &str, r: &mut Reader) -> Result<Sq> {
        let bits = if spec == "int8" { 8 } else { 4 };
        let lo = r.f32s()?;
        let step = r.f32s()?;
        if lo.len() != step.len() {
            return Err(Error::Corrupt("int codec: range lengths".into()));
        }
        check_dim(lo.len(), "int codec")?;
        Ok(Sq { bits, lo, step })
    }

    /// Per-query weights and constant: score = c + sum w_j u_j.
    /// Scores `q` against the first `dims` dimensions of codes laid out
    /// every `stride` bytes (`dims` even for int4): the estimate of the
    /// inner product over that prefix.
    pub fn scan_prefix(
        &self,
        q: &[f32],
        dims: usize,
        codes: &[u8],
        stride: usize,
        scores: &mut [f32],
    ) {
        let w = self.weights(&q[..dims]);
        self.scan_weighted(&w, codes, stride, scores);
    }

    /// The weights and constant for scoring the first `dims` dimensions
    /// (see [`Sq::scan_weighted`]).
    pub fn prefix_weights(&self, q: &[f32], dims: usize) -> (Vec<f32>, f32) {
        self.weights(&q[..dims])
    }

    /// [`Sq::scan_prefix`] with weights from [`Sq::prefix_weights`].
    pub fn scan_weighted(
        &self,
        w: &(Vec<f32>, f32),
        codes: &[u8],
        stride: usize,
        scores: &mut [f32],
    ) {
        if self.bits == 8 {
            kernels::scan_u8(&w.0, codes, stride, scores);
        } else {
            kernels::scan_u4(&w.0, codes, stride, scores);
        }
        scores.iter_mut().for_each(|s| *s += w.1);
    }

    fn weights(&self, q: &[f32]) -> (Vec<f32>, f32) {
        let w = q.iter().zip(&self.step).map(|(a, s)| a * s).collect();
        let c = q.iter().zip(&self.lo).map(|(a, l)| a * l).sum();
        (w, c)
    }
}

impl Codec for Sq {
    fn spec(&self) -> String {
        format!("int{}", self.bits)
    }
    fn dim(&self) -> usize {
        self.lo.len()
    }
    fn code_bytes(&self) -> usize {
        if self.bits == 8 { self.dim() } else { self.dim().div_ceil(2) }
    }
    fn encode(&self, x: &[f32], code: &mut [u8]) {
        if self.bits == 8 {
            for (j, c) in code.iter_mut().enumerate() {
                *c = self.q(j, x[j]);
            }
        } else {
            code.fill(0);
            for (j, &v) in x.iter().enumerate() {
                code[j / 2] |= self.q(j, v) << (4 * (j % 2));
            }
        }
    }
    fn decode(&self, code: &[u8], out: &mut [f32]) {
        for (j, o) in out.iter_mut().enumerate() {
            let u = if self.bits == 8 {
                code[j]
            } else {
                (code[j / 2] >> (4 * (j % 2))) & 15
            };
            *o = self.lo[j] + u as f32 * self.step[j];
        }
    }
    fn scan(&self, q: &[f32], codes: &[u8], scores: &mut [f32]) {
        let (w, c) = self.weights(q);
        if self.bits == 8 {
            kernels::scan_u8(&w, codes, self.code_bytes(), scores);
        } else {
            kernels::scan_u4(&w, codes, self.code_bytes(), scores);
        }
        scores.iter_mut().for_each(|s| *s += c);
    }
    fn save(&self, w: &mut Writer) {
        w.f32s(&self.lo);
        w.f32s(&self.step);
    }
}
