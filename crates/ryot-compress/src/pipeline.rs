//! A trained pipeline: transforms then one quantizer, built from a
//! [`Spec`], with batch encoding, query scoring and (de)serialisation.

use crate::bytes::{Reader, Writer};
use crate::codec::binary::Binary;
use crate::codec::multi::Multi;
use crate::codec::pq::Pq;
use crate::codec::rabitq::RaBitQ;
use crate::codec::rq::{self, Rq};
use crate::codec::scalar::{Float, Sq};
use crate::codec::sparse::Sparse;
use crate::codec::transform::Linear;
use crate::codec::{self, Codec};
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::rng::Rng;
use crate::search::top_k;
use crate::spec::{Spec, Stage};

/// Training effort knobs (defaults suit 10k-50k training rows).
#[derive(Clone, Copy, Debug)]
pub struct TrainOptions {
    /// Seed of every random choice.
    pub seed: u64,
    /// Lloyd iterations for PQ codebooks.
    pub kmeans_iters: usize,
    /// OPQ outer iterations.
    pub opq_iters: usize,
    /// ITQ iterations.
    pub itq_iters: usize,
    /// Let PQ score by cosine with the reconstruction when its training
    /// vectors have unit length (see `codec::pq`); `false` always scores
    /// by inner product.
    pub pq_cosine: bool,
    /// Beam width of residual-quantizer encoding (`rq:M`).
    pub rq_beam: usize,
    /// Lloyd iterations per residual-quantizer stage.
    pub rq_kmeans_iters: usize,
    /// Codebook-refinement passes after the residual quantizer's stages
    /// (`codec::rq::REFINE_PASSES`).
    pub rq_refine: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            seed: 0,
            kmeans_iters: 20,
            opq_iters: 12,
            itq_iters: 30,
            pq_cosine: true,
            rq_beam: rq::DEFAULT_BEAM,
            rq_kmeans_iters: 10,
            rq_refine: rq::REFINE_PASSES,
        }
    }
}

/// Transforms plus a quantizer.
#[derive(Debug)]
pub struct Pipeline {
    /// The transforms, in order.
    pub transforms: Vec<Linear>,
    /// The quantizer.
    pub codec: Box<dyn Codec>,
    dim: usize,
}

impl Pipeline {
    /// Trains the pipeline described by `spec` on `sample`.
    pub fn train(
        spec: &str,
        sample: &Matrix,
        opts: TrainOptions,
    ) -> Result<Pipeline> {
        let parsed = Spec::parse(spec)?;
        sample.check("training sample")?;
        let mut rng = Rng::new(opts.seed);
        let mut x = sample.clone();
        let mut transforms = Vec::new();
        for st in &parsed.transforms {
            let t = match *st {
                Stage::Pca(n) => Linear::pca(&x, n)?,
                Stage::Mrl(n) => Linear::mrl(x.dim, n)?,
                Stage::Rot => Linear::rot(x.dim, &mut rng),
                Stage::Itq => Linear::itq(&x, opts.itq_iters, &mut rng)?,
                Stage::Opq(m) => {
                    // Trained with the PQ that follows when it has the
                    // same sub-spaces (4-bit codes want their own
                    // rotation), else with 8-bit codes.
                    let bits = match parsed.quantizer {
                        Stage::Pq { m: m2, bits, .. } if m2 == m => bits,
                        _ => 8,
                    };
                    Linear::opq(&x, (m, bits), opts.opq_iters, 4, &mut rng)?
                }
                _ => unreachable!("parse puts only transforms here"),
            };
            x = t.apply(&x, true);
            transforms.push(t);
        }
        let d = x.dim;
        if !parsed.levels.is_empty() {
            let bits = if parsed.quantizer == Stage::Int8 { 8 } else { 4 };
            Multi::check(&parsed.levels, bits, d)?;
            let sq = Sq::train(&x, bits)?;
            let codec = Box::new(Multi::new(&parsed.levels, sq)?);
            return Ok(Pipeline { transforms, codec, dim: sample.dim });
        }
        let codec: Box<dyn Codec> = match parsed.quantizer {
            Stage::F32 => Box::new(Float::new(d, false)),
            Stage::F16 => Box::new(Float::new(d, true)),
            Stage::Int8 => Box::new(Sq::train(&x, 8)?),
            Stage::Int4 => Box::new(Sq::train(&x, 4)?),
            Stage::Bin => Box::new(Binary::train(&x)?),
            Stage::Pq { m, bits, fast } => {
                let pq = Pq::train(&x, m, bits, opts.kmeans_iters, &mut rng)?;
                // Training picks cosine scoring from the data; the option
                // can only turn it off.
                let pq =
                    if opts.pq_cosine { pq } else { pq.with_cosine(false) };
                Box::new(pq.with_fast_scan(fast)?)
            }
            Stage::Rq(m) => {
                let it = opts.rq_kmeans_iters;
                let (beam, refine) = (opts.rq_beam, opts.rq_refine);
                let rq = Rq::train_with(&x, m, beam, it, refine, &mut rng)?;
                // As for PQ: the data picks cosine scoring; the option
                // can only turn it off.
                Box::new(if opts.pq_cosine { rq } else { rq.without_cosine() })
            }
            Stage::RaBitQ(b) => Box::new(RaBitQ::train(&x, b, &mut rng)?),
            Stage::Sparse(k) => Box::new(Sparse::new(d, k)?),
            _ => unreachable!("parse puts a quantizer last"),
        };
        Ok(Pipeline { transforms, codec, dim: sample.dim })
    }

    /// Whether `spec` parses and its shapes fit input dimension `dim`
    /// (without training anything).
    pub fn train_check(spec: &str, dim: usize) -> bool {
        let Ok(parsed) = Spec::parse(spec) else {
            return false;
        };
        let mut d = dim;
        for st in &parsed.transforms {
            match *st {
                Stage::Pca(n) | Stage::Mrl(n) if n > d => return false,
                Stage::Pca(n) | Stage::Mrl(n) => d = n,
                Stage::Opq(m) if Pq::check(d, m, 8).is_err() => return false,
                _ => {}
            }
        }
        if !parsed.levels.is_empty() {
            let bits = if parsed.quantizer == Stage::Int8 { 8 } else { 4 };
            return Multi::check(&parsed.levels, bits, d).is_ok();
        }
        match parsed.quantizer {
            Stage::Pq { m, bits, .. } => Pq::check(d, m, bits).is_ok(),
            Stage::Rq(m) => Rq::check(d, m, rq::DEFAULT_BEAM).is_ok(),
            Stage::Sparse(k) => k <= d && d <= 1 << 16,
            _ => true,
        }
    }

    /// The canonical spec string.
    pub fn spec(&self) -> String {
        let mut s: Vec<String> =
            self.transforms.iter().map(|t| t.spec().to_string()).collect();
        s.push(self.codec.spec());
        s.join(">")
    }

    /// Input dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Bytes per encoded vector.
    pub fn code_bytes(&self) -> usize {
        self.codec.code_bytes()
    }

    fn check_input(&self, x: &Matrix, what: &'static str) -> Result<()> {
        if x.dim != self.dim {
            return Err(Error::Shape(format!(
                "{what} has dimension {}, the codec expects {}",
                x.dim, self.dim
            )));
        }
        x.check(what)
    }

    /// Applies the transforms (`centre` for corpus vectors).
    pub fn transform(&self, x: &Matrix, centre: bool) -> Matrix {
        let mut y = x.clone();
        for t in &self.transforms {
            y = t.apply(&y, centre);
        }
        y
    }

    /// Encodes every row: `rows * code_bytes` bytes.
    pub fn encode(&self, x: &Matrix) -> Result<Vec<u8>> {
        self.check_input(x, "input")?;
        let y = self.transform(x, true);
        let mut codes = vec![0u8; x.rows * self.code_bytes()];
        self.codec.encode_batch(&y, &mut codes);
        Ok(codes)
    }

    /// Transformed queries, ready for [`Pipeline::scan`].
    pub fn prepare_queries(&self, q: &Matrix) -> Result<Matrix> {
        self.check_input(q, "queries")?;
        Ok(self.transform(q, self.codec.symmetric()))
    }

    /// Scores one prepared query against `scores.len()` codes.
    pub fn scan(&self, q: &[f32], codes: &[u8], scores: &mut [f32]) {
        self.codec.scan(q, codes, scores);
    }

    /// Top-`k` rows for each query over row-major `codes` (exhaustive
    /// scan; fast-scan codecs rearrange the codes first, so keep them in
    /// the storage layout and call [`Pipeline::search_stored`] when
    /// searching repeatedly).
    pub fn search(
        &self,
        codes: &[u8],
        queries: &Matrix,
        k: usize,
    ) -> Result<Vec<Vec<(u32, f32)>>> {
        let cb = self.code_bytes();
        if !codes.len().is_multiple_of(cb) {
            return Err(Error::Shape(format!(
                "{} code bytes is not a multiple of {cb}",
                codes.len()
            )));
        }
        let n = codes.len() / cb;
        if self.codec.block() == 1 {
            return self.search_stored(codes, n, queries, k);
        }
        self.search_stored(&self.codec.to_stored(codes, n), n, queries, k)
    }

    /// Bytes of the storage layout of `n` codes (row-major unless the
    /// codec interleaves blocks, see [`Codec::block`]).
    pub fn stored_len(&self, n: usize) -> usize {
        codec::stored_len(self.codec.as_ref(), n)
    }

    /// `n` row-major codes in the storage layout.
    pub fn to_stored(&self, codes: &[u8], n: usize) -> Vec<u8> {
        self.codec.to_stored(codes, n)
    }

    /// The storage layout of `n` codes back to row-major codes.
    pub fn unstore(&self, stored: &[u8], n: usize) -> Vec<u8> {
        self.codec.unstore(stored, n)
    }

    /// Top-`k` rows for each query over `n` codes in the storage layout.
    pub fn search_stored(
        &self,
        stored: &[u8],
        n: usize,
        queries: &Matrix,
        k: usize,
    ) -> Result<Vec<Vec<(u32, f32)>>> {
        if stored.len() != self.stored_len(n) {
            return Err(Error::Shape(format!(
                "{} stored code bytes for {n} vectors, expected {}",
                stored.len(),
                self.stored_len(n)
            )));
        }
        if n == 0 {
            return Err(Error::Empty("corpus"));
        }
        if k == 0 || k > n {
            return Err(Error::Invalid(format!(
                "k = {k} must be between 1 and the corpus size {n}"
            )));
        }
        let qp = self.prepare_queries(queries)?;
        if let Some(h) = self.codec.search_stored(&qp, stored, n, k) {
            return Ok(h);
        }
        let mut scores = vec![0f32; n];
        Ok((0..qp.rows)
            .map(|i| {
                self.scan(qp.row(i), stored, &mut scores);
                top_k(&scores, k)
            })
            .collect())
    }

    /// Writes the pipeline.
    pub fn save(&self, w: &mut Writer) {
        w.u32(self.dim as u32);
        w.u32(self.transforms.len() as u32);
        for t in &self.transforms {
            t.save(w);
        }
        codec::save(self.codec.as_ref(), w);
    }

    /// Reads a pipeline written by [`Pipeline::save`], checking that the
    /// stage dimensions chain.
    pub fn load(r: &mut Reader) -> Result<Pipeline> {
        let dim = r.u32()? as usize;
        let nt = r.u32()? as usize;
        if nt > 64 {
            return Err(Error::Corrupt(format!("{nt} transforms")));
        }
        let mut transforms = Vec::new();
        let mut d = dim;
        for _ in 0..nt {
            let t = Linear::load(r)?;
            if t.in_dim() != d {
                return Err(Error::Corrupt("transform dimensions".into()));
            }
            d = t.out_dim();
            transforms.push(t);
        }
        let codec = codec::load(r)?;
        if codec.dim() != d {
            return Err(Error::Corrupt("codec dimension".into()));
        }
        Ok(Pipeline { transforms, codec, dim })
    }
}
