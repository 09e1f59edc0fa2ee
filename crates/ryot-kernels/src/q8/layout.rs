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

use std::marker::PhantomData;

use bytemuck::Pod;
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
pub struct Line(pub(crate) [u8; 64]);

/// The f16 scales of 16 rows for one block, 32-byte aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(32))]
pub struct Scales16(pub(crate) [u16; PANEL_ROWS]);

/// A GGUF block type the layout can hold: [`BlockQ8_0`] or [`BlockQ4_0`].
pub trait QBlock: sealed::Format {}
impl QBlock for BlockQ8_0 {}
impl QBlock for BlockQ4_0 {}

/// Which inner loop a block type needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
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
            line.0[4 * r..4 * r + 4]
                .copy_from_slice(&self.qs[4 * v..4 * v + 4]);
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

/// Q8_0 or Q4_0 weights (`m` rows of `k`, `k` a multiple of 32) in the
/// interleaved 16-row layout (see [the module doc](self)).
#[derive(Clone, Debug)]
pub struct QPanels<B> {
    m: usize,
    k: usize,
    /// `[panel][block][LINES]`.
    lines: Vec<Line>,
    /// `[panel][block]`.
    scales: Vec<Scales16>,
    _block: PhantomData<fn() -> B>,
}

/// Q8_0 weights in the interleaved layout.
pub type Q8_0Panels = QPanels<BlockQ8_0>;
/// Q4_0 weights in the interleaved layout.
pub type Q4_0Panels = QPanels<BlockQ4_0>;

impl<B: QBlock> QPanels<B> {
    /// Repacks a GGUF tensor (`m` rows of `k / 32` blocks, as stored).
    ///
    /// Errors: a zero or too large shape ([`KernelErrorKind::BadShape`]),
    /// `k` not a multiple of 32 ([`KernelErrorKind::NotBlockMultiple`]), a
    /// wrong byte count ([`KernelErrorKind::LengthMismatch`]), a NaN or
    /// infinite block scale ([`KernelErrorKind::NonFinite`]).
    pub fn from_gguf(
        bytes: &[u8],
        m: usize,
        k: usize,
    ) -> Result<Self, KernelError> {
        if m == 0 || k == 0 {
            return Err(KernelError::shape(format!(
                "weights need m >= 1 and k >= 1 (got m = {m}, k = {k})"
            )));
        }
        if !k.is_multiple_of(BLOCK) {
            return Err(KernelError::new(KernelErrorKind::NotBlockMultiple {
                ty: B::NAME,
                k,
                block: BLOCK,
            }));
        }
        let nb = k / BLOCK;
        let panels = m.div_ceil(PANEL_ROWS);
        let overflow = || {
            KernelError::shape(format!(
                "{} tensor {m}x{k} is too large",
                B::NAME
            ))
        };
        let want = m
            .checked_mul(nb)
            .and_then(|blocks| blocks.checked_mul(size_of::<B>()))
            .ok_or_else(overflow)?;
        // The layout's own size (padding rows included) must fit as well.
        nb.checked_mul(B::LINES * size_of::<Line>())
            .and_then(|per_panel| per_panel.checked_mul(panels))
            .filter(|&bytes| bytes <= isize::MAX as usize)
            .ok_or_else(overflow)?;
        if bytes.len() != want {
            return Err(KernelError::len("weight bytes", want, bytes.len()));
        }
        let mut lines = vec![Line([B::PAD; 64]); panels * nb * B::LINES];
        let mut scales = vec![Scales16([0; PANEL_ROWS]); panels * nb];
        for (i, raw) in bytes.chunks_exact(size_of::<B>()).enumerate() {
            let blk: B = bytemuck::pod_read_unaligned(raw);
            let d = blk.d();
            if !d.is_finite() {
                return Err(KernelError::new(KernelErrorKind::NonFinite {
                    what: "weight scales",
                }));
            }
            let (row, b) = (i / nb, i % nb);
            let pb = (row / PANEL_ROWS) * nb + b;
            let r = row % PANEL_ROWS;
            blk.scatter(&mut lines[pb * B::LINES..(pb + 1) * B::LINES], r);
            scales[pb].0[r] = d.to_bits();
        }
        Ok(QPanels { m, k, lines, scales, _block: PhantomData })
    }

    /// Quantizes a row-major `m x k` f32 matrix with llama.cpp's reference
    /// quantizer (`ryot_quant::quantize`) and repacks it.
    pub fn quantize(
        w: &[f32],
        m: usize,
        k: usize,
    ) -> Result<Self, KernelError> {
        if m == 0 || k == 0 || !k.is_multiple_of(BLOCK) {
            // Let from_gguf report the shape problem.
            return Self::from_gguf(&[], m, k);
        }
        let bytes = ryot_quant::quantize(B::TYPE, w, m, k)?;
        Self::from_gguf(&bytes, m, k)
    }

    /// Rows.
    pub fn m(&self) -> usize {
        self.m
    }

    /// Columns.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Number of 16-row panels.
    pub fn panels(&self) -> usize {
        self.m.div_ceil(PANEL_ROWS)
    }

    /// Bytes a full pass reads (codes and scales, padding rows included).
    pub fn stored_bytes(&self) -> usize {
        self.lines.len() * size_of::<Line>()
            + self.scales.len() * size_of::<Scales16>()
    }

    /// Row `row`'s block `b`, rebuilt from the layout.
    fn block(&self, row: usize, b: usize) -> B {
        let pb = (row / PANEL_ROWS) * self.blocks() + b;
        let r = row % PANEL_ROWS;
        let d = f16::from_bits(self.scales[pb].0[r]);
        B::gather(&self.lines[pb * B::LINES..(pb + 1) * B::LINES], r, d)
    }

    /// The original GGUF bytes, rebuilt from the layout.
    pub fn to_gguf(&self) -> Vec<u8> {
        let nb = self.blocks();
        let mut out = Vec::with_capacity(self.m * nb * size_of::<B>());
        for row in 0..self.m {
            for b in 0..nb {
                out.extend_from_slice(bytemuck::bytes_of(&self.block(row, b)));
            }
        }
        out
    }

    /// The weights as a row-major `m x k` f32 matrix, in the float order
    /// of `ryot_quant::dequantize` (bit for bit).
    pub fn dequantize(&self) -> Vec<f32> {
        let nb = self.blocks();
        let mut out = vec![0f32; self.m * self.k];
        for (i, y) in out.chunks_exact_mut(BLOCK).enumerate() {
            self.block(i / nb, i % nb).decode(y);
        }
        out
    }

    /// Blocks per row.
    #[inline]
    pub(crate) fn blocks(&self) -> usize {
        self.k / BLOCK
    }

    /// Panel `p`'s lines, `[block][LINES]`.
    #[inline]
    pub(crate) fn panel_lines(&self, p: usize) -> &[Line] {
        let per = self.blocks() * B::LINES;
        &self.lines[p * per..(p + 1) * per]
    }

    /// Panel `p`'s scales, one per block.
    #[inline]
    pub(crate) fn panel_scales(&self, p: usize) -> &[Scales16] {
        let nb = self.blocks();
        &self.scales[p * nb..(p + 1) * nb]
    }
}
