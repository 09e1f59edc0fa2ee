//! The engine's error type.

use ryot_model::ModelError;

/// Why generation, scoring or file writing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A sampler setting is out of range.
    #[error("bad sampler setting: {0}")]
    InvalidSampler(String),
    /// The model produced NaN logits.
    #[error("the model produced NaN logits (corrupt weights?)")]
    NonFinite,
    /// The prompt does not fit in the context.
    #[error(
        "the prompt has {prompt} tokens but the context holds {n_ctx} \
         (use a larger --ctx, or --truncate to keep the prompt's end)"
    )]
    PromptTooLong {
        /// Prompt tokens.
        prompt: usize,
        /// Context size.
        n_ctx: usize,
    },
    /// Too few tokens to score.
    #[error(
        "the text has {tokens} tokens, fewer than 2 x the context ({ctx}) \
         that perplexity needs"
    )]
    TextTooShort {
        /// Tokens in the text.
        tokens: usize,
        /// Context size.
        ctx: usize,
    },
    /// Any other bad argument.
    #[error("{0}")]
    Invalid(String),
    /// Writing a file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
