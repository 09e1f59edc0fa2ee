//! Quantizers behind one trait, [`Codec`], and the linear transforms
//! ([`transform::Linear`]) that can precede them in a pipeline.
//!
//! Every codec is trained on a sample (`train_*` functions, seeded),
//! encodes a vector into a fixed number of bytes, decodes it back, scores
//! a query against a block of codes, and saves itself; [`load`] reads any
//! of them back by its tag.

pub mod binary;
pub mod multi;
pub mod pq;
pub mod rabitq;
pub mod rq;
pub mod scalar;
pub mod sparse;
pub mod transform;

use std::fmt;

use crate::bytes::{Reader, Writer};
use crate::error::{Error, Result};
use crate::matrix::Matrix;

/// A trained quantizer.
pub trait Codec: Send + Sync + fmt::Debug + std::any::Any {
    /// Its spec token, e.g. `pq:48x8` (also its tag in files).
    fn spec(&self) -> String;
    /// The input dimension.
    fn dim(&self) -> usize;
    /// Bytes per encoded vector, everything stored per vector included.
    fn code_bytes(&self) -> usize;
    /// Encodes `x` (length [`Codec::dim`]) into `code` (length
    /// [`Codec::code_bytes`]).
    fn encode(&self, x: &[f32], code: &mut [u8]);
    /// Encodes every row of `x` into `codes` (`x.rows * code_bytes`).
    fn encode_batch(&self, x: &Matrix, codes: &mut [u8]) {
        let cb = self.code_bytes();
        for i in 0..x.rows {
            self.encode(x.row(i), &mut codes[i * cb..(i + 1) * cb]);
        }
    }
    /// Reconstructs an approximation of the vector.
    fn decode(&self, code: &[u8], out: &mut [f32]);
    /// Scores query `q` against `scores.len()` consecutive codes: an
    /// estimate of the inner product up to a constant per query, or for
    /// symmetric codecs minus the Hamming distance. Higher is better.
    fn scan(&self, q: &[f32], codes: &[u8], scores: &mut [f32]);
    /// Whether queries are encoded like the corpus (Hamming codes), in
    /// which case transforms centre the query too.
    fn symmetric(&self) -> bool {
        false
    }
    /// The tag written before the parameters in files: the spec, plus
    /// any trained scoring mode the spec does not show.
    fn file_tag(&self) -> String {
        self.spec()
    }
    /// Writes the trained parameters (not the tag).
    fn save(&self, w: &mut Writer);
    /// Vectors per storage block: 1 means codes are stored row after
    /// row; more means an interleaved layout ([`Codec::to_stored`]) that
    /// only [`Codec::search_stored`] reads (4-bit fast-scan: 32).
    fn block(&self) -> usize {
        1
    }
    /// `n` row-major codes in the storage layout.
    fn to_stored(&self, codes: &[u8], n: usize) -> Vec<u8> {
        codes[..n * self.code_bytes()].to_vec()
    }
    /// The storage layout of `n` codes back to row-major codes.
    fn unstore(&self, stored: &[u8], n: usize) -> Vec<u8> {
        stored[..n * self.code_bytes()].to_vec()
    }
    /// Top-`k` (row, score) per query (rows of `queries`, prepared by
    /// the pipeline) over `n` stored codes, for codecs with their own
    /// search; `None` means: use [`Codec::scan`] on row-major codes.
    fn search_stored(
        &self,
        queries: &Matrix,
        stored: &[u8],
        n: usize,
        k: usize,
    ) -> Option<Vec<Vec<(u32, f32)>>> {
        let _ = (queries, stored, n, k);
        None
    }
}

impl dyn Codec {
    /// For downcasting to a concrete codec (e.g. `codec::multi::Multi`).
    pub fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Bytes of the storage layout of `n` codes.
pub fn stored_len(c: &dyn Codec, n: usize) -> usize {
    n.div_ceil(c.block()) * c.block() * c.code_bytes()
}

/// The tag (kind) part of a spec token: `pq:48x8` -> `pq`.
pub fn tag_of(spec: &str) -> &str {
    spec.split(':').next().unwrap_or(spec)
}

/// Writes a codec with its tag.
pub fn save(c: &dyn Codec, w: &mut Writer) {
    w.str(&c.file_tag());
    c.save(w);
}

/// Reads a codec written by [`save`].
pub fn load(r: &mut Reader) -> Result<Box<dyn Codec>> {
    let spec = r.str()?;
    Ok(match tag_of(&spec) {
        "f32" | "f16" => Box::new(scalar::Float::load(&spec, r)?),
        "int8" | "int4" => Box::new(scalar::Sq::load(&spec, r)?),
        "bin" => Box::new(binary::Binary::load(r)?),
        "multi" => Box::new(multi::Multi::load(&spec, r)?),
        "pq" => {
            let (base, cos) = split_cos_tag(&spec);
            Box::new(pq::Pq::load(r, base.ends_with("fs"), cos)?)
        }
        "rq" => Box::new(rq::Rq::load(r, split_cos_tag(&spec).1)?),
        "rabitq" => Box::new(rabitq::RaBitQ::load(r)?),
        "sparse" => Box::new(sparse::Sparse::load(r)?),
        _ => {
            return Err(Error::Corrupt(format!("unknown codec tag {spec:?}")));
        }
    })
}

/// The file-tag suffix of a cosine-scored quantizer (`pq`, `rq`): the
/// score is the cosine between query and reconstruction.
pub const COS_TAG: &str = ";cos";

/// `spec`, with [`COS_TAG`] when `cos`.
fn cos_tag(spec: String, cos: bool) -> String {
    if cos { spec + COS_TAG } else { spec }
}

/// A `pq`/`rq` file tag split into its spec and whether it ends in
/// [`COS_TAG`].
fn split_cos_tag(tag: &str) -> (&str, bool) {
    match tag.strip_suffix(COS_TAG) {
        Some(base) => (base, true),
        None => (tag, false),
    }
}

/// Checks a loaded dimension is sane.
pub(crate) fn check_dim(d: usize, what: &str) -> Result<usize> {
    if d == 0 || d > 1 << 20 {
        return Err(Error::Corrupt(format!("{what}: dimension {d}")));
    }
    Ok(d)
}
