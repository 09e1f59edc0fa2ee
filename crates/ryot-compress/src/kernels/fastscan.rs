//! 4-bit PQ fast-scan (André et al., FAISS `PQ..x4fs`): codes are stored
//! in blocks of [`BLOCK`] vectors so that one AVX2 `vpshufb` looks up
//! the codes of 32 vectors in a 16-entry table held in a register.
//!
//! Layout: for block `b` and sub-quantizer pair `p` (sub-quantizers
//! `2p`, `2p+1`), 32 bytes at `(b * pairs + p) * 32`; byte `t` is the
//! code of vector `32b + t` for `2p` (low nibble) and `2p+1` (high
//! nibble) — the row-major byte `p` of that vector's packed code, so a
//! block is a 32 x `pairs` byte transpose.
//!
//! Tables are the per-query float ADC tables quantized to u8 per
//! sub-quantizer ([`quantize_lut`]): entries at most 63, so the four
//! lookups of two pairs add in u8 without overflow, and a scale chosen
//! so the sum over all sub-quantizers fits in u16. Sums are exact
//! integers: the AVX2 kernel and its scalar twin agree bit for bit (the
//! two-pair sums wrap in u8 and totals in u16 in both, which never
//! happens for tables from [`quantize_lut`]).

use super::{Isa, isa};

/// Vectors per block.
pub const BLOCK: usize = 32;

/// A per-query table quantized to u8: `approx = sum / scale + bias`.
#[derive(Clone, Debug)]
pub struct QLut {
    /// `m * 16` entries, each at most 63.
    pub lut: Vec<u8>,
    /// Multiplier from float score to table units.
    pub scale: f32,
    /// Sum of the per-table minima (the float score of an all-zero sum).
    pub bias: f32,
}

/// Quantizes `m` float tables of 16 entries (`t.len() == 16 * m`).
pub fn quantize_lut(t: &[f32], m: usize) -> QLut {
    let mut mins = vec![0f32; m];
    let (mut max_range, mut sum_range) = (0f32, 0f32);
    for j in 0..m {
        let row = &t[j * 16..(j + 1) * 16];
        let lo = row.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        mins[j] = lo;
        max_range = max_range.max(hi - lo);
        sum_range += hi - lo;
    }
    // Each entry <= 63 (four add in u8); the total (plus rounding)
    // <= 65535.
    let mut scale = 63.0 / max_range;
    let cap = (65535.0 - m as f32) / sum_range;
    if cap < scale {
        scale = cap;
    }
    if !scale.is_finite() || scale <= 0.0 {
        scale = 1.0;
    }
    let mut lut = vec![0u8; m * 16];
    for j in 0..m {
        for k in 0..16 {
            // Non-negative, so adding 0.5 and truncating rounds.
            let v = (t[j * 16 + k] - mins[j]) * scale + 0.5;
            lut[j * 16 + k] = v.clamp(0.0, 63.0) as u8;
        }
    }
    QLut { lut, scale, bias: mins.iter().sum() }
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

/// The best `c` (sum, row) pairs seen, best first; ties keep the lower
/// row (rows arrive in increasing order).
#[derive(Debug)]
pub struct TopC {
    c: usize,
    items: Vec<(u16, u32)>,
}

impl TopC {
    /// An empty selection of at most `c` rows.
    pub fn new(c: usize) -> TopC {
        TopC { c: c.max(1), items: Vec::with_capacity(c + 1) }
    }
    /// The smallest sum that can still enter, `None` if nothing can.
    #[inline]
    pub fn threshold(&self) -> Option<u16> {
        if self.items.len() < self.c {
            Some(0)
        } else {
            self.items[self.c - 1].0.checked_add(1)
        }
    }
    /// Offers a row.
    #[inline]
    pub fn push(&mut self, sum: u16, row: u32) {
        if self.items.len() == self.c && sum <= self.items[self.c - 1].0 {
            return;
        }
        // Insertion from the end (no call to memmove for short lists).
        if self.items.len() < self.c {
            self.items.push((sum, row));
        }
        let mut i = self.items.len() - 1;
        while i > 0 && self.items[i - 1].0 < sum {
            self.items[i] = self.items[i - 1];
            i -= 1;
        }
        self.items[i] = (sum, row);
    }
    /// The selection, best first.
    pub fn into_vec(self) -> Vec<(u16, u32)> {
        self.items
    }
}

/// Sums of one block (scalar reference): `out[t] = sum_j lut[j][code]`
/// for the 32 vectors; the four lookups of two consecutive pairs are
/// summed in u8 (wrapping, exact for tables from [`quantize_lut`]), the
/// totals in u16.
pub fn block_sums_scalar(
    lut: &[u8],
    block: &[u8],
    pairs: usize,
    out: &mut [u16; BLOCK],
) {
    *out = [0; BLOCK];
    let pair = |p: usize, c: u8| {
        lut[32 * p + (c & 15) as usize]
            .wrapping_add(lut[32 * p + 16 + (c >> 4) as usize])
    };
    let mut p = 0;
    while p < pairs {
        let two = p + 1 < pairs;
        for (t, o) in out.iter_mut().enumerate() {
            let mut s = pair(p, block[p * BLOCK + t]);
            if two {
                s = s.wrapping_add(pair(p + 1, block[(p + 1) * BLOCK + t]));
            }
            *o = o.wrapping_add(s as u16);
        }
        p += 2;
    }
}

/// Scalar top-`c` over `n` blocked codes.
pub fn search_scalar(
    lut: &[u8],
    blocks: &[u8],
    pairs: usize,
    n: usize,
    top: &mut TopC,
) {
    let mut sums = [0u16; BLOCK];
    for b in 0..n.div_ceil(BLOCK) {
        let Some(thr) = top.threshold() else { return };
        let blk = &blocks[b * pairs * BLOCK..(b + 1) * pairs * BLOCK];
        block_sums_scalar(lut, blk, pairs, &mut sums);
        let valid = (n - b * BLOCK).min(BLOCK);
        for (t, &s) in sums.iter().enumerate().take(valid) {
            if s >= thr {
                top.push(s, (b * BLOCK + t) as u32);
            }
        }
    }
}

/// Checks shapes shared by the dispatchers.
fn check(lut: &[u8], blocks: &[u8], cb: usize, n: usize) {
    assert_eq!(lut.len(), cb * 32, "fast-scan table is 32 bytes per pair");
    assert!(blocks.len() >= blocked_len(n, cb), "blocked codes too short");
}

/// Sums of every vector (`out.len() == n`), dispatched; for tests.
pub fn sums(lut: &[u8], blocks: &[u8], cb: usize, n: usize, out: &mut [u16]) {
    check(lut, blocks, cb, n);
    assert_eq!(out.len(), n);
    let mut s = [0u16; BLOCK];
    for b in 0..n.div_ceil(BLOCK) {
        let blk = &blocks[b * cb * BLOCK..(b + 1) * cb * BLOCK];
        match isa() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: isa() is Avx2 only when the CPU has AVX2; the
            // block holds `cb * 32` bytes and the table `cb * 32`.
            Isa::Avx2 => unsafe { avx2::block_sums(lut, blk, cb, &mut s) },
            _ => block_sums_scalar(lut, blk, cb, &mut s),
        }
        let valid = (n - b * BLOCK).min(BLOCK);
        out[b * BLOCK..b * BLOCK + valid].copy_from_slice(&s[..valid]);
    }
}

/// Top-`c` (sum, row) over `n` blocked codes of `cb` bytes (`cb` pairs)
/// with the table `lut` (`cb * 32` bytes: per pair the 16 entries of the
/// even then of the odd sub-quantizer), dispatched.
pub fn search(
    lut: &[u8],
    blocks: &[u8],
    cb: usize,
    n: usize,
    c: usize,
) -> Vec<(u16, u32)> {
    check(lut, blocks, cb, n);
    let mut top = TopC::new(c);
    match isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: see `sums`; shapes were checked above.
        Isa::Avx2 => unsafe { avx2::search(lut, blocks, cb, n, &mut top) },
        _ => search_scalar(lut, blocks, cb, n, &mut top),
    }
    top.into_vec()
}

/// [`search`] for several queries at once (one table each): the AVX2
/// kernel shares each code load and nibble split among up to four
/// queries, or eight where AVX-512VL gives it 32 registers. Results equal
/// per-query [`search_reference`].
pub fn search_batch(
    luts: &[&[u8]],
    blocks: &[u8],
    cb: usize,
    n: usize,
    c: usize,
) -> Vec<Vec<(u16, u32)>> {
    for l in luts {
        check(l, blocks, cb, n);
    }
    let mut tops: Vec<TopC> = luts.iter().map(|_| TopC::new(c)).collect();
    match isa() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            let evex = super::evex_allowed();
            let mut i = 0;
            while i < luts.len() {
                let t = &mut tops[i..];
                if evex && luts.len() - i >= 8 {
                    let l: [&[u8]; 8] = std::array::from_fn(|j| luts[i + j]);
                    // SAFETY: see `sums`; every table was checked above;
                    // `evex_allowed` detected AVX-512VL/BW.
                    unsafe { avx2::search_n_evex::<8>(l, blocks, cb, n, t) };
                    i += 8;
                    continue;
                }
                // SAFETY: see `sums`; every table was checked above.
                unsafe {
                    match luts.len() - i {
                        1 => avx2::search(luts[i], blocks, cb, n, &mut t[0]),
                        2 | 3 => avx2::search_n::<2>(
                            [luts[i], luts[i + 1]],
                            blocks,
                            cb,
                            n,
                            t,
                        ),
                        _ => avx2::search_n::<4>(
                            [luts[i], luts[i + 1], luts[i + 2], luts[i + 3]],
                            blocks,
                            cb,
                            n,
                            t,
                        ),
                    }
                }
                i += match luts.len() - i {
                    1 => 1,
                    2 | 3 => 2,
                    _ => 4,
                };
            }
        }
        _ => {
            for (l, t) in luts.iter().zip(&mut tops) {
                search_scalar(l, blocks, cb, n, t);
            }
        }
    }
    tops.into_iter().map(TopC::into_vec).collect()
}

/// The scalar twin of [`search`], for tests.
pub fn search_reference(
    lut: &[u8],
    blocks: &[u8],
    cb: usize,
    n: usize,
    c: usize,
) -> Vec<(u16, u32)> {
    check(lut, blocks, cb, n);
    let mut top = TopC::new(c);
    search_scalar(lut, blocks, cb, n, &mut top);
    top.into_vec()
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{BLOCK, TopC};

    /// The low and high nibbles of the 32 code bytes of pair `p`.
    ///
    /// # Safety
    /// `pb` points at a block of at least `32 * (p + 1)` bytes.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn split(pb: *const u8, p: usize) -> (__m256i, __m256i) {
        let mask = _mm256_set1_epi8(15);
        // SAFETY: per the contract, 32 bytes at 32 * p are readable.
        let c = unsafe { _mm256_loadu_si256(pb.add(32 * p) as *const __m256i) };
        let lo = _mm256_and_si256(c, mask);
        (lo, _mm256_and_si256(_mm256_srli_epi16(c, 4), mask))
    }

    /// The u8 pair sum `T_2p[lo] + T_2p+1[hi]` for 32 vectors.
    ///
    /// # Safety
    /// `pl` points at a table of at least `32 * (p + 1)` bytes.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn look(
        pl: *const u8,
        p: usize,
        lo: __m256i,
        hi: __m256i,
    ) -> __m256i {
        // SAFETY: per the contract, 32 bytes at 32 * p are readable.
        let (la, lb) = unsafe {
            (
                _mm256_broadcastsi128_si256(_mm_loadu_si128(
                    pl.add(32 * p) as *const __m128i
                )),
                _mm256_broadcastsi128_si256(_mm_loadu_si128(
                    pl.add(32 * p + 16) as *const __m128i,
                )),
            )
        };
        _mm256_add_epi8(
            _mm256_shuffle_epi8(la, lo),
            _mm256_shuffle_epi8(lb, hi),
        )
    }

    /// Even-vector and odd-vector u16 sums of one block for `NQ` tables:
    /// two pairs are added in u8 (entries <= 63 keep that exact; larger
    /// ones wrap as in the scalar twin), then widened.
    ///
    /// # Safety
    /// Every table and the block hold `32 * pairs` bytes.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn block_acc<const NQ: usize>(
        pl: &[*const u8; NQ],
        pb: *const u8,
        pairs: usize,
    ) -> [(__m256i, __m256i); NQ] {
        let mut aw = [_mm256_setzero_si256(); NQ];
        let mut ah = [_mm256_setzero_si256(); NQ];
        let mut p = 0;
        while p + 2 <= pairs {
            // SAFETY: p + 1 < pairs, within the block and every table.
            unsafe {
                let (lo0, hi0) = split(pb, p);
                let (lo1, hi1) = split(pb, p + 1);
                for q in 0..NQ {
                    let r = _mm256_add_epi8(
                        look(pl[q], p, lo0, hi0),
                        look(pl[q], p + 1, lo1, hi1),
                    );
                    // Word i: byte 2i (vector 2i) + 256 * byte 2i+1.
                    aw[q] = _mm256_add_epi16(aw[q], r);
                    ah[q] = _mm256_add_epi16(ah[q], _mm256_srli_epi16(r, 8));
                }
            }
            p += 2;
        }
        if p < pairs {
            // SAFETY: p < pairs.
            unsafe {
                let (lo, hi) = split(pb, p);
                for q in 0..NQ {
                    let r = look(pl[q], p, lo, hi);
                    aw[q] = _mm256_add_epi16(aw[q], r);
                    ah[q] = _mm256_add_epi16(ah[q], _mm256_srli_epi16(r, 8));
                }
            }
        }
        std::array::from_fn(|q| {
            (_mm256_sub_epi16(aw[q], _mm256_slli_epi16(ah[q], 8)), ah[q])
        })
    }

    /// Even-vector and odd-vector sums of one block (16 u16 each).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn sums(lut: &[u8], block: &[u8], pairs: usize) -> (__m256i, __m256i) {
        // SAFETY: the callers pass a table and a block of 32 * pairs
        // bytes.
        unsafe { block_acc::<1>(&[lut.as_ptr()], block.as_ptr(), pairs)[0] }
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn store(even: __m256i, odd: __m256i, out: &mut [u16; BLOCK]) {
        let (mut e, mut o) = ([0u16; 16], [0u16; 16]);
        // SAFETY: each array is 16 u16 = 32 bytes.
        unsafe {
            _mm256_storeu_si256(e.as_mut_ptr() as *mut __m256i, even);
            _mm256_storeu_si256(o.as_mut_ptr() as *mut __m256i, odd);
        }
        for i in 0..16 {
            out[2 * i] = e[i];
            out[2 * i + 1] = o[i];
        }
    }

    /// # Safety
    /// AVX2 required; `lut` and `block` hold `32 * pairs` bytes.
    #[target_feature(enable = "avx2")]
    pub unsafe fn block_sums(
        lut: &[u8],
        block: &[u8],
        pairs: usize,
        out: &mut [u16; BLOCK],
    ) {
        let (e, o) = sums(lut, block, pairs);
        store(e, o, out);
    }

    /// Offers the vectors of block `b` whose sums reach `top`'s
    /// threshold (as of the start of the block).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn offer(even: __m256i, odd: __m256i, b: usize, n: usize, top: &mut TopC) {
        let Some(thr) = top.threshold() else { return };
        // x >= thr  <=>  max(x, thr) == x (unsigned).
        let t = _mm256_set1_epi16(thr as i16);
        let ge = _mm256_cmpeq_epi16(_mm256_max_epu16(even, t), even);
        let me = _mm256_movemask_epi8(ge) as u32 & 0x5555_5555;
        let go = _mm256_cmpeq_epi16(_mm256_max_epu16(odd, t), odd);
        let mo = _mm256_movemask_epi8(go) as u32 & 0x5555_5555;
        let mut m = me | (mo << 1);
        let valid = (n - b * BLOCK).min(BLOCK);
        if valid < BLOCK {
            m &= (1u32 << valid) - 1;
        }
        if m == 0 {
            return;
        }
        let mut s = [0u16; BLOCK];
        store(even, odd, &mut s);
        while m != 0 {
            let v = m.trailing_zeros() as usize;
            top.push(s[v], (b * BLOCK + v) as u32);
            m &= m - 1;
        }
    }

    /// `NQ` queries per pass over the codes.
    ///
    /// # Safety
    /// AVX2 required; every table holds `32 * pairs` bytes, `blocks` the
    /// blocked codes of `n` vectors, `tops` at least `NQ` entries.
    #[target_feature(enable = "avx2")]
    pub unsafe fn search_n<const NQ: usize>(
        luts: [&[u8]; NQ],
        blocks: &[u8],
        pairs: usize,
        n: usize,
        tops: &mut [TopC],
    ) {
        // SAFETY: forwarded.
        unsafe { scan_n::<NQ>(luts, blocks, pairs, n, tops) }
    }

    /// The body of [`search_n`] and [`search_n_evex`], inlined into each
    /// (so each is compiled with its own features).
    ///
    /// # Safety
    /// As [`search_n`].
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn scan_n<const NQ: usize>(
        luts: [&[u8]; NQ],
        blocks: &[u8],
        pairs: usize,
        n: usize,
        tops: &mut [TopC],
    ) {
        let bb = pairs * BLOCK;
        let pl: [*const u8; NQ] = std::array::from_fn(|i| luts[i].as_ptr());
        for b in 0..n.div_ceil(BLOCK) {
            if (0..NQ).all(|i| tops[i].threshold().is_none()) {
                return;
            }
            let pb = blocks[b * bb..(b + 1) * bb].as_ptr();
            // SAFETY: the block and every table hold 32 * pairs bytes.
            let acc = unsafe { block_acc::<NQ>(&pl, pb, pairs) };
            for (q, &(even, odd)) in acc.iter().enumerate() {
                offer(even, odd, b, n, &mut tops[q]);
            }
        }
    }

    /// [`search_n`] compiled with AVX-512VL/BW enabled: the same 256-bit
    /// operations, but with 32 vector registers, so `NQ = 8` queries'
    /// accumulators fit without spilling (no 512-bit operation, so no
    /// port is given up).
    ///
    /// # Safety
    /// As [`search_n`], and AVX-512VL and AVX-512BW available.
    #[target_feature(enable = "avx2,avx512vl,avx512bw")]
    pub unsafe fn search_n_evex<const NQ: usize>(
        luts: [&[u8]; NQ],
        blocks: &[u8],
        pairs: usize,
        n: usize,
        tops: &mut [TopC],
    ) {
        // SAFETY: forwarded.
        unsafe { scan_n::<NQ>(luts, blocks, pairs, n, tops) }
    }

    /// # Safety
    /// AVX2 required; `lut` holds `32 * pairs` bytes and `blocks` the
    /// blocked codes of `n` vectors.
    #[target_feature(enable = "avx2")]
    pub unsafe fn search(
        lut: &[u8],
        blocks: &[u8],
        pairs: usize,
        n: usize,
        top: &mut TopC,
    ) {
        let bb = pairs * BLOCK;
        for b in 0..n.div_ceil(BLOCK) {
            if top.threshold().is_none() {
                return;
            }
            let (even, odd) = sums(lut, &blocks[b * bb..(b + 1) * bb], pairs);
            offer(even, odd, b, n, top);
        }
    }
}
