//! The entry point: prepared weights times f32 activations, threaded.
//!
//! Each weight format implements [`Kernel`]: how it quantizes activations,
//! how many row units (panels, row groups) it has, and how it computes a
//! contiguous range of them. [`matmul_at`] quantizes the activations once,
//! then hands each worker of the pool one contiguous range of units.

use std::ops::Range;

use ryot_pool::{ThreadPool, split_range};
use ryot_quant::QuantType;

use crate::act::ActI8;
use crate::dense::{DenseBf16, DenseF16, DenseF32};
use crate::error::{KernelError, KernelErrorKind};
use crate::isa::{self, SimdLevel};
use crate::kq::{Q4KPanels, Q6KPanels};
use crate::native::{I2s, Native, Tq1_0, Tq2_0};
use crate::out::OutMatrix;
use crate::q8::{Q4_0Panels, Q4_1Panels, Q5_0Panels, Q8_0Panels};
use crate::t2p::{self, TernaryPanels};
use crate::tune;

/// A weight format's kernel, as the threaded driver sees it.
pub(crate) trait Kernel: Sync {
    /// The activations this kernel consumes (int8 per token, Q8 blocks,
    /// f32, ...).
    type Acts: Sync;
    /// Rows.
    fn m(&self) -> usize;
    /// Quantizes (or converts) `n` tokens of `k` f32 activations.
    fn prepare_acts(
        &self,
        x: &[f32],
        n: usize,
    ) -> Result<Self::Acts, KernelError>;
    /// Number of tokens in `acts`.
    fn n(acts: &Self::Acts) -> usize;
    /// Units threads split over (a unit is a fixed group of rows).
    fn units(&self) -> usize;
    /// Bytes of weights one pass reads (0 if unknown); small matrices get
    /// fewer threads (see [`tune::TuneParams::min_bytes_per_thread`]).
    fn weight_bytes(&self) -> usize {
        0
    }
    /// Computes units `units` for all tokens at `level`, writing `out`.
    fn run(
        &self,
        level: SimdLevel,
        acts: &Self::Acts,
        units: Range<usize>,
        out: &OutMatrix<'_>,
    );
}

/// Runs `kern` over prepared activations on `threads` workers.
pub(crate) fn drive<K: Kernel>(
    level: SimdLevel,
    kern: &K,
    acts: &K::Acts,
    out: &mut [f32],
    pool: &ThreadPool,
    threads: usize,
) -> Result<(), KernelError> {
    check_level(level)?;
    let n = K::n(acts);
    if out.len() != n * kern.m() {
        return Err(KernelError::len("output", n * kern.m(), out.len()));
    }
    let out = OutMatrix::new(out, n, kern.m());
    let units = kern.units();
    let min_bytes = tune::current().min_bytes_per_thread.max(1);
    // Each token is another pass over the weights: a GEMM of a small
    // matrix over many tokens is worth splitting even when its GEMV is not.
    let by_size = match kern.weight_bytes() {
        0 => usize::MAX,
        b => b.saturating_mul(n.max(1)).div_ceil(min_bytes),
    };
    let threads = threads.min(by_size).clamp(1, units.max(1));
    pool.run(threads, |i, nt| {
        kern.run(level, acts, split_range(units, nt, i, 1), &out);
    });
    Ok(())
}

fn check_level(level: SimdLevel) -> Result<(), KernelError> {
    if level.is_available() {
        Ok(())
    } else {
        Err(KernelError::new(KernelErrorKind::IsaUnavailable {
            level,
            best: isa::best_available(),
        }))
    }
}

fn run_f32<K: Kernel>(
    level: SimdLevel,
    kern: &K,
    x: &[f32],
    n: usize,
    out: &mut [f32],
    pool: &ThreadPool,
    threads: usize,
) -> Result<(), KernelError> {
    check_level(level)?;
    if out.len() != n.saturating_mul(kern.m()) {
        let want = n.saturating_mul(kern.m());
        return Err(KernelError::len("output", want, out.len()));
    }
    let acts = kern.prepare_acts(x, n)?;
    drive(level, kern, &acts, out, pool, threads)
}

/// Weights prepared for the kernels.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Weights {
    /// Ternary weights in Ryot's panel layout.
    T2p(TernaryPanels),
    /// F32 weights in the dense panel layout.
    F32(DenseF32),
    /// F16 weights in the dense panel layout.
    F16(DenseF16),
    /// BF16 weights in the dense panel layout.
    Bf16(DenseBf16),
    /// Q8_0 weights in the interleaved 16-row layout.
    Q8_0(Q8_0Panels),
    /// Q4_0 weights in the interleaved 16-row layout.
    Q4_0(Q4_0Panels),
    /// Q4_1 weights in the interleaved 16-row layout.
    Q4_1(Q4_1Panels),
    /// Q5_0 weights in the interleaved 16-row layout.
    Q5_0(Q5_0Panels),
    /// Q4_K weights in the interleaved 16-row K-quant layout.
    Q4K(Q4KPanels),
    /// Q6_K weights in the interleaved 16-row K-quant layout.
    Q6K(Q6KPanels),
    /// TQ2_0 weights run in their GGUF layout.
    Tq2_0(Tq2_0),
    /// TQ1_0 weights run in their GGUF layout.
    Tq1_0(Tq1_0),
    /// I2_S weights run in their bitnet.cpp layout.
    I2s(I2s),
}

impl Weights {
    /// Prepares a GGUF tensor (`m` rows of `k`, `bytes` exactly as stored)
    /// for the kernels in its native layout.
    pub fn from_gguf(
        ty: QuantType,
        bytes: &[u8],
        m: usize,
        k: usize,
    ) -> Result<Self, KernelError> {
        match ty {
            QuantType::F32 => {
                Ok(Weights::F32(DenseF32::from_gguf(bytes, m, k)?))
            }
            QuantType::F16 => {
                Ok(Weights::F16(DenseF16::from_gguf(bytes, m, k)?))
            }
            QuantType::BF16 => {
                Ok(Weights::Bf16(DenseBf16::from_gguf(bytes, m, k)?))
            }
            QuantType::Q8_0 => {
                Ok(Weights::Q8_0(Q8_0Panels::from_gguf(bytes, m, k)?))
            }
            QuantType::Q4_0 => {
                Ok(Weights::Q4_0(Q4_0Panels::from_gguf(bytes, m, k)?))
            }
            QuantType::Q4_1 => {
                Ok(Weights::Q4_1(Q4_1Panels::from_gguf(bytes, m, k)?))
            }
            QuantType::Q5_0 => {
                Ok(Weights::Q5_0(Q5_0Panels::from_gguf(bytes, m, k)?))
            }
            QuantType::Q4_K => {
                Ok(Weights::Q4K(Q4KPanels::from_gguf(bytes, m, k)?))
            }
            QuantType::Q6_K => {
                Ok(Weights::Q6K(Q6KPanels::from_gguf(bytes, m, k)?))
            }
            QuantType::TQ2_0 => {
                Ok(Weights::Tq2_0(Tq2_0::from_gguf(bytes, m, k)?))
            }
            QuantType::TQ1_0 => {
                Ok(Weights::Tq1_0(Tq1_0::from_gguf(bytes, m, k)?))
            }
            QuantType::I2_S => Ok(Weights::I2s(I2s::from_gguf(bytes, m, k)?)),
            _ => Err(KernelError::new(KernelErrorKind::Unsupported {
                ty: ty.name().to_string(),
                op: "native kernels",
            })),
        }
    }

    /// Repacks a ternary GGUF tensor (TQ2_0, TQ1_0 or I2_S) losslessly
    /// into Ryot's panel layout.
    pub fn t2p_from_gguf(
        ty: QuantType,
        bytes: &[u8],
        m: usize,
        k: usize,
    ) -> Result<Self, KernelError> {
        let w = match ty {
            QuantType::TQ2_0 => TernaryPanels::from_tq2_0(bytes, m, k)?,
            QuantType::TQ1_0 => TernaryPanels::from_tq1_0(bytes, m, k)?,
            QuantType::I2_S => TernaryPanels::from_i2s(bytes, m, k)?,
            _ => {
                return Err(KernelError::new(KernelErrorKind::Unsupported {
                    ty: ty.name().to_string(),
                    op: "ternary repacking (only TQ2_0, TQ1_0, I2_S)",
                }));
            }
        };
        Ok(Weights::T2p(w))
    }

    /// The variant this format's kernel really runs for `n` tokens when
    /// `level` is asked for: only the t2p GEMM (from
    /// [`t2p::AMX_MIN_TOKENS`] tokens) has an AMX variant; the others run
    /// their AVX-512 one at that level.
    pub fn kernel_level(&self, level: SimdLevel, n: usize) -> SimdLevel {
        match self {
            Weights::T2p(_) if n >= t2p::AMX_MIN_TOKENS => level,
            _ => level.min(SimdLevel::Avx512),
        }
    }

    /// Rows (outputs per token).
    pub fn m(&self) -> usize {
        match self {
            Weights::T2p(w) => w.m(),
            Weights::F32(w) => w.m(),
            Weights::F16(w) => w.m(),
            Weights::Bf16(w) => w.m(),
            Weights::Q8_0(w) => w.m(),
            Weights::Q4_0(w) => w.m(),
            Weights::Q4_1(w) => w.m(),
            Weights::Q5_0(w) => w.m(),
            Weights::Q4K(w) => w.m(),
            Weights::Q6K(w) => w.m(),
            Weights::Tq2_0(w) => w.m(),
            Weights::Tq1_0(w) => w.m(),
            Weights::I2s(w) => w.m(),
        }
    }

    /// Columns (inputs per token).
    pub fn k(&self) -> usize {
        match self {
            Weights::T2p(w) => w.k(),
            Weights::F32(w) => w.k(),
            Weights::F16(w) => w.k(),
            Weights::Bf16(w) => w.k(),
            Weights::Q8_0(w) => w.k(),
            Weights::Q4_0(w) => w.k(),
            Weights::Q4_1(w) => w.k(),
            Weights::Q5_0(w) => w.k(),
            Weights::Q4K(w) => w.k(),
            Weights::Q6K(w) => w.k(),
            Weights::Tq2_0(w) => w.k(),
            Weights::Tq1_0(w) => w.k(),
            Weights::I2s(w) => w.k(),
        }
    }

    /// The name used in tables and JSON (`t2p`, `tq2_0`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Weights::T2p(_) => "t2p",
            Weights::F32(_) => "f32",
            Weights::F16(_) => "f16",
            Weights::Bf16(_) => "bf16",
            Weights::Q8_0(_) => "q8_0",
            Weights::Q4_0(_) => "q4_0",
            Weights::Q4_1(_) => "q4_1",
            Weights::Q5_0(_) => "q5_0",
            Weights::Q4K(_) => "q4_k",
            Weights::Q6K(_) => "q6_k",
            Weights::Tq2_0(_) => "tq2_0",
            Weights::Tq1_0(_) => "tq1_0",
            Weights::I2s(_) => "i2_s",
        }
    }

    /// Bytes a full pass over the weights reads.
    pub fn stored_bytes(&self) -> usize {
        match self {
            Weights::T2p(w) => w.stored_bytes(),
            Weights::F32(w) => w.stored_bytes(),
            Weights::F16(w) => w.stored_bytes(),
            Weights::Bf16(w) => w.stored_bytes(),
            Weights::Q8_0(w) => w.stored_bytes(),
            Weights::Q4_0(w) => w.stored_bytes(),
            Weights::Q4_1(w) => w.stored_bytes(),
            Weights::Q5_0(w) => w.stored_bytes(),
            Weights::Q4K(w) => w.stored_bytes(),
            Weights::Q6K(w) => w.stored_bytes(),
            Weights::Tq2_0(w) => w.stored_bytes(),
            Weights::Tq1_0(w) => w.stored_bytes(),
            Weights::I2s(w) => w.stored_bytes(),
        }
    }
}

/// `out[t][row] = sum_k w[row][k] * x[t][k]` for `n` tokens (`x` is `n x
/// k`, `out` is `n x m`, both row-major), on `threads` workers of `pool`,
/// at the dispatched SIMD level.
pub fn matmul(
    w: &Weights,
    x: &[f32],
    n: usize,
    out: &mut [f32],
    pool: &ThreadPool,
    threads: usize,
) -> Result<(), KernelError> {
    matmul_at(isa::level(), w, x, n, out, pool, threads)
}

/// [`matmul`] at an explicit SIMD level (for tests and benchmarks). A
/// level this CPU lacks is an error.
pub fn matmul_at(
    level: SimdLevel,
    w: &Weights,
    x: &[f32],
    n: usize,
    out: &mut [f32],
    pool: &ThreadPool,
    threads: usize,
) -> Result<(), KernelError> {
    match w {
        Weights::T2p(w) => run_f32(level, w, x, n, out, pool, threads),
        Weights::F32(w) => run_f32(level, w, x, n, out, pool, threads),
        Weights::F16(w) => run_f32(level, w, x, n, out, pool, threads),
        Weights::Bf16(w) => run_f32(level, w, x, n, out, pool, threads),
        Weights::Q8_0(w) => run_f32(level, w, x, n, out, pool, threads),
        Weights::Q4_0(w) => run_f32(level, w, x, n, out, pool, threads),
        Weights::Q4_1(w) => run_f32(level, w, x, n, out, pool, threads),
        Weights::Q5_0(w) => run_f32(level, w, x, n, out, pool, threads),
        Weights::Q4K(w) => run_f32(level, w, x, n, out, pool, threads),
        Weights::Q6K(w) => run_f32(level, w, x, n, out, pool, threads),
        Weights::Tq2_0(w) => {
            run_f32(level, &Native(&w.0), x, n, out, pool, threads)
        }
        Weights::Tq1_0(w) => {
            run_f32(level, &Native(&w.0), x, n, out, pool, threads)
        }
        Weights::I2s(w) => {
            run_f32(level, &Native(&w.0), x, n, out, pool, threads)
        }
    }
}

/// Ternary panels times already-quantized activations.
pub fn t2p_with_acts(
    level: SimdLevel,
    w: &TernaryPanels,
    a: &ActI8,
    out: &mut [f32],
    pool: &ThreadPool,
    threads: usize,
) -> Result<(), KernelError> {
    if a.k() != w.k() {
        return Err(KernelError::shape(format!(
            "activations have k = {} but the weights have k = {}",
            a.k(),
            w.k()
        )));
    }
    drive(level, w, a, out, pool, threads)
}

impl Kernel for TernaryPanels {
    type Acts = ActI8;

    fn m(&self) -> usize {
        TernaryPanels::m(self)
    }

    fn prepare_acts(&self, x: &[f32], n: usize) -> Result<ActI8, KernelError> {
        ActI8::quantize(x, n, TernaryPanels::k(self))
    }

    fn n(acts: &ActI8) -> usize {
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
        acts: &ActI8,
        units: Range<usize>,
        out: &OutMatrix<'_>,
    ) {
        t2p::run(level, &t2p::Job::new(self, acts, out), units);
    }
}
