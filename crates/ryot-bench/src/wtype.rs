//! The weight types the kernel benchmark sweeps, and how each is built
//! from f32 weights.

use ryot_kernels::{TernaryPanels, Weights};
use ryot_quant::QuantType;

use crate::error::BenchError;

/// A benchmarked weight type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WType {
    /// GGUF TQ2_0, native kernel.
    Tq2_0,
    /// GGUF TQ1_0, native kernel.
    Tq1_0,
    /// bitnet.cpp I2_S, native kernel.
    I2s,
    /// Ryot's own ternary panel layout (repacked from TQ2_0).
    T2p,
    /// GGUF Q4_0.
    Q4_0,
    /// GGUF Q8_0.
    Q8_0,
    /// f16.
    F16,
    /// f32.
    F32,
    /// bf16.
    Bf16,
    /// GGUF Q4_1.
    Q4_1,
    /// GGUF Q5_0.
    Q5_0,
    /// GGUF Q4_K.
    Q4K,
    /// GGUF Q6_K.
    Q6K,
}

impl WType {
    /// Types outside the default sweep, available through `--types`.
    pub const EXTRA: [WType; 5] =
        [WType::Bf16, WType::Q4_1, WType::Q5_0, WType::Q4K, WType::Q6K];

    /// The default sweep (the list), in table order.
    pub const ALL: [WType; 8] = [
        WType::T2p,
        WType::Tq2_0,
        WType::I2s,
        WType::Tq1_0,
        WType::Q4_0,
        WType::Q8_0,
        WType::F16,
        WType::F32,
    ];

    /// The name in tables, JSON and `--types`.
    pub const fn name(self) -> &'static str {
        match self {
            WType::Tq2_0 => "tq2_0",
            WType::Tq1_0 => "tq1_0",
            WType::I2s => "i2_s",
            WType::T2p => "t2p",
            WType::Q4_0 => "q4_0",
            WType::Q8_0 => "q8_0",
            WType::F16 => "f16",
            WType::F32 => "f32",
            WType::Bf16 => "bf16",
            WType::Q4_1 => "q4_1",
            WType::Q5_0 => "q5_0",
            WType::Q4K => "q4_k",
            WType::Q6K => "q6_k",
        }
    }

    /// Parses a name (case-insensitive).
    pub fn parse(s: &str) -> Result<WType, BenchError> {
        let all = WType::ALL.into_iter().chain(WType::EXTRA);
        all.clone()
            .find(|t| t.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                let names: Vec<_> = all.map(|t| t.name()).collect();
                BenchError::Config(format!(
                    "unknown weight type {s:?}; expected one of {}",
                    names.join(", ")
                ))
            })
    }

    /// Whether the type holds ternary weights.
    pub const fn is_ternary(self) -> bool {
        matches!(self, WType::Tq2_0 | WType::Tq1_0 | WType::I2s | WType::T2p)
    }

    /// Whether the kernel multiplies int8 activations (so its GEMM speed
    /// compares with the int8 peak).
    pub const fn is_integer(self) -> bool {
        !matches!(self, WType::F16 | WType::F32 | WType::Bf16)
    }

    fn quant_type(self) -> QuantType {
        match self {
            WType::Tq2_0 | WType::T2p => QuantType::TQ2_0,
            WType::Tq1_0 => QuantType::TQ1_0,
            WType::I2s => QuantType::I2_S,
            WType::Q4_0 => QuantType::Q4_0,
            WType::Q8_0 => QuantType::Q8_0,
            WType::F16 => QuantType::F16,
            WType::F32 => QuantType::F32,
            WType::Bf16 => QuantType::BF16,
            WType::Q4_1 => QuantType::Q4_1,
            WType::Q5_0 => QuantType::Q5_0,
            WType::Q4K => QuantType::Q4_K,
            WType::Q6K => QuantType::Q6_K,
        }
    }

    /// Why this type cannot hold an `m x k` matrix, if it cannot (GGUF
    /// blocks need `k` to be a multiple of the block length).
    pub fn unsupported_reason(self, k: usize) -> Option<String> {
        if self == WType::T2p {
            return None;
        }
        let block = self.quant_type().block_elems();
        (!k.is_multiple_of(block))
            .then(|| format!("k = {k} is not a multiple of {block}"))
    }

    /// Quantizes `w` (`m x k` f32) to this type's GGUF bytes and prepares
    /// it for the kernels. t2p is quantized BitNet-style (absmean, one
    /// scale per tensor), which is what repacking a BitNet TQ2_0 or I2_S
    /// tensor gives, for any `k`.
    pub fn build(
        self,
        w: &[f32],
        m: usize,
        k: usize,
    ) -> Result<Weights, BenchError> {
        if self == WType::T2p {
            return Ok(Weights::T2p(TernaryPanels::quantize_absmean(w, m, k)?));
        }
        let ty = self.quant_type();
        let bytes = ryot_quant::quantize(ty, w, m, k)?;
        Ok(Weights::from_gguf(ty, &bytes, m, k)?)
    }
}

/// Seeded weights for a benchmark shape: BitNet-style ternary values
/// (`{-s, 0, s}`, about a third each) for ternary types, roughly normal
/// values otherwise.
pub fn synthetic_weights(
    m: usize,
    k: usize,
    ternary: bool,
    seed: u64,
) -> Vec<f32> {
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..m * k)
        .map(|_| {
            let r = next();
            if ternary {
                (r % 3) as f32 * 0.05 - 0.05
            } else {
                let u = |x: u64| (x & 0xFFFF) as f32 / 65536.0 - 0.5;
                (u(r) + u(r >> 16) + u(r >> 32) + u(r >> 48)) * 0.1
            }
        })
        .collect()
}
