//! The interleaved Q4_K / Q6_K layout: each 256-column super-block of 16
//! rows is stored as 64-byte lines that hold one dword (4 bytes) of every
//! row, plus the rows' f16 super-block scales side by side.
//!
//! GGUF stores a K-quant row as consecutive 256-element super-blocks (see
//! `ryot_quant::blocks`). The kernels want the sixteen rows of a panel in
//! the lanes of a vector: one 64-byte line is "16 rows x 4 bytes", which
//! `vpdpbusd` (or `vpmaddubsw` on each 32-byte half) multiplies with a
//! broadcast dword of 4 activations, leaving one sum per row and lane.
//! Q4_K bytes are only moved; Q6_K's 6-bit codes are also re-packed (a
//! bijection that makes them cheaper to unpack, below). The repack is
//! lossless ([`KPanels::to_gguf`] gives the original bytes back) and takes
//! exactly as many bytes as the GGUF tensor (plus zero padding rows up to a
//! multiple of 16).
//!
//! ```text
//! panel p = rows 16p .. 16p+16, chunk (p, b) = their super-block b,
//! line byte 4r+e = byte e of row 16p+r's dword:
//!
//! Q4_K, 35 lines per chunk:
//!     line i (i < 3)      scales[4i .. 4i+4]      (packed 6-bit scales/mins)
//!     line 3 + v (v < 32) qs[4v .. 4v+4]
//!         v = 8c + u: low nibbles  = elements 64c + 4u + e      (sub-block 2c)
//!                     high nibbles = elements 64c + 32 + 4u + e (sub-block 2c+1)
//!     halves: d[16], dmin[16] (f16)
//! Q6_K, 52 lines per chunk:
//!     line s (s < 4)      scales[4s .. 4s+4]      (i8 sub-block scales)
//!     lines 4 + 3(8h+q) + {0, 1, 2} (h < 2, q < 8), a triplet L0, L1, L2
//!     holding the 6-bit codes c_g (0..64) of elements 128h + 32g + 4q + e
//!     (g < 4, sub-block 8h + 2g + q/4), re-packed three per byte plus two
//!     bits of the fourth:
//!         L0 = c0 | (c3 & 3) << 6   L1 = c1 | (c3 >> 2 & 3) << 6
//!         L2 = c2 | (c3 >> 4) << 6
//!     so c0..c2 = L & 63 and c3 = (L0 >> 6) | (L1 >> 6) << 2 | (L2 >> 6) << 4
//!     (GGUF: c = ql nibble | 2 qh bits << 4, see `ryot_quant::BlockQ6K`)
//!     halves: d[16] (f16)
//! ```
//!
//! Padding rows are all zero: zero scales, so they contribute nothing (and
//! their outputs are never stored anyway).

use std::marker::PhantomData;

use half::f16;
use ryot_quant::blocks::QK_K;
use ryot_quant::{BlockQ4K, BlockQ6K};

use crate::error::KernelError;

/// Rows per panel.
pub const PANEL_ROWS: usize = 16;
/// Columns per super-block.
pub const BLOCK: usize = QK_K;

/// One 64-byte, 64-byte-aligned line: a dword of each of 16 rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Line(pub(crate) [u8; 64]);

/// One f16 super-block scale of each of 16 rows, 32-byte aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(32))]
pub struct Half16(pub(crate) [u16; PANEL_ROWS]);

/// A K-quant block type the layout holds: [`BlockQ4K`] or [`BlockQ6K`].
pub trait KBlock: sealed::Format {}
impl KBlock for BlockQ4K {}
impl KBlock for BlockQ6K {}

/// Which kernel a block type needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Q4_K: 4-bit codes, 6-bit scales and mins.
    Q4K,
    /// Q6_K: 6-bit codes, 8-bit signed scales.
    Q6K,
}

pub(crate) mod sealed {
    use super::*;

    /// The per-format details (sealed: only this module implements it).
    pub trait Format: ryot_quant::QuantBlock + std::fmt::Debug {
        /// Which kernel.
        const KIND: Kind;
        /// The name in errors and tables.
        const NAME: &'static str;
        /// Lines per chunk (panel, super-block).
        const LINES: usize;
        /// f16 super-block scales per row and block.
        const HALVES: usize;
        /// Writes row `r`'s share of one chunk.
        fn scatter(&self, lines: &mut [Line], halves: &mut [Half16], r: usize);
        /// Reads row `r`'s block back from one chunk.
        fn gather(lines: &[Line], halves: &[Half16], r: usize) -> Self;
        /// Whether the block's f16 scales are finite.
        fn scales_finite(&self) -> bool;
    }
}

use sealed::Format;

/// Copies `src` (a multiple of 4 bytes) into row `r`'s dwords of `lines`.
fn put(lines: &mut [Line], r: usize, src: &[u8]) {
    for (line, dw) in lines.iter_mut().zip(src.chunks_exact(4)) {
        line.0[4 * r..4 * r + 4].copy_from_slice(dw);
    }
}

/// Copies row `r`'s dwords of `lines` into `dst`.
fn get(lines: &[Line], r: usize, dst: &mut [u8]) {
    for (line, dw) in lines.iter().zip(dst.chunks_exact_mut(4)) {
        dw.copy_from_slice(&line.0[4 * r..4 * r + 4]);
    }
}

/// Q4_K lines holding the packed scales.
pub(crate) const Q4K_SCALE_LINES: usize = 3;
/// Q6_K lines holding the scales.
pub(crate) const Q6K_SCALE_LINES: usize = 4;

/// The 6-bit codes (0..64) of elements `128h + 32g + l`, `g < 4`, of a
/// Q6_K block (`l < 32`), as ggml's `dequantize_row_q6_K` reads them.
fn q6k_codes(b: &BlockQ6K, h: usize, l: usize) -> [u8; 4] {
    let (lo, hi, qh) =
        (b.ql[64 * h + l], b.ql[64 * h + 32 + l], b.qh[32 * h + l]);
    [
        (lo & 15) | (qh & 3) << 4,
        (hi & 15) | ((qh >> 2) & 3) << 4,
        (lo >> 4) | ((qh >> 4) & 3) << 4,
        (hi >> 4) | ((qh >> 6) & 3) << 4,
    ]
}

impl Format for BlockQ4K {
    const KIND: Kind = Kind::Q4K;
    const NAME: &'static str = "q4_k";
    const LINES: usize = Q4K_SCALE_LINES + 32;
    const HALVES: usize = 2;
    fn scatter(&self, lines: &mut [Line], halves: &mut [Half16], r: usize) {
        let (sc, qs) = lines.split_at_mut(Q4K_SCALE_LINES);
        put(sc, r, &self.scales);
        put(qs, r, &self.qs);
        halves[0].0[r] = self.d.to_bits();
        halves[1].0[r] = self.dmin.to_bits();
    }
    fn gather(lines: &[Line], halves: &[Half16], r: usize) -> Self {
        let mut b: BlockQ4K = bytemuck::Zeroable::zeroed();
        get(&lines[..Q4K_SCALE_LINES], r, &mut b.scales);
        get(&lines[Q4K_SCALE_LINES..], r, &mut b.qs);
        b.d = f16::from_bits(halves[0].0[r]);
        b.dmin = f16::from_bits(halves[1].0[r]);
        b
    }
    fn scales_finite(&self) -> bool {
        self.d.is_finite() && self.dmin.is_finite()
    }
}

impl Format for BlockQ6K {
    const KIND: Kind = Kind::Q6K;
    const NAME: &'static str = "q6_k";
    const LINES: usize = Q6K_SCALE_LINES + 48;
    const HALVES: usize = 1;
    fn scatter(&self, lines: &mut [Line], halves: &mut [Half16], r: usize) {
        let (sc, codes) = lines.split_at_mut(Q6K_SCALE_LINES);
        put(sc, r, bytemuck::cast_slice(&self.scales));
        for h in 0..2 {
            for q in 0..8 {
                let c: [[u8; 4]; 4] =
                    std::array::from_fn(|e| q6k_codes(self, h, 4 * q + e));
                let tri: [[u8; 4]; 3] = [
                    c.map(|c| c[0] | (c[3] & 3) << 6),
                    c.map(|c| c[1] | ((c[3] >> 2) & 3) << 6),
                    c.map(|c| c[2] | (c[3] >> 4) << 6),
                ];
                let t = 3 * (8 * h + q);
                put(&mut codes[t..t + 3], r, tri.as_flattened());
            }
        }
        halves[0].0[r] = self.d.to_bits();
    }
    fn gather(lines: &[Line], halves: &[Half16], r: usize) -> Self {
        let mut b: BlockQ6K = bytemuck::Zeroable::zeroed();
        get(
            &lines[..Q6K_SCALE_LINES],
            r,
            bytemuck::cast_slice_mut(&mut b.scales),
        );
        let codes = &lines[Q6K_SCALE_LINES..];
        for h in 0..2 {
            for q in 0..8 {
                let t = 3 * (8 * h + q);
                let mut tri = [[0u8; 4]; 3];
                get(&codes[t..t + 3], r, tri.as_flattened_mut());
                let [t0, t1, t2] = tri;
                for (e, ((l0, l1), l2)) in
                    t0.into_iter().zip(t1).zip(t2).enumerate()
                {
                    let c = [
                        l0 & 63,
                        l1 & 63,
                        l2 & 63,
                        (l0 >> 6) | (l1 >> 6) << 2 | (l2 >> 6) << 4,
                    ];
                    let l = 4 * q + e;
                    b.ql[64 * h + l] = (c[0] & 15) | (c[2] & 15) << 4;
                    b.ql[64 * h + 32 + l] = (c[1] & 15) | (c[3] & 15) << 4;
                    b.qh[32 * h + l] = (c[0] >> 4)
                        | (c[1] >> 4) << 2
                        | (c[2] >> 4) << 4
                        | (c[3] >> 4) << 6;
                }
            }
        }
        b.d = f16::from_bits(halves[0].0[r]);
        b
    }
    fn scales_finite(&self) -> bool {
        self.d.is_finite()
    }
}

/// Q4_K or Q6_K weights (`m` rows of `k`, `k` a multiple of 256) in the
/// interleaved 16-row layout (see [the module doc](self)).
#[derive(Clone, Debug)]
pub struct KPanels<B> {
    m: usize,
    k: usize,
    /// `[panel][block][LINES]`.
    lines: Vec<Line>,
    /// `[panel][block][HALVES]`.
    halves: Vec<Half16>,
    _block: PhantomData<fn() -> B>,
}

/// Q4_K weights in the interleaved layout.
pub type Q4KPanels = KPanels<BlockQ4K>;
/// Q6_K weights in the interleaved layout.
pub type Q6KPanels = KPanels<BlockQ6K>;

impl<B: KBlock> KPanels<B> {
    /// Repacks a GGUF tensor (`m` rows of `k / 256` blocks, as stored).
    ///
    /// Errors: a zero or too large shape ([`KernelErrorKind::BadShape`](crate::KernelErrorKind::BadShape)),
    /// `k` not a multiple of 256 ([`KernelErrorKind::NotBlockMultiple`](crate::KernelErrorKind::NotBlockMultiple)), a
    /// wrong byte count ([`KernelErrorKind::LengthMismatch`](crate::KernelErrorKind::LengthMismatch)), a NaN or
    /// infinite f16 scale ([`KernelErrorKind::NonFinite`](crate::KernelErrorKind::NonFinite)).
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
        let zero_line = Line([0; 64]);
        let mut lines = vec![zero_line; panels * nb * B::LINES];
        let mut halves = vec![Half16([0; PANEL_ROWS]); panels * nb * B::HALVES];
        for (i, raw) in bytes.chunks_exact(size_of::<B>()).enumerate() {
            let blk: B = bytemuck::pod_read_unaligned(raw);
            if !blk.scales_finite() {
                return Err(KernelError::non_finite("weight scales"));
            }
            let (row, b) = (i / nb, i % nb);
            let c = (row / PANEL_ROWS) * nb + b;
            blk.scatter(
                &mut lines[c * B::LINES..(c + 1) * B::LINES],
                &mut halves[c * B::HALVES..(c + 1) * B::HALVES],
                row % PANEL_ROWS,
            );
        }
        Ok(KPanels { m, k, lines, halves, _block: PhantomData })
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
        let bytes =
            ryot_quant::quantize(<B as ryot_quant::QuantBlock>::TYPE, w, m, k)?;
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

    /// Bytes a full pass reads (padding rows included).
    pub fn stored_bytes(&self) -> usize {
        self.lines.len() * size_of::<Line>()
            + self.halves.len() * size_of::<Half16>()
    }

    /// Row `row`'s block `b`, rebuilt from the layout.
    fn block(&self, row: usize, b: usize) -> B {
        let c = (row / PANEL_ROWS) * self.blocks() + b;
        B::gather(
            &self.lines[c * B::LINES..(c + 1) * B::LINES],
            &self.halves[c * B::HALVES..(c + 1) * B::HALVES],
            row % PANEL_ROWS,
        )
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

    /// The weights as a row-major `m x k` f32 matrix, decoded from the
    /// layout by `ryot_quant` (ggml's float order, bit for bit).
    pub fn dequantize(&self) -> Vec<f32> {
        let nb = self.blocks();
        let mut out = vec![0f32; self.m * self.k];
        for (i, y) in out.chunks_exact_mut(BLOCK).enumerate() {
            let blk = [self.block(i / nb, i % nb)];
            ryot_quant::dequantize_blocks(&blk, y)
                .expect("one block decodes into 256 floats");
        }
        out
    }

    /// Super-blocks per row.
    #[inline]
    pub(crate) fn blocks(&self) -> usize {
        self.k / BLOCK
    }

    /// The lines of chunk (panel `p`, block `b`).
    #[inline]
    pub(crate) fn chunk(&self, p: usize, b: usize) -> &[Line] {
        let c = p * self.blocks() + b;
        &self.lines[c * B::LINES..(c + 1) * B::LINES]
    }

    /// The f16 super-block scales of chunk (panel `p`, block `b`).
    #[inline]
    pub(crate) fn halves(&self, p: usize, b: usize) -> &[Half16] {
        let c = p * self.blocks() + b;
        &self.halves[c * B::HALVES..(c + 1) * B::HALVES]
    }
}
