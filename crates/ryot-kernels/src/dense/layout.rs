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

use half::{bf16, f16};

use crate::error::KernelError;

/// Rows per panel.
pub const PANEL_ROWS: usize = 16;

/// One column of an F32 panel: 16 rows, one 64-byte line.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C, align(64))]
pub(crate) struct ColF32(pub(crate) [f32; PANEL_ROWS]);

/// One column of an F16 panel: 16 rows of raw f16 bits, 32 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(32))]
pub(crate) struct ColF16(pub(crate) [u16; PANEL_ROWS]);

/// One column of a BF16 panel: 16 rows of raw bf16 bits, 32 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(32))]
pub(crate) struct ColBf16(pub(crate) [u16; PANEL_ROWS]);

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

/// F16 weights (`m` rows of `k`) in the dense panel layout.
#[derive(Clone, Debug)]
pub struct DenseF16 {
    m: usize,
    k: usize,
    cols: Vec<ColF16>,
}

impl DenseF16 {
    /// Rounds a row-major `m x k` f32 matrix to f16 (nearest even, as
    /// ggml's `GGML_FP32_TO_FP16`) and repacks it. NaN or infinite inputs,
    /// and values that overflow f16, are an error.
    pub fn from_f32(
        w: &[f32],
        m: usize,
        k: usize,
    ) -> Result<Self, KernelError> {
        let len = elements(m, k)?;
        if w.len() != len {
            return Err(KernelError::len("weights", len, w.len()));
        }
        if w.iter().any(|v| !f16::from_f32(*v).is_finite()) {
            return Err(KernelError::non_finite("weights (as f16)"));
        }
        let get = |i: usize| f16::from_f32(w[i]).to_bits();
        Ok(DenseF16 { m, k, cols: Self::build(m, k, get) })
    }

    /// Repacks a GGUF F16 tensor: `m * k` little-endian f16, row-major.
    /// NaN or infinite weights are an error.
    pub fn from_gguf(
        bytes: &[u8],
        m: usize,
        k: usize,
    ) -> Result<Self, KernelError> {
        let len = elements(m, k)?;
        let want = byte_len(len, 2)?;
        if bytes.len() != want {
            return Err(KernelError::len(
                "F16 weight bytes",
                want,
                bytes.len(),
            ));
        }
        let get =
            |i: usize| u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]);
        if (0..len).any(|i| !f16::from_bits(get(i)).is_finite()) {
            return Err(KernelError::non_finite("weights"));
        }
        Ok(DenseF16 { m, k, cols: Self::build(m, k, get) })
    }

    fn build(m: usize, k: usize, get: impl Fn(usize) -> u16) -> Vec<ColF16> {
        build(m, k, ColF16([0; PANEL_ROWS]), get, |c, r, v| c.0[r] = v)
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
        self.cols.len() * size_of::<ColF16>()
    }

    /// The weights as a row-major `m x k` f32 matrix (exact conversion).
    pub fn dequantize(&self) -> Vec<f32> {
        gather(self.m, self.k, &self.cols, |c, r| {
            f16::from_bits(c.0[r]).to_f32()
        })
    }

    /// The `k` columns of panel `p`.
    pub(crate) fn panel(&self, p: usize) -> &[ColF16] {
        &self.cols[p * self.k..(p + 1) * self.k]
    }
}

/// BF16 weights (`m` rows of `k`) in the dense panel layout.
///
/// A bf16 value is the top half of an f32, so widening is a 16-bit shift
/// (exact), as ggml's `GGML_BF16_TO_FP32`.
#[derive(Clone, Debug)]
pub struct DenseBf16 {
    m: usize,
    k: usize,
    cols: Vec<ColBf16>,
}

impl DenseBf16 {
    /// Rounds a row-major `m x k` f32 matrix to bf16 (nearest even, as
    /// ggml's `GGML_FP32_TO_BF16` for finite values) and repacks it. NaN
    /// or infinite inputs, and values that overflow bf16, are an error.
    pub fn from_f32(
        w: &[f32],
        m: usize,
        k: usize,
    ) -> Result<Self, KernelError> {
        let len = elements(m, k)?;
        if w.len() != len {
            return Err(KernelError::len("weights", len, w.len()));
        }
        if w.iter().any(|v| !bf16::from_f32(*v).is_finite()) {
            return Err(KernelError::non_finite("weights (as bf16)"));
        }
        let get = |i: usize| bf16::from_f32(w[i]).to_bits();
        Ok(DenseBf16 { m, k, cols: Self::build(m, k, get) })
    }

    /// Repacks a GGUF BF16 tensor: `m * k` little-endian bf16, row-major.
    /// NaN or infinite weights are an error.
    pub fn from_gguf(
        bytes: &[u8],
        m: usize,
        k: usize,
    ) -> Result<Self, KernelError> {
        let len = elements(m, k)?;
        let want = byte_len(len, 2)?;
        if bytes.len() != want {
            return Err(KernelError::len(
                "BF16 weight bytes",
                want,
                bytes.len(),
            ));
        }
        let get =
            |i: usize| u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]);
        if (0..len).any(|i| !bf16::from_bits(get(i)).is_finite()) {
            return Err(KernelError::non_finite("weights"));
        }
        Ok(DenseBf16 { m, k, cols: Self::build(m, k, get) })
    }

    fn build(m: usize, k: usize, get: impl Fn(usize) -> u16) -> Vec<ColBf16> {
        build(m, k, ColBf16([0; PANEL_ROWS]), get, |c, r, v| c.0[r] = v)
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
        self.cols.len() * size_of::<ColBf16>()
    }

    /// The weights as a row-major `m x k` f32 matrix (exact conversion).
    pub fn dequantize(&self) -> Vec<f32> {
        gather(self.m, self.k, &self.cols, |c, r| {
            bf16::from_bits(c.0[r]).to_f32()
        })
    }

    /// The `k` columns of panel `p`.
    pub(crate) fn panel(&self, p: usize) -> &[ColBf16] {
        &self.cols[p * self.k..(p + 1) * self.k]
    }
}
