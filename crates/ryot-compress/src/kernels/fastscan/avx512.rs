//! The AVX-512 fast-scan kernel (VBMI + VNNI), on the same blocked
//! layout as the AVX2 one.
//!
//! Per block and group of two pairs (sub-quantizers `4g..4g+4`, 64 code
//! bytes for 32 vectors): the low and high nibbles are split and tagged
//! with their sub-quantizer's offset in the 64-byte group table (0, 16,
//! 32, 48), then one `vpermt2b` per 16 vectors gathers each vector's four
//! codes into adjacent bytes. Per query, `vpermb` looks the 64 codes up in
//! the four tables at once (the group's 64 table bytes are one register),
//! and `vpdpbusd` against ones adds each vector's four bytes into its u32
//! sum. That is two operations per 64 lookups, against five for AVX2, and
//! the gather is shared by the eight queries of a pass.

use std::arch::x86_64::*;

use super::{BLOCK, TopC, valid_mask};

/// `vpermt2b` indices gathering the codes of vectors `16h..16h+16`:
/// byte `4v + j` takes nibble `j` of vector `16h + v` (`j` 0/2: low
/// nibbles of pairs `2g`/`2g+1`, source `lo`; 1/3: high nibbles, `hi`).
const fn gather(h: usize) -> [u8; 64] {
    let mut p = [0u8; 64];
    let mut v = 0;
    while v < 16 {
        let t = (16 * h + v) as u8;
        p[4 * v] = t;
        p[4 * v + 1] = 64 + t;
        p[4 * v + 2] = 32 + t;
        p[4 * v + 3] = 96 + t;
        v += 1;
    }
    p
}

/// Offset of each nibble's table in the group's 64 bytes: low nibbles of
/// the first pair's bytes (0..32) are sub-quantizer `4g`, of the second
/// pair's `4g+2`; high nibbles `4g+1` and `4g+3`.
const fn offsets(high: bool) -> [u8; 64] {
    let mut p = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        p[i] = (if i < 32 { 0 } else { 32 }) + if high { 16 } else { 0 };
        i += 1;
    }
    p
}

const GATHER: [[u8; 64]; 2] = [gather(0), gather(1)];
const OFF_LO: [u8; 64] = offsets(false);
const OFF_HI: [u8; 64] = offsets(true);

/// Loads 64 constant bytes.
#[inline]
#[target_feature(enable = "avx512f")]
fn load(c: &[u8; 64]) -> __m512i {
    // SAFETY: `c` is 64 readable bytes.
    unsafe { _mm512_loadu_si512(c.as_ptr() as *const __m512i) }
}

/// Per query, the u32 sums of vectors 0..16 and 16..32 of one block.
///
/// # Safety
/// AVX-512 F/BW/VBMI/VNNI required; every table and the block hold
/// `32 * pairs` bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni")]
unsafe fn block_acc<const NQ: usize>(
    pl: &[*const u8; NQ],
    pb: *const u8,
    pairs: usize,
) -> [[__m512i; 2]; NQ] {
    let m0f = _mm512_set1_epi8(15);
    let ones = _mm512_set1_epi8(1);
    let (off_lo, off_hi) = (load(&OFF_LO), load(&OFF_HI));
    let gather = [load(&GATHER[0]), load(&GATHER[1])];
    let mut acc = [[_mm512_setzero_si512(); 2]; NQ];
    let mut g = 0;
    while 2 * g < pairs {
        // A trailing single pair reads 32 bytes (masked loads, slower,
        // so only there); the rest are zero, and so are the table bytes
        // they look up.
        let full = 2 * g + 1 < pairs;
        let mask: u64 = if full { !0 } else { 0xffff_ffff };
        // SAFETY: the first 32 * min(2, pairs - 2g) bytes at 64 * g are
        // within the block; masked-off bytes are not read.
        let z = unsafe {
            if full {
                _mm512_loadu_si512(pb.add(64 * g) as _)
            } else {
                _mm512_maskz_loadu_epi8(mask, pb.add(64 * g) as _)
            }
        };
        // (x & 15) | offset, as a bitwise select: (A & B) | C.
        let lo = _mm512_ternarylogic_epi32::<0xEA>(z, m0f, off_lo);
        let hi = _mm512_ternarylogic_epi32::<0xEA>(
            _mm512_srli_epi16::<4>(z),
            m0f,
            off_hi,
        );
        let idx = [
            _mm512_permutex2var_epi8(lo, gather[0], hi),
            _mm512_permutex2var_epi8(lo, gather[1], hi),
        ];
        for q in 0..NQ {
            // SAFETY: as for the block; every table holds 32 * pairs
            // bytes.
            let t = unsafe {
                let at = pl[q].add(64 * g);
                if full {
                    _mm512_loadu_si512(at as _)
                } else {
                    _mm512_maskz_loadu_epi8(mask, at as _)
                }
            };
            for h in 0..2 {
                let r = _mm512_permutexvar_epi8(idx[h], t);
                acc[q][h] = _mm512_dpbusd_epi32(acc[q][h], r, ones);
            }
        }
        g += 1;
    }
    acc
}

/// Stores the 32 sums of a block.
#[inline]
#[target_feature(enable = "avx512f")]
fn store(acc: [__m512i; 2], out: &mut [u32; BLOCK]) {
    // SAFETY: `out` is 32 u32 = two 64-byte stores.
    unsafe {
        _mm512_storeu_si512(out.as_mut_ptr() as *mut __m512i, acc[0]);
        _mm512_storeu_si512(out.as_mut_ptr().add(16) as *mut __m512i, acc[1]);
    }
}

/// # Safety
/// AVX-512 F/BW/VBMI/VNNI required; `lut` and `block` hold `32 * pairs`
/// bytes.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni")]
pub unsafe fn block_sums(
    lut: &[u8],
    block: &[u8],
    pairs: usize,
    out: &mut [u32; BLOCK],
) {
    // SAFETY: per the contract.
    let acc = unsafe { block_acc::<1>(&[lut.as_ptr()], block.as_ptr(), pairs) };
    store(acc[0], out);
}

/// The vectors of block `b` whose sums reach `top`'s threshold (as of
/// the start of the block), as a bit mask over the 32 (`valid` first).
#[inline]
#[target_feature(enable = "avx512f")]
fn reaching(acc: &[__m512i; 2], top: &TopC, valid: u32) -> u32 {
    let Some(thr) = top.threshold() else { return 0 };
    let t = _mm512_set1_epi32(thr as i32);
    let lo = _mm512_cmpge_epu32_mask(acc[0], t) as u32;
    let hi = _mm512_cmpge_epu32_mask(acc[1], t) as u32;
    (lo | (hi << 16)) & valid
}

/// Offers the vectors of block `b` in `m` (out of line: few blocks have
/// any).
#[cold]
#[inline(never)]
#[target_feature(enable = "avx512f")]
fn offer(acc: &[__m512i; 2], m: u32, b: usize, top: &mut TopC) {
    let mut s = [0u32; BLOCK];
    store(*acc, &mut s);
    top.push_block(&s, m, b);
}

/// `NQ` queries per pass over the codes.
///
/// # Safety
/// AVX-512 F/BW/VBMI/VNNI required; every table holds `32 * pairs`
/// bytes, `blocks` the blocked codes of `n` vectors, `tops` at least `NQ`
/// entries.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni")]
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
        let valid = valid_mask(n, b);
        for (q, a) in acc.iter().enumerate() {
            let m = reaching(a, &tops[q], valid);
            if m != 0 {
                offer(a, m, b, &mut tops[q]);
            }
        }
    }
}

/// Scans for the first eight, four, two or one of `luts` (as many as
/// there are, up to eight) in one pass; returns how many were served.
///
/// # Safety
/// AVX-512 F/BW/VBMI/VNNI required; as [`search_n`] for each table;
/// `tops.len() == luts.len() > 0`.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni")]
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
        4..=7 => 4,
        _ => 8,
    };
    let l = &luts[..take];
    let (b, p, t) = (blocks, pairs, tops);
    // SAFETY: forwarded; `take` tables and tops exist.
    unsafe {
        match take {
            1 => search_n::<1>([l[0]], b, p, n, t),
            2 => search_n::<2>([l[0], l[1]], b, p, n, t),
            4 => search_n::<4>([l[0], l[1], l[2], l[3]], b, p, n, t),
            _ => search_n::<8>(std::array::from_fn(|i| l[i]), b, p, n, t),
        }
    }
    take
}
