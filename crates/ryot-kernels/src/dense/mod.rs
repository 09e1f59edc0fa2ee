//! GEMV/GEMM with dense weights (F32, F16 or BF16) and f32 activations.
//!
//! Weights are repacked into 16-row panels stored column by column
//! ([`layout`]), so a vector load is one column of sixteen rows and each
//! row's dot product runs in its own lane. For each panel, token and row:
//!
//! ```text
//! total = 0
//! for each chunk of CHUNK = 256 columns (the last one may be shorter):
//!     acc = 0
//!     for c in chunk:  acc = fma(w[row][c], x[t][c], acc)   (one rounding)
//!     total = total + acc
//! out[t][row] = total
//! ```
//!
//! Every variant (scalar with `f32::mul_add`, AVX2 and AVX-512 with
//! `vfmadd`, F16 widened exactly with `vcvtph2ps` or `half`, BF16 by a
//! 16-bit shift) performs
//! these IEEE operations in this order, so results are bit-identical across
//! SIMD levels, batch sizes `n` and thread counts. The chunking bounds the
//! rounding error by about `(256 + k/256)` units of f32 rounding instead of
//! `k` for one long chain, at the cost of one add per 256 columns.
//!
//! GEMV streams several panels at once (several concurrent read streams per
//! thread); GEMM keeps a tile of panels x tokens in registers so each
//! loaded (and widened) column feeds several tokens.

pub mod layout;
pub(crate) mod scalar;

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;

use std::ops::Range;

use crate::error::KernelError;
use crate::isa::SimdLevel;
use crate::matmul::Kernel;
use crate::out::OutMatrix;
use layout::{ColBf16, ColF16, ColF32, PANEL_ROWS};
pub use layout::{DenseBf16, DenseF16, DenseF32};

/// Columns per accumulation chunk (see the module doc).
pub const CHUNK: usize = 256;

/// `n` tokens of `k` f32 activations, checked finite.
#[derive(Clone, Debug)]
pub(crate) struct ActF32 {
    n: usize,
    k: usize,
    x: Vec<f32>,
}

impl ActF32 {
    /// Checks and copies `x` (`n` rows of `k`).
    pub(crate) fn new(
        x: &[f32],
        n: usize,
        k: usize,
    ) -> Result<Self, KernelError> {
        if n == 0 {
            return Err(KernelError::shape(
                "activations need n >= 1 (got n = 0)",
            ));
        }
        let total = n.checked_mul(k).ok_or_else(|| {
            KernelError::shape(format!("n*k overflows (n = {n}, k = {k})"))
        })?;
        if x.len() != total {
            return Err(KernelError::len("activations", total, x.len()));
        }
        KernelError::check_finite("activations", x)?;
        Ok(ActF32 { n, k, x: x.to_vec() })
    }

    /// Number of tokens.
    pub(crate) fn n(&self) -> usize {
        self.n
    }

    /// Token `t`'s `k` values.
    #[inline]
    pub(crate) fn row(&self, t: usize) -> &[f32] {
        &self.x[t * self.k..(t + 1) * self.k]
    }
}

/// What the kernels need from a dense weight type.
pub(crate) trait DensePanels: Sync {
    /// One column of a panel.
    type Col;
    /// Columns.
    fn cols(&self) -> usize;
    /// The `k` columns of panel `p`.
    fn panel(&self, p: usize) -> &[Self::Col];
    /// A column as 16 f32 (exact).
    fn widen(col: &Self::Col) -> [f32; PANEL_ROWS];
}

impl DensePanels for DenseF32 {
    type Col = ColF32;
    fn cols(&self) -> usize {
        self.k()
    }
    #[inline]
    fn panel(&self, p: usize) -> &[ColF32] {
        DenseF32::panel(self, p)
    }
    #[inline]
    fn widen(col: &ColF32) -> [f32; PANEL_ROWS] {
        col.0
    }
}

impl DensePanels for DenseF16 {
    type Col = ColF16;
    fn cols(&self) -> usize {
        self.k()
    }
    #[inline]
    fn panel(&self, p: usize) -> &[ColF16] {
        DenseF16::panel(self, p)
    }
    #[inline]
    fn widen(col: &ColF16) -> [f32; PANEL_ROWS] {
        col.0.map(|h| half::f16::from_bits(h).to_f32())
    }
}

impl DensePanels for DenseBf16 {
    type Col = ColBf16;
    fn cols(&self) -> usize {
        self.k()
    }
    #[inline]
    fn panel(&self, p: usize) -> &[ColBf16] {
        DenseBf16::panel(self, p)
    }
    #[inline]
    fn widen(col: &ColBf16) -> [f32; PANEL_ROWS] {
        col.0.map(|h| half::bf16::from_bits(h).to_f32())
    }
}

/// One call's inputs, shared by all workers.
pub(crate) struct Job<'a, W> {
    /// The weights.
    pub w: &'a W,
    /// The activations.
    pub x: &'a ActF32,
    /// The output.
    pub out: &'a OutMatrix<'a>,
}

impl<W: DensePanels> Job<'_, W> {
    /// Writes the 16 results of panel `p` for token `t`, dropping padding
    /// rows.
    #[inline]
    pub(crate) fn store(&self, p: usize, t: usize, acc: &[f32; PANEL_ROWS]) {
        self.out.write_panel(t, p, acc);
    }
}

/// The three dense formats share one `Kernel` implementation; only the
/// weight type differs.
macro_rules! dense_kernel {
    ($($ty:ty),*) => {$(
        impl Kernel for $ty {
            type Acts = ActF32;

            fn m(&self) -> usize {
                <$ty>::m(self)
            }

            fn prepare_acts(
                &self,
                x: &[f32],
                n: usize,
            ) -> Result<ActF32, KernelError> {
                ActF32::new(x, n, self.k())
            }

            fn n(acts: &ActF32) -> usize {
                acts.n()
            }

            fn units(&self) -> usize {
                self.panels()
            }

            fn weight_bytes(&self) -> usize {
                self.stored_bytes()
            }

            fn run(
                &self,
                level: SimdLevel,
                acts: &ActF32,
                units: Range<usize>,
                out: &OutMatrix<'_>,
            ) {
                run(level, &Job { w: self, x: acts, out }, units);
            }
        }
    )*};
}

dense_kernel!(DenseF32, DenseF16, DenseBf16);

/// Runs panels `panels` of `job` at `level`.
pub(crate) fn run<W>(level: SimdLevel, job: &Job<'_, W>, panels: Range<usize>)
where
    W: DensePanels,
    W::Col: SimdCol,
{
    match level {
        SimdLevel::Scalar => scalar::gemm(job, panels),
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2 => avx2::gemm(job, panels),
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 | SimdLevel::Amx => avx512::gemm(job, panels),
        #[cfg(not(target_arch = "x86_64"))]
        _ => scalar::gemm(job, panels),
    }
}

/// Column types every SIMD variant can load.
#[cfg(target_arch = "x86_64")]
pub(crate) trait SimdCol: avx2::Load + avx512::Load {}
#[cfg(target_arch = "x86_64")]
impl<C: avx2::Load + avx512::Load> SimdCol for C {}

/// Column types every SIMD variant can load.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) trait SimdCol {}
#[cfg(not(target_arch = "x86_64"))]
impl<C> SimdCol for C {}
