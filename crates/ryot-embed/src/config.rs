//! Reading a sentence-transformers folder's JSON files: the BERT
//! hyper-parameters (`config.json`), the sequence limit
//! (`sentence_bert_config.json`), the pipeline (`modules.json`) and the
//! pooling (`1_Pooling/config.json` or wherever `modules.json` points).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::error::EmbedError;

/// The activation of BERT's feed-forward block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `x * Φ(x)` with the exact (erf) normal CDF (`"gelu"`).
    Gelu,
    /// The tanh approximation (`"gelu_new"`, `"gelu_pytorch_tanh"`).
    GeluTanh,
    /// `max(x, 0)`.
    Relu,
}

/// BERT hyper-parameters from `config.json`.
#[derive(Clone, Debug)]
pub struct BertConfig {
    /// Vocabulary size (rows of the word embedding table).
    pub vocab_size: usize,
    /// Hidden size `d`.
    pub hidden_size: usize,
    /// Encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer (`d` must be a multiple of it).
    pub num_attention_heads: usize,
    /// Width of the feed-forward block.
    pub intermediate_size: usize,
    /// Rows of the position embedding table.
    pub max_position_embeddings: usize,
    /// Rows of the token-type embedding table.
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f32,
    /// Feed-forward activation.
    pub activation: Activation,
}

/// How token vectors become one sentence vector (`1_Pooling/config.json`).
/// When several modes are on, their results are concatenated in the order
/// CLS, mean, max, mean-sqrt-len, as sentence-transformers does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pooling {
    /// The first token's vector.
    pub cls: bool,
    /// The mean over the text's tokens.
    pub mean: bool,
    /// The element-wise maximum over the text's tokens.
    pub max: bool,
    /// The sum over the tokens divided by the square root of their count.
    pub mean_sqrt_len: bool,
}

impl Pooling {
    /// Mean pooling only (sentence-transformers' default).
    pub const MEAN: Pooling =
        Pooling { cls: false, mean: true, max: false, mean_sqrt_len: false };

    /// How many hidden-size blocks the pooled vector has.
    pub fn modes(&self) -> usize {
        [self.cls, self.mean, self.max, self.mean_sqrt_len]
            .iter()
            .filter(|&&b| b)
            .count()
    }
}

/// Everything read from a model folder's JSON files.
#[derive(Clone, Debug)]
pub struct ModelConfig {
    /// The folder.
    pub dir: PathBuf,
    /// BERT hyper-parameters.
    pub bert: BertConfig,
    /// Longest input in tokens, [CLS] and [SEP] included; longer texts are
    /// truncated.
    pub max_seq_length: usize,
    /// Whether sentence-transformers lower-cases texts before tokenizing.
    pub do_lower_case: bool,
    /// Pooling.
    pub pooling: Pooling,
    /// Whether the pipeline ends with L2 normalisation.
    pub normalize: bool,
}

impl ModelConfig {
    /// The sentence vector's length.
    pub fn dim(&self) -> usize {
        self.bert.hidden_size * self.pooling.modes()
    }

    /// Reads the JSON files of the folder `dir`.
    pub fn read(dir: &Path) -> Result<Self, EmbedError> {
        if !dir.is_dir() {
            return Err(EmbedError::missing(dir, "model folder"));
        }
        let bert = read_bert(&dir.join("config.json"))?;
        let (pooling_dir, normalize) = read_modules(dir)?;
        let pooling = match pooling_dir {
            Some(p) => read_pooling(&p.join("config.json"), &bert)?,
            None => Pooling::MEAN,
        };
        let st_path = dir.join("sentence_bert_config.json");
        let (max_seq_length, do_lower_case) = if st_path.is_file() {
            let v: StConfig = read_json(&st_path)?;
            (v.max_seq_length, v.do_lower_case.unwrap_or(false))
        } else {
            (None, false)
        };
        let limit = bert.max_position_embeddings;
        let max_seq_length = max_seq_length.unwrap_or(limit.min(512));
        if max_seq_length < 2 || max_seq_length > limit {
            return Err(EmbedError::corrupt(
                st_path,
                format!(
                    "max_seq_length {max_seq_length} must be between 2 and \
                     max_position_embeddings ({limit})"
                ),
            ));
        }
        Ok(ModelConfig {
            dir: dir.to_path_buf(),
            bert,
            max_seq_length,
            do_lower_case,
            pooling,
            normalize,
        })
    }
}

#[derive(Deserialize)]
struct StConfig {
    max_seq_length: Option<usize>,
    do_lower_case: Option<bool>,
}

#[derive(Deserialize)]
struct RawBert {
    model_type: Option<String>,
    architectures: Option<Vec<String>>,
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    max_position_embeddings: usize,
    type_vocab_size: Option<usize>,
    layer_norm_eps: Option<f64>,
    hidden_act: Option<String>,
    position_embedding_type: Option<String>,
}

/// Reads and checks `config.json`.
fn read_bert(path: &Path) -> Result<BertConfig, EmbedError> {
    if !path.is_file() {
        return Err(EmbedError::missing(path, "the BERT config"));
    }
    let v: Value = read_json(path)?;
    let model_type = v.get("model_type").and_then(Value::as_str);
    if let Some(t) = model_type
        && t != "bert"
    {
        return Err(EmbedError::unsupported(
            path,
            format!("model_type {t:?}; only BERT encoders (\"bert\") run"),
        ));
    }
    let raw: RawBert = serde_json::from_value(v)
        .map_err(|e| EmbedError::corrupt(path, e.to_string()))?;
    let is_bert = raw.model_type.is_some()
        || raw
            .architectures
            .as_ref()
            .is_some_and(|a| a.iter().any(|s| s.starts_with("Bert")));
    if !is_bert {
        return Err(EmbedError::unsupported(
            path,
            "no model_type \"bert\" or Bert* architecture",
        ));
    }
    if let Some(p) = &raw.position_embedding_type
        && p != "absolute"
    {
        return Err(EmbedError::unsupported(
            path,
            format!("position_embedding_type {p:?} (only \"absolute\")"),
        ));
    }
    let activation = match raw.hidden_act.as_deref().unwrap_or("gelu") {
        "gelu" => Activation::Gelu,
        "gelu_new" | "gelu_pytorch_tanh" => Activation::GeluTanh,
        "relu" => Activation::Relu,
        other => {
            return Err(EmbedError::unsupported(
                path,
                format!("hidden_act {other:?} (gelu, gelu_new, relu)"),
            ));
        }
    };
    let c = BertConfig {
        vocab_size: raw.vocab_size,
        hidden_size: raw.hidden_size,
        num_hidden_layers: raw.num_hidden_layers,
        num_attention_heads: raw.num_attention_heads,
        intermediate_size: raw.intermediate_size,
        max_position_embeddings: raw.max_position_embeddings,
        type_vocab_size: raw.type_vocab_size.unwrap_or(2),
        layer_norm_eps: raw.layer_norm_eps.unwrap_or(1e-12) as f32,
        activation,
    };
    let bad = |msg: String| Err(EmbedError::corrupt(path, msg));
    let sizes = [
        c.vocab_size,
        c.hidden_size,
        c.num_hidden_layers,
        c.num_attention_heads,
        c.intermediate_size,
        c.max_position_embeddings,
        c.type_vocab_size,
    ];
    if sizes.iter().any(|&s| s == 0 || s > 1 << 20) {
        return bad(format!("sizes out of range: {sizes:?}"));
    }
    if !c.hidden_size.is_multiple_of(c.num_attention_heads) {
        return bad(format!(
            "hidden_size {} is not a multiple of num_attention_heads {}",
            c.hidden_size, c.num_attention_heads
        ));
    }
    if !(c.layer_norm_eps.is_finite() && c.layer_norm_eps >= 0.0) {
        return bad("layer_norm_eps must be a finite, non-negative".into());
    }
    Ok(c)
}

/// Reads `modules.json`: the pooling folder and whether Normalize is
/// listed. Without `modules.json`, mean pooling and no normalisation
/// (sentence-transformers' behaviour for a plain transformer folder).
fn read_modules(dir: &Path) -> Result<(Option<PathBuf>, bool), EmbedError> {
    let path = dir.join("modules.json");
    if !path.is_file() {
        return Ok((None, false));
    }
    let mods: Vec<Value> = read_json(&path)?;
    let mut pooling = None;
    let mut normalize = false;
    for m in &mods {
        let ty = m.get("type").and_then(Value::as_str).unwrap_or("");
        let sub = m.get("path").and_then(Value::as_str).unwrap_or("");
        let short = ty.rsplit('.').next().unwrap_or(ty);
        match short {
            "Transformer" => {}
            "Pooling" => {
                if sub.contains("..") || Path::new(sub).is_absolute() {
                    return Err(EmbedError::corrupt(
                        &path,
                        format!("pooling path {sub:?} leaves the folder"),
                    ));
                }
                pooling = Some(dir.join(sub));
            }
            "Normalize" => normalize = true,
            _ => {
                return Err(EmbedError::unsupported(
                    &path,
                    format!(
                        "module {ty:?}; only Transformer, Pooling and \
                         Normalize are supported"
                    ),
                ));
            }
        }
    }
    Ok((pooling, normalize))
}

/// Reads a pooling config.
fn read_pooling(path: &Path, bert: &BertConfig) -> Result<Pooling, EmbedError> {
    if !path.is_file() {
        return Err(EmbedError::missing(path, "the pooling config"));
    }
    let v: Value = read_json(path)?;
    let flag = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
    for k in ["pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"] {
        if flag(k) {
            return Err(EmbedError::unsupported(
                path,
                format!("{k} (supported: cls, mean, max, mean_sqrt_len)"),
            ));
        }
    }
    let p = Pooling {
        cls: flag("pooling_mode_cls_token"),
        mean: flag("pooling_mode_mean_tokens"),
        max: flag("pooling_mode_max_tokens"),
        mean_sqrt_len: flag("pooling_mode_mean_sqrt_len_tokens"),
    };
    if p.modes() == 0 {
        return Err(EmbedError::corrupt(path, "no pooling mode is enabled"));
    }
    if let Some(d) = v.get("word_embedding_dimension").and_then(Value::as_u64)
        && d as usize != bert.hidden_size
    {
        return Err(EmbedError::corrupt(
            path,
            format!(
                "word_embedding_dimension {d} differs from hidden_size {}",
                bert.hidden_size
            ),
        ));
    }
    Ok(p)
}

/// Reads and parses a JSON file.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<T, EmbedError> {
    let bytes = std::fs::read(path).map_err(|e| EmbedError::io(path, e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| EmbedError::corrupt(path, format!("bad JSON: {e}")))
}
