//! The dense panel layout: F32, F16 or BF16 weights in 16-row panels,
//! stored column by column.
//!
//! A GGUF F32/F16/BF16 tensor stores rows one after another. The kernels want
//! the sixteen rows of a panel side by side, so that one vector load gives
//! one column of sixteen rows and the row sums come out in lanes (no
//! horizontal reductions, the same f32 operations per lane as the scalar
//! twin). So weights are repacked once, losslessly:
//!
//! ```text
//! panel p = rows 16p .. 16p+16, k columns
//! col c of panel p = [w[16p][c], w[16p+1][c], ..., w[16p+15][c]]
//!     F32: 64 bytes (one cache line, 64-byte aligned)
//!     F16: 32 bytes (raw f16 bits, 32-byte aligned)
//!     BF16: 32 bytes (raw bf16 bits, 32-byte aligned)
//! ```
//!
//! Rows past `m` in the last panel are zero. `k` needs no padding: a panel
//! is `k` columns, whatever `k` is.

use std::marker::PhantomData;

use half::{bf16, f16};

use crate::error::KernelError;

/// Rows per panel.
pub const PANEL_ROWS: usize = 16;

/// One column of an F32 panel: 16 rows, one 64-byte line.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C, align(64))]
pub(crate) struct ColF32(pub(crate) [f32; PANEL_ROWS]);

/// One column of a 16-bit float panel: 16 rows of raw `H` bits, 32
/// bytes (`H` only tells the kernels how to widen them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(32))]
pub(crate) struct ColHalf<H>(pub(crate) [u16; PANEL_ROWS], PhantomData<H>);

/// One column of an F16 panel.
pub(crate) type ColF16 = ColHalf<f16>;

/// One column of a BF16 panel.
pub(crate) type ColBf16 = ColHalf<bf16>;

/// Checks `m`, `k` and returns `m * k`.
pub(crate) fn elements(m: usize, k: usize) -> Result<usize, KernelError> {
    if m == 0 || k == 0 {
        return Err(KernelError::shape(format!(
            "weights need m >= 1 and k >= 1 (got m = {m}, k = {k})"
        )));
    }
    // The panels hold m rounded up to 16 rows; check that product too.
    m.div_ceil(PANEL_ROWS).checked_mul(PANEL_ROWS * k).ok_or_else(|| {
        KernelError::shape(format!("m*k overflows ({m}x{k})"))
    })?;
    Ok(m * k)
}

/// `len * size` bytes, or a shape error if that overflows.
fn byte_len(len: usize, size: usize) -> Result<usize, KernelError> {
    len.checked_mul(size).ok_or_else(|| {
        KernelError::shape(format!("{len} weights are too many bytes"))
    })
}

/// Scatters a row-major `m x k` matrix into panels of columns.
fn build<C: Copy, T: Copy>(
    m: usize,
    k: usize,
    zero: C,
    src: impl Fn(usize) -> T,
    set: impl Fn(&mut C, usize, T),
) -> Vec<C> {
    let panels = m.div_ceil(PANEL_ROWS);
    let mut cols = vec![zero; panels * k];
    for r in 0..m {
        let base = (r / PANEL_ROWS) * k;
        for (c, col) in cols[base..base + k].iter_mut().enumerate() {
            set(col, r % PANEL_ROWS, src(r * k + c));
        }
    }
    cols
}

/// Gathers panels back into a row-major `m x k` f32 matrix.
fn gather<C>(
    m: usize,
    k: usize,
    cols: &[C],
    get: impl Fn(&C, usize) -> f32,
) -> Vec<f32> {
    let mut out = vec![0f32; m * k];
    for (r, row) in out.chunks_exact_mut(k).enumerate() {
        let base = (r / PANEL_ROWS) * k;
        for (o, col) in row.iter_mut().zip(&cols[base..base + k]) {
            *o = get(col, r % PANEL_ROWS);
        }
    }
    out
}

/// F32 weights (`m` rows of `k`) in the dense panel layout.
#[derive(Clone, Debug)]
pub struct DenseF32 {
    m: usize,
    k: usize,
    cols: Vec<ColF32>,
}

impl DenseF32 {
    /// Repacks a row-major `m x k` matrix. NaN or infinite weights are an
    /// error ([`KernelErrorKind::NonFinite`](crate::KernelErrorKind::NonFinite)).
    pub fn from_f32(
        w: &[f32],
        m: usize,
        k: usize,
    ) -> Result<Self, KernelError> {
        let len = elements(m, k)?;
        if w.len() != len {
            return Err(KernelError::len("weights", len, w.len()));
        }
        KernelError::check_finite("weights", w)?;
        let cols = build(
            m,
            k,
            ColF32([0.0; PANEL_ROWS]),
            |i| w[i],
            |c, r, v| {
                c.0[r] = v;
            },
        );
        Ok(DenseF32 { m, k, cols })
    }

    /// Repacks a GGUF F32 tensor: `m * k` little-endian f32, row-major.
    pub fn from_gguf(
        bytes: &[u8],
        m: usize,
        k: usize,
    ) -> Result<Self, KernelError> {
        let len = elements(m, k)?;
        let want = byte_len(len, 4)?;
        if bytes.len() != want {
            return Err(KernelError::len(
                "F32 weight bytes",
                want,
                bytes.len(),
            ));
        }
        let get = |i: usize| {
            let b = &bytes[4 * i..4 * i + 4];
            f32::from_le_bytes([b[0], b[1], b[2], b[3]])
        };
        if (0..len).any(|i| !get(i).is_finite()) {
            return Err(KernelError::non_finite("weights"));
        }
        let cols = build(m, k, ColF32([0.0; PANEL_ROWS]), get, |c, r, v| {
            c.0[r] = v;
        });
        Ok(DenseF32 { m, k, cols })
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
        self.cols.len() * size_of::<ColF32>()
    }

    /// The weights back as a row-major `m x k` matrix (exact).
    pub fn dequantize(&self) -> Vec<f32> {
        gather(self.m, self.k, &self.cols, |c, r| c.0[r])
    }

    /// The `k` columns of panel `p`.
    pub(crate) fn panel(&self, p: usize) -> &[ColF32] {
        &self.cols[p * self.k..(p + 1) * self.k]
    }
}

/// A 16-bit float format the dense layout stores (`half::f16`, `half::bf16`).
pub trait HalfFormat: Copy + std::fmt::Debug + PartialEq {
    /// What a value that does not fit is called in errors.
    const ROUNDED: &'static str;
    /// What a GGUF tensor's bytes are called in errors.
    const GGUF_BYTES: &'static str;
    /// Rounds `v` to this format (nearest even, as ggml), as raw bits.
    fn bits_from_f32(v: f32) -> u16;
    /// Whether raw bits hold a finite value.
    fn bits_finite(b: u16) -> bool;
    /// Raw bits widened to f32 (exact).
    fn bits_to_f32(b: u16) -> f32;
}

impl HalfFormat for f16 {
    const ROUNDED: &'static str = "weights (as f16)";
    const GGUF_BYTES: &'static str = "F16 weight bytes";
    fn bits_from_f32(v: f32) -> u16 {
        f16::from_f32(v).to_bits()
    }
    fn bits_finite(b: u16) -> bool {
        f16::from_bits(b).is_finite()
    }
    fn bits_to_f32(b: u16) -> f32 {
        f16::from_bits(b).to_f32()
    }
}

/// A bf16 value is the top half of an f32, so widening is a 16-bit shift
/// (exact), as ggml's `GGML_BF16_TO_FP32`.
impl HalfFormat for bf16 {
    const ROUNDED: &'static str = "weights (as bf16)";
    const GGUF_BYTES: &'static str = "BF16 weight bytes";
    fn bits_from_f32(v: f32) -> u16 {
        bf16::from_f32(v).to_bits()
    }
    fn bits_finite(b: u16) -> bool {
        bf16::from_bits(b).is_finite()
    }
    fn bits_to_f32(b: u16) -> f32 {
        bf16::from_bits(b).to_f32()
    }
}

/// 16-bit float weights (`m` rows of `k`) in the dense panel layout.
#[derive(Clone, Debug)]
pub struct DenseHalf<H: HalfFormat> {
    m: usize,
    k: usize,
    cols: Vec<ColHalf<H>>,
}

/// F16 weights in the dense panel layout.
pub type DenseF16 = DenseHalf<f16>;

/// BF16 weights in the dense panel layout.
pub type DenseBf16 = DenseHalf<bf16>;

impl<H: HalfFormat> DenseHalf<H> {
    /// Rounds a row-major `m x k` f32 matrix to `H` (nearest even, as
    /// ggml's `GGML_FP32_TO_FP16` / `GGML_FP32_TO_BF16` for finite values)
    /// and repacks it. NaN or infinite inputs, and values that overflow
    /// `H`, are an error.
    pub fn from_f32(
        w: &[f32],
        m: usize,
        k: usize,
    ) -> Result<Self, KernelError> {
        let len = elements(m, k)?;
        if w.len() != len {
            return Err(KernelError::len("weights", len, w.len()));
        }
        if w.iter().any(|&v| !H::bits_finite(H::bits_from_f32(v))) {
            return Err(KernelError::non_finite(H::ROUNDED));
        }
        let get = |i: usize| H::bits_from_f32(w[i]);
        Ok(DenseHalf { m, k, cols: Self::build(m, k, get) })
    }

    /// Repacks a GGUF F16/BF16 tensor: `m * k` little-endian values,
    /// row-major. NaN or infinite weights are an error.
    pub fn from_gguf(
        bytes: &[u8],
        m: usize,
        k: usize,
    ) -> Result<Self, KernelError> {
        let len = elements(m, k)?;
        let want = byte_len(len, 2)?;
        if bytes.len() != want {
            return Err(KernelError::len(H::GGUF_BYTES, want, bytes.len()));
        }
        let get =
            |i: usize| u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]);
        if (0..len).any(|i| !H::bits_finite(get(i))) {
            return Err(KernelError::non_finite("weights"));
        }
        Ok(DenseHalf { m, k, cols: Self::build(m, k, get) })
    }

    fn build(
        m: usize,
        k: usize,
        get: impl Fn(usize) -> u16,
    ) -> Vec<ColHalf<H>> {
        let zero = ColHalf([0; PANEL_ROWS], PhantomData);
        build(m, k, zero, get, |c, r, v| c.0[r] = v)
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
        self.cols.len() * size_of::<ColHalf<H>>()
    }

    /// The weights as a row-major `m x k` f32 matrix (exact conversion).
    pub fn dequantize(&self) -> Vec<f32> {
        gather(self.m, self.k, &self.cols, |c, r| H::bits_to_f32(c.0[r]))
    }

    /// The `k` columns of panel `p`.
    pub(crate) fn panel(&self, p: usize) -> &[ColHalf<H>] {
        &self.cols[p * self.k..(p + 1) * self.k]
    }
}
