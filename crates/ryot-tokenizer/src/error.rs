//! The error type of tokenizer construction.

use thiserror::Error;

/// Why a tokenizer could not be built from a GGUF file's metadata.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TokenizerError {
    /// A required metadata key is absent.
    #[error("GGUF metadata has no `{key}`; the file carries no tokenizer")]
    MissingKey {
        /// The key.
        key: String,
    },
    /// A metadata value has the wrong type.
    #[error("GGUF metadata `{key}` should be {expected}")]
    WrongType {
        /// The key.
        key: String,
        /// What was expected.
        expected: &'static str,
    },
    /// `tokenizer.ggml.model` names a tokenizer Ryot does not implement.
    #[error(
        "unsupported tokenizer model `{model}` (supported: llama, gpt2, bert)"
    )]
    UnknownModel {
        /// The model name.
        model: String,
    },
    /// `tokenizer.ggml.pre` names a pre-tokenizer Ryot does not implement.
    #[error("unsupported BPE pre-tokenizer `{pre}`")]
    UnknownPreTokenizer {
        /// The pre-tokenizer name.
        pre: String,
    },
    /// A per-token array is shorter than the token list.
    #[error("`{key}` has {len} entries but there are {n_tokens} tokens")]
    LengthMismatch {
        /// The key.
        key: String,
        /// Its length.
        len: usize,
        /// The number of tokens.
        n_tokens: usize,
    },
    /// The same token text appears twice.
    #[error("duplicate token {text:?} (ids {first} and {second})")]
    DuplicateToken {
        /// The token text.
        text: String,
        /// The first id.
        first: u32,
        /// The second id.
        second: u32,
    },
    /// The vocabulary has no tokens, or too many for 32-bit ids.
    #[error("bad vocabulary size {0}")]
    VocabSize(usize),
    /// An `add_*_token` flag is set but the token it adds is not defined.
    #[error("{flag} is true but the model defines no such token")]
    MissingSpecialToken {
        /// The flag key.
        flag: &'static str,
    },
    /// A pre-tokenizer regex failed to compile (a bug in Ryot).
    #[error("pre-tokenizer regex {pattern:?} does not compile: {message}")]
    Regex {
        /// The regex.
        pattern: String,
        /// The compiler's message.
        message: String,
    },
}
