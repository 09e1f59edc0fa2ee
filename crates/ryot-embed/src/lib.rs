//! Sentence-transformers BERT encoders in Rust: text in, vectors out.
//!
//! [`Model::load`] reads a sentence-transformers folder (`config.json`,
//! `model.safetensors`, `tokenizer.json`, `modules.json`,
//! `sentence_bert_config.json`, the pooling config); [`Model::embed`]
//! tokenizes, batches (sorted by length, packed without padding), runs the
//! encoder with its linear layers on `ryot_kernels::matmul` and the
//! persistent thread pool, pools and normalises.
//!
//! ```no_run
//! use ryot_embed::{EmbedOptions, Model};
//! let model = Model::load("all-MiniLM-L6-v2".as_ref())?;
//! let e = model.embed(&["a dog", "a cat"], &EmbedOptions::default(), &|_| {})?;
//! assert_eq!(e.row(0).len(), model.dim());
//! # Ok::<(), ryot_embed::EmbedError>(())
//! ```
#![deny(missing_docs)]

pub mod config;
pub mod error;
mod forward;
pub mod input;
pub mod model;
pub mod npy;
mod ops;
pub mod pull;
pub mod tokenize;
pub mod weights;

pub use config::{Activation, BertConfig, ModelConfig, Pooling};
pub use error::{EmbedError, ErrorKind};
pub use model::{EmbedOptions, Embeddings, Model};
pub use pull::{pull_minilm, resolve_model};
pub use ryot_kernels::tune::ryot_home;
pub use tokenize::{TextTokenizer, Tokens};
pub use weights::Precision;
