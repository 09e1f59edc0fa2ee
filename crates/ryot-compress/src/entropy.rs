//! Lossless entropy coding of stored codes with rANS (`constriction`):
//! one static categorical model per byte position of the code (order-0,
//! 24-bit fixed point, every byte value given at least the smallest
//! probability), fitted to the codes being stored and written with them.
//!
//! It pays where code bytes are far from uniform: scalar int8/int4 codes
//! of peaked per-dimension distributions, sparse indices. It cannot pay
//! for codes trained to be uniform (PQ, sign bits after rotation): their
//! order-0 entropy is close to 8 bits per byte, and the tables cost more
//! than the rounding saves. [`Index`](crate::Index) stores entropy-coded
//! codes only when that is smaller.
//!
//! Blob (little-endian): code bytes `cb` (u32), rows `n` (u64), per
//! position the byte counts scaled to u16 over the used range (`lo`,
//! `hi` as u8, then `hi - lo + 1` u16), the number of u32 words (u64),
//! the words. Both sides derive the 24-bit model from the stored u16
//! weights, so it is exact and tables cost at most 514 bytes a position.

use constriction::stream::Decode;
use constriction::stream::model::DefaultContiguousCategoricalEntropyModel;
use constriction::stream::stack::DefaultAnsCoder;

use crate::bytes::{Reader, Writer};
use crate::error::{Error, Result};

const PRECISION: u32 = 24;

type Model = DefaultContiguousCategoricalEntropyModel;

/// Fixed-point probabilities for byte counts: each at least 1, summing
/// to `2^24`.
fn fixed_point(counts: &[u64]) -> Vec<u32> {
    let total: u64 = counts.iter().sum::<u64>().max(1);
    let budget = (1u64 << PRECISION) - counts.len() as u64;
    let mut p: Vec<u32> = counts
        .iter()
        .map(|&c| 1 + (c as u128 * budget as u128 / total as u128) as u32)
        .collect();
    let sum: u64 = p.iter().map(|&v| v as u64).sum();
    let top = (0..counts.len()).max_by_key(|&i| (counts[i], i)).unwrap_or(0);
    p[top] += ((1u64 << PRECISION) - sum) as u32;
    p
}

/// Counts scaled to at most 65535, a used byte keeping at least 1.
fn scaled(counts: &[u64]) -> Vec<u64> {
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                0
            } else {
                (c as u128 * 65535 / max as u128).max(1) as u64
            }
        })
        .collect()
}

fn model(p: &[u32]) -> Result<Model> {
    Model::from_nonzero_fixed_point_probabilities(p, false).map_err(|_| {
        Error::Corrupt("entropy model does not sum to 2^24".into())
    })
}

/// Entropy-codes `n` row-major codes of `cb` bytes.
pub fn encode(codes: &[u8], cb: usize) -> Result<Vec<u8>> {
    if cb == 0 || !codes.len().is_multiple_of(cb) {
        return Err(Error::Shape(format!(
            "{} code bytes is not a multiple of {cb}",
            codes.len()
        )));
    }
    let n = codes.len() / cb;
    let mut counts = vec![0u64; cb * 256];
    for (i, &b) in codes.iter().enumerate() {
        counts[(i % cb) * 256 + b as usize] += 1;
    }
    let weights: Vec<Vec<u64>> = counts.chunks_exact(256).map(scaled).collect();
    let models: Vec<Model> = weights
        .iter()
        .map(|w| model(&fixed_point(w)))
        .collect::<Result<_>>()?;
    let mut coder = DefaultAnsCoder::new();
    coder
        .encode_symbols_reverse(
            codes
                .iter()
                .enumerate()
                .map(|(i, &b)| (b as usize, &models[i % cb])),
        )
        .map_err(|e| Error::Invalid(format!("rANS encoding failed: {e}")))?;
    let words = coder
        .into_compressed()
        .map_err(|_| Error::Invalid("rANS encoding failed".into()))?;
    let mut w = Writer::default();
    w.u32(cb as u32);
    w.u64(n as u64);
    for wt in &weights {
        let lo = wt.iter().position(|&c| c > 0).unwrap_or(0);
        let hi = wt.iter().rposition(|&c| c > 0).unwrap_or(0);
        w.buf.push(lo as u8);
        w.buf.push(hi as u8);
        for &c in &wt[lo..=hi] {
            w.buf.extend_from_slice(&(c as u16).to_le_bytes());
        }
    }
    w.u64(words.len() as u64);
    for x in &words {
        w.u32(*x);
    }
    Ok(w.buf)
}

/// Decodes a blob from [`encode`]: `(codes, cb, n)`.
pub fn decode(blob: &[u8]) -> Result<(Vec<u8>, usize, usize)> {
    let mut r = Reader::new(blob);
    let cb = r.u32()? as usize;
    let n = r.u64()? as usize;
    if cb == 0 || cb > 1 << 20 {
        return Err(Error::Corrupt(format!("entropy blob: {cb} code bytes")));
    }
    if cb * 4 > r.remaining() {
        return Err(Error::Truncated("entropy tables".into()));
    }
    let mut models = Vec::with_capacity(cb);
    for _ in 0..cb {
        let b = r.take(2)?;
        let (lo, hi) = (b[0] as usize, b[1] as usize);
        if lo > hi {
            return Err(Error::Corrupt("entropy table range".into()));
        }
        let mut wt = vec![0u64; 256];
        for c in &mut wt[lo..=hi] {
            let b = r.take(2)?;
            *c = u16::from_le_bytes([b[0], b[1]]) as u64;
        }
        models.push(model(&fixed_point(&wt))?);
    }
    let nw = r.u64()? as usize;
    if nw > r.remaining() / 4 {
        return Err(Error::Truncated("entropy-coded words".into()));
    }
    let words: Vec<u32> = (0..nw).map(|_| r.u32()).collect::<Result<_>>()?;
    if r.remaining() != 0 {
        return Err(Error::Corrupt("trailing bytes after entropy blob".into()));
    }
    let total = n
        .checked_mul(cb)
        .filter(|&t| t <= nw.saturating_mul(4).saturating_add(64) * 64)
        .ok_or_else(|| {
            Error::Corrupt("entropy blob: implausible size".into())
        })?;
    let mut coder = DefaultAnsCoder::from_compressed(words).map_err(|_| {
        Error::Corrupt("rANS data ends with a zero word".into())
    })?;
    let mut out = Vec::with_capacity(total);
    for s in coder.decode_symbols((0..total).map(|i| &models[i % cb])) {
        let s = s.map_err(|_| Error::Corrupt("rANS data".into()))?;
        out.push(s as u8);
    }
    if !coder.is_empty() {
        return Err(Error::Corrupt("rANS data left over".into()));
    }
    Ok((out, cb, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn round_trips_and_shrinks_skewed_bytes_only() {
        let mut rng = Rng::new(3);
        let cb = 7;
        // Peaked bytes (like int8 codes of a bell curve) shrink.
        let skew: Vec<u8> = (0..cb * 3000)
            .map(|_| (128.0 + 6.0 * rng.normal()).clamp(0.0, 255.0) as u8)
            .collect();
        let blob = encode(&skew, cb).unwrap();
        assert_eq!(decode(&blob).unwrap(), (skew.clone(), cb, 3000));
        let tables = cb * 514;
        assert!(blob.len() - tables < skew.len() * 6 / 10, "{}", blob.len());
        // Uniform bytes do not (tables are pure overhead).
        let flat: Vec<u8> =
            (0..cb * 3000).map(|_| rng.next_u64() as u8).collect();
        let blob = encode(&flat, cb).unwrap();
        assert_eq!(decode(&blob).unwrap().0, flat);
        assert!(blob.len() > flat.len());
        // Empty input and a cut blob.
        let blob = encode(&[], 4).unwrap();
        assert_eq!(decode(&blob).unwrap(), (Vec::new(), 4, 0));
        let blob = encode(&skew, cb).unwrap();
        assert!(decode(&blob[..blob.len() - 3]).is_err());
        assert!(encode(&skew[..5], cb).is_err());
    }
}
