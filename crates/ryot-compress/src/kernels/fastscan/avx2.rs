//! The AVX2 fast-scan kernel: `vpshufb` looks up the codes of 32 vectors
//! in a 16-entry table; four lookups add in u8 (entries at most 63) and
//! are widened to u16 even-vector and odd-vector sums.

use std::arch::x86_64::*;

use super::{BLOCK, TopC, valid_mask};

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
unsafe fn look(pl: *const u8, p: usize, lo: __m256i, hi: __m256i) -> __m256i {
    // SAFETY: per the contract, 32 bytes at 32 * p are readable.
    let (la, lb) = unsafe {
        (
            _mm256_broadcastsi128_si256(_mm_loadu_si128(
                pl.add(32 * p) as *const __m128i
            )),
            _mm256_broadcastsi128_si256(_mm_loadu_si128(
                pl.add(32 * p + 16) as *const __m128i
            )),
        )
    };
    _mm256_add_epi8(_mm256_shuffle_epi8(la, lo), _mm256_shuffle_epi8(lb, hi))
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
fn store(even: __m256i, odd: __m256i, out: &mut [u32; BLOCK]) {
    let (mut e, mut o) = ([0u16; 16], [0u16; 16]);
    // SAFETY: each array is 16 u16 = 32 bytes.
    unsafe {
        _mm256_storeu_si256(e.as_mut_ptr() as *mut __m256i, even);
        _mm256_storeu_si256(o.as_mut_ptr() as *mut __m256i, odd);
    }
    for i in 0..16 {
        out[2 * i] = u32::from(e[i]);
        out[2 * i + 1] = u32::from(o[i]);
    }
}

/// # Safety
/// AVX2 required; `lut` and `block` hold `32 * pairs` bytes.
#[target_feature(enable = "avx2")]
pub unsafe fn block_sums(
    lut: &[u8],
    block: &[u8],
    pairs: usize,
    out: &mut [u32; BLOCK],
) {
    let (e, o) = sums(lut, block, pairs);
    store(e, o, out);
}

/// Offers the vectors of block `b` whose sums reach `top`'s
/// threshold (as of the start of the block).
#[inline]
#[target_feature(enable = "avx2")]
fn offer(even: __m256i, odd: __m256i, b: usize, n: usize, top: &mut TopC) {
    // Sums are u16 here: nothing enters above 65535.
    let Some(thr) = top.threshold().filter(|&t| t <= 0xffff) else {
        return;
    };
    // x >= thr  <=>  max(x, thr) == x (unsigned).
    let t = _mm256_set1_epi16(thr as u16 as i16);
    let ge = _mm256_cmpeq_epi16(_mm256_max_epu16(even, t), even);
    let me = _mm256_movemask_epi8(ge) as u32 & 0x5555_5555;
    let go = _mm256_cmpeq_epi16(_mm256_max_epu16(odd, t), odd);
    let mo = _mm256_movemask_epi8(go) as u32 & 0x5555_5555;
    let m = (me | (mo << 1)) & valid_mask(n, b);
    if m == 0 {
        return;
    }
    let mut s = [0u32; BLOCK];
    store(even, odd, &mut s);
    top.push_block(&s, m, b);
}

/// `NQ` queries per pass over the codes.
///
/// # Safety
/// AVX2 required; every table holds `32 * pairs` bytes within
/// [`super::AVX2_LIMITS`], `blocks` the blocked codes of `n` vectors,
/// `tops` at least `NQ` entries.
#[target_feature(enable = "avx2")]
unsafe fn search_n<const NQ: usize>(
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

/// Scans for the first four, two or one of `luts` (as many as there
/// are, up to four) in one pass; returns how many were served.
///
/// # Safety
/// AVX2 required; as [`search_n`] for each table; `tops.len() ==
/// luts.len() > 0`.
#[target_feature(enable = "avx2")]
pub unsafe fn search_some(
    luts: &[&[u8]],
    blocks: &[u8],
    pairs: usize,
    n: usize,
    tops: &mut [TopC],
) -> usize {
    let take = match luts.len() {
        1 => 1,
        2 | 3 => 2,
        _ => 4,
    };
    let l = &luts[..take];
    // SAFETY: forwarded; `take` tables and tops exist.
    unsafe {
        match take {
            1 => search_n::<1>([l[0]], blocks, pairs, n, tops),
            2 => search_n::<2>([l[0], l[1]], blocks, pairs, n, tops),
            _ => {
                search_n::<4>([l[0], l[1], l[2], l[3]], blocks, pairs, n, tops)
            }
        }
    }
    take
}
