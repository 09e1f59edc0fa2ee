//! Transformer language models over Ryot's kernels.
//!
//! [`Model::load`] reads a GGUF file's hyper-parameters ([`ModelConfig`])
//! and tensors ([`ModelWeights`]), preparing each matrix for the kernels of
//! `ryot-kernels`. [`Model::forward`] runs a batch of tokens after those in
//! a [`KvCache`] and returns logits: prefill is one call with many tokens
//! (GEMM), decode one call per token (GEMV); a row's result does not
//! depend on the batch it was computed in.
//!
//! Architectures: `llama`, `qwen2`, llama.cpp's `bitnet`, and bitnet.cpp's
//! `bitnet-b1.58` ([`Arch`]).
#![deny(missing_docs)]

pub(crate) mod attn;
pub mod config;
pub mod error;
pub mod kv;
pub mod model;
pub mod ops;
mod par;
pub mod weights;

pub use config::{Arch, FfnAct, ModelConfig, RopeKind};
pub use error::{ModelError, Result};
pub use kv::{KvCache, KvType};
pub use model::{Logits, Model};
pub use weights::{
    Linear, LoadOptions, ModelWeights, Part, Projections, TernaryLayout,
};
