//! The three native ternary tensors, kept in the byte layout their files
//! use so the kernels can run on them without a repack.
//!
//! | type  | bytes per row       | scale                          |
//! |-------|---------------------|--------------------------------|
//! | TQ2_0 | `k/256 * 66`        | f16 `d` at the end of each block |
//! | TQ1_0 | `k/256 * 54`        | f16 `d` at the end of each block |
//! | I2_S  | `k/4`               | one f32 after all `m*k/4` codes |
//!
//! The bytes are copied once into a 64-byte-aligned buffer with [`PAD`]
//! zero bytes after them, so a kernel may load a whole vector that starts
//! inside the tensor. I2_S has no meaning for code 3; it is rewritten to
//! code 1 (weight 0) on the way in, as [`TernaryPanels::from_i2s`] reads
//! it, so the kernels only ever see codes 0..=2. TQ2_0's code 3 means +2
//! in ggml and is kept.
//!
//! [`TernaryPanels::from_i2s`]: crate::t2p::TernaryPanels::from_i2s

use std::fmt;

use ryot_pool::ThreadPool;

use crate::act::ActI8;
use crate::error::{KernelError, KernelErrorKind};
use crate::isa::SimdLevel;
use crate::ternary::{
    I2S_GROUP, TQ_BLOCK, TQ1_0_BYTES, TQ2_0_BYTES, i2s_code, tq_block_scale,
    tq1_0_block_codes, tq2_0_block_codes,
};

/// Zero bytes after a tensor's data (one 512-bit vector).
pub(crate) const PAD: usize = 64;

/// Largest `k` accepted: keeps every exact integer row sum (`|sum| <= k *
/// 3 * 128`) far inside `i32`.
pub(crate) const MAX_K: usize = 1 << 22;

/// One 64-byte-aligned piece of a tensor's buffer.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
pub(crate) struct Chunk(pub(crate) [u8; 64]);

/// Which native layout a [`Tensor`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// GGUF TQ2_0: 66-byte blocks of 256 (`qs[64]`, f16 `d`).
    Tq2_0,
    /// GGUF TQ1_0: 54-byte blocks of 256 (`qs[48]`, `qh[4]`, f16 `d`).
    Tq1_0,
    /// bitnet.cpp I2_S: flat 2-bit codes in 128-element groups, one f32
    /// scale per tensor.
    I2s,
}

impl Format {
    /// The name used in error messages (the file format's spelling).
    const fn file_name(self) -> &'static str {
        match self {
            Format::Tq2_0 => "TQ2_0",
            Format::Tq1_0 => "TQ1_0",
            Format::I2s => "I2_S",
        }
    }

    /// Bytes of one block (TQ) or one 128-element group (I2_S).
    pub(crate) const fn block_bytes(self) -> usize {
        match self {
            Format::Tq2_0 => TQ2_0_BYTES,
            Format::Tq1_0 => TQ1_0_BYTES,
            Format::I2s => I2S_GROUP / 4,
        }
    }

    /// Elements of one block (TQ) or group (I2_S): `k` must be a multiple.
    pub(crate) const fn block_elems(self) -> usize {
        match self {
            Format::Tq2_0 | Format::Tq1_0 => TQ_BLOCK,
            Format::I2s => I2S_GROUP,
        }
    }
}

/// A native ternary tensor: `m` rows of `k`, bytes as stored in the file.
#[derive(Clone)]
pub(crate) struct Tensor {
    /// The layout.
    pub(crate) fmt: Format,
    /// Rows.
    pub(crate) m: usize,
    /// Columns.
    pub(crate) k: usize,
    /// Bytes of the tensor data (without the padding).
    len: usize,
    /// The data, then at least [`PAD`] zero bytes.
    buf: Vec<Chunk>,
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tensor")
            .field("fmt", &self.fmt)
            .field("m", &self.m)
            .field("k", &self.k)
            .field("bytes", &self.len)
            .finish()
    }
}

impl Tensor {
    /// Checks the shape and length, then copies `bytes`.
    pub(crate) fn new(
        fmt: Format,
        bytes: &[u8],
        m: usize,
        k: usize,
    ) -> Result<Self, KernelError> {
        if m == 0 || k == 0 {
            return Err(KernelError::shape(format!(
                "a weight matrix needs m >= 1 and k >= 1 (got m = {m}, \
                 k = {k})"
            )));
        }
        if k > MAX_K
            || m.checked_mul(k).is_none_or(|mk| mk > isize::MAX as usize / 4)
        {
            return Err(KernelError::shape(format!(
                "{m} x {k} is too large (k <= {MAX_K})"
            )));
        }
        let block = fmt.block_elems();
        if !k.is_multiple_of(block) {
            return Err(KernelError::new(KernelErrorKind::NotBlockMultiple {
                ty: fmt.file_name(),
                k,
                block,
            }));
        }
        let expected = match fmt {
            Format::Tq2_0 | Format::Tq1_0 => {
                m * (k / block) * fmt.block_bytes()
            }
            // The codes, the f32 tensor scale and 28 unused bytes.
            Format::I2s => m * k / 4 + 32,
        };
        if bytes.len() != expected {
            return Err(KernelError::len(
                "weight bytes",
                expected,
                bytes.len(),
            ));
        }
        let mut buf = vec![Chunk([0; 64]); (expected + PAD).div_ceil(64)];
        let dst: &mut [u8] = bytemuck::cast_slice_mut(&mut buf);
        dst[..expected].copy_from_slice(bytes);
        if fmt == Format::I2s {
            // Code 3 (no meaning in I2_S) becomes code 1, weight 0.
            for b in &mut dst[..m * k / 4] {
                let threes = (*b >> 1) & *b & 0x55;
                *b &= !(threes << 1);
            }
        }
        Ok(Tensor { fmt, m, k, len: expected, buf })
    }

    /// The tensor bytes (as in the file, I2_S codes 3 rewritten to 1).
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.padded()[..self.len]
    }

    /// The tensor bytes followed by at least [`PAD`] zero bytes.
    pub(crate) fn padded(&self) -> &[u8] {
        bytemuck::cast_slice(&self.buf)
    }

    /// Bytes the kernels stream per call: the whole tensor.
    pub(crate) fn stored_bytes(&self) -> usize {
        self.len
    }

    /// Blocks (TQ) or 128-element groups (I2_S) per row.
    pub(crate) fn blocks(&self) -> usize {
        self.k / self.fmt.block_elems()
    }

    /// Bytes from one row to the next.
    pub(crate) fn row_bytes(&self) -> usize {
        self.blocks() * self.fmt.block_bytes()
    }

    /// Scale groups per row: one per block for TQ, one per row for I2_S.
    pub(crate) fn groups(&self) -> usize {
        match self.fmt {
            Format::Tq2_0 | Format::Tq1_0 => self.blocks(),
            Format::I2s => 1,
        }
    }

    /// The bytes of row `r`.
    pub(crate) fn row(&self, r: usize) -> &[u8] {
        let rb = self.row_bytes();
        &self.bytes()[r * rb..(r + 1) * rb]
    }

    /// The bytes of block `b` of row `r` (TQ formats).
    pub(crate) fn block(&self, r: usize, b: usize) -> &[u8] {
        let bb = self.fmt.block_bytes();
        &self.row(r)[b * bb..(b + 1) * bb]
    }

    /// The I2_S tensor scale (the f32 after the codes).
    pub(crate) fn i2s_scale(&self) -> f32 {
        let o = self.m * self.k / 4;
        let s = &self.bytes()[o..o + 4];
        f32::from_le_bytes([s[0], s[1], s[2], s[3]])
    }

    /// The codes (0..=3) of row `r`, `k` of them.
    pub(crate) fn row_codes(&self, r: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.k);
        match self.fmt {
            Format::Tq2_0 | Format::Tq1_0 => {
                let mut codes = [0u8; TQ_BLOCK];
                for b in 0..self.blocks() {
                    let blk = self.block(r, b);
                    if self.fmt == Format::Tq2_0 {
                        tq2_0_block_codes(blk, &mut codes);
                    } else {
                        tq1_0_block_codes(blk, &mut codes);
                    }
                    out.extend_from_slice(&codes);
                }
            }
            Format::I2s => {
                let codes = &self.bytes()[..self.m * self.k / 4];
                out.extend(
                    (0..self.k).map(|c| i2s_code(codes, r * self.k + c)),
                );
            }
        }
        out
    }

    /// The scale of column `c` of row `r`.
    pub(crate) fn scale(&self, r: usize, c: usize) -> f32 {
        match self.fmt {
            Format::Tq2_0 | Format::Tq1_0 => {
                tq_block_scale(self.block(r, c / TQ_BLOCK))
            }
            Format::I2s => self.i2s_scale(),
        }
    }

    /// Dequantizes to f32, `m` rows of `k`: `(code - 1) * scale`.
    pub(crate) fn dequantize(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.m * self.k);
        for r in 0..self.m {
            for (c, code) in self.row_codes(r).into_iter().enumerate() {
                out.push((code as f32 - 1.0) * self.scale(r, c));
            }
        }
        out
    }
}

/// Shared accessors of the three public weight types.
macro_rules! accessors {
    ($t:ty) => {
        impl $t {
            /// Rows (outputs per token).
            pub fn m(&self) -> usize {
                self.0.m
            }
            /// Columns (the reduction length).
            pub fn k(&self) -> usize {
                self.0.k
            }
            /// Bytes a full pass over the weights reads: the tensor as
            /// stored in the file.
            pub fn stored_bytes(&self) -> usize {
                self.0.stored_bytes()
            }
            /// The tensor bytes.
            pub fn bytes(&self) -> &[u8] {
                self.0.bytes()
            }
            /// Dequantizes to f32, `m` rows of `k`: `(code - 1) * scale`.
            pub fn dequantize(&self) -> Vec<f32> {
                self.0.dequantize()
            }
            /// These weights times already-quantized activations (`out`
            /// is `a.n() x m`, token-major), at `level`, on `threads`
            /// workers of `pool`.
            pub fn matmul_acts(
                &self,
                level: SimdLevel,
                a: &ActI8,
                out: &mut [f32],
                pool: &ThreadPool,
                threads: usize,
            ) -> Result<(), KernelError> {
                super::with_acts(level, &self.0, a, out, pool, threads)
            }
        }
    };
}

/// TQ2_0 weights run in place: each row is `k/256` blocks of 66 bytes
/// (`qs[64]`: element `e` at byte `(e/128)*32 + e%32`, bits
/// `2*((e%128)/32)`; then f16 `d`). Weight = `(code - 1) * d`.
#[derive(Clone, Debug)]
pub struct Tq2_0(pub(crate) Tensor);

impl Tq2_0 {
    /// Takes a GGUF TQ2_0 tensor of `m` rows of `k` (`k % 256 == 0`,
    /// `bytes.len() == m * k/256 * 66`).
    pub fn from_gguf(
        bytes: &[u8],
        m: usize,
        k: usize,
    ) -> Result<Self, KernelError> {
        Tensor::new(Format::Tq2_0, bytes, m, k).map(Tq2_0)
    }
}
accessors!(Tq2_0);

/// TQ1_0 weights run in place: each row is `k/256` blocks of 54 bytes
/// (`qs[48]`, five base-3 digits per byte; `qh[4]`, four; f16 `d`), see
/// [`tq1_0_block_codes`].
#[derive(Clone, Debug)]
pub struct Tq1_0(pub(crate) Tensor);

impl Tq1_0 {
    /// Takes a GGUF TQ1_0 tensor of `m` rows of `k` (`k % 256 == 0`,
    /// `bytes.len() == m * k/256 * 54`).
    pub fn from_gguf(
        bytes: &[u8],
        m: usize,
        k: usize,
    ) -> Result<Self, KernelError> {
        Tensor::new(Format::Tq1_0, bytes, m, k).map(Tq1_0)
    }
}
accessors!(Tq1_0);

/// bitnet.cpp I2_S weights run in place: `m*k/4` bytes of 2-bit codes
/// (row `r` at byte `r*k/4`; in each 32-byte group byte `p` holds elements
/// `p, p+32, p+64, p+96` at shifts 6, 4, 2, 0), then the f32 tensor scale
/// and 28 unused bytes. Weight = `(code - 1) * scale`.
#[derive(Clone, Debug)]
pub struct I2s(pub(crate) Tensor);

impl I2s {
    /// Takes an I2_S tensor of `m` rows of `k` (`k % 128 == 0`,
    /// `bytes.len() == m*k/4 + 32`).
    pub fn from_gguf(
        bytes: &[u8],
        m: usize,
        k: usize,
    ) -> Result<Self, KernelError> {
        Tensor::new(Format::I2s, bytes, m, k).map(I2s)
    }

    /// The tensor scale.
    pub fn scale(&self) -> f32 {
        self.0.i2s_scale()
    }
}
accessors!(I2s);
