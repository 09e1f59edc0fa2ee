//! 4-bit PQ fast-scan (André et al., FAISS `PQ..x4fs`): codes are stored
//! in blocks of [`BLOCK`] vectors so that one SIMD table lookup serves
//! many vectors, with the per-query tables quantized to u8.
//!
//! Layout: for block `b` and sub-quantizer pair `p` (sub-quantizers
//! `2p`, `2p+1`), 32 bytes at `(b * pairs + p) * 32`; byte `t` is the
//! code of vector `32b + t` for `2p` (low nibble) and `2p+1` (high
//! nibble) — the row-major byte `p` of that vector's packed code, so a
//! block is a 32 x `pairs` byte transpose.
//!
//! A vector's score is the exact integer sum of its table entries. Two
//! kernels compute it, each with the scalar twin [`search_reference`]:
//! - `avx2` looks up 32 vectors per `vpshufb` in a 16-entry table held in
//!   a register, adds four lookups in u8 and widens to u16, so it needs
//!   entries of at most 63 and totals of at most 65535.
//! - `avx512` (VBMI + VNNI) gathers each vector's four codes of two pairs
//!   next to each other with one `vpermt2b`, looks them up in the four
//!   tables at once with `vpermb` (a 64-entry table), and adds the four
//!   bytes into a u32 with one `vpdpbusd`: 64 lookups in two operations,
//!   with full u8 entries.
//!
//! [`quantize_lut`] quantizes float tables to what the dispatched kernel
//! sums exactly ([`table_limits`]); the kernels check it.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{Isa, isa};

/// Vectors per block.
pub const BLOCK: usize = 32;

/// A per-query table quantized to u8: `approx = sum / scale + bias`.
#[derive(Clone, Debug)]
pub struct QLut {
    /// `m * 16` entries, within the dispatched kernel's [`Limits`].
    pub lut: Vec<u8>,
    /// Multiplier from float score to table units.
    pub scale: f32,
    /// Sum of the per-table minima (the float score of an all-zero sum).
    pub bias: f32,
}

/// What a kernel sums exactly: the largest table entry, and the largest
/// total of the per-sub-quantizer maxima.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest entry.
    pub entry: u8,
    /// Largest sum of one entry per sub-quantizer.
    pub total: u32,
}

/// Limits of the AVX2 kernel (four entries add in u8, totals in u16).
pub const AVX2_LIMITS: Limits = Limits { entry: 63, total: 65535 };

/// Limits of the AVX-512 and scalar kernels (u32 sums of u8 entries).
pub const WIDE_LIMITS: Limits = Limits { entry: 255, total: u32::MAX };

/// The limits of the dispatched kernel.
pub fn table_limits() -> Limits {
    match isa() {
        Isa::Avx2 => AVX2_LIMITS,
        Isa::Scalar | Isa::Avx512 => WIDE_LIMITS,
    }
}

/// Quantizes `m` float tables of 16 entries (`t.len() == 16 * m`) for the
/// dispatched kernel.
pub fn quantize_lut(t: &[f32], m: usize) -> QLut {
    quantize_lut_within(t, m, table_limits())
}

/// Quantizes `m` float tables of 16 entries to `lim`: one scale for all
/// tables, the largest that keeps every entry and the total (plus
/// rounding) within the limits.
pub fn quantize_lut_within(t: &[f32], m: usize, lim: Limits) -> QLut {
    let mut mins = vec![0f32; m];
    let (mut max_range, mut sum_range) = (0f32, 0f64);
    for (j, row) in t.chunks_exact(16).take(m).enumerate() {
        let (lo, hi) = min_max16(row);
        mins[j] = lo;
        max_range = max_range.max(hi - lo);
        sum_range += f64::from(hi - lo);
    }
    let top = f32::from(lim.entry);
    let mut scale = top / max_range;
    let cap = ((f64::from(lim.total) - m as f64) / sum_range) as f32;
    if cap < scale {
        scale = cap;
    }
    if !scale.is_finite() || scale <= 0.0 {
        scale = 1.0;
    }
    let mut lut = vec![0u8; m * 16];
    for ((out, row), &lo) in
        lut.chunks_exact_mut(16).zip(t.chunks_exact(16)).zip(&mins)
    {
        for (o, &x) in out.iter_mut().zip(row) {
            // Non-negative, so adding 0.5 and truncating rounds (through
            // i32, which vectorizes; the clamp keeps it in range).
            *o = ((x - lo) * scale + 0.5).clamp(0.0, top) as i32 as u8;
        }
    }
    QLut { lut, scale, bias: mins.iter().sum() }
}

/// The minimum and maximum of 16 finite values, four lanes at a time (so
/// it compiles to vector min/max).
#[inline]
fn min_max16(row: &[f32]) -> (f32, f32) {
    let (mut lo, mut hi) = ([f32::INFINITY; 4], [f32::NEG_INFINITY; 4]);
    for c in row.chunks_exact(4) {
        for i in 0..4 {
            lo[i] = if c[i] < lo[i] { c[i] } else { lo[i] };
            hi[i] = if c[i] > hi[i] { c[i] } else { hi[i] };
        }
    }
    let lo = lo[0].min(lo[1]).min(lo[2].min(lo[3]));
    (lo, hi[0].max(hi[1]).max(hi[2].max(hi[3])))
}

/// Whether `lut` (16 entries per sub-quantizer) is within `lim`.
pub fn within(lut: &[u8], lim: Limits) -> bool {
    let mut total = 0u64;
    for row in lut.chunks(16) {
        let hi = row.iter().copied().max().unwrap_or(0);
        if hi > lim.entry {
            return false;
        }
        total += u64::from(hi);
    }
    total <= u64::from(lim.total)
}

/// Bytes of the blocked layout for `n` codes of `cb` bytes.
pub fn blocked_len(n: usize, cb: usize) -> usize {
    n.div_ceil(BLOCK) * BLOCK * cb
}

/// Row-major codes (`n * cb` bytes) to the blocked layout (padding rows
/// are zero).
pub fn to_blocks(codes: &[u8], cb: usize, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; blocked_len(n, cb)];
    for i in 0..n {
        let (b, t) = (i / BLOCK, i % BLOCK);
        for p in 0..cb {
            out[(b * cb + p) * BLOCK + t] = codes[i * cb + p];
        }
    }
    out
}

/// The blocked layout back to `n` row-major codes.
pub fn from_blocks(blocks: &[u8], cb: usize, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n * cb];
    for i in 0..n {
        code_of(blocks, cb, i, &mut out[i * cb..(i + 1) * cb]);
    }
    out
}

/// The packed row-major code of vector `i` from the blocked layout.
pub fn code_of(blocks: &[u8], cb: usize, i: usize, out: &mut [u8]) {
    let (b, t) = (i / BLOCK, i % BLOCK);
    for (p, o) in out.iter_mut().enumerate().take(cb) {
        *o = blocks[(b * cb + p) * BLOCK + t];
    }
}

/// The best `c` (sum, row) pairs seen; ties keep the lower row (rows
/// arrive in increasing order). A min-heap on (sum, then reversed row),
/// so a push costs O(log c) however often the selection changes.
#[derive(Debug)]
pub struct TopC {
    c: usize,
    heap: BinaryHeap<Reverse<(u32, Reverse<u32>)>>,
}

impl TopC {
    /// An empty selection of at most `c` rows.
    pub fn new(c: usize) -> TopC {
        let c = c.max(1);
        TopC { c, heap: BinaryHeap::with_capacity(c) }
    }
    /// The smallest sum that can still enter, `None` if nothing can.
    #[inline]
    pub fn threshold(&self) -> Option<u32> {
        match self.heap.peek() {
            Some(Reverse((s, _))) if self.heap.len() == self.c => {
                s.checked_add(1)
            }
            _ => Some(0),
        }
    }
    /// Offers a row (a later row than any offered before).
    #[inline]
    pub fn push(&mut self, sum: u32, row: u32) {
        if self.heap.len() < self.c {
            self.heap.push(Reverse((sum, Reverse(row))));
        } else if let Some(mut worst) = self.heap.peek_mut()
            && sum > worst.0.0
        {
            *worst = Reverse((sum, Reverse(row)));
        }
    }
    /// Offers the rows of block `b` whose bits are set in `m`, with the
    /// block's 32 sums.
    #[inline]
    pub fn push_block(&mut self, sums: &[u32; BLOCK], mut m: u32, b: usize) {
        while m != 0 {
            let v = m.trailing_zeros() as usize;
            self.push(sums[v], (b * BLOCK + v) as u32);
            m &= m - 1;
        }
    }
    /// The selection, best first (ties by lower row).
    pub fn into_vec(self) -> Vec<(u32, u32)> {
        let mut v: Vec<(u32, u32)> = self
            .heap
            .into_iter()
            .map(|Reverse((s, Reverse(r)))| (s, r))
            .collect();
        v.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        v
    }
}

/// Sums of one block (scalar reference): `out[t] = sum_j lut[j][code]`
/// for the 32 vectors.
pub fn block_sums_scalar(
    lut: &[u8],
    block: &[u8],
    pairs: usize,
    out: &mut [u32; BLOCK],
) {
    *out = [0; BLOCK];
    for p in 0..pairs {
        let (even, odd) = (&lut[32 * p..32 * p + 16], &lut[32 * p + 16..]);
        for (o, &c) in out.iter_mut().zip(&block[p * BLOCK..(p + 1) * BLOCK]) {
            *o += u32::from(even[(c & 15) as usize])
                + u32::from(odd[(c >> 4) as usize]);
        }
    }
}

/// The bit mask of block `b`'s rows that exist among `n` (the last
/// block may be partial).
#[inline]
pub(super) fn valid_mask(n: usize, b: usize) -> u32 {
    let valid = (n - b * BLOCK).min(BLOCK);
    if valid < BLOCK { (1u32 << valid) - 1 } else { !0 }
}

/// Offers block `b`'s sums that reach `top`'s threshold (as of the start
/// of the block).
#[inline]
fn offer_sums(sums: &[u32; BLOCK], b: usize, n: usize, top: &mut TopC) {
    let Some(thr) = top.threshold() else { return };
    let reach = sums
        .iter()
        .enumerate()
        .filter(|&(_, &s)| s >= thr)
        .fold(0u32, |m, (t, _)| m | 1 << t);
    top.push_block(sums, reach & valid_mask(n, b), b);
}

/// Scalar top-`c` over `n` blocked codes.
fn search_scalar(
    lut: &[u8],
    blocks: &[u8],
    pairs: usize,
    n: usize,
    top: &mut TopC,
) {
    let mut sums = [0u32; BLOCK];
    for b in 0..n.div_ceil(BLOCK) {
        if top.threshold().is_none() {
            return;
        }
        let blk = &blocks[b * pairs * BLOCK..(b + 1) * pairs * BLOCK];
        block_sums_scalar(lut, blk, pairs, &mut sums);
        offer_sums(&sums, b, n, top);
    }
}

/// Checks shapes, and that the table is within the kernel's limits.
fn check(lut: &[u8], blocks: &[u8], cb: usize, n: usize, lim: Limits) {
    assert_eq!(lut.len(), cb * 32, "fast-scan table is 32 bytes per pair");
    assert!(blocks.len() >= blocked_len(n, cb), "blocked codes too short");
    assert!(
        within(lut, lim),
        "fast-scan table exceeds the kernel's limits {lim:?} (use quantize_lut)"
    );
}

/// Sums of every vector (`out.len() == n`), dispatched; for tests.
///
/// # Panics
/// On wrong shapes, or a table beyond [`table_limits`].
pub fn sums(lut: &[u8], blocks: &[u8], cb: usize, n: usize, out: &mut [u32]) {
    check(lut, blocks, cb, n, table_limits());
    assert_eq!(out.len(), n);
    let mut s = [0u32; BLOCK];
    for b in 0..n.div_ceil(BLOCK) {
        let blk = &blocks[b * cb * BLOCK..(b + 1) * cb * BLOCK];
        match isa() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: isa() is Avx2 only when the CPU has AVX2; the
            // block holds `cb * 32` bytes and the table `cb * 32`.
            Isa::Avx2 => unsafe { avx2::block_sums(lut, blk, cb, &mut s) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: isa() is Avx512 only when the CPU has AVX-512
            // F/BW/VL/VBMI/VNNI; shapes as above.
            Isa::Avx512 => unsafe { avx512::block_sums(lut, blk, cb, &mut s) },
            _ => block_sums_scalar(lut, blk, cb, &mut s),
        }
        let valid = (n - b * BLOCK).min(BLOCK);
        out[b * BLOCK..b * BLOCK + valid].copy_from_slice(&s[..valid]);
    }
}

/// Top-`c` (sum, row) over `n` blocked codes of `cb` bytes (`cb` pairs)
/// with the table `lut` (`cb * 32` bytes: per pair the 16 entries of the
/// even then of the odd sub-quantizer), dispatched; best first, ties by
/// lower row.
///
/// # Panics
/// As [`sums`].
pub fn search(
    lut: &[u8],
    blocks: &[u8],
    cb: usize,
    n: usize,
    c: usize,
) -> Vec<(u32, u32)> {
    search_batch(&[lut], blocks, cb, n, c).pop().unwrap_or_default()
}

/// [`search`] for several queries at once (one table each): one pass
/// over the codes serves up to four queries (AVX2) or eight (AVX-512),
/// sharing each code load and nibble split. Results equal per-query
/// [`search_reference`].
///
/// # Panics
/// As [`sums`].
pub fn search_batch(
    luts: &[&[u8]],
    blocks: &[u8],
    cb: usize,
    n: usize,
    c: usize,
) -> Vec<Vec<(u32, u32)>> {
    let lim = table_limits();
    for l in luts {
        check(l, blocks, cb, n, lim);
    }
    let mut tops: Vec<TopC> = luts.iter().map(|_| TopC::new(c)).collect();
    let mut i = 0;
    while i < luts.len() {
        let t = &mut tops[i..];
        let l = &luts[i..];
        i += match isa() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: isa() is Avx512 only when the CPU has AVX-512
            // F/BW/VL/VBMI/VNNI; every table was checked above.
            Isa::Avx512 => unsafe { avx512::search_some(l, blocks, cb, n, t) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: isa() is Avx2 only when the CPU has AVX2; every
            // table was checked above.
            Isa::Avx2 => unsafe { avx2::search_some(l, blocks, cb, n, t) },
            _ => {
                search_scalar(l[0], blocks, cb, n, &mut t[0]);
                1
            }
        };
    }
    tops.into_iter().map(TopC::into_vec).collect()
}

/// The scalar twin of [`search`], for tests (any u8 table).
pub fn search_reference(
    lut: &[u8],
    blocks: &[u8],
    cb: usize,
    n: usize,
    c: usize,
) -> Vec<(u32, u32)> {
    check(lut, blocks, cb, n, WIDE_LIMITS);
    let mut top = TopC::new(c);
    search_scalar(lut, blocks, cb, n, &mut top);
    top.into_vec()
}
