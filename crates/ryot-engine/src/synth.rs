//! Seeded random-weight GGUF files with real models' shapes and tensor
//! names, for benchmarks (`ryot synth`). The text such a model writes is
//! meaningless; its speed is that of the real model.

use std::io::Write;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ryot_gguf::{Array, GgufWriter, Value};
use ryot_quant::QuantType;

use crate::error::{EngineError, Result};

/// A real model's shape.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Name used on the command line.
    pub name: &'static str,
    /// `general.architecture`.
    pub arch: &'static str,
    /// Hidden width.
    pub n_embd: usize,
    /// FFN width.
    pub n_ff: usize,
    /// Blocks.
    pub n_layer: usize,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads.
    pub n_head_kv: usize,
    /// Vocabulary.
    pub n_vocab: usize,
    /// Trained context.
    pub n_ctx: usize,
    /// RoPE base.
    pub rope_base: f32,
    /// RMSNorm epsilon.
    pub eps: f32,
    /// Q/K/V biases (qwen2).
    pub qkv_bias: bool,
    /// The token embedding type used with each weight type, as
    /// llama-quantize picks it for this model.
    pub embd_type: fn(QuantType) -> QuantType,
}

/// The shapes `ryot synth` knows.
pub const SHAPES: [Shape; 3] = [
    Shape {
        name: "smollm2-135m",
        arch: "llama",
        n_embd: 576,
        n_ff: 1536,
        n_layer: 30,
        n_head: 9,
        n_head_kv: 3,
        n_vocab: 49152,
        n_ctx: 8192,
        rope_base: 100000.0,
        eps: 1e-5,
        qkv_bias: false,
        embd_type: |_| QuantType::Q8_0,
    },
    Shape {
        name: "qwen2.5-0.5b",
        arch: "qwen2",
        n_embd: 896,
        n_ff: 4864,
        n_layer: 24,
        n_head: 14,
        n_head_kv: 2,
        n_vocab: 151936,
        n_ctx: 32768,
        rope_base: 1000000.0,
        eps: 1e-6,
        qkv_bias: true,
        embd_type: |_| QuantType::Q8_0,
    },
    Shape {
        name: "bitnet-2b",
        arch: "bitnet",
        n_embd: 2560,
        n_ff: 6912,
        n_layer: 30,
        n_head: 20,
        n_head_kv: 5,
        n_vocab: 128256,
        n_ctx: 4096,
        rope_base: 500000.0,
        eps: 1e-5,
        qkv_bias: false,
        // bitnet.cpp keeps the embedding in F16 next to I2_S weights.
        embd_type: |t| match t {
            QuantType::I2_S => QuantType::F16,
            _ => QuantType::Q6_K,
        },
    },
];

/// Looks a shape up by name.
pub fn shape(name: &str) -> Result<&'static Shape> {
    SHAPES.iter().find(|s| s.name == name).ok_or_else(|| {
        let names: Vec<_> = SHAPES.iter().map(|s| s.name).collect();
        EngineError::Invalid(format!(
            "unknown shape {name:?}; known: {}",
            names.join(", ")
        ))
    })
}

/// The type a `k`-wide matrix really gets when `want` is asked for: as
/// llama-quantize does, K-quants fall back when `k` is not a multiple of
/// 256 (Q4_K to Q5_0, Q6_K to Q8_0), ternary types have no fallback.
pub fn matrix_type(want: QuantType, k: usize) -> Result<QuantType> {
    let fits = |t: QuantType| t.row_bytes(k).is_ok();
    if fits(want) {
        return Ok(want);
    }
    let fallback = match want {
        QuantType::Q4_K | QuantType::Q5_K | QuantType::Q3_K => QuantType::Q5_0,
        QuantType::Q6_K | QuantType::Q2_K => QuantType::Q8_0,
        _ => want,
    };
    if fits(fallback) {
        Ok(fallback)
    } else {
        Err(EngineError::Invalid(format!(
            "type {} cannot hold rows of {k} (not a block multiple)",
            want.name()
        )))
    }
}

struct TensorPlan {
    name: String,
    dims: Vec<u64>,
    ty: QuantType,
    kind: Fill,
}

#[derive(Clone, Copy)]
enum Fill {
    /// Random matrix rows (ternary for ternary types).
    Matrix,
    /// Norm weights around 1.
    Norm,
    /// Small biases.
    Bias,
}

/// Writes a random-weight GGUF of `shape` with matrices of type `wtype`
/// to `out` (atomically), seeded by `seed`. `progress(done, total)` is
/// called after each tensor.
pub fn write_synth(
    shape: &Shape,
    wtype: QuantType,
    out: &Path,
    seed: u64,
    mut progress: impl FnMut(usize, usize),
) -> Result<()> {
    let s = shape;
    let head_dim = s.n_embd / s.n_head;
    let kv = s.n_head_kv * head_dim;
    let ternary =
        matches!(wtype, QuantType::TQ1_0 | QuantType::TQ2_0 | QuantType::I2_S);
    // I2_S is bitnet.cpp's format: its files use its `bitnet-b1.58`
    // architecture (squared-ReLU FFN).
    let bitnet_like = matches!(s.arch, "bitnet" | "bitnet-b1.58");
    let arch = if wtype == QuantType::I2_S && s.arch == "bitnet" {
        "bitnet-b1.58"
    } else {
        s.arch
    };
    if wtype == QuantType::I2_S && !bitnet_like {
        return Err(EngineError::Invalid(format!(
            "I2_S weights need a BitNet shape, not {}",
            s.name
        )));
    }
    let mut plan = Vec::new();
    let mat = |plan: &mut Vec<TensorPlan>, name: String, m: usize, k| {
        let ty = matrix_type(wtype, k)?;
        plan.push(TensorPlan {
            name,
            dims: vec![k as u64, m as u64],
            ty,
            kind: Fill::Matrix,
        });
        Ok::<_, EngineError>(())
    };
    let vec = |plan: &mut Vec<TensorPlan>, name: String, n: usize, kind| {
        plan.push(TensorPlan {
            name,
            dims: vec![n as u64],
            ty: QuantType::F32,
            kind,
        });
    };
    plan.push(TensorPlan {
        name: "token_embd.weight".into(),
        dims: vec![s.n_embd as u64, s.n_vocab as u64],
        ty: matrix_type((s.embd_type)(wtype), s.n_embd)?,
        kind: Fill::Matrix,
    });
    vec(&mut plan, "output_norm.weight".into(), s.n_embd, Fill::Norm);
    for i in 0..s.n_layer {
        let p = |n: &str| format!("blk.{i}.{n}");
        vec(&mut plan, p("attn_norm.weight"), s.n_embd, Fill::Norm);
        mat(&mut plan, p("attn_q.weight"), s.n_embd, s.n_embd)?;
        mat(&mut plan, p("attn_k.weight"), kv, s.n_embd)?;
        mat(&mut plan, p("attn_v.weight"), kv, s.n_embd)?;
        if s.qkv_bias {
            vec(&mut plan, p("attn_q.bias"), s.n_embd, Fill::Bias);
            vec(&mut plan, p("attn_k.bias"), kv, Fill::Bias);
            vec(&mut plan, p("attn_v.bias"), kv, Fill::Bias);
        }
        mat(&mut plan, p("attn_output.weight"), s.n_embd, s.n_embd)?;
        vec(&mut plan, p("ffn_norm.weight"), s.n_embd, Fill::Norm);
        mat(&mut plan, p("ffn_gate.weight"), s.n_ff, s.n_embd)?;
        mat(&mut plan, p("ffn_up.weight"), s.n_ff, s.n_embd)?;
        mat(&mut plan, p("ffn_down.weight"), s.n_embd, s.n_ff)?;
        if bitnet_like {
            vec(&mut plan, p("attn_sub_norm.weight"), s.n_embd, Fill::Norm);
            vec(&mut plan, p("ffn_sub_norm.weight"), s.n_ff, Fill::Norm);
        }
    }
    let mut w = GgufWriter::new();
    metadata(&mut w, s, arch, head_dim);
    for t in &plan {
        w.add_tensor(&t.name, &t.dims, t.ty).map_err(|e| io(out, e))?;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let total = plan.len();
    w.write(out, |i, dst| {
        let t = &plan[i];
        let k = t.dims[0] as usize;
        let rows: usize = t.dims[1..].iter().product::<u64>() as usize;
        match t.kind {
            Fill::Norm | Fill::Bias => {
                let (base, amp) = match t.kind {
                    Fill::Norm => (1.0, 0.1),
                    _ => (0.0, 0.02),
                };
                for _ in 0..k {
                    let v: f32 = base + amp * (rng.random::<f32>() - 0.5);
                    dst.write_all(&v.to_le_bytes())?;
                }
            }
            Fill::Matrix if t.ty == QuantType::I2_S => {
                write_i2s(dst, &mut rng, rows, k)?
            }
            Fill::Matrix => {
                write_matrix(dst, &mut rng, t.ty, rows, k, ternary)?
            }
        }
        progress(i + 1, total);
        Ok(())
    })
    .map_err(|e| io(out, e))
}

fn io(path: &Path, source: std::io::Error) -> EngineError {
    EngineError::Io { path: path.display().to_string(), source }
}

/// Quantizes a pool of random rows once, then writes `rows` rows drawn
/// from it: valid blocks of the right size, fast for large files.
fn write_matrix(
    dst: &mut dyn Write,
    rng: &mut StdRng,
    ty: QuantType,
    rows: usize,
    k: usize,
    ternary: bool,
) -> std::io::Result<()> {
    const POOL: usize = 64;
    let row_bytes = ty.row_bytes(k).map_err(std::io::Error::other)?;
    let amp = (3.0 / k as f32).sqrt();
    let mut pool = vec![0u8; POOL * row_bytes];
    let mut x = vec![0.0f32; k];
    for r in 0..POOL {
        for v in x.iter_mut() {
            let u: f32 = rng.random::<f32>() * 2.0 - 1.0;
            *v = if ternary { u.round() } else { u * amp };
        }
        ryot_quant::quantize_row(
            ty,
            &x,
            &mut pool[r * row_bytes..(r + 1) * row_bytes],
        )
        .map_err(std::io::Error::other)?;
    }
    for _ in 0..rows {
        let r = rng.random_range(0..POOL);
        dst.write_all(&pool[r * row_bytes..(r + 1) * row_bytes])?;
    }
    Ok(())
}

/// [`write_matrix`] for I2_S, whose one scale covers the whole tensor:
/// the same random draws build the f32 tensor, which is quantized at once.
fn write_i2s(
    dst: &mut dyn Write,
    rng: &mut StdRng,
    rows: usize,
    k: usize,
) -> std::io::Result<()> {
    const POOL: usize = 64;
    let mut pool = vec![0.0f32; POOL * k];
    for v in pool.iter_mut() {
        *v = (rng.random::<f32>() * 2.0 - 1.0).round();
    }
    let mut x = Vec::with_capacity(rows * k);
    for _ in 0..rows {
        let r = rng.random_range(0..POOL);
        x.extend_from_slice(&pool[r * k..(r + 1) * k]);
    }
    let bytes = ryot_quant::i2s::quantize(&x, rows, k)
        .map_err(std::io::Error::other)?;
    dst.write_all(&bytes)
}

fn metadata(w: &mut GgufWriter, s: &Shape, arch: &str, head_dim: usize) {
    let a = arch;
    let u = |v: usize| Value::U32(v as u32);
    w.add_kv("general.architecture", Value::String(a.into()));
    w.add_kv(
        "general.name",
        Value::String(format!("{} (ryot synth, random weights)", s.name)),
    );
    w.add_kv(format!("{a}.context_length"), u(s.n_ctx));
    w.add_kv(format!("{a}.embedding_length"), u(s.n_embd));
    w.add_kv(format!("{a}.feed_forward_length"), u(s.n_ff));
    w.add_kv(format!("{a}.block_count"), u(s.n_layer));
    w.add_kv(format!("{a}.attention.head_count"), u(s.n_head));
    w.add_kv(format!("{a}.attention.head_count_kv"), u(s.n_head_kv));
    w.add_kv(
        format!("{a}.attention.layer_norm_rms_epsilon"),
        Value::F32(s.eps),
    );
    w.add_kv(format!("{a}.rope.freq_base"), Value::F32(s.rope_base));
    w.add_kv(format!("{a}.rope.dimension_count"), u(head_dim));
    w.add_kv(format!("{a}.vocab_size"), u(s.n_vocab));
    // A SentencePiece-style vocabulary: <unk>, <s>, </s>, 256 byte tokens,
    // then filler pieces.
    let mut tokens = vec!["<unk>".to_string(), "<s>".into(), "</s>".into()];
    let mut types = vec![2i32, 3, 3];
    for b in 0..256 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
    }
    let mut i = 0;
    while tokens.len() < s.n_vocab {
        tokens.push(format!("\u{2581}t{i}"));
        types.push(1);
        i += 1;
    }
    tokens.truncate(s.n_vocab);
    types.truncate(s.n_vocab);
    let scores: Vec<f32> = (0..tokens.len()).map(|i| -(i as f32)).collect();
    w.add_kv("tokenizer.ggml.model", Value::String("llama".into()));
    w.add_kv("tokenizer.ggml.pre", Value::String("default".into()));
    w.add_kv("tokenizer.ggml.tokens", Value::Array(Array::String(tokens)));
    w.add_kv("tokenizer.ggml.scores", Value::Array(Array::F32(scores)));
    w.add_kv("tokenizer.ggml.token_type", Value::Array(Array::I32(types)));
    w.add_kv("tokenizer.ggml.bos_token_id", Value::U32(1));
    w.add_kv("tokenizer.ggml.eos_token_id", Value::U32(2));
    w.add_kv("tokenizer.ggml.unknown_token_id", Value::U32(0));
    w.add_kv("tokenizer.ggml.add_bos_token", Value::Bool(true));
}
