//! Shared pieces of the language-model commands: loading a GGUF model with
//! its tokenizer, and the model flags.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use ryot_gguf::Gguf;
use ryot_model::{KvType, LoadOptions, Model, TernaryLayout};
use ryot_tokenizer::Tokenizer;

/// Flags shared by every command that runs a model.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// The GGUF model file.
    #[arg(short = 'm', long = "model")]
    pub model: PathBuf,
    /// Threads (default: all cores).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
    /// KV cache type: f16 (llama.cpp's default), f32, or q8 (int8 with a
    /// scale per 32 values: half the memory, approximate).
    #[arg(long, default_value = "f16")]
    pub kv_type: String,
    /// Layout of ternary weights: panels (Ryot's repacked layout,
    /// fastest) or native (the file's blocks).
    #[arg(long, default_value = "panels")]
    pub ternary: String,
}

/// A model with its tokenizer and settings.
pub struct Loaded {
    pub model: Model,
    pub tokenizer: Tokenizer,
    pub kv: KvType,
}

impl ModelArgs {
    /// Threads to use, checked.
    pub fn threads(&self) -> anyhow::Result<usize> {
        let max = std::thread::available_parallelism().map_or(1, |n| n.get());
        match self.threads {
            None => Ok(max),
            Some(0) => bail!("--threads must be at least 1"),
            Some(t) if t > 256 => {
                bail!("--threads {t} is out of range (1..=256)")
            }
            Some(t) => Ok(t),
        }
    }

    /// Opens the file and loads the model and its tokenizer.
    pub fn load(&self) -> anyhow::Result<Loaded> {
        let kv = KvType::from_name(&self.kv_type).with_context(|| {
            format!("--kv-type {:?}: expected f16, f32 or q8", self.kv_type)
        })?;
        let ternary = match self.ternary.as_str() {
            "panels" => TernaryLayout::Panels,
            "native" => TernaryLayout::Native,
            other => bail!("--ternary {other:?}: expected panels or native"),
        };
        let threads = self.threads()?;
        let path = resolve_model(&self.model)?;
        let g = Gguf::open(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let tokenizer = Tokenizer::from_gguf(&g).with_context(|| {
            format!("building the tokenizer of {}", path.display())
        })?;
        let model = Model::load(&g, LoadOptions { ternary }, threads)
            .with_context(|| format!("loading {}", path.display()))?;
        Ok(Loaded { model, tokenizer, kv })
    }
}

/// The model path as given, or a file of that name under
/// `$RYOT_HOME/models`.
pub fn resolve_model(p: &Path) -> anyhow::Result<PathBuf> {
    if p.exists() {
        return Ok(p.to_path_buf());
    }
    let home = ryot_home();
    let cand = home.join("models").join(p);
    if cand.is_file() {
        return Ok(cand);
    }
    bail!(
        "model file {} not found (nor under {}); give a path to a GGUF file",
        p.display(),
        home.join("models").display()
    )
}

pub use ryot_paths::ryot_home;
