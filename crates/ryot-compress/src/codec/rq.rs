//! Residual quantisation (Juang & Gray 1982; beam-search encoding as in
//! Babenko & Lempitsky's additive quantisation line of work): `m` stages
//! of 256 full-dimension centroids; stage `s` quantizes what stages
//! `0..s` left over, and a vector is the sum of its `m` centroids.
//!
//! Unlike PQ, every stage sees every dimension, so the codebooks follow
//! the data's correlations without a rotation; the price is encoding,
//! which keeps the `beam` best partial codes per vector from stage to
//! stage instead of choosing each byte alone.
//!
//! **Encoding cost.** The squared error of extending a partial code by
//! centroid `k` of stage `s` is
//! `|r|^2 + |c_k|^2 - 2 x.c_k + 2 sum_{t<s} c_t[b_t].c_k`, so a stage
//! needs `x . C_s` (one GEMM per block of rows) and the centroid
//! cross-products of earlier stages (`s` tables of 256 x 256, built once
//! per stage), never the residual vectors themselves.
//!
//! **Scoring.** A query's table holds `q . c` for every centroid; the
//! sum over the code's bytes is `q . x^` (the same byte-lookup ADC
//! kernel as PQ). When every training vector has unit length, a code
//! also stores one byte: the length `|x^|` quantized uniformly between
//! the smallest and largest length seen in training, and the score is
//! `q . x^ / |x^|` (the cosine, as PQ's cosine mode; here the length is
//! not a sum over bytes, so it has to be stored). `rq:M` thus takes
//! `M + 1` bytes on unit-length data and `M` otherwise; the file tag
//! then ends in [`super::COS_TAG`].

use std::thread;

use super::{Codec, check_dim};
use crate::bytes::{Reader, Writer};
use crate::codec::pq::unit_rows;
use crate::error::{Error, Result};
use crate::kernels;
use crate::kmeans;
use crate::matrix::{Matrix, matmul_t};
use crate::rng::Rng;

/// Centroids per stage (one byte per stage).
pub const K: usize = 256;

/// Default beam width: partial codes kept per vector while encoding.
pub const DEFAULT_BEAM: usize = 16;

/// Default passes of codebook refinement after the stages are trained:
/// with the training codes fixed, each stage's centroids are re-fitted to
/// what the other stages leave (block coordinate descent on the squared
/// error). Measured on MiniLM WordNet (codes-only recall@10): `rq:47`
/// 0.797 -> 0.816 with 4 passes (0.819 with 10), `rq:11` 0.461 -> 0.473,
/// `rq:5` 0.273 -> 0.281; it costs about a second per pass at 47 stages
/// over 20k rows.
pub const REFINE_PASSES: usize = 4;

/// Largest accepted beam width (at 256 a two-stage code is the exact
/// optimum).
pub const MAX_BEAM: usize = 256;

/// Largest accepted number of stages (bytes per vector).
pub const MAX_STAGES: usize = 256;

/// Rows encoded per beam search in [`Codec::encode_batch`] (bounds the
/// beam state; each chunk rebuilds the cross-product tables, about 8 %
/// of its time at 47 stages).
const ENCODE_CHUNK: usize = 16_384;

/// Rows encoded per block (bounds the `x . C` scratch).
const BLOCK_ROWS: usize = 256;

/// Rows per earlier stage from which a beam step builds the centroid
/// cross-product tables (below, it rebuilds residuals: a table costs
/// `256 * dim` multiply-adds per centroid, a residual product
/// `beam * 256 * dim` per row).
const CROSS_MIN_ROWS: usize = 32;

/// A trained residual quantizer.
#[derive(Debug, Clone)]
pub struct Rq {
    dim: usize,
    beam: usize,
    /// One `256 x dim` centroid table per stage.
    cent: Vec<Matrix>,
    /// Squared centroid lengths per stage (derived).
    cnorm: Vec<Vec<f32>>,
    /// Length byte range `[lo, hi]` when cosine-scored.
    len_range: Option<(f32, f32)>,
    /// `1 / length` per length byte (derived; empty unless cosine).
    inv_len: Vec<f32>,
}

impl Rq {
    /// Checks the shape parameters.
    pub fn check(dim: usize, m: usize, beam: usize) -> Result<()> {
        if m == 0 || m > MAX_STAGES {
            return Err(Error::Invalid(format!(
                "rq:{m}: 1 to {MAX_STAGES} stages (dimension {dim}; for \
                 more bytes per vector use int8)"
            )));
        }
        if beam == 0 || beam > MAX_BEAM {
            return Err(Error::Invalid(format!(
                "rq beam {beam}: 1 to {MAX_BEAM}"
            )));
        }
        Ok(())
    }

    /// Trains `m` stages of 256 centroids on `sample`: each stage is
    /// k-means ([`kmeans::kmeans_progressive`], `iters` Lloyd steps per
    /// round) on the residuals the beam search leaves after the stages
    /// before it, then [`REFINE_PASSES`] passes of codebook refinement.
    /// Length-normalised scoring when every row has unit length.
    pub fn train(
        sample: &Matrix,
        m: usize,
        beam: usize,
        iters: usize,
        rng: &mut Rng,
    ) -> Result<Rq> {
        Rq::train_with(sample, m, beam, iters, REFINE_PASSES, rng)
    }

    /// [`Rq::train`] with `refine` passes of codebook refinement (see
    /// [`REFINE_PASSES`]; 0 keeps the greedy stage-by-stage codebooks).
    pub fn train_with(
        sample: &Matrix,
        m: usize,
        beam: usize,
        iters: usize,
        refine: usize,
        rng: &mut Rng,
    ) -> Result<Rq> {
        sample.check("training sample")?;
        Rq::check(sample.dim, m, beam)?;
        let cos = unit_rows(sample);
        let mut rq = Rq::new(sample.dim, beam, Vec::new(), None);
        let mut state = Beams::start(sample, beam, m);
        let mut resid = sample.clone();
        for s in 0..m {
            let c = kmeans::kmeans_progressive(&resid, K, iters, rng);
            rq.cnorm.push(c.row_sq_norms());
            rq.cent.push(c);
            rq.step(sample, &mut state, s);
            resid = rq.residuals(sample, &state.best(s + 1));
        }
        let ids = state.best(m);
        rq.refine(sample, &ids, refine);
        if cos {
            let lens: Vec<f32> = (0..sample.rows)
                .map(|i| rq.len_of(&ids[i * m..][..m]))
                .collect();
            let lo = lens.iter().copied().fold(f32::INFINITY, f32::min);
            let hi = lens.iter().copied().fold(0f32, f32::max);
            rq = Rq::new(sample.dim, beam, rq.cent, Some((lo, hi)));
        }
        Ok(rq)
    }

    /// Codebook refinement with the codes `ids` (`m` per row of `x`)
    /// fixed: each stage's centroid becomes the mean of what the other
    /// stages leave of the rows coded to it, the least-squares optimum for
    /// that stage given the others, stage after stage, `passes` times.
    /// The squared error cannot grow.
    fn refine(&mut self, x: &Matrix, ids: &[u8], passes: usize) {
        let (m, d) = (self.cent.len(), self.dim);
        if passes == 0 || x.rows == 0 {
            return;
        }
        let mut recon = Matrix::zeros(x.rows, d);
        for i in 0..x.rows {
            self.add_centroids(&ids[i * m..][..m], recon.row_mut(i));
        }
        let mut sums = vec![0f64; K * d];
        let mut counts = vec![0usize; K];
        for _ in 0..passes {
            for s in 0..m {
                sums.iter_mut().for_each(|v| *v = 0.0);
                counts.iter_mut().for_each(|v| *v = 0);
                let c = &self.cent[s];
                for i in 0..x.rows {
                    let k = ids[i * m + s] as usize;
                    counts[k] += 1;
                    let (xr, rr, cr) = (x.row(i), recon.row(i), c.row(k));
                    for (j, acc) in
                        sums[k * d..(k + 1) * d].iter_mut().enumerate()
                    {
                        *acc += f64::from(xr[j] - rr[j] + cr[j]);
                    }
                }
                let old = self.cent[s].clone();
                for k in 0..K {
                    if counts[k] > 0 {
                        let n = counts[k] as f64;
                        for (o, &v) in self.cent[s]
                            .row_mut(k)
                            .iter_mut()
                            .zip(&sums[k * d..(k + 1) * d])
                        {
                            *o = (v / n) as f32;
                        }
                    }
                }
                for i in 0..x.rows {
                    let k = ids[i * m + s] as usize;
                    let (nc, oc) = (self.cent[s].row(k), old.row(k));
                    for ((r, &a), &b) in
                        recon.row_mut(i).iter_mut().zip(nc).zip(oc)
                    {
                        *r += a - b;
                    }
                }
            }
        }
        self.cnorm = self.cent.iter().map(Matrix::row_sq_norms).collect();
    }

    /// A quantizer over `cent`; `len_range` switches cosine scoring on.
    fn new(
        dim: usize,
        beam: usize,
        cent: Vec<Matrix>,
        len_range: Option<(f32, f32)>,
    ) -> Rq {
        let cnorm = cent.iter().map(Matrix::row_sq_norms).collect();
        let inv_len = match len_range {
            Some((lo, hi)) => (0..256)
                .map(|j| {
                    let v = lo + (hi - lo) * j as f32 / 255.0;
                    if v > 0.0 { 1.0 / v } else { 0.0 }
                })
                .collect(),
            None => Vec::new(),
        };
        Rq { dim, beam, cent, cnorm, len_range, inv_len }
    }

    /// Stages.
    pub fn stages(&self) -> usize {
        self.cent.len()
    }

    /// Whether codes are scored by cosine with their reconstruction.
    pub fn cosine(&self) -> bool {
        self.len_range.is_some()
    }

    /// The same codebooks, encoding with beam width `beam`.
    pub fn with_beam(self, beam: usize) -> Result<Rq> {
        Rq::check(self.dim, self.stages(), beam)?;
        Ok(Rq { beam, ..self })
    }

    /// The centroids of stage `s` (`256 x dim`).
    pub fn centroids(&self, s: usize) -> &Matrix {
        &self.cent[s]
    }

    /// The same quantizer with cosine scoring switched off (plain inner
    /// product, one byte less per vector).
    pub fn without_cosine(self) -> Rq {
        Rq::new(self.dim, self.beam, self.cent, None)
    }

    /// The length of the reconstruction of stage ids `ids`.
    fn len_of(&self, ids: &[u8]) -> f32 {
        let mut v = vec![0f32; self.dim];
        self.add_centroids(ids, &mut v);
        v.iter().map(|a| a * a).sum::<f32>().sqrt()
    }

    /// `out += sum_s C_s[ids[s]]`.
    fn add_centroids(&self, ids: &[u8], out: &mut [f32]) {
        for (c, &id) in self.cent.iter().zip(ids) {
            for (o, v) in out.iter_mut().zip(c.row(id as usize)) {
                *o += v;
            }
        }
    }

    /// `out -= sum_s C_s[ids[s]]`.
    fn sub_centroids(&self, ids: &[u8], out: &mut [f32]) {
        for (c, &id) in self.cent.iter().zip(ids) {
            for (o, v) in out.iter_mut().zip(c.row(id as usize)) {
                *o -= v;
            }
        }
    }

    /// `x - reconstruction` for every row, from `stages`-byte ids.
    fn residuals(&self, x: &Matrix, ids: &[u8]) -> Matrix {
        let st = ids.len() / x.rows.max(1);
        let mut r = x.clone();
        for i in 0..x.rows {
            self.sub_centroids(&ids[i * st..][..st], r.row_mut(i));
        }
        r
    }

    /// Extends every row's beam by stage `s`.
    fn step(&self, x: &Matrix, state: &mut Beams, s: usize) {
        if x.rows == 0 {
            return;
        }
        // cross[t][a * K + k] = C_t[a] . C_s[k], for t < s: worth its
        // `s * 256 * 256 * dim` multiply-adds only over enough rows; a
        // few rows compute their beam's residuals instead.
        let cross: Option<Vec<Matrix>> =
            (x.rows >= CROSS_MIN_ROWS * s).then(|| {
                (0..s).map(|t| matmul_t(&self.cent[t], &self.cent[s])).collect()
            });
        let threads = thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(x.rows.div_ceil(BLOCK_ROWS))
            .max(1);
        let per = x.rows.div_ceil(threads);
        let (b, m, live) = (state.width, state.stages, state.live);
        let cross = cross.as_deref();
        if threads == 1 {
            let (c, d) = (&mut state.codes[..], &mut state.dist[..]);
            self.step_rows(x, 0..x.rows, s, cross, c, d, live, m);
        } else {
            let codes = state.codes.chunks_mut(per * b * m);
            let dists = state.dist.chunks_mut(per * b);
            thread::scope(|sc| {
                for (t, (codes, dists)) in codes.zip(dists).enumerate() {
                    sc.spawn(move || {
                        let start = t * per;
                        let rows = start..(start + per).min(x.rows);
                        self.step_rows(
                            x, rows, s, cross, codes, dists, live, m,
                        );
                    });
                }
            });
        }
        state.live = (state.live * K).min(b);
    }

    /// [`Rq::step`] for rows `rows`; `codes` and `dists` start at the
    /// first of them. Without `cross`, each beam entry's residual is
    /// rebuilt and multiplied with the stage's centroids directly.
    #[allow(clippy::too_many_arguments)]
    fn step_rows(
        &self,
        x: &Matrix,
        rows: std::ops::Range<usize>,
        s: usize,
        cross: Option<&[Matrix]>,
        codes: &mut [u8],
        dists: &mut [f32],
        live: usize,
        m: usize,
    ) {
        let b = dists.len() / rows.len().max(1);
        let mut acc = vec![0f32; K];
        let mut cand: Vec<(f32, usize, u8)> = Vec::with_capacity(b + 1);
        let mut new_codes = vec![0u8; b * m];
        let mut resid = Matrix::zeros(live, self.dim);
        for blk in (rows.start..rows.end).step_by(BLOCK_ROWS) {
            let bend = (blk + BLOCK_ROWS).min(rows.end);
            let idx: Vec<usize> = (blk..bend).collect();
            let xc = matmul_t(&x.select(&idx), &self.cent[s]);
            for (r, i) in (blk..bend).enumerate() {
                let li = i - rows.start;
                let code = &mut codes[li * b * m..][..b * m];
                let dist = &mut dists[li * b..][..b];
                let xr = xc.row(r);
                // Direct mode: r_e . c_k for every live entry e.
                let rc = cross.is_none().then(|| {
                    for e in 0..live {
                        let row = resid.row_mut(e);
                        row.copy_from_slice(x.row(i));
                        self.sub_centroids(&code[e * m..e * m + s], row);
                    }
                    matmul_t(&resid, &self.cent[s])
                });
                cand.clear();
                for e in 0..live {
                    let prefix = &code[e * m..e * m + s];
                    let dots = rc.as_ref().map_or(xr, |rc| rc.row(e));
                    for (a, (&n, &d)) in
                        acc.iter_mut().zip(self.cnorm[s].iter().zip(dots))
                    {
                        *a = n - 2.0 * d;
                    }
                    if let Some(cross) = cross {
                        for (t, &id) in prefix.iter().enumerate() {
                            let row = cross[t].row(id as usize);
                            for (a, &v) in acc.iter_mut().zip(row) {
                                *a += 2.0 * v;
                            }
                        }
                    }
                    for (k, &a) in acc.iter().enumerate() {
                        let v = dist[e] + a;
                        if cand.len() < b || v < cand[cand.len() - 1].0 {
                            let pos = cand.partition_point(|c| c.0 <= v);
                            cand.insert(pos, (v, e, k as u8));
                            cand.truncate(b);
                        }
                    }
                }
                for (j, &(v, e, k)) in cand.iter().enumerate() {
                    new_codes[j * m..j * m + s]
                        .copy_from_slice(&code[e * m..e * m + s]);
                    new_codes[j * m + s] = k;
                    dist[j] = v;
                }
                code[..cand.len() * m]
                    .copy_from_slice(&new_codes[..cand.len() * m]);
            }
        }
    }

    /// Stage ids of every row (`rows x stages`), by beam search.
    pub fn assign_all(&self, x: &Matrix) -> Vec<u8> {
        let m = self.stages();
        let mut state = Beams::start(x, self.beam, m);
        for s in 0..m {
            self.step(x, &mut state, s);
        }
        state.best(m)
    }

    /// The length byte of a reconstruction of length `len`.
    fn len_byte(&self, len: f32) -> u8 {
        let Some((lo, hi)) = self.len_range else { return 0 };
        if hi <= lo {
            return 0;
        }
        ((len - lo) / (hi - lo) * 255.0).round().clamp(0.0, 255.0) as u8
    }

    pub(crate) fn load(r: &mut Reader, cos: bool) -> Result<Rq> {
        let dim = check_dim(r.u32()? as usize, "rq codec")?;
        let m = r.u32()? as usize;
        let beam = r.u32()? as usize;
        Rq::check(dim, m, beam).map_err(|e| Error::Corrupt(e.to_string()))?;
        let range = if cos {
            let (lo, hi) = (r.f32()?, r.f32()?);
            if !(lo.is_finite() && hi.is_finite() && lo >= 0.0 && hi >= lo) {
                return Err(Error::Corrupt("rq length range".into()));
            }
            Some((lo, hi))
        } else {
            None
        };
        let mut cent = Vec::with_capacity(m);
        for _ in 0..m {
            let c = r.matrix()?;
            if c.rows != K || c.dim != dim {
                return Err(Error::Corrupt("rq codebook shape".into()));
            }
            cent.push(c);
        }
        Ok(Rq::new(dim, beam, cent, range))
    }

    /// The query table: `q . c` for every centroid (`stages x 256`).
    pub fn lut(&self, q: &[f32]) -> Vec<f32> {
        let qm = Matrix { rows: 1, dim: self.dim, data: q.to_vec() };
        self.cent.iter().flat_map(|c| matmul_t(&qm, c).data).collect()
    }
}

/// Beam-search state for a block of rows: per row `width` partial codes
/// (`stages` bytes each) and their squared errors; the first `live`
/// entries of each row are in use.
struct Beams {
    width: usize,
    stages: usize,
    live: usize,
    codes: Vec<u8>,
    dist: Vec<f32>,
}

impl Beams {
    /// One empty code per row, with error `|x|^2`.
    fn start(x: &Matrix, width: usize, stages: usize) -> Beams {
        let mut dist = vec![f32::INFINITY; x.rows * width];
        for (i, n) in x.row_sq_norms().into_iter().enumerate() {
            dist[i * width] = n;
        }
        let codes = vec![0u8; x.rows * width * stages];
        Beams { width, stages, live: 1, codes, dist }
    }

    /// The best code of every row, first `s` bytes (`rows x s`).
    fn best(&self, s: usize) -> Vec<u8> {
        let rows = self.dist.len() / self.width;
        let mut out = Vec::with_capacity(rows * s);
        for i in 0..rows {
            out.extend_from_slice(
                &self.codes[i * self.width * self.stages..][..s],
            );
        }
        out
    }
}

impl Codec for Rq {
    fn spec(&self) -> String {
        format!("rq:{}", self.stages())
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn code_bytes(&self) -> usize {
        self.stages() + usize::from(self.cosine())
    }
    fn encode(&self, x: &[f32], code: &mut [u8]) {
        let xm = Matrix { rows: 1, dim: self.dim, data: x.to_vec() };
        self.encode_batch(&xm, code);
    }
    fn encode_batch(&self, x: &Matrix, codes: &mut [u8]) {
        let m = self.stages();
        let cb = self.code_bytes();
        // In chunks, so the beam state (`beam * stages` bytes a row)
        // stays bounded however many rows come.
        for start in (0..x.rows).step_by(ENCODE_CHUNK) {
            let end = (start + ENCODE_CHUNK).min(x.rows);
            let idx: Vec<usize> = (start..end).collect();
            let ids = self.assign_all(&x.select(&idx));
            for (r, i) in (start..end).enumerate() {
                let id = &ids[r * m..][..m];
                let code = &mut codes[i * cb..(i + 1) * cb];
                code[..m].copy_from_slice(id);
                if self.cosine() {
                    code[m] = self.len_byte(self.len_of(id));
                }
            }
        }
    }
    fn decode(&self, code: &[u8], out: &mut [f32]) {
        out.fill(0.0);
        self.add_centroids(&code[..self.stages()], out);
    }
    fn scan(&self, q: &[f32], codes: &[u8], scores: &mut [f32]) {
        let lut = self.lut(q);
        let m = self.stages();
        let cb = self.code_bytes();
        kernels::scan_adc(&lut, m, 1, codes, cb, scores);
        if self.cosine() {
            for (i, s) in scores.iter_mut().enumerate() {
                *s *= self.inv_len[codes[i * cb + m] as usize];
            }
        }
    }
    fn file_tag(&self) -> String {
        super::cos_tag(self.spec(), self.cosine())
    }
    fn save(&self, w: &mut Writer) {
        w.u32(self.dim as u32);
        w.u32(self.stages() as u32);
        w.u32(self.beam as u32);
        if let Some((lo, hi)) = self.len_range {
            w.f32(lo);
            w.f32(hi);
        }
        for c in &self.cent {
            w.matrix(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Squared reconstruction error of `ids` (`m` a row).
    fn err(rq: &Rq, x: &Matrix, ids: &[u8]) -> f64 {
        let r = rq.residuals(x, ids);
        r.data.iter().map(|&v| f64::from(v) * f64::from(v)).sum()
    }

    #[test]
    fn refinement_never_raises_the_error_of_fixed_codes() {
        let mut rng = Rng::new(9);
        let x = Matrix::new(
            600,
            24,
            (0..600 * 24)
                .map(|i| rng.normal() / (1.0 + (i % 24) as f32))
                .collect(),
        )
        .unwrap();
        let mut rq = Rq::train_with(&x, 3, 2, 4, 0, &mut Rng::new(1)).unwrap();
        let ids = rq.assign_all(&x);
        let mut last = err(&rq, &x, &ids);
        for _ in 0..3 {
            rq.refine(&x, &ids, 1);
            let e = err(&rq, &x, &ids);
            assert!(e <= last * (1.0 + 1e-6), "{e} > {last}");
            last = e;
        }
        // It does move the codebooks: the greedy stages are not already
        // the joint optimum.
        let first = err(
            &Rq::train_with(&x, 3, 2, 4, 0, &mut Rng::new(1)).unwrap(),
            &x,
            &ids,
        );
        assert!(last < first * 0.999, "{last} vs {first}");
    }
}
