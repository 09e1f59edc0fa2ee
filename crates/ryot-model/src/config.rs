//! Hyper-parameters read from GGUF metadata, checked before any tensor is
//! touched.

use ryot_gguf::{Gguf, Value};

use crate::error::{ModelError, Result};

/// The architectures Ryot implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// `llama` (also SmolLM2, Llama 3): RMSNorm, normal RoPE, SwiGLU.
    Llama,
    /// `qwen2`: llama with Q/K/V biases and NEOX RoPE.
    Qwen2,
    /// llama.cpp's `bitnet`: ternary linears with per-tensor scales,
    /// attention and FFN sub-norms, SwiGLU, NEOX RoPE.
    Bitnet,
    /// bitnet.cpp's `bitnet-b1.58` / `bitnet-25`: as [`Arch::Bitnet`] but
    /// with a squared-ReLU gated FFN and I2_S weights.
    BitnetB158,
}

impl Arch {
    /// Parses `general.architecture`.
    pub fn from_name(name: &str) -> Option<Arch> {
        Some(match name {
            "llama" => Arch::Llama,
            "qwen2" => Arch::Qwen2,
            "bitnet" => Arch::Bitnet,
            "bitnet-b1.58" | "bitnet-25" => Arch::BitnetB158,
            _ => return None,
        })
    }

    /// How RoPE pairs dimensions in this architecture.
    pub fn rope_kind(self) -> RopeKind {
        match self {
            Arch::Llama => RopeKind::Normal,
            Arch::Qwen2 | Arch::Bitnet | Arch::BitnetB158 => RopeKind::Neox,
        }
    }

    /// Whether this architecture has the BitNet sub-norms before the
    /// attention output and FFN down projections.
    pub fn has_sub_norms(self) -> bool {
        matches!(self, Arch::Bitnet | Arch::BitnetB158)
    }

    /// The gate activation of the FFN.
    pub fn ffn_act(self) -> FfnAct {
        match self {
            Arch::BitnetB158 => FfnAct::ReluSqr,
            _ => FfnAct::Silu,
        }
    }
}

/// RoPE dimension pairing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeKind {
    /// Adjacent pairs `(2i, 2i+1)` (llama).
    Normal,
    /// Split halves `(i, i + d/2)` (GPT-NeoX, qwen2, bitnet).
    Neox,
}

/// The gate activation of a gated FFN: `act(gate(x)) * up(x)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FfnAct {
    /// `x * sigmoid(x)`.
    Silu,
    /// `max(x, 0)^2`.
    ReluSqr,
}

/// A model's hyper-parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// Architecture.
    pub arch: Arch,
    /// The `general.architecture` string (metadata key prefix).
    pub arch_name: String,
    /// Hidden width.
    pub n_embd: usize,
    /// FFN width.
    pub n_ff: usize,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads (GQA when fewer than `n_head`).
    pub n_head_kv: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Dimensions of each head that RoPE rotates.
    pub rope_dims: usize,
    /// RoPE base frequency.
    pub rope_base: f32,
    /// RMSNorm epsilon.
    pub rms_eps: f32,
    /// The context length the model was trained with.
    pub n_ctx_train: usize,
    /// Vocabulary size (rows of the token embedding).
    pub n_vocab: usize,
}

impl ModelConfig {
    /// Reads and checks the hyper-parameters of `g`.
    pub fn from_gguf(g: &Gguf) -> Result<ModelConfig> {
        let arch_name = g.architecture().unwrap_or("").to_string();
        let arch = Arch::from_name(&arch_name).ok_or_else(|| {
            ModelError::UnsupportedArch { arch: arch_name.clone() }
        })?;
        let md = g.metadata();
        let key = |k: &str| format!("{arch_name}.{k}");
        let uint = |k: &str| -> Result<Option<usize>> {
            match md.get(&key(k)) {
                None => Ok(None),
                Some(_) => md
                    .get_uint(&key(k))
                    .map(|v| Some(v as usize))
                    .map_err(|e| ModelError::Metadata(e.to_string())),
            }
        };
        let need = |k: &str| -> Result<usize> {
            uint(k)?.ok_or_else(|| {
                ModelError::Metadata(format!("missing key {}", key(k)))
            })
        };
        let float = |k: &str| -> Result<Option<f32>> {
            match md.get(&key(k)) {
                None => Ok(None),
                Some(Value::F32(v)) => Ok(Some(*v)),
                Some(Value::F64(v)) => Ok(Some(*v as f32)),
                Some(other) => Err(ModelError::Metadata(format!(
                    "{} has type {:?}, expected a float",
                    key(k),
                    other.ty()
                ))),
            }
        };
        let n_embd = need("embedding_length")?;
        let n_ff = need("feed_forward_length")?;
        let n_layer = need("block_count")?;
        let n_head = need("attention.head_count")?;
        let n_head_kv = uint("attention.head_count_kv")?.unwrap_or(n_head);
        let n_ctx_train = uint("context_length")?.unwrap_or(0);
        if n_head == 0 || n_head_kv == 0 || n_head % n_head_kv != 0 {
            return Err(ModelError::Metadata(format!(
                "head counts {n_head} (query) and {n_head_kv} (key/value) \
                 must be positive, the first a multiple of the second"
            )));
        }
        let head_dim = match uint("attention.key_length")? {
            Some(d) => d,
            None if n_embd % n_head == 0 => n_embd / n_head,
            None => {
                return Err(ModelError::Metadata(format!(
                    "embedding width {n_embd} is not a multiple of {n_head} \
                     heads"
                )));
            }
        };
        let rope_dims = uint("rope.dimension_count")?.unwrap_or(head_dim);
        if rope_dims > head_dim || rope_dims % 2 != 0 {
            return Err(ModelError::Metadata(format!(
                "rope.dimension_count {rope_dims} must be even and at most \
                 the head width {head_dim}"
            )));
        }
        let rope_base = float("rope.freq_base")?.unwrap_or(10000.0);
        let rms_eps =
            float("attention.layer_norm_rms_epsilon")?.unwrap_or(1e-5);
        let embd = g.tensor("token_embd.weight").ok_or_else(|| {
            ModelError::MissingTensor {
                name: "token_embd.weight".into(),
                arch: arch_name.clone(),
            }
        })?;
        let n_vocab = embd.n_rows() as usize;
        if n_embd == 0 || n_ff == 0 || n_layer == 0 || n_vocab == 0 {
            return Err(ModelError::Metadata(
                "zero width, FFN width, layer count or vocabulary".into(),
            ));
        }
        let sane = rope_base.is_finite()
            && rope_base > 0.0
            && rms_eps.is_finite()
            && rms_eps >= 0.0;
        if !sane {
            return Err(ModelError::Metadata(format!(
                "bad rope base {rope_base} or RMS epsilon {rms_eps}"
            )));
        }
        Ok(ModelConfig {
            arch,
            arch_name,
            n_embd,
            n_ff,
            n_layer,
            n_head,
            n_head_kv,
            head_dim,
            rope_dims,
            rope_base,
            rms_eps,
            n_ctx_train,
            n_vocab,
        })
    }

    /// Width of the query projection output.
    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }

    /// Width of the key and value projection outputs.
    pub fn kv_dim(&self) -> usize {
        self.n_head_kv * self.head_dim
    }
}
