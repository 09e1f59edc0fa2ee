//! Dense int16 GEMM for encoder models: f32 matrices quantized to int16,
//! exact integer dot products, f32 combine.
//!
//! Embedding encoders (BERT and kin) spend most of their time in f32 GEMMs
//! whose speed is capped by the FMA units. `vpmaddwd` does twice the
//! multiply-adds per instruction, on integers, so the matrices are
//! quantized finely enough that the result stays within about 1e-5 of the
//! f32 one (cosine of whole sentence embeddings >= 0.99999 on MiniLM):
//!
//! - weights: one scale per row, codes in `-W_MAX..=W_MAX` (12 bits);
//! - activations: one scale per token, codes in `-X_MAX..=X_MAX` (14
//!   bits: encoder activations have outlier channels, so they get more).
//!
//! ```text
//! for each token t, row r:
//!     f = 0
//!     for each block of BLOCK_PAIRS column pairs (the last may be shorter):
//!         s = sum over the block of x[t][2j]*w[r][2j] + x[t][2j+1]*w[r][2j+1]   (i32, exact)
//!         f = f + f32(s)
//!     out[t][r] = out[t][r] + (f * x_scale[t]) * w_scale[r]
//! ```
//!
//! `|s| <= 2 * BLOCK_PAIRS * X_MAX * W_MAX < 2^31`, so the i32 sums never
//! overflow and are exact in every variant; the f32 steps are the same IEEE
//! operations in the same order (no FMA), so scalar and SIMD results are
//! bit-identical, and a token's result does not depend on the batch it is
//! in. The output is accumulated into (`+=`), so a caller can start it
//! from a bias or a residual.
//!
//! Weights are stored in panels of [`PANEL_ROWS`] rows, column pair by
//! column pair (`[panel][pair][row][2]`), so one 256-bit load holds one
//! pair of 8 rows, multiplied by a broadcast pair of one token.

pub(crate) mod scalar;

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;

use crate::error::{KernelError, KernelErrorKind};
use crate::isa::SimdLevel;

/// Largest weight code: 12-bit signed.
pub const W_MAX: i32 = 2047;
/// Largest activation code: 14-bit signed.
pub const X_MAX: i32 = 8191;
/// Column pairs summed in i32 before the f32 combine (see module doc).
pub const BLOCK_PAIRS: usize = 64;
/// Rows per weight panel.
pub const PANEL_ROWS: usize = 16;

const _: () = assert!(
    2 * (BLOCK_PAIRS as i64) * (X_MAX as i64) * (W_MAX as i64)
        <= i32::MAX as i64
);

/// A matrix of `m` rows by `k` columns quantized to int16, one scale per
/// row, in panels (see the module doc).
#[derive(Clone, Debug)]
pub struct Int16Weights {
    m: usize,
    k: usize,
    /// `[panel][pair][row][2]`.
    data: Vec<i16>,
    /// One per row, padding rows 0.
    scales: Vec<f32>,
}

/// Symmetric quantization of one row to `-max..=max`: returns the scale
/// (`absmax / max`, 0 for an all-zero row). Inputs must be finite.
#[inline(always)]
pub(crate) fn quantize_row(x: &[f32], max: i32, out: &mut [i16]) -> f32 {
    let absmax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    if absmax == 0.0 {
        out.fill(0);
        return 0.0;
    }
    let inv = max as f32 / absmax;
    let lim = max as f32;
    for (o, &v) in out.iter_mut().zip(x) {
        *o = (v * inv).round_ties_even().clamp(-lim, lim) as i16;
    }
    absmax / max as f32
}

impl Int16Weights {
    /// Quantizes a row-major `m x k` f32 matrix.
    pub fn from_f32(
        w: &[f32],
        m: usize,
        k: usize,
    ) -> Result<Self, KernelError> {
        if m == 0 || k == 0 {
            return Err(KernelError::shape(format!(
                "int16 weights need m, k > 0 (got {m} x {k})"
            )));
        }
        let len = m.checked_mul(k).ok_or_else(|| {
            KernelError::shape(format!("{m} x {k} overflows"))
        })?;
        if w.len() != len {
            return Err(KernelError::len("int16 weights", len, w.len()));
        }
        KernelError::check_finite("int16 weights", w)?;
        let pairs = k.div_ceil(2);
        let panels = m.div_ceil(PANEL_ROWS);
        let mut data = vec![0i16; panels * pairs * PANEL_ROWS * 2];
        let mut scales = vec![0f32; panels * PANEL_ROWS];
        let mut q = vec![0i16; 2 * pairs];
        for (r, row) in w.chunks_exact(k).enumerate() {
            scales[r] = quantize_row(row, W_MAX, &mut q[..k]);
            let (p, rr) = (r / PANEL_ROWS, r % PANEL_ROWS);
            let base = p * pairs * PANEL_ROWS * 2 + rr * 2;
            for (j, pair) in q.chunks_exact(2).enumerate() {
                let at = base + j * PANEL_ROWS * 2;
                data[at] = pair[0];
                data[at + 1] = pair[1];
            }
        }
        Ok(Int16Weights { m, k, data, scales })
    }

    /// Rows.
    pub fn m(&self) -> usize {
        self.m
    }

    /// Columns.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Column pairs (`k` rounded up to even, halved).
    pub(crate) fn pairs(&self) -> usize {
        self.k.div_ceil(2)
    }

    /// Panels of [`PANEL_ROWS`] rows.
    pub(crate) fn panels(&self) -> usize {
        self.m.div_ceil(PANEL_ROWS)
    }

    /// Panel `p`: `[pair][row][2]`.
    pub(crate) fn panel(&self, p: usize) -> &[i16] {
        let len = self.pairs() * PANEL_ROWS * 2;
        &self.data[p * len..(p + 1) * len]
    }

    /// The 16 row scales of panel `p`.
    pub(crate) fn panel_scales(&self, p: usize) -> &[f32; PANEL_ROWS] {
        self.scales[p * PANEL_ROWS..(p + 1) * PANEL_ROWS]
            .try_into()
            .expect("16 scales per panel")
    }

    /// The matrix the codes stand for (`code * scale`), row-major `m x k`.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.m * self.k);
        for r in 0..self.m {
            let (p, rr) = (r / PANEL_ROWS, r % PANEL_ROWS);
            let panel = self.panel(p);
            for c in 0..self.k {
                let code = panel[(c / 2) * PANEL_ROWS * 2 + rr * 2 + c % 2];
                out.push(code as f32 * self.scales[r]);
            }
        }
        out
    }
}

/// `n` tokens of `k` activations quantized to int16, one scale per token.
/// Reusable: [`Int16Acts::quantize`] refills it without reallocating.
#[derive(Clone, Debug, Default)]
pub struct Int16Acts {
    n: usize,
    k: usize,
    /// Row-major `n x 2*pairs` (a zero pads an odd `k`).
    q: Vec<i16>,
    scales: Vec<f32>,
}

impl Int16Acts {
    /// An empty set, to be filled by [`Int16Acts::quantize`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Quantizes `n` rows of `k` values (row-major `x`), replacing the
    /// contents. Runs at the process's SIMD level; every level gives the
    /// same codes and scales.
    pub fn quantize(
        &mut self,
        x: &[f32],
        n: usize,
        k: usize,
    ) -> Result<(), KernelError> {
        self.quantize_at(crate::isa::level(), x, n, k)
    }

    /// [`Int16Acts::quantize`] at a given SIMD level.
    pub fn quantize_at(
        &mut self,
        level: SimdLevel,
        x: &[f32],
        n: usize,
        k: usize,
    ) -> Result<(), KernelError> {
        if k == 0 {
            return Err(KernelError::shape("int16 activations need k > 0"));
        }
        let len = n.checked_mul(k).ok_or_else(|| {
            KernelError::shape(format!("{n} x {k} overflows"))
        })?;
        if x.len() != len {
            return Err(KernelError::len("int16 activations", len, x.len()));
        }
        if !level.is_available() {
            return Err(unavailable(level));
        }
        let stride = 2 * k.div_ceil(2);
        self.n = n;
        self.k = k;
        self.q.resize(n * stride, 0);
        self.scales.resize(n, 0.0);
        match level {
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx2 | SimdLevel::Avx512 | SimdLevel::Amx => {
                avx2::quantize_rows(x, k, stride, &mut self.q, &mut self.scales)
            }
            _ => scalar::quantize_rows(
                x,
                k,
                stride,
                &mut self.q,
                &mut self.scales,
            ),
        }
    }

    /// Tokens.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Values per token.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Token `t`'s codes (`2 * pairs` of them).
    pub(crate) fn row(&self, t: usize) -> &[i16] {
        let stride = 2 * self.k.div_ceil(2);
        &self.q[t * stride..(t + 1) * stride]
    }

    /// One scale per token.
    pub(crate) fn scales(&self) -> &[f32] {
        &self.scales
    }
}

fn unavailable(level: SimdLevel) -> KernelError {
    KernelError::new(KernelErrorKind::IsaUnavailable {
        level,
        best: crate::isa::best_available(),
    })
}

/// `out[t][r] += sum_c x[t][c] * w[r][c]` (see the module doc for the exact
/// arithmetic), `out` row-major `n x m`, on the calling thread, at the
/// process's SIMD level.
pub fn gemm(
    w: &Int16Weights,
    x: &Int16Acts,
    out: &mut [f32],
) -> Result<(), KernelError> {
    gemm_at(crate::isa::level(), w, x, out)
}

/// [`gemm`] at a given SIMD level (AVX-512 runs the AVX2 kernel).
pub fn gemm_at(
    level: SimdLevel,
    w: &Int16Weights,
    x: &Int16Acts,
    out: &mut [f32],
) -> Result<(), KernelError> {
    if x.k != w.k {
        return Err(KernelError::shape(format!(
            "activations have {} values per token but the weights {} columns",
            x.k, w.k
        )));
    }
    let len = x.n * w.m;
    if out.len() != len {
        return Err(KernelError::len("int16 gemm output", len, out.len()));
    }
    if !level.is_available() {
        return Err(unavailable(level));
    }
    match level {
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2 | SimdLevel::Avx512 | SimdLevel::Amx => {
            avx2::gemm(w, x, out)
        }
        _ => scalar::gemm(w, x, out),
    }
    Ok(())
}
