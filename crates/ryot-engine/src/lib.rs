//! Running a model: samplers, the generation loop, perplexity, and
//! random-weight model files for benchmarks.
//!
//! The engine sits between `ryot-model` (one forward pass) and the CLI:
//! [`generate`] prefills a prompt and decodes token by token through a
//! [`Sampler`], handing each token to a callback (the CLI streams text and
//! checks stop strings there); [`perplexity`] reproduces
//! `llama-perplexity`'s scoring; [`synth::write_synth`] writes seeded random-weight GGUF
//! files with a real model's shapes.
#![deny(missing_docs)]

pub mod error;
pub mod generate;
pub mod perplexity;
pub mod sampler;
pub mod synth;

pub use error::{EngineError, Result};
pub use generate::{
    Control, GenerationStats, PREFILL_BATCH, StopReason, generate, prefill,
};
pub use perplexity::{Perplexity, log_softmax, perplexity};
pub use sampler::{Sampler, SamplerConfig, argmax};
pub use synth::{SHAPES, Shape, write_synth};
