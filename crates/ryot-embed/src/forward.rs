//! The BERT encoder's forward pass over a packed batch, then pooling and
//! normalisation.
//!
//! ```text
//! texts of a batch are packed: T = sum of their lengths rows, no padding
//! h = LayerNorm(word[id] + type[0] + pos[p])                 T x d
//! per layer:
//!     qkv = h Wqkv^T + b                                     T x 3d  (kernels)
//!     ctx = per text, per head: softmax(q k^T / sqrt(hd)) v  T x d
//!     h   = LayerNorm(ctx Wo^T + bo + h)                     (kernels)
//!     f   = gelu(h Wup^T + bup)                              T x 4d  (kernels)
//!     h   = LayerNorm(f Wdown^T + bdown + h)                 (kernels)
//! pooled = per text: [cls | mean | max | mean_sqrt_len] of its rows
//! out    = pooled / max(|pooled|, 1e-12)       when Normalize is listed
//! ```
//!
//! Packing replaces sentence-transformers' attention mask: a padded key
//! gets weight exactly zero there, so attending only within each text is
//! the same computation without the padding rows.

use std::cell::RefCell;
use std::sync::Mutex;

use ryot_kernels::{int16, matmul};
use ryot_pool::ThreadPool;

use crate::config::{Activation, ModelConfig};
use crate::error::EmbedError;
use crate::ops::{self, AttnScratch, AttnShape};
use crate::weights::{BertWeights, Linear, LinearWeights};

/// Buffers reused across batches (one per worker thread).
#[derive(Default)]
pub(crate) struct Scratch {
    h: Vec<f32>,
    qkv: Vec<f32>,
    ctx: Vec<f32>,
    tmp: Vec<f32>,
    ff: Vec<f32>,
    attn: AttnScratch,
}

/// What a linear layer's output starts from before `x W^T` is added.
#[derive(Clone, Copy)]
enum Init<'a> {
    /// The bias in every row.
    Bias,
    /// The bias plus the same row of a residual (`n x m`).
    BiasRes(&'a [f32]),
}

thread_local! {
    /// Each thread's quantized activations, reused across calls.
    static ACTS: RefCell<int16::Int16Acts> = RefCell::new(int16::Int16Acts::new());
}

/// `out = init + x W^T` for `n` rows of `x` (`k` values each).
fn linear(
    l: &Linear,
    x: &[f32],
    n: usize,
    init: Init<'_>,
    out: &mut Vec<f32>,
    threads: usize,
) -> Result<(), EmbedError> {
    let m = l.m;
    // Every value is overwritten: resize without clearing.
    out.resize(n * m, 0.0);
    let fill = |out: &mut [f32], row0: usize| {
        for (r, o) in out.chunks_exact_mut(m).enumerate() {
            match init {
                Init::Bias => o.copy_from_slice(&l.b),
                Init::BiasRes(res) => {
                    let res = &res[(row0 + r) * m..(row0 + r + 1) * m];
                    for ((v, b), a) in o.iter_mut().zip(&l.b).zip(res) {
                        *v = b + a;
                    }
                }
            }
        }
    };
    // The row-blocked paths: a row's result does not depend on the block
    // it lands in.
    let part = |o: &mut [f32], row0: usize| -> Result<(), EmbedError> {
        let rows = o.len() / m;
        fill(o, row0);
        let xs = &x[row0 * l.k..(row0 + rows) * l.k];
        match &l.w {
            LinearWeights::F32T(wt) => gemm_acc(wt, l.k, m, xs, rows, o),
            LinearWeights::Int16(w) => ACTS.with_borrow_mut(|a| {
                a.quantize(xs, rows, l.k)?;
                int16::gemm(w, a, o)
            })?,
            LinearWeights::Kernels(_) => unreachable!("handled below"),
        }
        Ok(())
    };
    match &l.w {
        LinearWeights::F32T(_) | LinearWeights::Int16(_) => {
            let threads = threads.clamp(1, n.div_ceil(16).max(1));
            if threads == 1 {
                return part(out, 0);
            }
            // Contiguous row blocks, one per thread.
            let per = n.div_ceil(threads);
            let parts: Vec<Mutex<(usize, &mut [f32])>> = out
                .chunks_mut(per * m)
                .enumerate()
                .map(|(i, o)| Mutex::new((i * per, o)))
                .collect();
            let errors = Mutex::new(None);
            ThreadPool::global().run(parts.len(), |i, _| {
                let Ok(mut p) = parts[i].lock() else { return };
                let (row0, o) = &mut *p;
                if let Err(e) = part(o, *row0)
                    && let Ok(mut slot) = errors.lock()
                {
                    *slot = Some(e);
                }
            });
            if let Some(e) = errors.into_inner().ok().flatten() {
                return Err(e);
            }
        }
        LinearWeights::Kernels(w) => {
            matmul(w, x, n, out, ThreadPool::global(), threads)?;
            let mut init_rows = vec![0f32; m];
            for (r, o) in out.chunks_exact_mut(m).enumerate() {
                fill(&mut init_rows, r);
                for (v, a) in o.iter_mut().zip(&init_rows) {
                    *v += a;
                }
            }
        }
    }
    Ok(())
}

/// `out += x wt` on one thread: `x` is `n x k`, `wt` is `k x m`, `out`
/// is `n x m`, all row-major.
fn gemm_acc(
    wt: &[f32],
    k: usize,
    m: usize,
    x: &[f32],
    n: usize,
    out: &mut [f32],
) {
    assert!(
        wt.len() == k * m && x.len() >= n * k && out.len() == n * m,
        "gemm_acc shapes"
    );
    if n == 0 || m == 0 || k == 0 {
        return;
    }
    // SAFETY: the asserts above make every slice at least as long as the
    // row-major shapes the strides describe (out n x m, x n x k, wt k x
    // m), so every access is in bounds; `out` is a unique borrow, so it
    // aliases neither input.
    unsafe {
        gemm::gemm(
            n,
            m,
            k,
            out.as_mut_ptr(),
            1,
            m as isize,
            true,
            x.as_ptr(),
            1,
            k as isize,
            wt.as_ptr(),
            1,
            m as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Embeds a packed batch: `seqs` are token ids ([CLS] ... [SEP], at most
/// `max_position_embeddings` each, none empty); writes `seqs.len()` rows
/// of `cfg.dim()` values to `out`. `threads` is the matmul thread count.
pub(crate) fn forward(
    w: &BertWeights,
    cfg: &ModelConfig,
    seqs: &[&[u32]],
    threads: usize,
    s: &mut Scratch,
    out: &mut [f32],
) -> Result<(), EmbedError> {
    let b = &cfg.bert;
    let d = b.hidden_size;
    let t: usize = seqs.iter().map(|q| q.len()).sum();
    if out.len() != seqs.len() * cfg.dim() {
        return Err(EmbedError::invalid("output size mismatch"));
    }
    if t == 0 {
        return Ok(());
    }
    embed_tokens(w, cfg, seqs, s)?;
    let shape = AttnShape { d, heads: b.num_attention_heads };
    let eps = b.layer_norm_eps;
    for layer in &w.layers {
        linear(&layer.qkv, &s.h, t, Init::Bias, &mut s.qkv, threads)?;
        s.ctx.resize(t * d, 0.0);
        let mut t0 = 0;
        for q in seqs {
            let t1 = t0 + q.len();
            ops::attention(
                &s.qkv[t0 * 3 * d..t1 * 3 * d],
                &mut s.ctx[t0 * d..t1 * d],
                &mut s.attn,
                shape,
            );
            t0 = t1;
        }
        let res = Init::BiasRes(&s.h);
        linear(&layer.attn_out, &s.ctx, t, res, &mut s.tmp, threads)?;
        ops::layer_norm(&mut s.tmp, &layer.ln1.gamma, &layer.ln1.beta, eps);
        std::mem::swap(&mut s.h, &mut s.tmp);
        linear(&layer.up, &s.h, t, Init::Bias, &mut s.ff, threads)?;
        match b.activation {
            Activation::Gelu => ops::gelu(&mut s.ff),
            Activation::GeluTanh => ops::gelu_tanh(&mut s.ff),
            Activation::Relu => ops::relu(&mut s.ff),
        }
        let res = Init::BiasRes(&s.h);
        linear(&layer.down, &s.ff, t, res, &mut s.tmp, threads)?;
        ops::layer_norm(&mut s.tmp, &layer.ln2.gamma, &layer.ln2.beta, eps);
        std::mem::swap(&mut s.h, &mut s.tmp);
    }
    pool(cfg, seqs, &s.h, out);
    Ok(())
}

/// `h = LayerNorm(word + token_type + position)` for every token.
fn embed_tokens(
    w: &BertWeights,
    cfg: &ModelConfig,
    seqs: &[&[u32]],
    s: &mut Scratch,
) -> Result<(), EmbedError> {
    let d = cfg.bert.hidden_size;
    let t: usize = seqs.iter().map(|q| q.len()).sum();
    let vocab = BertWeights::rows(&w.word);
    let positions = BertWeights::rows(&w.pos);
    s.h.clear();
    s.h.resize(t * d, 0.0);
    let mut rows = s.h.chunks_exact_mut(d);
    for q in seqs {
        if q.len() > positions {
            return Err(EmbedError::invalid(format!(
                "a sequence of {} tokens exceeds the {positions} positions",
                q.len()
            )));
        }
        for (p, &id) in q.iter().enumerate() {
            let id = id as usize;
            if id >= vocab {
                return Err(EmbedError::corrupt(
                    cfg.dir.join("tokenizer.json"),
                    format!("token id {id} is outside the {vocab}-row vocab"),
                ));
            }
            let Some(row) = rows.next() else { break };
            w.add_row(&w.word, id, row);
            w.add_row(&w.token_type, 0, row);
            w.add_row(&w.pos, p, row);
        }
    }
    ops::layer_norm(
        &mut s.h,
        &w.ln_emb.gamma,
        &w.ln_emb.beta,
        cfg.bert.layer_norm_eps,
    );
    Ok(())
}

/// Pools each text's rows of `h` into `out`, then normalises.
fn pool(cfg: &ModelConfig, seqs: &[&[u32]], h: &[f32], out: &mut [f32]) {
    let d = cfg.bert.hidden_size;
    let p = cfg.pooling;
    let mut t0 = 0;
    for (q, o) in seqs.iter().zip(out.chunks_exact_mut(cfg.dim())) {
        let rows = &h[t0 * d..(t0 + q.len()) * d];
        t0 += q.len();
        let n = q.len() as f32;
        let mut blocks = o.chunks_exact_mut(d);
        let mut sum = vec![0f32; d];
        for r in rows.chunks_exact(d) {
            for (a, v) in sum.iter_mut().zip(r) {
                *a += v;
            }
        }
        if p.cls
            && let Some(b) = blocks.next()
        {
            b.copy_from_slice(&rows[..d]);
        }
        if p.mean
            && let Some(b) = blocks.next()
        {
            for (x, a) in b.iter_mut().zip(&sum) {
                *x = a / n;
            }
        }
        if p.max
            && let Some(b) = blocks.next()
        {
            b.copy_from_slice(&rows[..d]);
            for r in rows.chunks_exact(d).skip(1) {
                for (x, v) in b.iter_mut().zip(r) {
                    *x = x.max(*v);
                }
            }
        }
        if p.mean_sqrt_len
            && let Some(b) = blocks.next()
        {
            for (x, a) in b.iter_mut().zip(&sum) {
                *x = a / n.sqrt();
            }
        }
        if cfg.normalize {
            let norm = o.iter().map(|v| v * v).sum::<f32>().sqrt();
            let inv = 1.0 / norm.max(1e-12);
            o.iter_mut().for_each(|v| *v *= inv);
        }
    }
}
