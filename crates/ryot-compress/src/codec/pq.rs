//! Product quantisation: the vector is cut into `m` sub-vectors, each
//! replaced by the id of its nearest of `2^bits` centroids (k-means++
//! seeded). Scored by asymmetric distance: a per-query table of
//! sub-vector inner products, summed by the byte-lookup ADC kernel (4-bit
//! codes use a table per byte, covering two sub-spaces).
//!
//! `pq:Mx4fs` stores the same 4-bit codes in the fast-scan block layout
//! ([`kernels::fastscan`]): a u8-quantized table scanned 32 codes per
//! `vpshufb` selects the top `k * FS_RERANK` candidates, which are then
//! re-ranked by the exact float ADC of their codes (codes only, no
//! second tier).
//!
//! **Cosine scoring.** When every training vector has unit length (the
//! usual case for sentence embeddings, and kept by rotations such as
//! OPQ), the quantizer scores a code by the cosine between the query and
//! the reconstructed vector, `q . x^ / |x^|`, instead of `q . x^`: the
//! true vector is known to have length 1, and `x^ / |x^|` is a better
//! estimate of it than the shrunken cell mean `x^`. The lengths come from
//! a query-independent table of centroid norms, so codes and bytes per
//! vector do not change. Measured on the WordNet sets (codes-only
//! recall@10, MiniLM / WordLlama): `opq:48>pq:48x8` 0.711 -> 0.756,
//! `pq:32x8` (WordLlama) 0.707 -> 0.719, `opq:6>pq:6x8` 0.173 -> 0.225.
//! The mode is stored in the file (tag suffix [`super::COS_TAG`]).

use super::{Codec, check_dim};
use crate::bytes::{Reader, Writer};
use crate::error::{Error, Result};
use crate::kernels;
use crate::kernels::{fastscan, scalar};
use crate::kmeans;
use crate::matrix::Matrix;
use crate::rng::Rng;
use crate::search::top_k;

/// A trained product quantizer.
#[derive(Debug, Clone)]
pub struct Pq {
    dim: usize,
    m: usize,
    bits: u32,
    /// One `2^bits x dsub` centroid table per sub-space.
    cent: Vec<Matrix>,
    /// Fast-scan layout and search (4-bit only).
    fast: bool,
    /// Cosine scoring (see the module doc).
    cos: bool,
    /// Squared centroid norms per code byte (`bytes x 256`, the layout of
    /// [`Pq::lut`]); empty unless `cos`.
    norms: Vec<f32>,
    /// The centroids transposed per sub-space (`m x dsub x 2^bits`), for
    /// query tables of sub-vectors shorter than [`DOT_MIN_DSUB`]; empty
    /// otherwise.
    cent_t: Vec<f32>,
}

/// Relative tolerance on squared lengths for "unit-length" training data.
pub const UNIT_TOL: f32 = 1e-3;

/// Whether every row of `x` has unit length (within [`UNIT_TOL`]).
pub fn unit_rows(x: &Matrix) -> bool {
    x.rows > 0
        && x.data.chunks_exact(x.dim).all(|r| {
            (r.iter().map(|v| v * v).sum::<f32>() - 1.0).abs() <= UNIT_TOL
        })
}

/// Candidates per wanted hit that fast-scan re-ranks with float ADC (the
/// u8 tables lose little: on MiniLM WordNet, re-ranking 1x, 2x, 4x or 8x
/// gives the same recall@10 to 0.001).
pub const FS_RERANK: usize = 2;

/// Sub-vector length from which a query table entry is one SIMD dot
/// product per centroid; shorter ones sum over transposed centroids.
const DOT_MIN_DSUB: usize = 32;

/// Queries scanned together by the fast-scan kernel (one pass over the
/// codes serves all of them; 8 is its widest batch).
const FS_QUERY_BATCH: usize = 8;

impl Pq {
    /// Checks the shape parameters.
    pub fn check(dim: usize, m: usize, bits: u32) -> Result<()> {
        if m == 0 || !dim.is_multiple_of(m) {
            return Err(Error::Invalid(format!(
                "pq:{m}x{bits}: {m} must divide the dimension {dim}"
            )));
        }
        if bits != 8 && bits != 4 {
            return Err(Error::Invalid(format!("pq:{m}x{bits}: bits 8 or 4")));
        }
        if bits == 4 && !m.is_multiple_of(2) {
            return Err(Error::Invalid(format!(
                "pq:{m}x4: 4-bit codes need an even m"
            )));
        }
        Ok(())
    }

    /// Trains `m` codebooks of `2^bits` centroids on `sample`; scores by
    /// cosine when every sample row has unit length.
    pub fn train(
        sample: &Matrix,
        m: usize,
        bits: u32,
        iters: usize,
        rng: &mut Rng,
    ) -> Result<Pq> {
        sample.check("training sample")?;
        Pq::check(sample.dim, m, bits)?;
        let ds = sample.dim / m;
        let ks = 1usize << bits;
        let cent = (0..m)
            .map(|j| {
                kmeans::kmeans(
                    &sample.columns(j * ds..(j + 1) * ds),
                    ks,
                    iters,
                    rng,
                )
            })
            .collect();
        Ok(Pq::new(sample.dim, m, bits, cent).with_cosine(unit_rows(sample)))
    }

    /// A row-major, inner-product-scored quantizer over `cent`.
    fn new(dim: usize, m: usize, bits: u32, cent: Vec<Matrix>) -> Pq {
        let mut p = Pq {
            dim,
            m,
            bits,
            cent,
            fast: false,
            cos: false,
            norms: Vec::new(),
            cent_t: Vec::new(),
        };
        p.sync_tables();
        p
    }

    /// The same quantizer with cosine scoring switched on or off.
    pub fn with_cosine(mut self, cos: bool) -> Pq {
        self.cos = cos;
        self.sync_tables();
        self
    }

    /// Rebuilds what is derived from the centroids: the transposed copy,
    /// and the centroid-norm table (empty unless cosine scoring is on).
    fn sync_tables(&mut self) {
        self.cent_t = if self.dim / self.m < DOT_MIN_DSUB {
            self.cent.iter().flat_map(|c| c.transpose().data).collect()
        } else {
            Vec::new()
        };
        self.norms = if self.cos {
            let sq: Vec<f32> =
                self.cent.iter().flat_map(Matrix::row_sq_norms).collect();
            self.byte_table(&sq)
        } else {
            Vec::new()
        };
    }

    /// Whether codes are scored by cosine with their reconstruction.
    pub fn cosine(&self) -> bool {
        self.cos
    }

    /// The same quantizer with the fast-scan layout and search switched
    /// on (`bits` must be 4).
    pub fn with_fast_scan(mut self, fast: bool) -> Result<Pq> {
        if fast && self.bits != 4 {
            return Err(Error::Invalid(format!(
                "pq:{}x{}fs: fast-scan needs 4-bit codes",
                self.m, self.bits
            )));
        }
        self.fast = fast;
        Ok(self)
    }

    /// Re-runs `iters` Lloyd steps from the current centroids (OPQ).
    pub fn refine(&mut self, sample: &Matrix, iters: usize) {
        let ds = self.dim / self.m;
        for j in 0..self.m {
            let sub = sample.columns(j * ds..(j + 1) * ds);
            for _ in 0..iters {
                let (lab, _) = kmeans::assign(&sub, &self.cent[j]);
                let c = &mut self.cent[j];
                let mut sums = vec![0f64; c.rows * ds];
                let mut cnt = vec![0usize; c.rows];
                for (i, &l) in lab.iter().enumerate() {
                    cnt[l as usize] += 1;
                    for t in 0..ds {
                        sums[l as usize * ds + t] += sub.row(i)[t] as f64;
                    }
                }
                for k in 0..c.rows {
                    if cnt[k] > 0 {
                        for t in 0..ds {
                            c.data[k * ds + t] =
                                (sums[k * ds + t] / cnt[k] as f64) as f32;
                        }
                    }
                }
            }
        }
        self.sync_tables();
    }

    /// Codes of every row as one sub-space id per entry (`rows x m`).
    pub fn assign_all(&self, x: &Matrix) -> Vec<u8> {
        let ds = self.dim / self.m;
        let mut ids = vec![0u8; x.rows * self.m];
        for j in 0..self.m {
            let (lab, _) =
                kmeans::assign(&x.columns(j * ds..(j + 1) * ds), &self.cent[j]);
            for (i, l) in lab.into_iter().enumerate() {
                ids[i * self.m + j] = l as u8;
            }
        }
        ids
    }

    /// Reconstructs every row from its ids (`assign_all` layout).
    pub fn reconstruct(&self, ids: &[u8], rows: usize) -> Matrix {
        let ds = self.dim / self.m;
        let mut out = Matrix::zeros(rows, self.dim);
        for i in 0..rows {
            for j in 0..self.m {
                let c = ids[i * self.m + j] as usize;
                out.row_mut(i)[j * ds..(j + 1) * ds]
                    .copy_from_slice(self.cent[j].row(c));
            }
        }
        out
    }

    fn pack(&self, ids: &[u8], code: &mut [u8]) {
        if self.bits == 8 {
            code.copy_from_slice(ids);
        } else {
            for (b, c) in code.iter_mut().enumerate() {
                *c = ids[2 * b] | (ids[2 * b + 1] << 4);
            }
        }
    }

    fn unpack(&self, code: &[u8]) -> Vec<u8> {
        if self.bits == 8 {
            code.to_vec()
        } else {
            code.iter().flat_map(|&b| [b & 15, b >> 4]).collect()
        }
    }

    pub(crate) fn load(r: &mut Reader, fast: bool, cos: bool) -> Result<Pq> {
        let dim = check_dim(r.u32()? as usize, "pq codec")?;
        let m = r.u32()? as usize;
        let bits = r.u32()?;
        Pq::check(dim, m, bits).map_err(|e| Error::Corrupt(e.to_string()))?;
        let mut cent = Vec::with_capacity(m);
        for _ in 0..m {
            let c = r.matrix()?;
            if c.rows != 1 << bits || c.dim != dim / m {
                return Err(Error::Corrupt("pq codebook shape".into()));
            }
            cent.push(c);
        }
        Pq::new(dim, m, bits, cent)
            .with_cosine(cos)
            .with_fast_scan(fast)
            .map_err(|e| Error::Corrupt(e.to_string()))
    }

    /// The per-sub-space tables for query `q`: `m x 2^bits`.
    pub fn sub_lut(&self, q: &[f32]) -> Vec<f32> {
        let ds = self.dim / self.m;
        let ks = 1usize << self.bits;
        let mut sub = vec![0f32; self.m * ks];
        for (j, out) in sub.chunks_exact_mut(ks).enumerate() {
            let qs = &q[j * ds..(j + 1) * ds];
            if ds >= DOT_MIN_DSUB {
                let c = &self.cent[j].data;
                for (k, o) in out.iter_mut().enumerate() {
                    *o = kernels::dot(qs, &c[k * ds..(k + 1) * ds]);
                }
            } else {
                // Short sub-vectors: all 2^bits sums at once, over the
                // transposed centroids (the same order of additions as
                // a dot product, so the same values).
                let ct = &self.cent_t[j * ds * ks..(j + 1) * ds * ks];
                for (&qd, col) in qs.iter().zip(ct.chunks_exact(ks)) {
                    for (o, &c) in out.iter_mut().zip(col) {
                        *o += qd * c;
                    }
                }
            }
        }
        sub
    }

    /// The byte lookup table for query `q`: `nbytes x 256`.
    pub fn lut(&self, q: &[f32]) -> Vec<f32> {
        self.byte_table(&self.sub_lut(q))
    }

    /// A per-sub-space table (`m x 2^bits`) as a per-code-byte table
    /// (`nbytes x 256`): 4-bit codes hold two sub-spaces per byte.
    fn byte_table(&self, sub: &[f32]) -> Vec<f32> {
        if self.bits == 8 {
            return sub.to_vec();
        }
        let nb = self.m / 2;
        let mut lut = vec![0f32; nb * 256];
        for b in 0..nb {
            for v in 0..256 {
                lut[b * 256 + v] = byte_entry(sub, b, v);
            }
        }
        lut
    }
}

/// The entry of a 4-bit code's byte table for byte `b` holding `v`: the
/// sub-space table (`16` entries per sub-space) of its low nibble plus
/// that of its high nibble.
#[inline]
fn byte_entry(sub: &[f32], b: usize, v: usize) -> f32 {
    sub[32 * b + (v & 15)] + sub[32 * b + 16 + (v >> 4)]
}

impl Codec for Pq {
    fn spec(&self) -> String {
        let fs = if self.fast { "fs" } else { "" };
        format!("pq:{}x{}{fs}", self.m, self.bits)
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn code_bytes(&self) -> usize {
        self.m * self.bits as usize / 8
    }
    fn encode(&self, x: &[f32], code: &mut [u8]) {
        let xm = Matrix { rows: 1, dim: self.dim, data: x.to_vec() };
        let ids = self.assign_all(&xm);
        self.pack(&ids, code);
    }
    fn encode_batch(&self, x: &Matrix, codes: &mut [u8]) {
        let ids = self.assign_all(x);
        let cb = self.code_bytes();
        for i in 0..x.rows {
            self.pack(
                &ids[i * self.m..(i + 1) * self.m],
                &mut codes[i * cb..(i + 1) * cb],
            );
        }
    }
    fn decode(&self, code: &[u8], out: &mut [f32]) {
        let ids = self.unpack(code);
        out.copy_from_slice(&self.reconstruct(&ids, 1).data);
    }
    fn scan(&self, q: &[f32], codes: &[u8], scores: &mut [f32]) {
        let lut = self.lut(q);
        let nb = self.code_bytes();
        if self.cos {
            kernels::scan_adc_cos(&lut, &self.norms, nb, codes, nb, scores);
        } else {
            kernels::scan_adc(&lut, nb, 1, codes, nb, scores);
        }
    }
    fn file_tag(&self) -> String {
        super::cos_tag(self.spec(), self.cos)
    }
    fn save(&self, w: &mut Writer) {
        w.u32(self.dim as u32);
        w.u32(self.m as u32);
        w.u32(self.bits);
        for c in &self.cent {
            w.matrix(c);
        }
    }
    fn block(&self) -> usize {
        if self.fast { fastscan::BLOCK } else { 1 }
    }
    fn to_stored(&self, codes: &[u8], n: usize) -> Vec<u8> {
        let cb = self.code_bytes();
        if self.fast {
            fastscan::to_blocks(codes, cb, n)
        } else {
            codes[..n * cb].to_vec()
        }
    }
    fn unstore(&self, stored: &[u8], n: usize) -> Vec<u8> {
        let cb = self.code_bytes();
        if self.fast {
            fastscan::from_blocks(stored, cb, n)
        } else {
            stored[..n * cb].to_vec()
        }
    }
    fn search_stored(
        &self,
        queries: &Matrix,
        stored: &[u8],
        n: usize,
        k: usize,
    ) -> Option<Vec<Vec<(u32, f32)>>> {
        if !self.fast {
            return None;
        }
        let cb = self.code_bytes();
        // With cosine scoring the u8 first stage still ranks by inner
        // product; re-ranking more candidates was measured to change
        // nothing (MiniLM, 1x to 8x: the same recall@10).
        let c = rerank_count(k).min(n);
        let mut out = Vec::with_capacity(queries.rows);
        let mut code = vec![0u8; cb];
        for start in (0..queries.rows).step_by(FS_QUERY_BATCH) {
            let end = (start + FS_QUERY_BATCH).min(queries.rows);
            let subs: Vec<Vec<f32>> =
                (start..end).map(|i| self.sub_lut(queries.row(i))).collect();
            let qls: Vec<Vec<u8>> = subs
                .iter()
                .map(|t| fastscan::quantize_lut(t, self.m).lut)
                .collect();
            let refs: Vec<&[u8]> = qls.iter().map(Vec::as_slice).collect();
            let cands = fastscan::search_batch(&refs, stored, cb, n, c);
            for (sub, cand) in subs.iter().zip(cands) {
                // Re-rank by the float ADC of the candidates' codes (by
                // cosine when the quantizer scores so), with each byte's
                // entry computed as `byte_table` computes it, without
                // building the table.
                let entry = |b: usize, v: usize| byte_entry(sub, b, v);
                let exact: Vec<f32> = cand
                    .iter()
                    .map(|&(_, row)| {
                        fastscan::code_of(stored, cb, row as usize, &mut code);
                        if self.cos {
                            return scalar::adc_cos_one(
                                &code,
                                &self.norms,
                                entry,
                            );
                        }
                        let mut s = 0f32;
                        for (p, &b) in code.iter().enumerate() {
                            s += entry(p, b as usize);
                        }
                        s
                    })
                    .collect();
                out.push(
                    top_k(&exact, k)
                        .into_iter()
                        .map(|(j, s)| (cand[j as usize].1, s))
                        .collect(),
                );
            }
        }
        Some(out)
    }
}

fn rerank_count(k: usize) -> usize {
    k * FS_RERANK
}
