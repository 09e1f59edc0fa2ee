//! Embedding codecs, pipelines and an on-disk index with rescoring.
//!
//! Vectors come in as `.npy` float32 matrices ([`npy`]). A pipeline
//! ([`Pipeline`]), described by a spec string such as `pca:128>rabitq:2`,
//! is a chain of trained transforms (PCA, Matryoshka prefix, random or
//! OPQ rotation) ending in one quantizer (int8/int4, binary sign codes,
//! PQ, RaBitQ, sparse top-k, or f32). Every quantizer implements
//! [`codec::Codec`]: trained on a sample, serialisable, and able to score
//! a query against its codes. [`index::Index`] stores codes with ids in a
//! versioned, checksummed file and can rescore the top candidates from an
//! int8 or f32 second tier.
#![deny(missing_docs)]
// Numeric kernels read more clearly with explicit index loops.
#![allow(clippy::needless_range_loop)]

pub mod bytes;
pub mod codec;
pub mod container;
pub mod entropy;
pub mod error;
pub mod index;
pub mod kernels;
pub mod kmeans;

pub mod matrix;
pub mod npy;
pub mod pipeline;
pub mod rng;
pub mod search;
pub mod spec;
pub mod suggest;

pub use error::{Error, Result};
pub use index::{Index, TierKind};
pub use matrix::Matrix;
pub use pipeline::{Pipeline, TrainOptions};
pub use spec::Spec;
