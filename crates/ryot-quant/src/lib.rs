//! ryot-quant: the GGML/GGUF block formats (and bitnet.cpp's I2_S) as plain
//! data, with scalar quantizers and dequantizers that are bit-exact with
//! llama.cpp and gguf-py.
//!
//! This crate is the reference for formats: no SIMD, no threads, no
//! `unsafe`. The kernels crate checks its SIMD code against these
//! functions, a GGUF reader uses [`QuantType`] for sizes, and an engine can
//! dequantize with it.
//!
//! * [`blocks`]: `#[repr(C)]` block structs (`BlockQ4K`, `BlockTQ2_0`,
//!   `BlockQ8K`, ...) that cast from file bytes with `bytemuck`.
//! * [`QuantType`]: ggml ids, names and block geometry.
//! * [`dequantize_row`] / [`quantize_row`]: one row as bytes;
//!   [`dequantize`] / [`quantize`]: a whole `[rows, k]` tensor (including
//!   I2_S); [`dequantize_blocks`] / [`quantize_blocks`]: typed blocks.
//! * [`i2s`]: bitnet.cpp's I2_S layout, its absmean ternarization and a
//!   bit-exact scalar model of its AVX2 dot product.
//! * [`act`]: activation quantizers (Q8_0, Q8_1, Q8_K, bitnet's I8_S).
//!
//! Quantizers are llama.cpp's reference (non-imatrix) algorithms, as
//! `ggml_quantize_chunk(type, src, dst, 0, rows, k, NULL)` runs them at
//! llama.cpp commit `34af94cd9ab277632e27caeec2d41de2fd091b31`; the float
//! operations are done in the same order so the bytes match.
//! They reject NaN and infinities ([`QuantErrorKind::NonFinite`]) where
//! llama.cpp would write garbage blocks.
//!
//! ```
//! use ryot_quant::{QuantType, dequantize_row, quantize_row};
//!
//! let x: Vec<f32> = (0..256).map(|i| (i as f32 * 0.1).sin()).collect();
//! let ty: QuantType = "q4_k".parse()?;
//! let mut bytes = vec![0u8; ty.row_bytes(x.len())?];
//! quantize_row(ty, &x, &mut bytes)?;
//! let mut y = vec![0.0f32; x.len()];
//! dequantize_row(ty, &bytes, &mut y)?;
//! // 4-bit codes over a range of 2: at most about half a step (1/15) off.
//! assert!(x.iter().zip(&y).all(|(a, b)| (a - b).abs() < 0.1));
//! # Ok::<(), ryot_quant::QuantError>(())
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

#[cfg(target_endian = "big")]
compile_error!("ryot-quant reads little-endian ggml blocks in place");

pub mod act;
pub mod blocks;
pub mod i2s;

mod error;
mod float;
mod kquants;
mod ksearch;
mod legacy;
mod row;
mod ternary;
mod types;
mod util;

pub use blocks::{
    BlockQ2K, BlockQ3K, BlockQ4_0, BlockQ4_1, BlockQ4K, BlockQ5_0, BlockQ5_1,
    BlockQ5K, BlockQ6K, BlockQ8_0, BlockQ8_1, BlockQ8K, BlockTQ1_0, BlockTQ2_0,
    QuantBlock,
};
pub use error::{QuantError, QuantErrorKind};
pub use row::{
    dequantize, dequantize_blocks, dequantize_row, quantize, quantize_blocks,
    quantize_row,
};
pub use types::QuantType;
