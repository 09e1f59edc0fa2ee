//! The key/value cache and causal attention over it.

use half::f16;
use half::slice::HalfFloatSliceExt;
use ryot_kernels::SimdLevel;
use ryot_pool::ThreadPool;

use crate::attn::{
    GROUP, HeadJob, KvRows, Q8_BLOCK, attend, attend_group, round_f16,
};
use crate::error::{ModelError, Result};

/// Element type of the KV cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KvType {
    /// IEEE half precision (llama.cpp's default).
    #[default]
    F16,
    /// Single precision.
    F32,
    /// Int8 with one f32 scale per 32 values (half the memory of f16; an
    /// approximation llama.cpp also offers as `q8_0`).
    Q8,
}

impl KvType {
    /// Parses `f16`, `f32` or `q8` (also `q8_0`, `int8`).
    pub fn from_name(s: &str) -> Option<KvType> {
        match s {
            "f16" => Some(KvType::F16),
            "f32" => Some(KvType::F32),
            "q8" | "q8_0" | "int8" => Some(KvType::Q8),
            _ => None,
        }
    }
}

#[derive(Debug)]
enum Store {
    F16(Vec<f16>),
    F32(Vec<f32>),
    Q8 { q: Vec<i8>, d: Vec<f32>, kv_dim: usize },
}

impl Store {
    fn new(ty: KvType, len: usize, kv_dim: usize) -> Store {
        match ty {
            KvType::F16 => Store::F16(vec![f16::ZERO; len]),
            KvType::F32 => Store::F32(vec![0.0; len]),
            KvType::Q8 => Store::Q8 {
                q: vec![0; len],
                d: vec![0.0; len / kv_dim.max(1) * kv_dim.div_ceil(Q8_BLOCK)],
                kv_dim,
            },
        }
    }

    fn write(&mut self, at: usize, src: &[f32]) {
        match self {
            Store::F16(v) => {
                v[at..at + src.len()].convert_from_f32_slice(src);
            }
            Store::F32(v) => v[at..at + src.len()].copy_from_slice(src),
            Store::Q8 { q, d, kv_dim } => {
                let nb = kv_dim.div_ceil(Q8_BLOCK);
                let pos0 = at / *kv_dim;
                for (p, row) in src.chunks(*kv_dim).enumerate() {
                    for (b, blk) in row.chunks(Q8_BLOCK).enumerate() {
                        let amax = blk.iter().fold(0f32, |m, v| m.max(v.abs()));
                        let scale = amax / 127.0;
                        d[(pos0 + p) * nb + b] = scale;
                        let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
                        let base = (pos0 + p) * *kv_dim + b * Q8_BLOCK;
                        for (i, v) in blk.iter().enumerate() {
                            q[base + i] = (v * inv).round() as i8;
                        }
                    }
                }
            }
        }
    }

    fn rows(&self) -> KvRows<'_> {
        match self {
            Store::F16(v) => KvRows::F16(v),
            Store::F32(v) => KvRows::F32(v),
            Store::Q8 { q, d, kv_dim } => KvRows::Q8 { q, d, kv_dim: *kv_dim },
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Store::F16(v) => v.len() * 2,
            Store::F32(v) => v.len() * 4,
            Store::Q8 { q, d, .. } => q.len() + d.len() * 4,
        }
    }
}

/// Keys and values of every layer for up to `n_ctx` positions.
#[derive(Debug)]
pub struct KvCache {
    ty: KvType,
    n_ctx: usize,
    kv_dim: usize,
    len: usize,
    k: Vec<Store>,
    v: Vec<Store>,
}

impl KvCache {
    /// An empty cache of `n_ctx` positions for `n_layer` layers of
    /// `kv_dim` keys and values each.
    pub fn new(
        ty: KvType,
        n_layer: usize,
        n_ctx: usize,
        kv_dim: usize,
    ) -> Result<KvCache> {
        if n_ctx == 0 {
            return Err(ModelError::Invalid("context size must be > 0".into()));
        }
        let per = n_ctx.checked_mul(kv_dim).ok_or_else(|| {
            ModelError::Invalid(format!("context size {n_ctx} is too large"))
        })?;
        let k = (0..n_layer).map(|_| Store::new(ty, per, kv_dim)).collect();
        let v = (0..n_layer).map(|_| Store::new(ty, per, kv_dim)).collect();
        Ok(KvCache { ty, n_ctx, kv_dim, len: 0, k, v })
    }

    /// Element type.
    pub fn ty(&self) -> KvType {
        self.ty
    }

    /// Positions cached so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Capacity in positions.
    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.k.iter().chain(&self.v).map(Store::bytes).sum()
    }

    /// Forgets every position from `len` on (a shorter prefix stays).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Checks that `n` more positions fit.
    pub(crate) fn reserve(&self, n: usize) -> Result<()> {
        if self.len + n > self.n_ctx {
            return Err(ModelError::ContextFull {
                have: self.len,
                add: n,
                n_ctx: self.n_ctx,
            });
        }
        Ok(())
    }

    /// Marks `n` more positions as filled (after every layer wrote them).
    pub(crate) fn advance(&mut self, n: usize) {
        self.len += n;
    }

    /// Stores keys and values (`n x kv_dim` each) of layer `layer` at
    /// positions `len..len + n`.
    pub(crate) fn store(&mut self, layer: usize, k: &[f32], v: &[f32]) {
        let at = self.len * self.kv_dim;
        self.k[layer].write(at, k);
        self.v[layer].write(at, v);
    }
}

/// Shape of one attention call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AttnShape {
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
}

/// Causal attention of `n` new queries (`q`: `n x n_head*head_dim`, at
/// positions `cache.len()..cache.len()+n`, whose keys and values are
/// already stored) over layer `layer` of the cache; writes `out` (same
/// shape as `q`).
///
/// The arithmetic follows llama.cpp's CPU flash attention for one query
/// (see [`crate::attn`]): with an f16 cache, queries are rounded to f16 and
/// the value accumulator is kept in f16. Each query is computed the same
/// way whatever the batch it comes in, so a batched prefill and
/// token-by-token decoding give bit-identical results.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention(
    cache: &KvCache,
    layer: usize,
    s: AttnShape,
    q: &[f32],
    n: usize,
    out: &mut [f32],
    pool: &ThreadPool,
    threads: usize,
) {
    let q_dim = s.n_head * s.head_dim;
    assert!(out.len() >= n * q_dim && q.len() >= n * q_dim);
    let pos0 = cache.len;
    let group = s.n_head / s.n_head_kv;
    let scale = 1.0 / (s.head_dim as f32).sqrt();
    // A unit is one head of up to GROUP consecutive tokens: a full group
    // runs through `attend_group` (the same bits as one call per token).
    let groups = n.div_ceil(GROUP);
    let units = groups * s.n_head;
    let f16_acc = cache.ty == KvType::F16;
    let level = ryot_kernels::isa::level();
    let (k, v) = (cache.k[layer].rows(), cache.v[layer].rows());
    let out_ptr = SyncPtr(out.as_mut_ptr());
    let work = |i: usize, nt: usize| {
        let d = s.head_dim;
        let mut qh = vec![0.0f32; GROUP * d];
        // Strided, not contiguous: later tokens attend over more
        // positions, so contiguous ranges would load one worker most.
        for u in (i..units).step_by(nt) {
            let (g, h) = (u / s.n_head, u % s.n_head);
            let tokens = g * GROUP..((g + 1) * GROUP).min(n);
            for (t, qt) in tokens.clone().zip(qh.chunks_exact_mut(d)) {
                qt.copy_from_slice(
                    &q[t * q_dim + h * d..t * q_dim + (h + 1) * d],
                );
                if f16_acc {
                    round_f16(qt);
                }
            }
            let job = HeadJob {
                k,
                v,
                stride: cache.kv_dim,
                off: (h / group) * d,
                ctx: pos0 + tokens.start + 1,
                d,
                scale,
                f16_acc,
            };
            // SAFETY: unit `u` owns `out[t*q_dim + h*d ..][..d]` for its
            // tokens t; each unit goes to exactly one worker (u = i mod
            // nt), so no two workers write the same element, and `out`
            // (checked long enough above) outlives `pool.run`.
            let dst = |t: usize| unsafe {
                std::slice::from_raw_parts_mut(
                    out_ptr.get().add(t * q_dim + h * d),
                    d,
                )
            };
            if tokens.len() == GROUP {
                let t0 = tokens.start;
                let (ctx0, out) = (pos0 + t0 + 1, |j: usize| dst(t0 + j));
                if d <= NARROW_HEAD {
                    attend_part::<GROUP>(level, &job, &qh, 0, ctx0, &out);
                } else {
                    // Wide heads: two groups of half the size (measured
                    // faster at width 64: more blocks all queries share).
                    for from in [0, GROUP / 2] {
                        attend_part::<{ GROUP / 2 }>(
                            level, &job, &qh, from, ctx0, &out,
                        );
                    }
                }
            } else {
                for (j, t) in tokens.enumerate() {
                    let one = HeadJob { ctx: pos0 + t + 1, ..job };
                    attend(level, &one, &qh[j * d..(j + 1) * d], dst(t));
                }
            }
        }
    };
    pool.run(threads.min(units).max(1), work);
}

/// Attends queries `from..from + G` of a full prefill unit as one group:
/// query `j` is `qh[j * d..][..d]` with context `ctx0 + j`, written to
/// `out(j)`.
fn attend_part<'o, const G: usize>(
    level: SimdLevel,
    job: &HeadJob<'_>,
    qh: &[f32],
    from: usize,
    ctx0: usize,
    out: impl Fn(usize) -> &'o mut [f32],
) {
    let d = job.d;
    let qs = std::array::from_fn(|j| &qh[(from + j) * d..][..d]);
    let ctxs = std::array::from_fn(|j| ctx0 + from + j);
    let outs = std::array::from_fn(|j| out(from + j));
    attend_group::<G>(level, job, ctxs, qs, outs);
}

/// Head widths up to which prefill attends [`GROUP`] queries of a head
/// together; wider heads go `GROUP / 2` at a time. Measured on Zen 3:
/// groups of 8 instead of 4 gave TinyStories (width 8) +9 % prefill on
/// one thread and the SmolLM2 shape (width 64) -8 %.
const NARROW_HEAD: usize = 16;

#[derive(Clone, Copy)]
struct SyncPtr(*mut f32);

impl SyncPtr {
    /// The pointer (a method, so closures capture the whole `Sync` struct).
    fn get(self) -> *mut f32 {
        self.0
    }
}
// SAFETY: the pointer is only used to write disjoint ranges (see above).
unsafe impl Sync for SyncPtr {}
// SAFETY: as above.
unsafe impl Send for SyncPtr {}
