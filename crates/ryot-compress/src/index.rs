//! An index: a trained pipeline, the codes of every added vector with its
//! user id (any u64, not necessarily dense), and an optional second tier
//! (int8 or f32 copies of the original vectors) used to rescore the top
//! candidates. Saved in the checksummed [`container`](crate::container)
//! format, atomically; the f32 tier can stay memory-mapped after
//! [`Index::open`].
//!
//! Payload (format 2): pipeline, `n` (u64), code bytes (u64), the
//! storage block (u32: 1 row-major, 32 fast-scan blocks, as the codec
//! says), the code coding (u32: 0 raw, 1 rANS), `n` u64 ids, the codes
//! (raw: in the storage layout, [`Pipeline::stored_len`] bytes; rANS: a
//! u64 length and an [`entropy`](crate::entropy) blob of the row-major
//! codes, written only when smaller), then the tier: kind
//! (u32; 0 none, 1 int8, 2 f32), and for int8 its calibration then `n*d`
//! bytes, for f32 the dimension (u64), zero padding to a 64-byte file
//! offset, then `n*d` f32. Format 1 (still read) had neither the block
//! nor the coding field and always row-major codes.

use std::collections::HashSet;
use std::path::Path;

use crate::bytes::{Reader, Writer};
use crate::codec::Codec;
use crate::codec::scalar::Sq;
use crate::container::{self, HEADER, Kind};
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::pipeline::Pipeline;
use crate::search::{Hit, top_k};

/// Which second tier an index keeps for rescoring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TierKind {
    /// No second tier: codes only.
    None,
    /// Per-dimension calibrated int8 copies (1 byte per dimension).
    Int8,
    /// The original f32 vectors.
    F32,
}

#[derive(Debug)]
enum Tier {
    None,
    Int8 { sq: Option<Sq>, codes: Vec<u8> },
    F32(Vec<f32>),
    Mapped { map: memmap2::Mmap, offset: usize },
}

/// A searchable set of encoded vectors.
#[derive(Debug)]
pub struct Index {
    pipeline: Pipeline,
    ids: Vec<u64>,
    /// In the pipeline's storage layout.
    codes: Vec<u8>,
    tier: Tier,
    seen: HashSet<u64>,
    entropy: bool,
}

impl Index {
    /// An empty index over `pipeline` with the given second tier.
    pub fn new(pipeline: Pipeline, tier: TierKind) -> Index {
        let tier = match tier {
            TierKind::None => Tier::None,
            TierKind::Int8 => Tier::Int8 { sq: None, codes: Vec::new() },
            TierKind::F32 => Tier::F32(Vec::new()),
        };
        Index {
            pipeline,
            ids: Vec::new(),
            codes: Vec::new(),
            tier,
            seen: HashSet::new(),
            entropy: false,
        }
    }

    /// Whether [`Index::save`] entropy-codes the codes (rANS) when that
    /// makes them smaller; files written so load it back switched on.
    pub fn set_entropy_coding(&mut self, on: bool) {
        self.entropy = on;
    }

    /// See [`Index::set_entropy_coding`].
    pub fn entropy_coding(&self) -> bool {
        self.entropy
    }

    /// The pipeline.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the index holds no vectors.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The ids, in insertion order.
    pub fn ids(&self) -> &[u64] {
        &self.ids
    }

    /// The second tier held.
    pub fn tier(&self) -> TierKind {
        match self.tier {
            Tier::None => TierKind::None,
            Tier::Int8 { .. } => TierKind::Int8,
            _ => TierKind::F32,
        }
    }

    /// Adds vectors with their ids. Fails (changing nothing) on a
    /// dimension mismatch, NaN/Inf, or an id already present.
    pub fn add(&mut self, ids: &[u64], x: &Matrix) -> Result<()> {
        if ids.len() != x.rows {
            return Err(Error::Shape(format!(
                "{} ids for {} vectors",
                ids.len(),
                x.rows
            )));
        }
        let mut fresh = HashSet::with_capacity(ids.len());
        for &id in ids {
            if self.seen.contains(&id) || !fresh.insert(id) {
                return Err(Error::Invalid(format!("duplicate id {id}")));
            }
        }
        let codes = self.pipeline.encode(x)?;
        let d = self.pipeline.dim();
        if let Tier::Mapped { map, offset } = &self.tier {
            let n = self.ids.len() * d;
            let v = floats(&map[*offset..*offset + 4 * n]);
            self.tier = Tier::F32(v);
        }
        match &mut self.tier {
            Tier::None | Tier::Mapped { .. } => {}
            Tier::F32(v) => v.extend_from_slice(&x.data),
            Tier::Int8 { sq, codes } => {
                let q = match sq {
                    Some(q) => q,
                    None => sq.insert(Sq::train(x, 8)?),
                };
                let start = codes.len();
                codes.resize(start + x.rows * d, 0);
                q.encode_batch(x, &mut codes[start..]);
            }
        }
        if self.pipeline.codec.block() == 1 {
            self.codes.extend_from_slice(&codes);
        } else {
            // Blocks are self-contained: re-lay only the last, partial
            // one together with the new codes.
            let (n, bl) = (self.ids.len(), self.pipeline.codec.block());
            let full = n / bl * bl;
            let at = self.pipeline.stored_len(full);
            let mut rows = self.pipeline.unstore(&self.codes[at..], n - full);
            rows.extend_from_slice(&codes);
            self.codes.truncate(at);
            let more = n - full + x.rows;
            self.codes.extend(self.pipeline.to_stored(&rows, more));
        }
        self.ids.extend_from_slice(ids);
        self.seen.extend(fresh);
        Ok(())
    }

    /// Top-`k` hits per query. With `candidates = Some(c)`, the top `c`
    /// by code score are rescored exactly from the second tier (an error
    /// if the index has none) and the best `k` of them returned.
    pub fn search(
        &self,
        queries: &Matrix,
        k: usize,
        candidates: Option<usize>,
    ) -> Result<Vec<Vec<Hit>>> {
        let n = self.len();
        if n == 0 {
            return Err(Error::Empty("index"));
        }
        if k == 0 || k > n {
            return Err(Error::Invalid(format!(
                "k = {k} must be between 1 and the index size {n}"
            )));
        }
        let c = match candidates {
            None => k,
            Some(c) => {
                if matches!(self.tier, Tier::None) {
                    return Err(Error::Invalid(
                        "rescoring needs an index built with an int8 or \
                         f32 tier"
                            .into(),
                    ));
                }
                c.clamp(k, n)
            }
        };
        let raw = self.pipeline.search_stored(&self.codes, n, queries, c)?;
        let mut out = Vec::with_capacity(raw.len());
        for (qi, cand) in raw.into_iter().enumerate() {
            let hits: Vec<(u32, f32)> = if candidates.is_some() {
                let q = queries.row(qi);
                let scores: Vec<f32> = cand
                    .iter()
                    .map(|&(r, _)| self.exact(q, r as usize))
                    .collect();
                top_k(&scores, k)
                    .into_iter()
                    .map(|(j, s)| (cand[j as usize].0, s))
                    .collect()
            } else {
                cand
            };
            out.push(
                hits.into_iter()
                    .map(|(r, s)| Hit { id: self.ids[r as usize], score: s })
                    .collect(),
            );
        }
        Ok(out)
    }

    /// The second-tier score of row `r` for query `q`.
    fn exact(&self, q: &[f32], r: usize) -> f32 {
        let d = self.pipeline.dim();
        match &self.tier {
            Tier::None => 0.0,
            Tier::F32(v) => crate::kernels::dot(q, &v[r * d..(r + 1) * d]),
            Tier::Mapped { map, offset } => {
                let o = offset + 4 * r * d;
                crate::kernels::dot(q, &floats(&map[o..o + 4 * d]))
            }
            Tier::Int8 { sq, codes } => match sq {
                Some(sq) => {
                    let mut s = [0f32];
                    sq.scan(q, &codes[r * d..(r + 1) * d], &mut s);
                    s[0]
                }
                None => 0.0,
            },
        }
    }

    /// The serialised payload.
    fn payload(&self) -> Vec<u8> {
        let mut w = Writer::default();
        self.pipeline.save(&mut w);
        w.u64(self.ids.len() as u64);
        w.u64(self.pipeline.code_bytes() as u64);
        w.u32(self.pipeline.codec.block() as u32);
        let n = self.ids.len();
        let blob = if self.entropy {
            let rows = self.pipeline.unstore(&self.codes, n);
            crate::entropy::encode(&rows, self.pipeline.code_bytes())
                .ok()
                .filter(|b| b.len() + 8 < self.codes.len())
        } else {
            None
        };
        w.u32(blob.is_some() as u32);
        for &id in &self.ids {
            w.u64(id);
        }
        match &blob {
            Some(b) => w.bytes(b),
            None => w.buf.extend_from_slice(&self.codes),
        }
        let d = self.pipeline.dim();
        match &self.tier {
            Tier::None => w.u32(0),
            Tier::Int8 { sq, codes } => match sq {
                Some(sq) => {
                    w.u32(1);
                    sq.save(&mut w);
                    w.buf.extend_from_slice(codes);
                }
                None => w.u32(0),
            },
            Tier::F32(_) | Tier::Mapped { .. } => {
                w.u32(2);
                w.u64(d as u64);
                while !(HEADER + w.buf.len()).is_multiple_of(64) {
                    w.buf.push(0);
                }
                match &self.tier {
                    Tier::F32(v) => {
                        for x in v {
                            w.f32(*x);
                        }
                    }
                    Tier::Mapped { map, offset } => {
                        let n = self.ids.len() * d * 4;
                        w.buf.extend_from_slice(&map[*offset..*offset + n]);
                    }
                    _ => unreachable!(),
                }
            }
        }
        w.buf
    }

    /// Writes the index atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        container::write(path.as_ref(), Kind::Index, &self.payload())
    }

    /// The bytes [`Index::save`] writes.
    pub fn to_bytes(&self) -> Vec<u8> {
        container::build(Kind::Index, &self.payload())
    }

    /// Reads an index fully into memory.
    pub fn from_bytes(bytes: &[u8]) -> Result<Index> {
        let range = container::check(bytes, Kind::Index)?;
        let v = container::version(bytes);
        let (mut idx, tier_at) = Self::parse(&bytes[range.clone()], v)?;
        if let Some((d, off)) = tier_at {
            let n = idx.len() * d * 4;
            let start = range.start + off;
            idx.tier = Tier::F32(floats(&bytes[start..start + n]));
        }
        Ok(idx)
    }

    /// Opens an index file; with `mmap`, an f32 tier stays on disk and is
    /// paged in as rescoring touches it (the checksum is still verified).
    pub fn open(path: impl AsRef<Path>, mmap: bool) -> Result<Index> {
        let path = path.as_ref();
        if !mmap {
            let b = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            return Index::from_bytes(&b);
        }
        let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the map is read-only; like every mmap it assumes no
        // other process truncates the file while it is open, which the
        // atomic rename-based writer never does to an existing file.
        let map = unsafe { memmap2::Mmap::map(&f) }
            .map_err(|e| Error::io(path, e))?;
        let range = container::check(&map, Kind::Index)?;
        let v = container::version(&map);
        let (mut idx, tier_at) = Self::parse(&map[range.clone()], v)?;
        if let Some((_, off)) = tier_at {
            idx.tier = Tier::Mapped { map, offset: range.start + off };
        }
        Ok(idx)
    }

    /// Parses a payload; an f32 tier is returned as (dim, payload offset)
    /// for the caller to copy or map.
    fn parse(
        p: &[u8],
        version: u32,
    ) -> Result<(Index, Option<(usize, usize)>)> {
        let mut r = Reader::new(p);
        let pipeline = Pipeline::load(&mut r)?;
        let n = r.u64()? as usize;
        let cb = r.u64()? as usize;
        if cb != pipeline.code_bytes() {
            return Err(Error::Corrupt(
                "code size disagrees with codec".into(),
            ));
        }
        let (block, coded) = if version >= 2 {
            let block = r.u32()? as usize;
            if block != pipeline.codec.block() {
                return Err(Error::Corrupt(format!(
                    "code layout block {block}, the codec uses {}",
                    pipeline.codec.block()
                )));
            }
            match r.u32()? {
                c @ (0 | 1) => (block, c == 1),
                c => return Err(Error::Corrupt(format!("code coding {c}"))),
            }
        } else {
            (1, false)
        };
        if n > r.remaining() / 8 {
            return Err(Error::Truncated(format!("{n} ids")));
        }
        let ids: Vec<u64> = (0..n).map(|_| r.u64()).collect::<Result<_>>()?;
        let len = n
            .checked_add(block - 1)
            .and_then(|x| (x / block).checked_mul(block * cb))
            .ok_or_else(|| Error::Corrupt("code count overflows".into()))?;
        let mut codes = if coded {
            let l = r.u64()? as usize;
            let (rows, c, m) = crate::entropy::decode(r.take(l)?)?;
            if c != cb || m != n {
                return Err(Error::Corrupt("entropy-coded code shape".into()));
            }
            pipeline.to_stored(&rows, n)
        } else {
            r.take(len)?.to_vec()
        };
        if !coded && block != pipeline.codec.block() {
            codes = pipeline.to_stored(&codes, n);
        }
        let d = pipeline.dim();
        let mut tier_at = None;
        let tier = match r.u32()? {
            0 => Tier::None,
            1 => {
                let sq = Sq::load("int8", &mut r)?;
                if sq.dim() != d {
                    return Err(Error::Corrupt("int8 tier dimension".into()));
                }
                let c = r.take(n * d)?.to_vec();
                Tier::Int8 { sq: Some(sq), codes: c }
            }
            2 => {
                if r.u64()? as usize != d {
                    return Err(Error::Corrupt("f32 tier dimension".into()));
                }
                let pos = p.len() - r.remaining();
                let pad = (64 - (HEADER + pos) % 64) % 64;
                r.take(pad)?;
                let off = p.len() - r.remaining();
                r.take(n * d * 4)?;
                tier_at = Some((d, off));
                Tier::None
            }
            t => return Err(Error::Corrupt(format!("tier kind {t}"))),
        };
        if r.remaining() != 0 {
            return Err(Error::Corrupt("trailing bytes in payload".into()));
        }
        let seen: HashSet<u64> = ids.iter().copied().collect();
        if seen.len() != ids.len() {
            return Err(Error::Corrupt("duplicate ids".into()));
        }
        let idx = Index { pipeline, ids, codes, tier, seen, entropy: coded };
        Ok((idx, tier_at))
    }
}

fn floats(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Saves a trained pipeline alone (a codec file, `.ryc`), atomically.
pub fn save_codec(p: &Pipeline, path: impl AsRef<Path>) -> Result<()> {
    let mut w = Writer::default();
    p.save(&mut w);
    container::write(path.as_ref(), Kind::Codec, &w.buf)
}

/// Loads a codec file.
pub fn load_codec(path: impl AsRef<Path>) -> Result<Pipeline> {
    let payload = container::read(path.as_ref(), Kind::Codec)?;
    let mut r = Reader::new(&payload);
    let p = Pipeline::load(&mut r)?;
    if r.remaining() != 0 {
        return Err(Error::Corrupt("trailing bytes in codec file".into()));
    }
    Ok(p)
}
