//! The one error type of this crate.
//!
//! Every fallible function returns [`GgufError`]; match on
//! [`GgufError::kind`] to react to a specific problem. Messages say what
//! was being read, where (a byte offset in the file), and what was expected
//! versus found, so a user can tell a truncated download from a file made
//! by a newer or foreign tool.

use ryot_quant::{QuantError, QuantType};

use crate::ValueType;

/// An error from opening or reading a GGUF file.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct GgufError {
    kind: GgufErrorKind,
}

impl GgufError {
    /// What went wrong.
    pub fn kind(&self) -> &GgufErrorKind {
        &self.kind
    }

    /// Consumes the error and returns its kind.
    pub fn into_kind(self) -> GgufErrorKind {
        self.kind
    }
}

impl From<GgufErrorKind> for GgufError {
    fn from(kind: GgufErrorKind) -> GgufError {
        GgufError { kind }
    }
}

/// The kinds of [`GgufError`]. Offsets are byte offsets from the start of
/// the file unless a variant says otherwise.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum GgufErrorKind {
    /// The file could not be opened, inspected or mapped.
    #[error("cannot {op}")]
    Io {
        /// What was being done (`"open the file"`, `"map the file"`).
        op: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The first four bytes are not `GGUF`.
    #[error(
        "not a GGUF file: the first 4 bytes are {got:02x?}, expected \
         \"GGUF\" (47 47 55 46)"
    )]
    BadMagic {
        /// The bytes found.
        got: [u8; 4],
    },
    /// A GGUF version this reader does not handle (it reads 2 and 3).
    #[error(
        "unsupported GGUF version {version}: this reader handles versions 2 \
         and 3{hint}"
    )]
    UnsupportedVersion {
        /// The version field as read (little-endian).
        version: u32,
        /// Extra advice (empty, or a sentence starting with "; ").
        hint: &'static str,
    },
    /// The file ends before a field does.
    #[error(
        "file truncated: {what} at byte {offset} needs {needed} bytes, but \
         only {available} remain"
    )]
    Truncated {
        /// The field being read.
        what: String,
        /// Where it starts.
        offset: u64,
        /// Bytes it needs.
        needed: u64,
        /// Bytes left in the file from `offset`.
        available: u64,
    },
    /// A count or length is larger than the file could hold or than a
    /// sanity cap allows.
    #[error(
        "{what} at byte {offset} is {got}, more than the limit of {max} \
         (corrupt or hostile file)"
    )]
    TooLarge {
        /// The count or length.
        what: String,
        /// Where it was read.
        offset: u64,
        /// Its value.
        got: u64,
        /// The largest acceptable value here.
        max: u64,
    },
    /// A string is not valid UTF-8.
    #[error("{what} at byte {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// Which string.
        what: String,
        /// Where its bytes start.
        offset: u64,
    },
    /// A metadata value type id outside 0..=12.
    #[error(
        "metadata value type {got} at byte {offset} is unknown (expected \
         0..=12)"
    )]
    BadValueType {
        /// Where the type id was read.
        offset: u64,
        /// The id found.
        got: u32,
    },
    /// Arrays nested deeper than [`crate::MAX_ARRAY_DEPTH`].
    #[error("metadata arrays nested more than {max} deep at byte {offset}")]
    NestingTooDeep {
        /// Where the too-deep array starts.
        offset: u64,
        /// The depth limit.
        max: usize,
    },
    /// Two metadata entries have the same key.
    #[error("duplicate metadata key {key:?} at byte {offset}")]
    DuplicateKey {
        /// The key.
        key: String,
        /// Where the second entry starts.
        offset: u64,
    },
    /// `general.alignment` is zero or not a power of two.
    #[error(
        "general.alignment is {got}, expected a nonzero power of two \
         (default 32)"
    )]
    BadAlignment {
        /// The value found.
        got: u64,
    },
    /// A tensor's dimension count is outside `1..=MAX_DIMS`.
    #[error(
        "tensor {name:?} (info at byte {offset}) has {got} dimensions, \
         expected 1..={max}"
    )]
    BadDimCount {
        /// The tensor.
        name: String,
        /// Where its info record starts.
        offset: u64,
        /// The count found.
        got: u32,
        /// The largest count accepted.
        max: usize,
    },
    /// A tensor's element count overflows or exceeds the sanity cap.
    #[error(
        "tensor {name:?} (info at byte {offset}) has dimensions {dims:?}, \
         whose element count is too large (limit {max})"
    )]
    TooManyElements {
        /// The tensor.
        name: String,
        /// Where its info record starts.
        offset: u64,
        /// Its dimensions as read.
        dims: Vec<u64>,
        /// The largest element count accepted.
        max: u64,
    },
    /// A tensor's dimensions don't fit its type (for example a row length
    /// that is not a multiple of the block size).
    #[error(
        "tensor {name:?} (info at byte {offset}) of type {ty} has \
         dimensions {dims:?} that its type cannot store"
    )]
    BadTensorShape {
        /// The tensor.
        name: String,
        /// Where its info record starts.
        offset: u64,
        /// Its type.
        ty: QuantType,
        /// Its dimensions.
        dims: Vec<u64>,
        /// What ryot-quant said about the shape.
        #[source]
        source: QuantError,
    },
    /// Two tensors have the same name.
    #[error("duplicate tensor name {name:?} (second info at byte {offset})")]
    DuplicateTensor {
        /// The name.
        name: String,
        /// Where the second info record starts.
        offset: u64,
    },
    /// A tensor's data offset is not a multiple of the alignment.
    #[error(
        "tensor {name:?} has data offset {got}, not a multiple of the \
         alignment {alignment}"
    )]
    MisalignedTensor {
        /// The tensor.
        name: String,
        /// Its offset, relative to the data section.
        got: u64,
        /// The file's alignment.
        alignment: u64,
    },
    /// A tensor's data lies (partly) past the end of the file.
    #[error(
        "tensor {name:?} needs data bytes {start}..{end} of the data \
         section, which has only {available} bytes (truncated file?)"
    )]
    TensorOutOfBounds {
        /// The tensor.
        name: String,
        /// Start of its data, relative to the data section.
        start: u64,
        /// End (exclusive) of its data; `u64::MAX` if it overflowed.
        end: u64,
        /// Length of the data section.
        available: u64,
    },
    /// The data of two tensors overlap.
    #[error(
        "tensors {first:?} and {second:?} overlap in the data section \
         (second starts at {at}, first ends at {first_end})"
    )]
    TensorOverlap {
        /// The tensor that starts first.
        first: String,
        /// The tensor that starts inside it.
        second: String,
        /// Start of `second`, relative to the data section.
        at: u64,
        /// End of `first`, relative to the data section.
        first_end: u64,
    },
    /// The tensor has a type this reader keeps only as opaque bytes.
    #[error(
        "tensor {name:?} has ggml type id {id}, which Ryot does not \
         support{hint}"
    )]
    UnsupportedTensorType {
        /// The tensor.
        name: String,
        /// Its raw ggml type id.
        id: u32,
        /// Extra advice (empty, or a sentence starting with "; ").
        hint: &'static str,
    },
    /// No tensor has this name.
    #[error("no tensor named {name:?} in the file")]
    TensorNotFound {
        /// The name asked for.
        name: String,
    },
    /// No metadata entry has this key.
    #[error("metadata key {key:?} is missing")]
    MissingKey {
        /// The key asked for.
        key: String,
    },
    /// A metadata entry has another type than the one asked for.
    #[error("metadata key {key:?} has type {got}, expected {expected}")]
    WrongType {
        /// The key.
        key: String,
        /// The type asked for.
        expected: &'static str,
        /// The type found.
        got: ValueType,
    },
}
