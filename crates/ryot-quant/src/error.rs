//! The one error type of this crate.
//!
//! Every fallible function returns [`QuantError`]; match on
//! [`QuantError::kind`] to react to a specific problem. Messages say what
//! was expected, what was found and what to change.

use crate::QuantType;

/// An error from a quantize or dequantize call.
///
/// The error carries a [`QuantErrorKind`]; its `Display` text is the kind's
/// message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind}")]
pub struct QuantError {
    kind: QuantErrorKind,
}

impl QuantError {
    /// What went wrong.
    pub fn kind(&self) -> &QuantErrorKind {
        &self.kind
    }

    /// Consumes the error and returns its kind.
    pub fn into_kind(self) -> QuantErrorKind {
        self.kind
    }

    pub(crate) fn length(
        what: &'static str,
        expected: usize,
        got: usize,
    ) -> QuantError {
        QuantErrorKind::LengthMismatch { what, expected, got }.into()
    }
}

impl From<QuantErrorKind> for QuantError {
    fn from(kind: QuantErrorKind) -> QuantError {
        QuantError { kind }
    }
}

/// The kinds of [`QuantError`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuantErrorKind {
    /// A buffer has the wrong length. `what` names the buffer (for example
    /// `"dst (f32 elements)"`), `expected` is the length the other
    /// arguments imply and `got` is the length passed.
    #[error(
        "{what} has length {got}, but the other arguments require {expected}"
    )]
    LengthMismatch {
        /// Which buffer (and in which unit) was measured.
        what: &'static str,
        /// The length the call needed.
        expected: usize,
        /// The length that was passed.
        got: usize,
    },

    /// The row length `k` is not a multiple of the type's block size.
    /// ggml cannot store a partial block; pad the row or pick a type with
    /// a smaller block.
    #[error(
        "row length {k} is not a multiple of the {ty} block size {block}; \
         {ty} needs k % {block} == 0 (pad the row or choose another type)"
    )]
    NotBlockMultiple {
        /// The quantization type.
        ty: QuantType,
        /// The row length that was passed.
        k: usize,
        /// The block size (elements) of `ty`.
        block: usize,
    },

    /// The operation is not available for this type.
    #[error("{op} is not supported for {ty}")]
    Unsupported {
        /// The quantization type.
        ty: QuantType,
        /// The operation that was asked for.
        op: &'static str,
    },

    /// I2_S was passed to a per-row function. I2_S stores one scale for the
    /// whole tensor after the codes of all rows, so a single row cannot be
    /// converted on its own.
    #[error(
        "{ty} has one scale per tensor stored after all rows, so rows cannot \
         be converted one at a time; use ryot_quant::i2s (or the \
         whole-matrix ryot_quant::quantize / dequantize) instead"
    )]
    NeedsWholeTensor {
        /// The quantization type (I2_S).
        ty: QuantType,
    },

    /// The input to a quantizer holds a NaN or an infinity. llama.cpp's
    /// quantizers would silently produce garbage blocks; this crate refuses.
    /// Clean the input (for example replace NaN by 0) before quantizing.
    #[error(
        "input element {index} is {value}; quantizers accept finite values \
         only (clean NaN/inf before quantizing)"
    )]
    NonFinite {
        /// Flat index of the first offending element.
        index: usize,
        /// The offending value.
        value: f32,
    },

    /// A type name did not match any [`QuantType`].
    #[error(
        "unknown quantization type {name:?}; expected one of F32, F16, BF16, \
         Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, TQ1_0, \
         TQ2_0, I2_S (any case)"
    )]
    UnknownName {
        /// The name that was passed.
        name: String,
    },

    /// A size computed from the arguments does not fit in `usize`.
    #[error("{what} overflows usize; the tensor is too large")]
    SizeOverflow {
        /// Which size overflowed.
        what: &'static str,
    },
}
