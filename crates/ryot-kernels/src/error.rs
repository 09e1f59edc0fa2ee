//! The kernels' error type: every bad shape, short buffer or unknown type
//! becomes one of these, never a panic.

use crate::isa::SimdLevel;

/// An error from a kernel entry point; [`KernelError::kind`] says which.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct KernelError {
    #[from]
    kind: KernelErrorKind,
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelErrorKind {
    /// A buffer's length does not match the shape it was given with.
    #[error("{what} has {got} elements but the shape needs {expected}")]
    LengthMismatch {
        /// Which buffer.
        what: &'static str,
        /// The length the shape requires.
        expected: usize,
        /// The length passed.
        got: usize,
    },
    /// A dimension is zero, or too large to index.
    #[error("bad shape: {what}")]
    BadShape {
        /// Which dimension and why.
        what: String,
    },
    /// The reduction length `k` does not fit the weight type's block.
    #[error("{ty} needs k to be a multiple of {block}, but k = {k}")]
    NotBlockMultiple {
        /// The weight type.
        ty: &'static str,
        /// The `k` given.
        k: usize,
        /// The type's block length.
        block: usize,
    },
    /// The weight type has no kernel (or no conversion) here.
    #[error("weight type {ty} does not support {op}")]
    Unsupported {
        /// The type.
        ty: String,
        /// What was asked of it.
        op: &'static str,
    },
    /// An input holds NaN or infinity where a finite value is needed.
    #[error("{what} contains NaN or infinity")]
    NonFinite {
        /// Which input.
        what: &'static str,
    },
    /// Weights that must be ternary are not.
    #[error("weights are not ternary: {detail}")]
    NotTernary {
        /// Where the first non-ternary value was found.
        detail: String,
    },
    /// `RYOT_FORCE_ISA` names no level.
    #[error("RYOT_FORCE_ISA={name:?} is not one of scalar, avx2, avx512, amx")]
    BadIsaName {
        /// The value given.
        name: String,
    },
    /// `RYOT_FORCE_ISA` names a level this CPU lacks.
    #[error(
        "RYOT_FORCE_ISA={level} is not available on this CPU (best: {best})"
    )]
    IsaUnavailable {
        /// The level asked for.
        level: SimdLevel,
        /// The best level this CPU has.
        best: SimdLevel,
    },
    /// A block-format error from `ryot-quant`.
    #[error(transparent)]
    Quant(#[from] ryot_quant::QuantError),
}

impl KernelError {
    /// Wraps a kind.
    pub fn new(kind: KernelErrorKind) -> Self {
        KernelError { kind }
    }

    /// What went wrong.
    pub fn kind(&self) -> &KernelErrorKind {
        &self.kind
    }

    pub(crate) fn len(what: &'static str, expected: usize, got: usize) -> Self {
        KernelError::new(KernelErrorKind::LengthMismatch {
            what,
            expected,
            got,
        })
    }

    pub(crate) fn shape(what: impl Into<String>) -> Self {
        KernelError::new(KernelErrorKind::BadShape { what: what.into() })
    }

    pub(crate) fn non_finite(what: &'static str) -> Self {
        KernelError::new(KernelErrorKind::NonFinite { what })
    }

    /// `Ok` when every value of `x` is finite, else a
    /// [`KernelErrorKind::NonFinite`] naming `what`.
    pub(crate) fn check_finite(
        what: &'static str,
        x: &[f32],
    ) -> Result<(), KernelError> {
        if x.iter().all(|v| v.is_finite()) {
            Ok(())
        } else {
            Err(KernelError::non_finite(what))
        }
    }
}

impl From<ryot_quant::QuantError> for KernelError {
    fn from(e: ryot_quant::QuantError) -> Self {
        KernelError::new(KernelErrorKind::Quant(e))
    }
}
