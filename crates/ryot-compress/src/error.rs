//! The crate's error type: one enum whose messages say what to fix.

use std::path::PathBuf;

/// Everything that can go wrong while reading vectors, training codecs,
/// parsing specs, or reading and searching an index.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read, written or renamed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// A `.npy` file is not a little-endian C-order array of the expected
    /// dtype and rank.
    #[error("{path}: not a usable .npy file: {msg}")]
    Npy {
        /// The file involved.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// Two arrays that must agree in shape do not.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A vector holds NaN or an infinity.
    #[error("row {row} has a NaN or infinite value (column {col})")]
    NonFinite {
        /// Row index.
        row: usize,
        /// Column index.
        col: usize,
    },
    /// An empty corpus, query set or training sample.
    #[error("{0} is empty")]
    Empty(&'static str),
    /// A pipeline spec string could not be parsed.
    #[error("bad pipeline spec {spec:?}: token {token:?}: {msg}")]
    Spec {
        /// The whole spec.
        spec: String,
        /// The offending token.
        token: String,
        /// What is wrong with it.
        msg: String,
    },
    /// A parameter is out of range (e.g. `k` larger than the corpus).
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// A codec or index file is damaged: bad magic, bad checksum, or a
    /// structure that does not add up.
    #[error("corrupt file: {0}")]
    Corrupt(String),
    /// A codec or index file ends early.
    #[error("truncated file: {0}")]
    Truncated(String),
    /// A file was written by a newer (or unknown) format version.
    #[error(
        "unsupported format version {found} (this build reads {supported})"
    )]
    Version {
        /// The version in the file.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The requested SIMD level is unknown or not supported by this CPU.
    #[error("RYOT_FORCE_ISA={0:?}: unknown or unsupported on this CPU")]
    Isa(String),
}

/// Shorthand for `Result<T, Error>`.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { path: path.into(), source }
    }
}
