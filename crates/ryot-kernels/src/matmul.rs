//! The entry point: prepared weights times f32 activations, threaded.

use ryot_pool::{ThreadPool, split_range};

use crate::act::ActI8;
use crate::error::KernelError;
use crate::isa::{self, SimdLevel};
use crate::out::OutMatrix;
use crate::t2p::{self, TernaryPanels};

/// Weights prepared for the kernels.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Weights {
    /// Ternary weights in Ryot's panel layout.
    T2p(TernaryPanels),
}

impl Weights {
    /// Rows (outputs per token).
    pub fn m(&self) -> usize {
        match self {
            Weights::T2p(w) => w.m(),
        }
    }

    /// Columns (inputs per token).
    pub fn k(&self) -> usize {
        match self {
            Weights::T2p(w) => w.k(),
        }
    }

    /// The name used in tables and JSON (`t2p`, `tq2_0`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Weights::T2p(_) => "t2p",
        }
    }

    /// Bytes a full pass over the weights reads.
    pub fn stored_bytes(&self) -> usize {
        match self {
            Weights::T2p(w) => w.stored_bytes(),
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
    if !level.is_available() {
        return Err(KernelError::new(
            crate::error::KernelErrorKind::IsaUnavailable {
                level,
                best: isa::best_available(),
            },
        ));
    }
    let (m, k) = (w.m(), w.k());
    if out.len() != n.saturating_mul(m) {
        return Err(KernelError::len("output", n.saturating_mul(m), out.len()));
    }
    match w {
        Weights::T2p(w) => {
            let a = ActI8::quantize(x, n, k)?;
            t2p_with_acts(level, w, &a, out, pool, threads)
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
    if out.len() != a.n() * w.m() {
        return Err(KernelError::len("output", a.n() * w.m(), out.len()));
    }
    let out = OutMatrix::new(out, a.n(), w.m());
    let job = t2p::Job::new(w, a, &out);
    let panels = w.panels();
    let threads = threads.clamp(1, panels);
    pool.run(threads, |i, nt| {
        t2p::run(level, &job, split_range(panels, nt, i, 1));
    });
    Ok(())
}
