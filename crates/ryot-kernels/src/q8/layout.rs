//! The interleaved Q8_0/Q4_0/Q4_1/Q5_0 layout: each 32-column block of 16
//! rows is stored as 64-byte lines that hold 4 columns of all 16 rows.
//!
//! GGUF stores a row of these formats as consecutive 32-element blocks
//! (see `ryot_quant::blocks`). The kernels want the sixteen rows of a panel
//! side by side, so that one vector is "16 rows x 4 columns" (a dword per
//! row, exactly what `vpdpbusd`/`vpmaddubsw` multiply with a broadcast
//! dword of 4 activations) and the row sums come out in lanes. This is the
//! idea of llama.cpp's load-time Q4_0 "repack" (several rows' blocks
//! interleaved), with 16 rows and 4-byte interleave. The repack is lossless
//! ([`QPanels::to_gguf`] gives the original bytes back).
//!
//! ```text
//! panel p = rows 16p .. 16p+16; block b = columns 32b .. 32b+32
//! Q8_0, 8 lines per block, line j (columns 32b+4j .. +4):
//!     byte 4r+e = (q[16p+r][32b+4j+e] as u8) ^ 0x80     (code + 128, u8)
//! Q4_0, Q4_1, Q5_0: 4 nibble lines per block, line v:
//!     byte 4r+e = qs[4v+e] of block b of row 16p+r       (unchanged)
//!         low nibble  = low 4 bits of column 32b + 4v + e
//!         high nibble = low 4 bits of column 32b + 16 + 4v + e
//! Q5_0 only, a fifth line with the fifth bits, dword r = row 16p+r's qh
//! rearranged so that line v's bits are one shift away:
//!     bit 8e + v     = fifth bit of column 32b + 4v + e       (qh bit 4v+e)
//!     bit 8e + 4 + v = fifth bit of column 32b + 16 + 4v + e  (qh bit 16+4v+e)
//! scales: SCALES Scales16 per (panel, block) = the 16 rows' f16 `d`
//!     (then, for Q4_1, the 16 rows' f16 `m`)
//! ```
//!
//! Stored codes are unsigned `q`, and the signed code is `q - OFFSET`
//! (Q8_0 lines store code + 128, Q4_0 nibbles are code + 8, Q5_0 5-bit
//! values code + 16; Q4_1 has no offset, its minimum `m` is a second
//! scale): `vpdpbusd(q, x) = sum(code * x) + OFFSET * sum(x)`, and `sum(x)`
//! per activation block is known. Padding rows have zero scales (and
//! zero bytes, or codes meaning 0 for Q8_0 and Q4_0).

use std::marker::PhantomData;

use bytemuck::Pod;
use half::f16;
use ryot_quant::blocks::QK;
use ryot_quant::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ8_0, QuantType};

use crate::error::KernelError;

/// Rows per panel.
pub const PANEL_ROWS: usize = 16;
/// Columns per block (every format here).
pub const BLOCK: usize = QK;

/// One 64-byte, 64-byte-aligned line: 16 rows x 4 codes (Q8_0), 16 rows
/// x 4 nibble pairs (Q4_0, Q4_1, Q5_0) or 16 rows of fifth bits (Q5_0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Line(pub(crate) [u8; 64]);

/// The f16 scales (or Q4_1 minimums) of 16 rows for one block, 32-byte
/// aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(32))]
pub struct Scales16(pub(crate) [u16; PANEL_ROWS]);

/// A GGUF block type the layout can hold: [`BlockQ8_0`], [`BlockQ4_0`],
/// [`BlockQ4_1`] or [`BlockQ5_0`].
pub trait QBlock: sealed::Format {}
impl QBlock for BlockQ8_0 {}
impl QBlock for BlockQ4_0 {}
impl QBlock for BlockQ4_1 {}
impl QBlock for BlockQ5_0 {}

/// Which inner loop a block type needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Q8_0: 8 lines of `code + 128` per block.
    Q8_0,
    /// Q4_0: 4 lines of nibble pairs per block.
    Q4_0,
    /// Q4_1: 4 lines of nibble pairs per block, plus a minimum per row.
    Q4_1,
    /// Q5_0: 4 lines of nibble pairs and 1 line of fifth bits per block.
    Q5_0,
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
        /// Scales per (row, block): 1 (`d`) or 2 (`d`, `m`).
        const SCALES: usize;
        /// The signed code is the stored unsigned value minus this.
        const OFFSET: i32;
        /// The byte a padding row gets.
        const PAD: u8;
        /// The block's scales (`[d, m]`; `m` is zero unless `SCALES == 2`).
        fn scales(&self) -> [f16; 2];
        /// Writes row `r`'s share of the block's lines.
        fn scatter(&self, lines: &mut [Line], r: usize);
        /// Reads row `r`'s block back.
        fn gather(lines: &[Line], r: usize, s: [f16; 2]) -> Self;
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
    const SCALES: usize = 1;
    const OFFSET: i32 = 128;
    const PAD: u8 = 0x80;
    fn scales(&self) -> [f16; 2] {
        [self.d, f16::ZERO]
    }
    fn scatter(&self, lines: &mut [Line], r: usize) {
        for (j, line) in lines.iter_mut().enumerate() {
            for e in 0..4 {
                line.0[4 * r + e] = (self.qs[4 * j + e] as u8) ^ 0x80;
            }
        }
    }
    fn gather(lines: &[Line], r: usize, s: [f16; 2]) -> Self {
        let mut qs = [0i8; BLOCK];
        for (j, line) in lines.iter().enumerate() {
            for e in 0..4 {
                qs[4 * j + e] = (line.0[4 * r + e] ^ 0x80) as i8;
            }
        }
        BlockQ8_0 { d: s[0], qs }
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
    const SCALES: usize = 1;
    const OFFSET: i32 = 8;
    const PAD: u8 = 0x88;
    fn scales(&self) -> [f16; 2] {
        [self.d, f16::ZERO]
    }
    fn scatter(&self, lines: &mut [Line], r: usize) {
        scatter_nibbles(&self.qs, lines, r);
    }
    fn gather(lines: &[Line], r: usize, s: [f16; 2]) -> Self {
        BlockQ4_0 { d: s[0], qs: gather_nibbles(lines, r) }
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

impl Format for BlockQ4_1 {
    const TYPE: QuantType = QuantType::Q4_1;
    const KIND: Kind = Kind::Q4_1;
    const NAME: &'static str = "q4_1";
    const LINES: usize = 4;
    const SCALES: usize = 2;
    const OFFSET: i32 = 0;
    const PAD: u8 = 0;
    fn scales(&self) -> [f16; 2] {
        [self.d, self.m]
    }
    fn scatter(&self, lines: &mut [Line], r: usize) {
        scatter_nibbles(&self.qs, lines, r);
    }
    fn gather(lines: &[Line], r: usize, s: [f16; 2]) -> Self {
        BlockQ4_1 { d: s[0], m: s[1], qs: gather_nibbles(lines, r) }
    }
    fn decode(&self, y: &mut [f32]) {
        let d = self.d.to_f32();
        let m = self.m.to_f32();
        for j in 0..16 {
            let x0 = (self.qs[j] & 0x0f) as f32;
            let x1 = (self.qs[j] >> 4) as f32;
            y[j] = x0 * d + m;
            y[j + 16] = x1 * d + m;
        }
    }
}

impl Format for BlockQ5_0 {
    const TYPE: QuantType = QuantType::Q5_0;
    const KIND: Kind = Kind::Q5_0;
    const NAME: &'static str = "q5_0";
    const LINES: usize = 5;
    const SCALES: usize = 1;
    const OFFSET: i32 = 16;
    const PAD: u8 = 0;
    fn scales(&self) -> [f16; 2] {
        [self.d, f16::ZERO]
    }
    fn scatter(&self, lines: &mut [Line], r: usize) {
        scatter_nibbles(&self.qs, &mut lines[..4], r);
        let w = spread_qh(u32::from_le_bytes(self.qh));
        lines[4].0[4 * r..4 * r + 4].copy_from_slice(&w.to_le_bytes());
    }
    fn gather(lines: &[Line], r: usize, s: [f16; 2]) -> Self {
        let b = &lines[4].0[4 * r..4 * r + 4];
        let qh = gather_qh(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        BlockQ5_0 {
            d: s[0],
            qh: qh.to_le_bytes(),
            qs: gather_nibbles(&lines[..4], r),
        }
    }
    fn decode(&self, y: &mut [f32]) {
        let d = self.d.to_f32();
        let qh = u32::from_le_bytes(self.qh);
        for j in 0..16 {
            let h0 = ((qh >> j) << 4) & 0x10;
            let h1 = (qh >> (j + 12)) & 0x10;
            let x0 = ((self.qs[j] & 0x0f) as u32 | h0) as i32 - 16;
            let x1 = ((self.qs[j] >> 4) as u32 | h1) as i32 - 16;
            y[j] = x0 as f32 * d;
            y[j + 16] = x1 as f32 * d;
        }
    }
}

/// Writes a block's 16 nibble bytes as row `r`'s dwords of 4 lines.
fn scatter_nibbles(qs: &[u8; 16], lines: &mut [Line], r: usize) {
    for (v, line) in lines.iter_mut().take(4).enumerate() {
        line.0[4 * r..4 * r + 4].copy_from_slice(&qs[4 * v..4 * v + 4]);
    }
}

/// Reads row `r`'s 16 nibble bytes back from 4 lines.
fn gather_nibbles(lines: &[Line], r: usize) -> [u8; 16] {
    let mut qs = [0u8; 16];
    for (v, line) in lines.iter().take(4).enumerate() {
        qs[4 * v..4 * v + 4].copy_from_slice(&line.0[4 * r..4 * r + 4]);
    }
    qs
}

/// Where bit `i` of a Q5_0 `qh` goes in the fifth-bit dword (see the
/// module doc): element `4v + e` to bit `8e + v`, element `16 + 4v + e`
/// to bit `8e + 4 + v`.
const fn qh_pos(i: usize) -> usize {
    let (hi, v, e) = (i / 16, (i % 16) / 4, i % 4);
    8 * e + 4 * hi + v
}

/// A Q5_0 `qh` in the kernels' bit order.
pub(crate) fn spread_qh(qh: u32) -> u32 {
    (0..32).fold(0, |w, i| w | (((qh >> i) & 1) << qh_pos(i)))
}

/// Inverse of [`spread_qh`].
pub(crate) fn gather_qh(w: u32) -> u32 {
    (0..32).fold(0, |qh, i| qh | (((w >> qh_pos(i)) & 1) << i))
}

/// Q8_0, Q4_0, Q4_1 or Q5_0 weights (`m` rows of `k`, `k` a multiple of 32) in the
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
/// Q4_1 weights in the interleaved layout.
pub type Q4_1Panels = QPanels<BlockQ4_1>;
/// Q5_0 weights in the interleaved layout.
pub type Q5_0Panels = QPanels<BlockQ5_0>;

impl<B: QBlock> QPanels<B> {
    /// Repacks a GGUF tensor (`m` rows of `k / 32` blocks, as stored).
    ///
    /// Errors: a zero or too large shape ([`KernelErrorKind::BadShape`](crate::KernelErrorKind::BadShape)),
    /// `k` not a multiple of 32 ([`KernelErrorKind::NotBlockMultiple`](crate::KernelErrorKind::NotBlockMultiple)), a
    /// wrong byte count ([`KernelErrorKind::LengthMismatch`](crate::KernelErrorKind::LengthMismatch)), a NaN or
    /// infinite block scale or minimum ([`KernelErrorKind::NonFinite`](crate::KernelErrorKind::NonFinite)).
    pub fn from_gguf(
        bytes: &[u8],
        m: usize,
        k: usize,
    ) -> Result<Self, KernelError> {
        let nb = crate::blocks::check_block_tensor(
            B::NAME,
            bytes.len(),
            m,
            k,
            BLOCK,
            size_of::<B>(),
            B::LINES,
        )?;
        let panels = m.div_ceil(PANEL_ROWS);
        let mut lines = vec![Line([B::PAD; 64]); panels * nb * B::LINES];
        let mut scales =
            vec![Scales16([0; PANEL_ROWS]); panels * nb * B::SCALES];
        for (i, raw) in bytes.chunks_exact(size_of::<B>()).enumerate() {
            let blk: B = bytemuck::pod_read_unaligned(raw);
            let s = blk.scales();
            if s.iter().any(|v| !v.is_finite()) {
                return Err(KernelError::non_finite("weight scales"));
            }
            let (row, b) = (i / nb, i % nb);
            let pb = (row / PANEL_ROWS) * nb + b;
            let r = row % PANEL_ROWS;
            blk.scatter(&mut lines[pb * B::LINES..(pb + 1) * B::LINES], r);
            for (j, v) in s.iter().take(B::SCALES).enumerate() {
                scales[pb * B::SCALES + j].0[r] = v.to_bits();
            }
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
        let sc = &self.scales[pb * B::SCALES..(pb + 1) * B::SCALES];
        let mut s = [f16::ZERO; 2];
        for (v, c) in s.iter_mut().zip(sc) {
            *v = f16::from_bits(c.0[r]);
        }
        B::gather(&self.lines[pb * B::LINES..(pb + 1) * B::LINES], r, s)
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

    /// Panel `p`'s scales, `[block][SCALES]`.
    #[inline]
    pub(crate) fn panel_scales(&self, p: usize) -> &[Scales16] {
        let per = self.blocks() * B::SCALES;
        &self.scales[p * per..(p + 1) * per]
    }
}
