//! The interleaved Q8_0/Q4_0 layout: each 32-column block of 16 rows is
//! stored as 64-byte lines that hold 4 columns of all 16 rows.
//!
//! GGUF stores a Q8_0/Q4_0 row as consecutive 32-element blocks (see
//! `ryot_quant::blocks`). The kernels want the sixteen rows of a panel side
//! by side, so that one vector is "16 rows x 4 columns" (a dword per row,
//! exactly what `vpdpbusd`/`vpmaddubsw` multiply with a broadcast dword of
//! 4 activations) and the row sums come out in lanes. This is the idea of
//! llama.cpp's load-time Q4_0 "repack" (several rows' blocks interleaved),
//! with 16 rows and 4-byte interleave. The repack is lossless
//! ([`Q8_0Panels::to_gguf`] gives the original bytes back).
//!
//! ```text
//! panel p = rows 16p .. 16p+16; block b = columns 32b .. 32b+32
//! Q8_0, 8 lines per block, line j (columns 32b+4j .. +4):
//!     byte 4r+e = (q[16p+r][32b+4j+e] as u8) ^ 0x80     (code + 128, u8)
//! Q4_0, 4 lines per block, line v:
//!     byte 4r+e = qs[4v+e] of block b of row 16p+r       (unchanged)
//!         low nibble  = code of column 32b + 4v + e
//!         high nibble = code of column 32b + 16 + 4v + e
//! scales: one Scales16 per (panel, block) = the 16 rows' f16 `d`
//! ```
//!
//! Q8_0 codes are stored plus 128 so they are unsigned: `vpdpbusd(code +
//! 128, x) = sum(code * x) + 128 * sum(x)`, and `sum(x)` per activation
//! block is known. Q4_0 codes are `q - 8` with `q` unsigned already.
//! Padding rows have zero codes and zero scales.

use bytemuck::{Pod, Zeroable};
use half::f16;
use ryot_quant::blocks::QK;
use ryot_quant::{BlockQ4_0, BlockQ8_0, QuantType};

use crate::error::{KernelError, KernelErrorKind};

/// Rows per panel.
pub const PANEL_ROWS: usize = 16;
/// Columns per block (Q8_0 and Q4_0 alike).
pub const BLOCK: usize = QK;

/// One 64-byte, 64-byte-aligned line: 16 rows x 4 codes (Q8_0) or 16
/// rows x 4 code pairs (Q4_0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(64))]
pub(crate) struct Line(pub(crate) [u8; 64]);

/// The f16 scales of 16 rows for one block, 32-byte aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(32))]
pub(crate) struct Scales16(pub(crate) [u16; PANEL_ROWS]);

/// A GGUF block type the layout can hold: [`BlockQ8_0`] or [`BlockQ4_0`].
pub trait QBlock: sealed::Format {}
impl QBlock for BlockQ8_0 {}
impl QBlock for BlockQ4_0 {}

/// Which inner loop a block type needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Q8_0: 8 lines of `code + 128` per block.
    Q8_0,
    /// Q4_0: 4 lines of nibble pairs per block.
    Q4_0,
}

pub(crate) mod sealed {
    use super::*;

    /// The per-format details (sealed: only this module implements it).
    pub trait Format: Pod + std::fmt::Debug {
        const TYPE: QuantType;
        const KIND: Kind;
    const NAME: &'static str;
    /// Lines per (panel, block).
    const LINES: usize;
    /// The byte a padding row gets (codes meaning 0).
    const PAD: u8;
    fn d(&self) -> f16;
    /// Writes row `r`'s share of the block's lines.
    fn scatter(&self, lines: &mut [Line], r: usize);
    /// Reads row `r`'s block back.
    fn gather(lines: &[Line], r: usize, d: f16) -> Self;
    /// `x = d * code`, in ggml's float order.
    fn decode(&self, y: &mut [f32]);
}
}

use sealed::Format;

impl Format for BlockQ8_0 {
    const TYPE: QuantType = QuantType::Q8_0;
    const KIND: Kind = Kind::Q8_0;
    const NAME: &'static str = "q8_0";
    const LINES: usize = 8;
    const PAD: u8 = 0x80;
    fn d(&self) -> f16 {
        self.d
    }
    fn scatter(&self, lines: &mut [Line], r: usize) {
        for (j, line) in lines.iter_mut().enumerate() {
            for e in 0..4 {
                line.0[4 * r + e] = (self.qs[4 * j + e] as u8) ^ 0x80;
            }
        }
    }
    fn gather(lines: &[Line], r: usize, d: f16) -> Self {
        let mut qs = [0i8; BLOCK];
        for (j, line) in lines.iter().enumerate() {
            for e in 0..4 {
                qs[4 * j + e] = (line.0[4 * r + e] ^ 0x80) as i8;
            }
        }
        BlockQ8_0 { d, qs }
    }
    fn decode(&self, y: &mut [f32]) {
        let d = self.d.to_f32();
        for (o, &q) in y.iter_mut().zip(&self.qs) {
            *o = q as f32 * d;
        }
    }
}

impl Format for BlockQ4_0 {
    const TYPE: QuantType = QuantType::Q4_0;
    const KIND: Kind = Kind::Q4_0;
    const NAME: &'static str = "q4_0";
    const LINES: usize = 4;
    const PAD: u8 = 0x88;
    fn d(&self) -> f16 {
        self.d
    }
    fn scatter(&self, lines: &mut [Line], r: usize) {
        for (v, line) in lines.iter_mut().enumerate() {
            line.0[4 * r..4 * r + 4].copy_from_slice(&self.qs[4 * v..4 * v + 4]);
        }
    }
    fn gather(lines: &[Line], r: usize, d: f16) -> Self {
        let mut qs = [0u8; 16];
        for (v, line) in lines.iter().enumerate() {
            qs[4 * v..4 * v + 4].copy_from_slice(&line.0[4 * r..4 * r + 4]);
        }
        BlockQ4_0 { d, qs }
    }
    fn decode(&self, y: &mut [f32]) {
        let d = self.d.to_f32();
        for j in 0..16 {
            let x0 = (self.qs[j] & 0x0f) as i32 - 8;
            let x1 = (self.qs[j] >> 4) as i32 - 8;
            y[j] = x0 as f32 * d;
            y[j + 16] = x1 as f32 * d;
        }
    }
}

