//! GEMV/GEMM directly on the native ternary layouts: GGUF's TQ2_0 and
//! TQ1_0 and bitnet.cpp's I2_S, with no repack (compare [`crate::t2p`]).
//!
//! The semantics are t2p's. For each row, token and scale group (a
//! 256-element block for TQ2_0/TQ1_0, the whole row for I2_S) the kernels
//! compute the exact integer `isum = sum(code * q) - sum(q)` (codes 0..=3,
//! so this is `sum(w * q)` with `w = code - 1`), then combine the groups in
//! order without FMA:
//!
//! ```text
//! acc = 0
//! for each group g:  acc = acc + (f32(isum_g) / act_scale) * d_g
//! ```
//!
//! With one group per row this is bitnet.cpp's I2_S formula, bit for bit.
//!
//! The native layouts put one row's elements side by side, so a SIMD
//! register holds codes of one row and the integer sums need a horizontal
//! reduction per block. The SIMD kernels keep them exact, then reduce 8
//! (AVX2) or 16 (AVX-512) accumulators at once into one vector whose lanes
//! are (row, token) pairs, and do the f32 combine lane-wise: the same IEEE
//! operations in the same order as the scalar twin, so every level is
//! bit-identical to it, for any `n` and any thread split.
//!
//! ```text
//! per call:   rearrange each token's int8 activations into the order the
//!             decoded weight vectors come out in (`NativeActs`), tokens
//!             grouped by 8 so a tile's activations are contiguous
//! per tile of R rows x T tokens (R*T = 8 lanes on AVX2, 16 on AVX-512;
//! T = 1 for a GEMV, up to 8 for a GEMM), per block b:
//!     prefetch the tile's share of the rows 16 KiB ahead
//!     for each row r: decode the block into code vectors; for each
//!         token t: acc[r][t] += codes . acts[t]     (maddubs / dpbusd)
//!     isum = reduce(acc)                            (one lane per (r, t))
//!     f[r][t] = f + (f32(isum - gsum[b][t]) / act_scale[t]) * d[r][b]
//! ```
//!
//! Threads split the rows into units of [`UNIT_ROWS`]. The per-block
//! reduction and the gather of the block scales are the price of the
//! native layouts (t2p has neither); I2_S, with one scale per row, reduces
//! once per row.

mod weights;

pub(crate) mod scalar;

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;

use std::ops::Range;

use ryot_pool::ThreadPool;

use crate::act::ActI8;
use crate::error::KernelError;
use crate::isa::SimdLevel;
use crate::matmul::{Kernel, drive};
use crate::out::OutMatrix;
use crate::ternary::TQ_BLOCK;
pub(crate) use weights::{Format, Tensor};
pub use weights::{I2s, Tq1_0, Tq2_0};

/// Rows per unit of work handed to threads.
pub const UNIT_ROWS: usize = 16;

/// Bytes of rearranged activations per TQ1_0 block and token: five
/// 64-byte digit slots.
pub(crate) const TQ1_ACT: usize = 320;

/// Tokens per group of the rearranged activations: every token tile of
/// the SIMD kernels lies inside one group.
pub(crate) const TOKEN_GROUP: usize = 8;

/// Activations prepared for one weight tensor: the quantized tokens, the
/// same values rearranged for the SIMD kernels, and the activation sums of
/// every scale group.
pub(crate) struct NativeActs {
    /// The quantized tokens.
    pub(crate) a: ActI8,
    /// Rearranged activations (see [`NativeActs::new`]).
    perm: Vec<weights::Chunk>,
    /// Bytes per chunk and token in `perm`: 256, or [`TQ1_ACT`].
    slot: usize,
    /// 256-column chunks per token.
    chunks: usize,
    /// `sum(q)` per scale group and token: `[group][n]`.
    gsums: Vec<i32>,
}

impl NativeActs {
    /// Prepares `a` for `w` (`a.k() == w.k`, checked).
    ///
    /// The rearranged activations are stored by groups of
    /// [`TOKEN_GROUP`] tokens, then by 256-column chunk (`c0 = 256 *
    /// chunk`), then by token, so a tile's tokens are `slot` bytes apart
    /// and its data is contiguous. A chunk of a group takes one line more
    /// than its tokens' slots, so that the chunks a tile reads do not all
    /// fall in the same L1 sets when they are 4 KiB apart. A slot holds
    ///
    /// ```text
    /// TQ2_0, I2_S: 4 x 64 bytes: s = 0..4: q[c0+32s ..+32], q[c0+128+32s ..+32]
    ///              (a TQ2_0 block or two I2_S groups shifted by 2s, resp.
    ///              6-2s, and masked give these elements in this order;
    ///              an I2_S row's last odd group has zeros in the 2nd half)
    /// TQ1_0:       5 x 64 bytes: n = 0..5: q[c0+32n ..+32],
    ///              q[c0+160+16n ..+16], q[c0+240+4n ..+4] (n < 4), 12 zeros
    ///              (digit n of the block's bytes 0..52, in byte order)
    /// ```
    pub(crate) fn new(w: &Tensor, a: ActI8) -> Result<Self, KernelError> {
        if a.k() != w.k {
            return Err(KernelError::shape(format!(
                "activations have k = {} but the weights have k = {}",
                a.k(),
                w.k
            )));
        }
        let (n, k) = (a.n(), w.k);
        let chunks = k.div_ceil(TQ_BLOCK);
        let slot = match w.fmt {
            Format::Tq2_0 | Format::I2s => TQ_BLOCK,
            Format::Tq1_0 => TQ1_ACT,
        };
        let mut me =
            NativeActs { a, perm: Vec::new(), slot, chunks, gsums: Vec::new() };
        let rem = n % TOKEN_GROUP;
        let total = me.offset(0, n - rem)
            + if rem > 0 { chunks * (rem * slot + 64) } else { 0 };
        let mut perm = vec![weights::Chunk([0; 64]); total / 64];
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut perm);
        for t in 0..n {
            let q: &[u8] = bytemuck::cast_slice(&me.a.row(t)[..k]);
            for c in 0..chunks {
                let o = me.offset(c, t);
                let d = &mut bytes[o..o + slot];
                let c0 = c * TQ_BLOCK;
                // Copies q[c0+from ..+len] (clipped to k) to d[to..].
                let mut put = |to: usize, from: usize, len: usize| {
                    let (from, end) = (c0 + from, (c0 + from + len).min(k));
                    if from < end {
                        d[to..to + end - from].copy_from_slice(&q[from..end]);
                    }
                };
                match w.fmt {
                    Format::Tq2_0 | Format::I2s => {
                        for s in 0..4 {
                            put(64 * s, 32 * s, 32);
                            put(64 * s + 32, 128 + 32 * s, 32);
                        }
                    }
                    Format::Tq1_0 => {
                        for s in 0..5 {
                            put(64 * s, 32 * s, 32);
                            put(64 * s + 32, 160 + 16 * s, 16);
                            if s < 4 {
                                put(64 * s + 48, 240 + 4 * s, 4);
                            }
                        }
                    }
                }
            }
        }
        me.perm = perm;
        let groups = w.groups();
        let gc = k / groups;
        me.gsums = vec![0i32; groups * n];
        for t in 0..n {
            for g in 0..groups {
                me.gsums[g * n + t] = me.a.partial_sum(t, g * gc..(g + 1) * gc);
            }
        }
        Ok(me)
    }

    /// Byte offset of token `t`'s slot of chunk `c` (or, for `c == 0` and
    /// `t` a multiple of [`TOKEN_GROUP`], the start of `t`'s group).
    fn offset(&self, c: usize, t: usize) -> usize {
        let (g, i) = (t / TOKEN_GROUP, t % TOKEN_GROUP);
        let size = (self.a.n() - g * TOKEN_GROUP).min(TOKEN_GROUP);
        let full = TOKEN_GROUP * self.slot + 64;
        let base = g * self.chunks * full;
        base + c * (size * self.slot + 64) + i * self.slot
    }

    /// Tokens.
    pub(crate) fn n(&self) -> usize {
        self.a.n()
    }

    /// The rearranged activations of chunk `c` for tokens `t..t + len`
    /// (inside one group of [`TOKEN_GROUP`]): `len` slots of
    /// [`slot`](Self::slot) bytes.
    pub(crate) fn perm(&self, c: usize, t: usize, len: usize) -> &[i8] {
        assert!(
            len > 0 && t / TOKEN_GROUP == (t + len - 1) / TOKEN_GROUP,
            "a token tile crosses a group"
        );
        let all: &[i8] = bytemuck::cast_slice(&self.perm);
        let i = self.offset(c, t);
        &all[i..i + len * self.slot]
    }

    /// Bytes per chunk and token of the rearranged activations.
    pub(crate) fn slot(&self) -> usize {
        self.slot
    }

    /// `sum(q)` of token `t` over scale group `g`.
    #[inline]
    pub(crate) fn gsum(&self, g: usize, t: usize) -> i32 {
        self.gsums[g * self.a.n() + t]
    }

    /// `sum(q)` over scale group `g` of tokens `t..t + len`.
    #[inline]
    pub(crate) fn gsums(&self, g: usize, t: usize, len: usize) -> &[i32] {
        let i = g * self.a.n() + t;
        &self.gsums[i..i + len]
    }
}

/// One call's inputs, shared by all workers.
pub(crate) struct Job<'a> {
    /// The weights.
    pub(crate) w: &'a Tensor,
    /// The prepared activations.
    pub(crate) acts: &'a NativeActs,
    /// The output.
    pub(crate) out: &'a OutMatrix<'a>,
}

impl Job<'_> {
    /// Tokens.
    #[inline]
    pub(crate) fn n(&self) -> usize {
        self.acts.n()
    }

    /// Token `t`'s activation scale.
    #[inline]
    pub(crate) fn act_scale(&self, t: usize) -> f32 {
        self.acts.a.scales()[t]
    }
}

/// Software prefetch for one tile of the SIMD kernels.
///
/// The rows of a tile are one contiguous span of the tensor, read as R
/// short interleaved row streams (a TQ2_0 row of 2560 is 10 lines), which
/// the hardware prefetchers follow poorly: without help a cold GEMV runs
/// at a third of the DRAM rate. So each of the tile's `steps` prefetches
/// its share of the span, [`PREFETCH_BYTES`] ahead; consecutive tiles are
/// consecutive spans, so the prefetched window slides along the tensor.
#[cfg(target_arch = "x86_64")]
pub(crate) struct Prefetch {
    /// First byte to prefetch.
    ahead: *const u8,
    /// Bytes per step.
    per_step: usize,
}

/// How far ahead of the tile being computed [`Prefetch`] reads (16 KiB,
/// about three AVX2 GEMV tiles; 8 to 24 KiB measured the same).
pub(crate) const PREFETCH_BYTES: usize = 16 << 10;

#[cfg(target_arch = "x86_64")]
impl Prefetch {
    /// A tile whose rows span `span` bytes from `start`, in `steps` steps.
    #[inline(always)]
    pub(crate) fn new(start: *const u8, span: usize, steps: usize) -> Self {
        Prefetch {
            ahead: start.wrapping_add(PREFETCH_BYTES),
            per_step: span.div_ceil(steps),
        }
    }

    /// Prefetches the share of step `i`.
    #[target_feature(enable = "sse")]
    #[inline]
    pub(crate) fn step(&self, i: usize) {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let p = self.ahead.wrapping_add(i * self.per_step);
        let mut off = 0;
        while off < self.per_step {
            // A prefetch is a hint: it never faults, even past the end of
            // the tensor, so the pointer need not be in bounds.
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off).cast());
            off += 64;
        }
    }
}

/// Computes row units `units` of `job` at `level`.
pub(crate) fn run(level: SimdLevel, job: &Job<'_>, units: Range<usize>) {
    let m = job.w.m;
    let rows = (units.start * UNIT_ROWS).min(m)..(units.end * UNIT_ROWS).min(m);
    match level {
        SimdLevel::Scalar => scalar::gemm(job, rows),
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2 => avx2::gemm(job, rows),
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 | SimdLevel::Amx => avx512::gemm(job, rows),
        #[cfg(not(target_arch = "x86_64"))]
        _ => scalar::gemm(job, rows),
    }
}

/// Native weights times already-quantized activations (`out` is `a.n()
/// x w.m`, token-major), at `level`, on `threads` workers.
pub(crate) fn with_acts(
    level: SimdLevel,
    w: &Tensor,
    a: &ActI8,
    out: &mut [f32],
    pool: &ThreadPool,
    threads: usize,
) -> Result<(), KernelError> {
    let acts = NativeActs::new(w, a.clone())?;
    drive(level, &Native(w), &acts, out, pool, threads)
}

/// The [`Kernel`] of any native tensor.
pub(crate) struct Native<'a>(pub(crate) &'a Tensor);

impl Kernel for Native<'_> {
    type Acts = NativeActs;

    fn m(&self) -> usize {
        self.0.m
    }

    fn prepare_acts(
        &self,
        x: &[f32],
        n: usize,
    ) -> Result<NativeActs, KernelError> {
        NativeActs::new(self.0, ActI8::quantize(x, n, self.0.k)?)
    }

    fn n(acts: &NativeActs) -> usize {
        acts.n()
    }

    fn units(&self) -> usize {
        self.0.m.div_ceil(UNIT_ROWS)
    }

    fn weight_bytes(&self) -> usize {
        self.0.stored_bytes()
    }

    fn run(
        &self,
        level: SimdLevel,
        acts: &NativeActs,
        units: Range<usize>,
        out: &OutMatrix<'_>,
    ) {
        run(level, &Job { w: self.0, acts, out }, units);
    }
}

#[cfg(test)]
mod tests {
    use crate::ternary::tq1_0_block_codes;

    /// The AVX-512 TQ1_0 kernel relies on this: with `q_n = b * 3^n mod
    /// 256`, digit `n` of byte `b` is `(3 q_n - q_(n+1)) / 256`.
    #[test]
    fn tq1_digit_identity() {
        for b in 0..=255u8 {
            let mut block = [0u8; 54];
            block[..48].fill(b);
            block[48..52].fill(b);
            let mut codes = [0u8; 256];
            tq1_0_block_codes(&block, &mut codes);
            let mut q = b;
            for n in 0..5 {
                let q3 = q.wrapping_mul(3);
                let t = (3 * q as i32 - q3 as i32) / 256;
                assert_eq!(3 * q as i32 - q3 as i32, 256 * t);
                assert_eq!(t, codes[n * 32] as i32, "b={b} n={n}");
                assert_eq!(t, codes[160 + n * 16] as i32, "b={b} n={n}");
                if n < 4 {
                    assert_eq!(t, codes[240 + n * 4] as i32, "b={b} n={n}");
                }
                q = q3;
            }
        }
    }

    /// The AVX2 TQ1_0 kernel relies on this: with `r_n = (b ^ 0x80) * 3^n
    /// mod 256` as i8, digit `n` is `(r_n > -43) + (r_n > 42)`.
    #[test]
    fn tq1_threshold_identity() {
        for b in 0..=255u8 {
            let mut block = [0u8; 54];
            block[..48].fill(b);
            let mut codes = [0u8; 256];
            tq1_0_block_codes(&block, &mut codes);
            let mut r = (b ^ 0x80) as i8;
            for n in 0..5 {
                let t = (r > -43) as u8 + (r > 42) as u8;
                assert_eq!(t, codes[n * 32], "b={b} n={n}");
                r = r.wrapping_mul(3);
            }
        }
    }
}
