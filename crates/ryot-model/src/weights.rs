//! Loading a model's tensors from GGUF into kernel-ready form.

use ryot_gguf::{Gguf, TensorInfo};
use ryot_kernels::{Weights, matmul};
use ryot_pool::ThreadPool;
use ryot_quant::QuantType;

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::par::rows_mut;

/// How ternary matrices (TQ2_0, TQ1_0, I2_S) are laid out for the kernels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TernaryLayout {
    /// Kept in the file's block layout.
    #[default]
    Native,
    /// Repacked losslessly into Ryot's ternary panel layout (`t2p`).
    Panels,
}

/// Options for [`crate::Model::load`].
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadOptions {
    /// Layout for ternary matrices.
    pub ternary: TernaryLayout,
}

/// One output slice of a [`Linear`]: its own rows, scale and bias.
#[derive(Debug, Clone)]
pub struct Part {
    /// Rows of this slice.
    pub rows: usize,
    /// Optional per-tensor scale (BitNet's separate `.scale` tensors).
    pub scale: Option<f32>,
    /// Optional bias of length `rows`.
    pub bias: Option<Vec<f32>>,
}

/// A linear layer `y = scale * (W x) + b`, possibly several GGUF tensors
/// with the same input fused into one matrix (Q/K/V, gate/up): one pass
/// over longer row streams, one thread dispatch instead of several.
#[derive(Debug)]
pub struct Linear {
    /// The weight matrix: every part's rows, in order, each of length `k`.
    pub w: Weights,
    /// The output slices, in row order.
    pub parts: Vec<Part>,
}

impl Linear {
    /// Output width (all parts).
    pub fn m(&self) -> usize {
        self.w.m()
    }

    /// Input width.
    pub fn k(&self) -> usize {
        self.w.k()
    }

    /// Applies the layer to `x` (`n x k`), writing part `i` to `outs[i]`
    /// (`n x parts[i].rows`); `scratch` holds the fused output when there
    /// are several parts.
    pub fn forward(
        &self,
        x: &[f32],
        n: usize,
        outs: &mut [&mut [f32]],
        scratch: &mut Vec<f32>,
        pool: &ThreadPool,
        threads: usize,
    ) -> Result<()> {
        let m = self.m();
        if self.parts.len() == 1 {
            let part = &self.parts[0];
            matmul(&self.w, x, n, outs[0], pool, threads)?;
            if part.scale.is_some() || part.bias.is_some() {
                let out = &mut outs[0][..n * part.rows];
                rows_mut(pool, threads, part.rows, out, |_, o| finish(part, o));
            }
            return Ok(());
        }
        scratch.resize(n * m, 0.0);
        matmul(&self.w, x, n, scratch, pool, threads)?;
        let mut start = 0;
        let src: &[f32] = scratch;
        for (part, out) in self.parts.iter().zip(outs.iter_mut()) {
            let rows = part.rows;
            rows_mut(pool, threads, rows, &mut out[..n * rows], |t0, o| {
                for (t, dst) in o.chunks_exact_mut(rows).enumerate() {
                    let at = (t0 + t) * m + start;
                    dst.copy_from_slice(&src[at..at + rows]);
                }
                finish(part, o);
            });
            start += rows;
        }
        Ok(())
    }
}

fn finish(part: &Part, out: &mut [f32]) {
    if let Some(s) = part.scale {
        out.iter_mut().for_each(|v| *v *= s);
    }
    if let Some(b) = &part.bias {
        for row in out.chunks_exact_mut(part.rows) {
            row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
        }
    }
}

/// Projections of one input: each [`Linear`] fuses a run of tensors of the
/// same type; their parts, in order, are the projection's outputs.
#[derive(Debug)]
pub struct Projections {
    /// The fused groups.
    pub groups: Vec<Linear>,
}

impl Projections {
    /// Applies every group to `x`, filling `outs` (one per part, in order).
    pub fn forward(
        &self,
        x: &[f32],
        n: usize,
        outs: &mut [&mut [f32]],
        scratch: &mut Vec<f32>,
        pool: &ThreadPool,
        threads: usize,
    ) -> Result<()> {
        let mut i = 0;
        for g in &self.groups {
            let k = g.parts.len();
            g.forward(x, n, &mut outs[i..i + k], scratch, pool, threads)?;
            i += k;
        }
        Ok(())
    }
}

/// One transformer block's tensors.
#[derive(Debug)]
pub struct Layer {
    /// RMSNorm weight before attention.
    pub attn_norm: Vec<f32>,
    /// Query, key and value projections (outputs in that order).
    pub qkv: Projections,
    /// Output projection.
    pub wo: Linear,
    /// BitNet: RMSNorm weight before the output projection.
    pub attn_sub_norm: Option<Vec<f32>>,
    /// RMSNorm weight before the FFN.
    pub ffn_norm: Vec<f32>,
    /// FFN gate and up projections (outputs in that order).
    pub gate_up: Projections,
    /// FFN down projection.
    pub down: Linear,
    /// BitNet: RMSNorm weight before the down projection.
    pub ffn_sub_norm: Option<Vec<f32>>,
}

/// The token embedding table, kept in its stored type; rows are
/// dequantized on lookup.
#[derive(Debug)]
pub struct Embedding {
    ty: QuantType,
    bytes: Vec<u8>,
    row_bytes: usize,
    n_embd: usize,
}

impl Embedding {
    /// Writes the embedding of token `id` into `out` (`n_embd` values).
    pub fn row(&self, id: usize, out: &mut [f32]) -> Result<()> {
        let src = &self.bytes[id * self.row_bytes..(id + 1) * self.row_bytes];
        ryot_quant::dequantize_row(self.ty, src, &mut out[..self.n_embd])?;
        Ok(())
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.bytes.len() / self.row_bytes.max(1)
    }
}

/// All of a model's tensors.
#[derive(Debug)]
pub struct ModelWeights {
    /// Token embedding.
    pub token_embd: Embedding,
    /// Blocks.
    pub layers: Vec<Layer>,
    /// Final RMSNorm weight.
    pub output_norm: Vec<f32>,
    /// Output projection (the token embedding when tied).
    pub output: Linear,
}

struct Loader<'a> {
    g: &'a Gguf,
    cfg: &'a ModelConfig,
    opts: LoadOptions,
}

impl Loader<'_> {
    fn info(&self, name: &str) -> Result<&TensorInfo> {
        self.g.tensor(name).ok_or_else(|| ModelError::MissingTensor {
            name: name.to_string(),
            arch: self.cfg.arch_name.clone(),
        })
    }

    fn quant_type(&self, t: &TensorInfo) -> Result<QuantType> {
        t.ty().known().ok_or_else(|| ModelError::UnsupportedType {
            name: t.name().to_string(),
            ty: format!("{:?}", t.ty()),
            why: "the type id is unknown to Ryot".into(),
        })
    }

    fn check_shape(&self, t: &TensorInfo, expected: &[u64]) -> Result<()> {
        let mut got = t.dims().to_vec();
        while got.len() > expected.len() && got.last() == Some(&1) {
            got.pop();
        }
        if got != expected {
            return Err(ModelError::BadShape {
                name: t.name().to_string(),
                expected: expected.to_vec(),
                got: t.dims().to_vec(),
            });
        }
        Ok(())
    }

    /// A 1-D f32 vector of length `n` (any float or block type).
    fn vector(&self, name: &str, n: usize) -> Result<Vec<f32>> {
        let t = self.info(name)?;
        self.check_shape(t, &[n as u64])?;
        let ty = self.quant_type(t)?;
        let mut out = vec![0.0; n];
        ryot_quant::dequantize_row(ty, self.g.data_of(t)?, &mut out)?;
        Ok(out)
    }

    fn opt_vector(&self, name: &str, n: usize) -> Result<Option<Vec<f32>>> {
        match self.g.tensor(name) {
            None => Ok(None),
            Some(_) => self.vector(name, n).map(Some),
        }
    }

    fn matrix(&self, name: &str, m: usize, k: usize) -> Result<Weights> {
        let t = self.info(name)?;
        self.check_shape(t, &[k as u64, m as u64])?;
        let ty = self.quant_type(t)?;
        let w = self.prepare(name, ty, self.g.data_of(t)?, m, k)?;
        self.g.release(t);
        Ok(w)
    }

    fn prepare(
        &self,
        name: &str,
        ty: QuantType,
        bytes: &[u8],
        m: usize,
        k: usize,
    ) -> Result<Weights> {
        let ternary =
            matches!(ty, QuantType::TQ2_0 | QuantType::TQ1_0 | QuantType::I2_S);
        let w = if ternary && self.opts.ternary == TernaryLayout::Panels {
            Weights::t2p_from_gguf(ty, bytes, m, k)
        } else {
            Weights::from_gguf(ty, bytes, m, k)
        };
        w.map_err(|e| ModelError::UnsupportedType {
            name: name.to_string(),
            ty: ty.name().to_string(),
            why: e.to_string(),
        })
    }

    /// `<base>.weight`, with `<base>.bias` and `<base>.scale` if present.
    fn linear(&self, base: &str, m: usize, k: usize) -> Result<Linear> {
        let w = self.matrix(&format!("{base}.weight"), m, k)?;
        Ok(Linear { w, parts: vec![self.part(base, m)?] })
    }

    /// Several `(base, rows)` tensors with input width `k`; runs of the
    /// same row-wise type are fused into one matrix (their raw rows
    /// concatenated: every supported row-wise type stores rows
    /// independently).
    fn projections(
        &self,
        specs: &[(String, usize)],
        k: usize,
    ) -> Result<Projections> {
        let mut groups: Vec<Linear> = Vec::new();
        let mut run: Vec<(&str, usize, QuantType)> = Vec::new();
        let flush = |run: &mut Vec<(&str, usize, QuantType)>,
                     groups: &mut Vec<Linear>|
         -> Result<()> {
            if run.is_empty() {
                return Ok(());
            }
            let ty = run[0].2;
            let m: usize = run.iter().map(|r| r.1).sum();
            let mut bytes = Vec::new();
            let mut parts = Vec::new();
            for &(base, rows, _) in run.iter() {
                let t = self.info(&format!("{base}.weight"))?;
                bytes.extend_from_slice(self.g.data_of(t)?);
                self.g.release(t);
                parts.push(self.part(base, rows)?);
            }
            let w = self.prepare(run[0].0, ty, &bytes, m, k)?;
            drop(bytes);
            groups.push(Linear { w, parts });
            run.clear();
            Ok(())
        };
        for (base, rows) in specs {
            let t = self.info(&format!("{base}.weight"))?;
            self.check_shape(t, &[k as u64, *rows as u64])?;
            let ty = self.quant_type(t)?;
            // I2_S keeps one scale for a whole tensor: never fused.
            let fusable = ty != QuantType::I2_S;
            if !fusable || run.last().is_some_and(|r| r.2 != ty) {
                flush(&mut run, &mut groups)?;
            }
            if fusable {
                run.push((base, *rows, ty));
            } else {
                groups.push(self.linear(base, *rows, k)?);
            }
        }
        flush(&mut run, &mut groups)?;
        Ok(Projections { groups })
    }

    /// The scale and bias of `<base>`.
    fn part(&self, base: &str, m: usize) -> Result<Part> {
        let bias = self.opt_vector(&format!("{base}.bias"), m)?;
        let scale = match self.opt_vector(&format!("{base}.scale"), 1)? {
            None => None,
            Some(s) if s[0].is_finite() => Some(s[0]),
            Some(s) => {
                return Err(ModelError::Metadata(format!(
                    "{base}.scale is {}, not a finite number",
                    s[0]
                )));
            }
        };
        Ok(Part { rows: m, scale, bias })
    }

    fn embedding(&self) -> Result<Embedding> {
        let c = self.cfg;
        let t = self.info("token_embd.weight")?;
        self.check_shape(t, &[c.n_embd as u64, c.n_vocab as u64])?;
        let ty = self.quant_type(t)?;
        if ty == QuantType::I2_S {
            return Err(ModelError::UnsupportedType {
                name: t.name().to_string(),
                ty: ty.name().to_string(),
                why: "token embeddings must be a row-wise type".into(),
            });
        }
        let row_bytes = ty.row_bytes(c.n_embd)?;
        let bytes = self.g.data_of(t)?.to_vec();
        self.g.release(t);
        Ok(Embedding { ty, bytes, row_bytes, n_embd: c.n_embd })
    }

    fn layer(&self, i: usize) -> Result<Layer> {
        let c = self.cfg;
        let p = |s: &str| format!("blk.{i}.{s}");
        let sub = c.arch.has_sub_norms();
        let opt_norm = |name: &str, n: usize| -> Result<Option<Vec<f32>>> {
            if sub { self.vector(&p(name), n).map(Some) } else { Ok(None) }
        };
        Ok(Layer {
            attn_norm: self.vector(&p("attn_norm.weight"), c.n_embd)?,
            qkv: self.projections(
                &[
                    (p("attn_q"), c.q_dim()),
                    (p("attn_k"), c.kv_dim()),
                    (p("attn_v"), c.kv_dim()),
                ],
                c.n_embd,
            )?,
            wo: self.linear(&p("attn_output"), c.n_embd, c.q_dim())?,
            attn_sub_norm: opt_norm("attn_sub_norm.weight", c.n_embd)?,
            ffn_norm: self.vector(&p("ffn_norm.weight"), c.n_embd)?,
            gate_up: self.projections(
                &[(p("ffn_gate"), c.n_ff), (p("ffn_up"), c.n_ff)],
                c.n_embd,
            )?,
            down: self.linear(&p("ffn_down"), c.n_embd, c.n_ff)?,
            ffn_sub_norm: opt_norm("ffn_sub_norm.weight", c.n_ff)?,
        })
    }
}

impl ModelWeights {
    /// Loads every tensor `cfg` needs from `g`.
    pub fn load(
        g: &Gguf,
        cfg: &ModelConfig,
        opts: LoadOptions,
    ) -> Result<ModelWeights> {
        let l = Loader { g, cfg, opts };
        let token_embd = l.embedding()?;
        let layers =
            (0..cfg.n_layer).map(|i| l.layer(i)).collect::<Result<_>>()?;
        let output_norm = l.vector("output_norm.weight", cfg.n_embd)?;
        // llama.cpp's and bitnet.cpp's BitNet graphs always multiply by the
        // token embedding, even when a file carries `output.weight`.
        let tied = cfg.arch.has_sub_norms();
        let output = if !tied && g.tensor("output.weight").is_some() {
            l.linear("output", cfg.n_vocab, cfg.n_embd)?
        } else {
            l.linear("token_embd", cfg.n_vocab, cfg.n_embd)?
        };
        Ok(ModelWeights { token_embd, layers, output_norm, output })
    }
}
