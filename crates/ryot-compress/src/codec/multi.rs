//! Multi-resolution scalar codes (`multi:L1,L2,..>int8`): one encode
//! whose code prefixes are themselves codes of the leading `L1 < L2 <
//! ..` dimensions (per-dimension calibration makes the int8/int4 code of
//! a prefix the prefix of the code). Placed after `pca:` or on a
//! Matryoshka model, the leading dimensions carry the most signal.
//!
//! A pipeline search scans the full codes (the same hits as plain
//! int8/int4). [`Multi::search_level`] searches one level alone (what the
//! shorter code would give) and [`Multi::search_cascade`] filters with
//! the shortest prefix and rescores the survivors level by level. On
//! the WordNet sets the cascade was neither faster nor as accurate as
//! the full int8 scan (a 1/4 PCA prefix is a coarse filter), so it is
//! not the default.

use super::Codec;
use super::scalar::Sq;
use crate::bytes::{Reader, Writer};
use crate::error::{Error, Result};
use crate::search::top_k;

/// A scalar quantizer with nested prefix levels.
#[derive(Debug, Clone)]
pub struct Multi {
    /// Increasing prefix lengths, the last one the full dimension.
    levels: Vec<usize>,
    inner: Sq,
}

impl Multi {
    /// Checks the levels against the quantizer and dimension `d`; the
    /// full dimension is appended when missing (and left out of the spec
    /// token, so `multi:32,64>int8` round-trips).
    pub fn check(levels: &[usize], bits: u32, d: usize) -> Result<Vec<usize>> {
        let spec = format!("multi:{}", join(levels));
        let bad = |m: String| Err(Error::Invalid(format!("{spec}: {m}")));
        if levels.is_empty() {
            return bad("needs at least one level".into());
        }
        if levels.windows(2).any(|w| w[0] >= w[1]) {
            return bad("levels must increase".into());
        }
        if levels.iter().any(|&l| l == 0 || l > d) {
            return bad(format!("levels must be in 1..={d}"));
        }
        if bits == 4 && levels.iter().any(|l| l % 2 == 1) {
            return bad("int4 levels must be even".into());
        }
        let mut v = levels.to_vec();
        if v.last() != Some(&d) {
            v.push(d);
        }
        if v.len() < 2 {
            return bad(format!("needs a level below the dimension {d}"));
        }
        Ok(v)
    }

    /// Wraps a trained int8/int4 quantizer.
    pub fn new(levels: &[usize], inner: Sq) -> Result<Multi> {
        let bits = if inner.spec() == "int8" { 8 } else { 4 };
        let levels = Multi::check(levels, bits, inner.dim())?;
        Ok(Multi { levels, inner })
    }

    /// The levels (the last is the full dimension).
    pub fn levels(&self) -> &[usize] {
        &self.levels
    }

    pub(crate) fn load(spec: &str, r: &mut Reader) -> Result<Multi> {
        let corrupt = || Error::Corrupt(format!("multi codec tag {spec:?}"));
        let (head, q) = spec.split_once('>').ok_or_else(corrupt)?;
        let levels: Vec<usize> = head
            .strip_prefix("multi:")
            .ok_or_else(corrupt)?
            .split(',')
            .map(|t| t.parse().map_err(|_| corrupt()))
            .collect::<Result<_>>()?;
        if q != "int8" && q != "int4" {
            return Err(corrupt());
        }
        let inner = Sq::load(q, r)?;
        Multi::new(&levels, inner).map_err(|e| Error::Corrupt(e.to_string()))
    }

    /// Top-`k` (row, score) over `n` codes scanning only the prefix of
    /// level `level` (the last level is the full code): the search the
    /// shorter code alone would give.
    pub fn search_level(
        &self,
        q: &[f32],
        codes: &[u8],
        n: usize,
        k: usize,
        level: usize,
    ) -> Vec<(u32, f32)> {
        let dims = self.levels[level.min(self.levels.len() - 1)];
        let mut scores = vec![0f32; n];
        self.inner.scan_prefix(q, dims, codes, self.code_bytes(), &mut scores);
        top_k(&scores, k.min(n))
    }

    /// A cascade: level 0 scans every code and keeps `wide` candidates,
    /// each longer level rescores them, the full code ranks the final
    /// `k`. With `wide >= n` it equals the full scan.
    pub fn search_cascade(
        &self,
        q: &[f32],
        codes: &[u8],
        n: usize,
        k: usize,
        wide: usize,
    ) -> Vec<(u32, f32)> {
        let cb = self.code_bytes();
        let last = self.levels.len() - 1;
        let mut cand = self.search_level(q, codes, n, wide.max(k), 0);
        let mut one = [0f32];
        for l in 1..=last {
            let w = self.inner.prefix_weights(q, self.levels[l]);
            let s: Vec<f32> = cand
                .iter()
                .map(|&(r, _)| {
                    let c = &codes[r as usize * cb..(r as usize + 1) * cb];
                    self.inner.scan_weighted(&w, c, cb, &mut one);
                    one[0]
                })
                .collect();
            let keep = if l == last { k } else { wide.max(k) };
            cand = top_k(&s, keep.min(s.len()))
                .into_iter()
                .map(|(j, v)| (cand[j as usize].0, v))
                .collect();
        }
        cand
    }
}

fn join(levels: &[usize]) -> String {
    levels.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(",")
}

impl Codec for Multi {
    fn spec(&self) -> String {
        let short = &self.levels[..self.levels.len() - 1];
        format!("multi:{}>{}", join(short), self.inner.spec())
    }
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn code_bytes(&self) -> usize {
        self.inner.code_bytes()
    }
    fn encode(&self, x: &[f32], code: &mut [u8]) {
        self.inner.encode(x, code);
    }
    fn decode(&self, code: &[u8], out: &mut [f32]) {
        self.inner.decode(code, out);
    }
    fn scan(&self, q: &[f32], codes: &[u8], scores: &mut [f32]) {
        self.inner.scan(q, codes, scores);
    }
    fn save(&self, w: &mut Writer) {
        self.inner.save(w);
    }
}
