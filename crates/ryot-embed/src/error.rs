//! The crate's error type: what went wrong, phrased so a user can act.

use std::path::PathBuf;

/// An error from loading, running or installing an embedding model.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct EmbedError {
    kind: ErrorKind,
}

/// What kind of error an [`EmbedError`] is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The model folder, or a file it must contain, does not exist.
    #[error(
        "{path} not found: {what} (a sentence-transformers folder needs \
         config.json, model.safetensors and tokenizer.json; `ryot pull \
         minilm` installs all-MiniLM-L6-v2)"
    )]
    Missing {
        /// The path looked for.
        path: PathBuf,
        /// What it should have been.
        what: &'static str,
    },
    /// A file of the model folder could not be parsed.
    #[error("{path}: {msg}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// The folder holds a model this crate cannot run.
    #[error("{path}: unsupported model: {msg}")]
    Unsupported {
        /// The file that says so (usually `config.json`).
        path: PathBuf,
        /// Why.
        msg: String,
    },
    /// An I/O error on a path.
    #[error("{path}: {source}")]
    Io {
        /// The path being read or written.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The tokenizer failed on an input text.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A kernel rejected its inputs (a bug, or non-finite weights).
    #[error(transparent)]
    Kernel(#[from] ryot_kernels::KernelError),
    /// An input file (texts) is malformed.
    #[error("{path}:{line}: {msg}")]
    Input {
        /// The input file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// Installing a model failed.
    #[error("pull: {0}")]
    Pull(String),
    /// A caller-supplied argument is out of range.
    #[error("{0}")]
    Invalid(String),
}

impl EmbedError {
    /// Wraps a kind.
    pub fn new(kind: ErrorKind) -> Self {
        EmbedError { kind }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    pub(crate) fn missing(
        path: impl Into<PathBuf>,
        what: &'static str,
    ) -> Self {
        Self::new(ErrorKind::Missing { path: path.into(), what })
    }

    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        msg: impl Into<String>,
    ) -> Self {
        Self::new(ErrorKind::Corrupt { path: path.into(), msg: msg.into() })
    }

    pub(crate) fn unsupported(
        path: impl Into<PathBuf>,
        msg: impl Into<String>,
    ) -> Self {
        Self::new(ErrorKind::Unsupported { path: path.into(), msg: msg.into() })
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::new(ErrorKind::Io { path: path.into(), source })
    }

    pub(crate) fn pull(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::Pull(msg.into()))
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid(msg.into()))
    }
}

impl From<ryot_kernels::KernelError> for EmbedError {
    fn from(e: ryot_kernels::KernelError) -> Self {
        Self::new(ErrorKind::Kernel(e))
    }
}
