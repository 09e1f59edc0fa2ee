//! AMX int8 t2p GEMM: `tdpbsud` multiplies 16 tokens x 64 activations
//! (signed) with 64 columns x 16 rows of codes (unsigned 0..2).
//!
//! A t2p line already holds, after `(line >> 2j) & 3`, one row of an AMX B
//! tile (16 weight rows x 4 consecutive columns, the "VNNI" layout), so a
//! panel is unpacked once per call into 1 KiB B tiles (one per 64 columns)
//! and every token tile reuses them:
//!
//! ```text
//! for each pair of panels:  unpack their codes into B tiles (int8, L2)
//!   for each pair of 16-token tiles, each scale group g:
//!     C[p][t] = 0                                      (tiles 0..4, i32)
//!     for each 64 columns c of g:  C[p][t] += A[t](c) . B[p](c)
//!     f[p][t] += (f32(C - gsum[t][g]) / act_scale[t]) * w_scale[p][g]
//! ```
//!
//! The integer sums are exact and the f32 combine is the AVX-512 variant's
//! own (`avx512::combine`), so results are bit-identical to it (and to the
//! scalar twin), which the parity tests check.

use std::arch::x86_64::*;
use std::ops::Range;

use super::Job;
use super::avx512::{combine, store, unpack};
use super::layout::{LINE_COLS, Line, PANEL_ROWS};
use crate::amx::{self, TileBuf, TileConfig};

/// Token rows of an A or C tile.
const TILE_TOKENS: usize = 16;
/// Columns (int8 activations) one `tdpbsud` consumes per token.
const TILE_COLS: usize = 64;
/// Bytes of one A or B tile: 16 rows of 64 bytes.
const TILE_BYTES: usize = 1024;
/// Lines of a panel per B tile.
const LINES_PER_TILE: usize = TILE_COLS / LINE_COLS;

/// Computes panels `panels` for every token of `job`.
pub(crate) fn gemm(job: &Job<'_>, panels: Range<usize>) {
    assert!(crate::isa::SimdLevel::Amx.is_available());
    // SAFETY: the CPU has AVX-512 and AMX int8, and the OS granted this
    // process the tile state (both checked by `isa` before reporting the
    // Amx level, asserted above).
    unsafe { gemm_impl(job, panels) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn gemm_impl(job: &Job<'_>, panels: Range<usize>) {
    let w = job.w;
    let a = job.a;
    let n = a.n();
    let tiles = w.chunks().div_ceil(LINES_PER_TILE);
    // Activations are copied into A tiles laid out one after another
    // (token tile, then 64-column chunk: 1 KiB each, rows 64 bytes apart),
    // so a tile load reads 16 consecutive lines rather than 16 rows a
    // k_pad apart; tokens past `n` in the last tile stay zero.
    let token_tiles = n.div_ceil(TILE_TOKENS);
    let mut apack = TileBuf::zeroed(token_tiles * tiles * TILE_BYTES);
    pack_acts(a, tiles, &mut apack);
    let a_tile = |tt: usize| -> *const u8 {
        apack.as_ptr().wrapping_add(tt * tiles * TILE_BYTES)
    };
    let mut b = [
        TileBuf::zeroed(tiles * TILE_BYTES),
        TileBuf::zeroed(tiles * TILE_BYTES),
    ];
    // Eight tiles of 16 rows x 64 bytes: C 0..4, A 4..6, B 6..8.
    let cfg = TileConfig::new([(16, 64); 8]);
    // SAFETY: Amx level (asserted by `gemm`); valid shapes.
    unsafe { cfg.load() };
    let mut p = panels.start;
    while p < panels.end {
        let np = (panels.end - p).min(2);
        for (i, bi) in b.iter_mut().enumerate().take(np) {
            unpack_panel(w.panel(p + i), bi);
        }
        let mut tt = 0;
        while tt < token_tiles {
            let ntt = (token_tiles - tt).min(2);
            let a_ptrs = [a_tile(tt), a_tile((tt + 1).min(token_tiles - 1))];
            let b_ptrs = [b[0].as_ptr(), b[1].as_ptr()];
            match (np, ntt) {
                (2, 2) => block::<2, 2>(job, p, tt, a_ptrs, b_ptrs),
                (2, _) => block::<2, 1>(job, p, tt, a_ptrs, b_ptrs),
                (_, 2) => block::<1, 2>(job, p, tt, a_ptrs, b_ptrs),
                _ => block::<1, 1>(job, p, tt, a_ptrs, b_ptrs),
            }
            tt += ntt;
        }
        p += np;
    }
    // SAFETY: releases the tile state loaded above.
    unsafe { amx::release() };
}

/// Copies the activations into A tiles: tile `(tt, c)` holds tokens
/// `16tt..16tt+16` (zero past `n`), columns `64c..64c+64`.
fn pack_acts(a: &crate::act::ActI8, tiles: usize, out: &mut TileBuf) {
    let dst = out.as_mut_ptr();
    for t in 0..a.n() {
        let row = a.row(t);
        let (tt, i) = (t / TILE_TOKENS, t % TILE_TOKENS);
        for c in 0..tiles {
            let src = &row[c * TILE_COLS..(c + 1) * TILE_COLS];
            let at = (tt * tiles + c) * TILE_BYTES + i * TILE_COLS;
            // SAFETY: `at + 64 <= token_tiles * tiles * 1024`, the buffer's
            // size; rows hold `k_pad >= tiles * 64` bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    src.as_ptr().cast(),
                    dst.add(at),
                    TILE_COLS,
                )
            };
        }
    }
}

/// Writes a panel's codes as B tiles: tile `c`, row `4i + j` is
/// `(line[4c + i] >> 2j) & 3`; rows past the panel's last line are zero.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn unpack_panel(lines: &[Line], out: &mut TileBuf) {
    let mask = _mm512_set1_epi8(3);
    let dst = out.as_mut_ptr();
    for (l, line) in lines.iter().enumerate() {
        // SAFETY: `Line` is 64 bytes, 64-byte aligned.
        let x = unsafe { _mm512_load_si512(line.0.as_ptr().cast()) };
        for j in 0..4 {
            let v = unpack(x, j, mask);
            // SAFETY: row 4l + j of the tiles is at byte (4l + j) * 64 <
            // tiles * 1024 (l < lines.len() <= tiles * 4), and aligned.
            unsafe { _mm512_store_si512(dst.add((4 * l + j) * 64).cast(), v) };
        }
    }
}

/// Panels `p0..p0+P` x token tiles `tt0..tt0+T`: C tile `2p + t`, A tile
/// `4 + t`, B tile `6 + p`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn block<const P: usize, const T: usize>(
    job: &Job<'_>,
    p0: usize,
    tt0: usize,
    a_ptrs: [*const u8; 2],
    b_ptrs: [*const u8; 2],
) {
    let w = job.w;
    let n = job.a.n();
    let groups = job.groups();
    let tiles = w.chunks().div_ceil(LINES_PER_TILE);
    let per_group = w.group_cols() / TILE_COLS;
    let mut facc = [[[_mm512_setzero_ps(); TILE_TOKENS]; T]; P];
    let mut cbuf = [[[[0i32; PANEL_ROWS]; TILE_TOKENS]; T]; P];
    for g in 0..groups {
        // One group spans the whole row (per-row scales) or 256 columns.
        let range = if groups == 1 {
            0..tiles
        } else {
            g * per_group..(g + 1) * per_group
        };
        zero::<P, T>();
        for c in range {
            for (t, ap) in a_ptrs.iter().enumerate().take(T) {
                // SAFETY: A tile (token tile tt0 + t, chunk c) is 1 KiB
                // inside the packed activations.
                unsafe { load_a(t, ap.add(c * TILE_BYTES)) };
            }
            for (p, bp) in b_ptrs.iter().enumerate().take(P) {
                // SAFETY: tile c of the unpacked panel, 1 KiB inside b.
                unsafe { load_b(p, bp.add(c * TILE_BYTES)) };
            }
            dot::<P, T>();
        }
        for (p, cp) in cbuf.iter_mut().enumerate() {
            for (t, ct) in cp.iter_mut().enumerate() {
                // SAFETY: ct is 16 x 16 i32 = 16 rows of 64 bytes.
                unsafe { store_c(2 * p + t, ct.as_mut_ptr().cast()) };
            }
        }
        for t in 0..T {
            for i in 0..TILE_TOKENS {
                let tok = (tt0 + t) * TILE_TOKENS + i;
                if tok >= n {
                    break;
                }
                let gsum = _mm512_set1_epi32(job.gsums[tok * groups + g]);
                let act = _mm512_set1_ps(job.a.scales()[tok]);
                for p in 0..P {
                    // SAFETY: 16 i32s.
                    let s = unsafe {
                        _mm512_loadu_si512(cbuf[p][t][i].as_ptr().cast())
                    };
                    let ws = w.group_scales(p0 + p, g);
                    facc[p][t][i] = combine(facc[p][t][i], s, gsum, act, ws);
                }
            }
        }
    }
    for (p, fp) in facc.iter().enumerate() {
        for (t, ft) in fp.iter().enumerate() {
            for (i, v) in ft.iter().enumerate() {
                let tok = (tt0 + t) * TILE_TOKENS + i;
                if tok >= n {
                    break;
                }
                store(job, p0 + p, tok, *v);
            }
        }
    }
}

/// Zeroes the C tiles of a `P` x `T` block (tile `2p + t`).
#[inline(always)]
fn zero<const P: usize, const T: usize>() {
    // SAFETY: tiles are configured by `gemm_impl`.
    unsafe {
        amx::zero::<0>();
        if T == 2 {
            amx::zero::<1>();
        }
        if P == 2 {
            amx::zero::<2>();
            if T == 2 {
                amx::zero::<3>();
            }
        }
    }
}

/// Loads A tile `4 + t` (16 rows 64 bytes apart).
///
/// # Safety
/// Tiles configured; 1 KiB readable at `ptr`.
#[inline(always)]
unsafe fn load_a(t: usize, ptr: *const u8) {
    // SAFETY: per the function's contract.
    unsafe {
        if t == 0 {
            amx::load::<4>(ptr, TILE_COLS);
        } else {
            amx::load::<5>(ptr, TILE_COLS);
        }
    }
}

/// Loads B tile `6 + p` (16 rows 64 bytes apart).
///
/// # Safety
/// Tiles configured; 1 KiB readable at `ptr`.
#[inline(always)]
unsafe fn load_b(p: usize, ptr: *const u8) {
    // SAFETY: per the function's contract.
    unsafe {
        if p == 0 {
            amx::load::<6>(ptr, 64);
        } else {
            amx::load::<7>(ptr, 64);
        }
    }
}

/// Stores C tile `c` as 16 rows of 64 bytes at `ptr`.
///
/// # Safety
/// Tiles configured; 1 KiB writable at `ptr`.
#[inline(always)]
unsafe fn store_c(c: usize, ptr: *mut u8) {
    // SAFETY: per the function's contract.
    unsafe {
        match c {
            0 => amx::store::<0>(ptr, 64),
            1 => amx::store::<1>(ptr, 64),
            2 => amx::store::<2>(ptr, 64),
            _ => amx::store::<3>(ptr, 64),
        }
    }
}

/// `C[p][t] += A[t] . B[p]` for a `P` x `T` block.
#[inline(always)]
fn dot<const P: usize, const T: usize>() {
    // SAFETY: register-only tile arithmetic on the tiles
    // `gemm_impl` configured.
    unsafe {
        amx::dpbsud::<0, 4, 6>();
        if T == 2 {
            amx::dpbsud::<1, 5, 6>();
        }
        if P == 2 {
            amx::dpbsud::<2, 4, 7>();
            if T == 2 {
                amx::dpbsud::<3, 5, 7>();
            }
        }
    }
}
