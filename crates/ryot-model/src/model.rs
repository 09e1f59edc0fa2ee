//! The forward pass shared by every architecture.

use std::sync::Arc;

use ryot_gguf::Gguf;
use ryot_pool::ThreadPool;

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::kv::{AttnShape, KvCache, KvType, attention};
use crate::ops::{Rope, gated_act, rms_norm, rms_norm_inplace};
use crate::par::rows_mut;
use crate::weights::{LoadOptions, ModelWeights};

/// Which positions' logits a forward pass returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logits {
    /// Only the last token's (generation).
    Last,
    /// Every token's, `n x n_vocab` (perplexity, speculative checks).
    All,
    /// None (prefilling a prefix).
    None,
}

/// A loaded model, ready to run on a thread pool.
pub struct Model {
    cfg: ModelConfig,
    weights: ModelWeights,
    rope: Rope,
    pool: Arc<ThreadPool>,
    threads: usize,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("cfg", &self.cfg)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

/// Scratch buffers for one forward pass of `n` tokens.
struct Scratch {
    x: Vec<f32>,
    xn: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    o: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    fused: Vec<f32>,
}

impl Model {
    /// Loads the model in `g` to run on `threads` threads.
    pub fn load(g: &Gguf, opts: LoadOptions, threads: usize) -> Result<Model> {
        if threads == 0 || threads > 1024 {
            return Err(ModelError::Invalid(format!(
                "thread count {threads} is out of range (1..=1024)"
            )));
        }
        let cfg = ModelConfig::from_gguf(g)?;
        let weights = ModelWeights::load(g, &cfg, opts)?;
        let rope =
            Rope::new(cfg.arch.rope_kind(), cfg.rope_dims, cfg.rope_base);
        let pool = Arc::new(ThreadPool::new(threads));
        Ok(Model { cfg, weights, rope, pool, threads })
    }

    /// Hyper-parameters.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// The loaded tensors.
    pub fn weights(&self) -> &ModelWeights {
        &self.weights
    }

    /// Threads used per operation.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// An empty KV cache for `n_ctx` positions.
    pub fn new_cache(&self, n_ctx: usize, ty: KvType) -> Result<KvCache> {
        KvCache::new(ty, self.cfg.n_layer, n_ctx, self.cfg.kv_dim())
    }

    /// Runs `tokens` at the positions after those in `cache`, appends their
    /// keys and values to it, and returns the requested logits (`n_vocab`
    /// per returned position).
    pub fn forward(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        logits: Logits,
    ) -> Result<Vec<f32>> {
        let c = &self.cfg;
        let n = tokens.len();
        if n == 0 {
            return Err(ModelError::Invalid("no tokens to run".into()));
        }
        if let Some(&id) = tokens.iter().find(|&&t| t as usize >= c.n_vocab) {
            return Err(ModelError::BadToken { id, n_vocab: c.n_vocab });
        }
        cache.reserve(n)?;
        let mut s = Scratch {
            x: vec![0.0; n * c.n_embd],
            xn: vec![0.0; n * c.n_embd],
            q: vec![0.0; n * c.q_dim()],
            k: vec![0.0; n * c.kv_dim()],
            v: vec![0.0; n * c.kv_dim()],
            att: vec![0.0; n * c.q_dim()],
            o: vec![0.0; n * c.n_embd],
            gate: vec![0.0; n * c.n_ff],
            up: vec![0.0; n * c.n_ff],
            fused: Vec::new(),
        };
        for (t, &id) in tokens.iter().enumerate() {
            let row = &mut s.x[t * c.n_embd..(t + 1) * c.n_embd];
            self.weights.token_embd.row(id as usize, row)?;
        }
        for il in 0..c.n_layer {
            self.layer(il, n, cache, &mut s)?;
        }
        cache.advance(n);
        let rows = match logits {
            Logits::None => return Ok(Vec::new()),
            Logits::Last => n - 1..n,
            Logits::All => 0..n,
        };
        let nr = rows.len();
        let xs = &s.x[rows.start * c.n_embd..rows.end * c.n_embd];
        let xn = &mut s.xn[..nr * c.n_embd];
        rms_norm(xs, &self.weights.output_norm, c.rms_eps, xn);
        let mut out = vec![0.0; nr * c.n_vocab];
        let mut scratch = Vec::new();
        self.weights.output.forward(
            xn,
            nr,
            &mut [&mut out],
            &mut scratch,
            &self.pool,
            self.threads,
        )?;
        Ok(out)
    }

    fn layer(
        &self,
        il: usize,
        n: usize,
        cache: &mut KvCache,
        s: &mut Scratch,
    ) -> Result<()> {
        let c = &self.cfg;
        let l = &self.weights.layers[il];
        let (pool, th) = (&*self.pool, self.threads);
        let (d, eps) = (c.n_embd, c.rms_eps);
        let norm = |x: &[f32], w: &[f32], out: &mut [f32]| {
            rows_mut(pool, th, d, &mut out[..n * d], |r0, o| {
                rms_norm(&x[r0 * d..r0 * d + o.len()], w, eps, o);
            });
        };
        norm(&s.x, &l.attn_norm, &mut s.xn);
        l.qkv.forward(
            &s.xn,
            n,
            &mut [&mut s.q, &mut s.k, &mut s.v],
            &mut s.fused,
            pool,
            th,
        )?;
        let pos0 = cache.len();
        let rope = |x: &mut [f32], width: usize| {
            rows_mut(pool, th, width, &mut x[..n * width], |r0, rows| {
                let half = c.rope_dims / 2;
                let (mut cos, mut sin) = (vec![0.0; half], vec![0.0; half]);
                for (t, row) in rows.chunks_exact_mut(width).enumerate() {
                    self.rope.angles(pos0 + r0 + t, &mut cos, &mut sin);
                    self.rope.rotate(row, c.head_dim, &cos, &sin);
                }
            });
        };
        rope(&mut s.q, c.q_dim());
        rope(&mut s.k, c.kv_dim());
        cache.store(il, &s.k, &s.v);
        let shape = AttnShape {
            n_head: c.n_head,
            n_head_kv: c.n_head_kv,
            head_dim: c.head_dim,
        };
        attention(cache, il, shape, &s.q, n, &mut s.att, pool, th);
        if let Some(w) = &l.attn_sub_norm {
            let q = c.q_dim();
            rows_mut(pool, th, q, &mut s.att[..n * q], |_, a| {
                rms_norm_inplace(a, w, eps);
            });
        }
        l.wo.forward(&s.att, n, &mut [&mut s.o], &mut s.fused, pool, th)?;
        let residual = |x: &mut [f32], o: &[f32]| {
            rows_mut(pool, th, d, &mut x[..n * d], |r0, x| {
                let o = &o[r0 * d..r0 * d + x.len()];
                x.iter_mut().zip(o).for_each(|(x, o)| *x += o);
            });
        };
        residual(&mut s.x, &s.o);
        norm(&s.x, &l.ffn_norm, &mut s.xn);
        l.gate_up.forward(
            &s.xn,
            n,
            &mut [&mut s.gate, &mut s.up],
            &mut s.fused,
            pool,
            th,
        )?;
        let (ff, act) = (c.n_ff, c.arch.ffn_act());
        rows_mut(pool, th, ff, &mut s.gate[..n * ff], |r0, g| {
            gated_act(act, g, &s.up[r0 * ff..r0 * ff + g.len()]);
            if let Some(w) = &l.ffn_sub_norm {
                rms_norm_inplace(g, w, eps);
            }
        });
        l.down.forward(&s.gate, n, &mut [&mut s.o], &mut s.fused, pool, th)?;
        residual(&mut s.x, &s.o);
        Ok(())
    }
}
