//! The model crate's error type.

use ryot_gguf::GgufError;
use ryot_kernels::KernelError;
use ryot_quant::QuantError;

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The file's `general.architecture` is not one Ryot implements.
    #[error(
        "unsupported architecture {arch:?}: Ryot runs llama, qwen2, bitnet \
         and bitnet-b1.58"
    )]
    UnsupportedArch {
        /// The architecture string found (empty if the key is missing).
        arch: String,
    },
    /// A required metadata key is missing or has a bad value.
    #[error("bad model metadata: {0}")]
    Metadata(String),
    /// A tensor the architecture needs is not in the file.
    #[error(
        "missing tensor {name:?} (the file is incomplete or not a {arch} model)"
    )]
    MissingTensor {
        /// Tensor name.
        name: String,
        /// Architecture being loaded.
        arch: String,
    },
    /// A tensor has the wrong shape.
    #[error("tensor {name:?} has shape {got:?}, expected {expected:?}")]
    BadShape {
        /// Tensor name.
        name: String,
        /// Shape the architecture implies (GGUF order: row length first).
        expected: Vec<u64>,
        /// Shape in the file.
        got: Vec<u64>,
    },
    /// A tensor's type has no kernel here.
    #[error("tensor {name:?} has type {ty}, which Ryot cannot run: {why}")]
    UnsupportedType {
        /// Tensor name.
        name: String,
        /// Type name.
        ty: String,
        /// Why.
        why: String,
    },
    /// A token id is outside the vocabulary.
    #[error("token id {id} is out of range (vocabulary size {n_vocab})")]
    BadToken {
        /// The id.
        id: u32,
        /// Vocabulary size.
        n_vocab: usize,
    },
    /// The KV cache has no room for the tokens.
    #[error(
        "context full: {have} tokens are cached and {add} more do not fit in \
         a context of {n_ctx} (use a larger --ctx, or --truncate)"
    )]
    ContextFull {
        /// Tokens already cached.
        have: usize,
        /// Tokens being added.
        add: usize,
        /// Context size.
        n_ctx: usize,
    },
    /// A bad argument (zero threads, empty batch, ...).
    #[error("{0}")]
    Invalid(String),
    /// The GGUF reader failed.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// A kernel failed.
    #[error(transparent)]
    Kernel(#[from] KernelError),
    /// Dequantization failed.
    #[error(transparent)]
    Quant(#[from] QuantError),
}

/// Shorthand for results of this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
