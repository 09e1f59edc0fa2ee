//! The encoder's element-wise and attention loops, written so LLVM
//! vectorizes them: fixed 8-lane accumulators, branch-free `exp` and `erf`.
//!
//! Each op is one generic body, instantiated twice: a portable build (SSE2
//! on x86-64, no fused multiply-add) and an AVX2+FMA build chosen at run
//! time when [`ryot_kernels::isa::level`] allows it (so `RYOT_FORCE_ISA`
//! lowers these too). The linear layers are not here: they run on
//! `ryot_kernels::matmul`.

use ryot_kernels::SimdLevel;

/// Lanes of the manual accumulators (one AVX2 register of f32).
const LANES: usize = 8;

/// `a * b + c`, fused when the instantiation has FMA.
#[inline(always)]
fn fma<const F: bool>(a: f32, b: f32, c: f32) -> f32 {
    if F { a.mul_add(b, c) } else { a * b + c }
}

/// `e^x` for `x` in about [-87, 88] (clamped), within 2 ulp: Cephes'
/// `expf` (range reduction by ln 2 in two parts, degree-6 polynomial),
/// written without branches or libm calls so loops over it vectorize.
#[inline(always)]
fn exp<const F: bool>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // 1.5 * 2^23: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = fma::<F>(x, LOG2E, ROUND) - ROUND;
    let r = fma::<F>(n, -0.693_359_4, x);
    let r = fma::<F>(n, 2.121_944_4e-4, r);
    let mut p = 1.987_569_1e-4;
    p = fma::<F>(p, r, 1.398_2e-3);
    p = fma::<F>(p, r, 8.333_452e-3);
    p = fma::<F>(p, r, 4.166_579_6e-2);
    p = fma::<F>(p, r, 1.666_666_5e-1);
    p = fma::<F>(p, r, 0.5);
    let y = fma::<F>(p * r, r, r) + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    y * scale
}

/// `erf(x)` within 5e-7: the rational approximation of Eigen's
/// `generic_fast_erf_float` (odd degree-13 numerator over even degree-8
/// denominator, `x` clamped to [-4, 4], where erf is 1 in f32).
#[inline(always)]
fn erf<const F: bool>(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10;
    p = fma::<F>(p, x2, 2.770_681_4e-8);
    p = fma::<F>(p, x2, -2.101_024e-6);
    p = fma::<F>(p, x2, -5.692_506_4e-5);
    p = fma::<F>(p, x2, -7.349_906_3e-4);
    p = fma::<F>(p, x2, -2.9546e-3);
    p = fma::<F>(p, x2, -1.609_603_3e-2);
    let p = p * x;
    let mut q = -1.456_607_2e-5;
    q = fma::<F>(q, x2, -2.133_740_6e-4);
    q = fma::<F>(q, x2, -1.682_827e-3);
    q = fma::<F>(q, x2, -7.373_329_2e-3);
    q = fma::<F>(q, x2, -1.426_474e-2);
    p / q
}

/// Runs `$body` as `$generic::<true>` under AVX2+FMA when the dispatched
/// level allows it, else as `$generic::<false>`.
macro_rules! dispatch {
    ($avx2:ident, $generic:ident ( $($arg:expr),* )) => {{
        #[cfg(target_arch = "x86_64")]
        if ryot_kernels::isa::level() >= SimdLevel::Avx2 {
            // SAFETY: the dispatched level is at least AVX2, which means
            // the CPU has AVX2 and FMA (ryot_kernels::isa).
            return unsafe { $avx2($($arg),*) };
        }
        $generic::<false>($($arg),*)
    }};
}

/// `x[i] = gelu(x[i] + bias[i % bias.len()])` with the exact (erf) GELU.
pub(crate) fn bias_gelu(x: &mut [f32], bias: &[f32]) {
    dispatch!(bias_gelu_avx2, bias_gelu_impl(x, bias))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn bias_gelu_avx2(x: &mut [f32], bias: &[f32]) {
    bias_gelu_impl::<true>(x, bias)
}

#[inline(always)]
fn bias_gelu_impl<const F: bool>(x: &mut [f32], bias: &[f32]) {
    const R: f32 = std::f32::consts::FRAC_1_SQRT_2;
    for row in x.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            let y = *v + b;
            *v = 0.5 * y * (1.0 + erf::<F>(y * R));
        }
    }
}

/// `x[i] = gelu_tanh(x[i] + bias[i % bias.len()])` (the tanh
/// approximation).
pub(crate) fn bias_gelu_tanh(x: &mut [f32], bias: &[f32]) {
    dispatch!(bias_gelu_tanh_avx2, bias_gelu_tanh_impl(x, bias))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn bias_gelu_tanh_avx2(x: &mut [f32], bias: &[f32]) {
    bias_gelu_tanh_impl::<true>(x, bias)
}

#[inline(always)]
fn bias_gelu_tanh_impl<const F: bool>(x: &mut [f32], bias: &[f32]) {
    // sqrt(2 / pi)
    const C: f32 = 0.797_884_6;
    for row in x.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            let y = *v + b;
            let u = C * fma::<F>(0.044_715 * y, y * y, y);
            // tanh(u) = 1 - 2 / (e^{2u} + 1)
            let t = 1.0 - 2.0 / (exp::<F>(2.0 * u) + 1.0);
            *v = 0.5 * y * (1.0 + t);
        }
    }
}

/// `x[i] = max(x[i] + bias[i % bias.len()], 0)`.
pub(crate) fn bias_relu(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v = (*v + b).max(0.0);
        }
    }
}

/// For each row of `d` values: `x = LayerNorm(x + bias + res) * gamma +
/// beta`, where `res` has the same shape as `x`. With `res = None` only
/// the bias is added (the embeddings' LayerNorm passes zero bias).
pub(crate) fn add_layer_norm(
    x: &mut [f32],
    bias: &[f32],
    res: Option<&[f32]>,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    dispatch!(
        add_layer_norm_avx2,
        add_layer_norm_impl(x, bias, res, gamma, beta, eps)
    )
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn add_layer_norm_avx2(
    x: &mut [f32],
    bias: &[f32],
    res: Option<&[f32]>,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    add_layer_norm_impl::<true>(x, bias, res, gamma, beta, eps)
}

#[inline(always)]
fn add_layer_norm_impl<const F: bool>(
    x: &mut [f32],
    bias: &[f32],
    res: Option<&[f32]>,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    let d = gamma.len();
    for (r, row) in x.chunks_exact_mut(d).enumerate() {
        match res {
            Some(res) => {
                let rr = &res[r * d..(r + 1) * d];
                for ((v, b), a) in row.iter_mut().zip(bias).zip(rr) {
                    *v += b + a;
                }
            }
            None => {
                for (v, b) in row.iter_mut().zip(bias) {
                    *v += b;
                }
            }
        }
        let mean = sum::<F>(row) / d as f32;
        let mut lanes = [0f32; LANES];
        let mut chunks = row.chunks_exact(LANES);
        for c in &mut chunks {
            for (l, v) in lanes.iter_mut().zip(c) {
                let e = v - mean;
                *l = fma::<F>(e, e, *l);
            }
        }
        let mut var: f32 = lanes.iter().sum();
        for v in chunks.remainder() {
            var += (v - mean) * (v - mean);
        }
        let inv = 1.0 / (var / d as f32 + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = fma::<F>((*v - mean) * inv, *g, *b);
        }
    }
}

#[inline(always)]
fn sum<const F: bool>(v: &[f32]) -> f32 {
    let mut lanes = [0f32; LANES];
    let mut chunks = v.chunks_exact(LANES);
    for c in &mut chunks {
        for (l, x) in lanes.iter_mut().zip(c) {
            *l += x;
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// The shape of one attention call.
#[derive(Clone, Copy)]
pub(crate) struct AttnShape {
    /// Hidden size `d` (the context row length).
    pub d: usize,
    /// Heads.
    pub heads: usize,
}

/// Scratch buffers of [`attention`].
#[derive(Default)]
pub(crate) struct AttnScratch {
    /// One head's keys in blocks of 8: `hd` vectors of 8 keys per block.
    kt: Vec<f32>,
    /// One query's scores over the keys.
    scores: Vec<f32>,
    /// One query's two context accumulators.
    acc: Vec<f32>,
}

/// Multi-head self-attention of one text: `qkv` holds its `len` tokens'
/// query, key and value rows (`3d` values each, biases added), `ctx`
/// receives `len` rows of `d`. Every token attends to every token of the
/// text (the texts of a batch are packed, so no padding mask is needed).
///
/// ```text
/// per head: kt = k^T in blocks of 8 keys (zero-padded)
///     per query i: s = (q_i / sqrt(hd)) kt      (8 keys per SIMD lane set,
///                                                accumulated over hd)
///                  p = exp(s - max s); ctx_i = (sum_l p_l v_l) / sum p
/// ```
pub(crate) fn attention(
    qkv: &[f32],
    ctx: &mut [f32],
    scratch: &mut AttnScratch,
    shape: AttnShape,
) {
    dispatch!(attention_avx2, attention_impl(qkv, ctx, scratch, shape))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn attention_avx2(
    qkv: &[f32],
    ctx: &mut [f32],
    scratch: &mut AttnScratch,
    shape: AttnShape,
) {
    attention_impl::<true>(qkv, ctx, scratch, shape)
}

#[inline(always)]
fn attention_impl<const F: bool>(
    qkv: &[f32],
    ctx: &mut [f32],
    scratch: &mut AttnScratch,
    shape: AttnShape,
) {
    let AttnShape { d, heads } = shape;
    let hd = d / heads;
    let stride = 3 * d;
    let len = qkv.len() / stride;
    let l8 = len.next_multiple_of(LANES);
    let scale = 1.0 / (hd as f32).sqrt();
    let AttnScratch { kt, scores, acc } = scratch;
    kt.clear();
    kt.resize(hd * l8, 0.0);
    scores.clear();
    scores.resize(l8, 0.0);
    acc.clear();
    acc.resize(2 * hd, 0.0);
    let mut qs = vec![0f32; hd];
    for h in 0..heads {
        let qo = h * hd;
        let ko = d + h * hd;
        let vo = 2 * d + h * hd;
        // kt[block][c][j] = k[8 * block + j][c]: each block of 8 keys is
        // hd contiguous vectors.
        for l in 0..len {
            let k = &qkv[l * stride + ko..l * stride + ko + hd];
            let base = (l / LANES) * hd * LANES + l % LANES;
            for (c, &v) in k.iter().enumerate() {
                kt[base + c * LANES] = v;
            }
        }
        for i in 0..len {
            let q = &qkv[i * stride + qo..i * stride + qo + hd];
            for (a, &b) in qs.iter_mut().zip(q) {
                *a = b * scale;
            }
            // Four blocks of 8 keys at a time: four independent FMA
            // chains over hd (one chain would wait on FMA latency).
            let mut blocks = scores
                .chunks_exact_mut(4 * LANES)
                .zip(kt.chunks_exact(4 * hd * LANES));
            for (sc, kb) in &mut blocks {
                let mut a = [[0f32; LANES]; 4];
                for (c, &qc) in qs.iter().enumerate() {
                    for (b, ab) in a.iter_mut().enumerate() {
                        let k = &kb[(b * hd + c) * LANES..][..LANES];
                        for j in 0..LANES {
                            ab[j] = fma::<F>(qc, k[j], ab[j]);
                        }
                    }
                }
                for (dst, ab) in sc.chunks_exact_mut(LANES).zip(&a) {
                    dst.copy_from_slice(ab);
                }
            }
            let done = scores.len() / (4 * LANES) * (4 * LANES);
            for (sc, kb) in scores[done..]
                .chunks_exact_mut(LANES)
                .zip(kt[done * hd..].chunks_exact(hd * LANES))
            {
                let mut a = [0f32; LANES];
                for (&qc, k) in qs.iter().zip(kb.chunks_exact(LANES)) {
                    for j in 0..LANES {
                        a[j] = fma::<F>(qc, k[j], a[j]);
                    }
                }
                sc.copy_from_slice(&a);
            }
            let max =
                scores[..len].iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
            for s in scores.iter_mut() {
                *s = exp::<F>(*s - max);
            }
            scores[len..].iter_mut().for_each(|s| *s = 0.0);
            let total = sum::<F>(scores);
            // Two accumulators (even and odd keys) for twice the FMA
            // chains.
            let (a0, a1) = acc.split_at_mut(hd);
            a0.iter_mut().for_each(|a| *a = 0.0);
            a1.iter_mut().for_each(|a| *a = 0.0);
            let mut pairs = scores[..len].chunks_exact(2);
            let mut l = 0;
            for p in &mut pairs {
                let v0 = &qkv[l * stride + vo..l * stride + vo + hd];
                let v1 =
                    &qkv[(l + 1) * stride + vo..(l + 1) * stride + vo + hd];
                for ((a, b), (x, y)) in
                    a0.iter_mut().zip(a1.iter_mut()).zip(v0.iter().zip(v1))
                {
                    *a = fma::<F>(p[0], *x, *a);
                    *b = fma::<F>(p[1], *y, *b);
                }
                l += 2;
            }
            if let [p] = pairs.remainder() {
                let v = &qkv[l * stride + vo..l * stride + vo + hd];
                for (a, x) in a0.iter_mut().zip(v) {
                    *a = fma::<F>(*p, *x, *a);
                }
            }
            let inv = 1.0 / total;
            let out = &mut ctx[i * d + h * hd..i * d + (h + 1) * hd];
            for ((o, a), b) in out.iter_mut().zip(a0.iter()).zip(a1.iter()) {
                *o = (a + b) * inv;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf by its Taylor series in f64 (accurate to ~1e-9 for |x| <= 4).
    fn erf_ref(x: f64) -> f64 {
        let mut term = x;
        let mut s = x;
        for n in 1..200 {
            term *= -x * x / n as f64;
            s += term / (2 * n + 1) as f64;
        }
        s * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn erf_is_accurate() {
        for &fma_on in &[false, true] {
            for i in -500..=500 {
                let x = i as f32 * 0.01;
                let got = if fma_on { erf::<true>(x) } else { erf::<false>(x) };
                let want = erf_ref(x as f64);
                assert!(
                    (got as f64 - want).abs() < 5e-7,
                    "erf({x}) = {got}, want {want}"
                );
            }
        }
        assert!((erf::<false>(10.0) - 1.0).abs() < 2e-7);
        assert!((erf::<false>(-10.0) + 1.0).abs() < 2e-7);
    }

    #[test]
    fn exp_is_accurate() {
        for i in -870..=880 {
            let x = i as f32 * 0.1;
            let got = exp::<false>(x) as f64;
            let want = (x as f64).exp();
            assert!(
                ((got - want) / want).abs() < 3e-7,
                "exp({x}) = {got}, want {want}"
            );
        }
        assert_eq!(exp::<false>(0.0), 1.0);
        assert!(exp::<false>(-1000.0) > 0.0);
        assert!(exp::<false>(1000.0).is_finite());
    }

    #[test]
    fn layer_norm_matches_definition() {
        let d = 13;
        let mut x: Vec<f32> = (0..2 * d).map(|i| (i as f32).sin()).collect();
        let orig = x.clone();
        let g: Vec<f32> = (0..d).map(|i| 1.0 + i as f32 * 0.1).collect();
        let b: Vec<f32> = (0..d).map(|i| i as f32 * -0.05).collect();
        let zero = vec![0f32; d];
        add_layer_norm(&mut x, &zero, None, &g, &b, 1e-12);
        for r in 0..2 {
            let row = &orig[r * d..(r + 1) * d];
            let mean = row.iter().sum::<f32>() / d as f32;
            let var =
                row.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / d as f32;
            for c in 0..d {
                let want = (row[c] - mean) / var.sqrt() * g[c] + b[c];
                assert!((x[r * d + c] - want).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn attention_matches_naive() {
        for len in [1, 5, 37, 70] {
            attention_case(len);
        }
    }

    fn attention_case(len: usize) {
        let (d, heads) = (16, 2);
        let qkv: Vec<f32> = (0..len * 3 * d)
            .map(|i| ((i * 7919) % 97) as f32 / 50.0 - 1.0)
            .collect();
        let mut ctx = vec![0f32; len * d];
        attention(
            &qkv,
            &mut ctx,
            &mut AttnScratch::default(),
            AttnShape { d, heads },
        );
        let hd = d / heads;
        for h in 0..heads {
            for i in 0..len {
                let q = |c: usize| qkv[i * 3 * d + h * hd + c] as f64;
                let s: Vec<f64> = (0..len)
                    .map(|l| {
                        (0..hd)
                            .map(|c| {
                                q(c) * qkv[l * 3 * d + d + h * hd + c] as f64
                            })
                            .sum::<f64>()
                            / (hd as f64).sqrt()
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = s.iter().map(|v| (v - m).exp()).collect();
                let t: f64 = e.iter().sum();
                for c in 0..hd {
                    let want: f64 = (0..len)
                        .map(|l| {
                            e[l] / t
                                * qkv[l * 3 * d + 2 * d + h * hd + c] as f64
                        })
                        .sum();
                    let got = ctx[i * d + h * hd + c] as f64;
                    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
                }
            }
        }
    }
}
