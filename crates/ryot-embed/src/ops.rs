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

/// Defines `$name(args)`, which runs `$imp::<true>` (fused multiply-add)
/// in an AVX2+FMA build when the dispatched level allows it, else the
/// portable `$imp::<false>`: one generic body, two instantiations.
macro_rules! dispatched {
    (
        $(#[$meta:meta])*
        fn $name:ident / $avx2:ident = $imp:ident ($($a:ident : $t:ty),*)
    ) => {
        $(#[$meta])*
        pub(crate) fn $name($($a: $t),*) {
            #[cfg(target_arch = "x86_64")]
            if ryot_kernels::isa::level() >= SimdLevel::Avx2 {
                // SAFETY: the dispatched level is at least AVX2, which
                // means the CPU has AVX2 and FMA (ryot_kernels::isa).
                return unsafe { $avx2($($a),*) };
            }
            $imp::<false>($($a),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        fn $avx2($($a: $t),*) {
            $imp::<true>($($a),*)
        }
    };
}

dispatched! {
    /// `x[i] = gelu(x[i])` with the exact (erf) GELU.
    fn gelu / gelu_avx2 = gelu_impl(x: &mut [f32])
}

#[inline(always)]
fn gelu_impl<const F: bool>(x: &mut [f32]) {
    const R: f32 = std::f32::consts::FRAC_1_SQRT_2;
    for v in x.iter_mut() {
        let y = *v;
        *v = 0.5 * y * (1.0 + erf::<F>(y * R));
    }
}

dispatched! {
    /// `x[i] = gelu_tanh(x[i])` (the tanh approximation).
    fn gelu_tanh / gelu_tanh_avx2 = gelu_tanh_impl(x: &mut [f32])
}

#[inline(always)]
fn gelu_tanh_impl<const F: bool>(x: &mut [f32]) {
    // sqrt(2 / pi)
    const C: f32 = 0.797_884_6;
    for v in x.iter_mut() {
        let y = *v;
        let u = C * fma::<F>(0.044_715 * y, y * y, y);
        // tanh(u) = 1 - 2 / (e^{2u} + 1)
        let t = 1.0 - 2.0 / (exp::<F>(2.0 * u) + 1.0);
        *v = 0.5 * y * (1.0 + t);
    }
}

/// `x[i] = max(x[i], 0)`.
pub(crate) fn relu(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = v.max(0.0);
    }
}

dispatched! {
    /// For each row of `gamma.len()` values: `x = LayerNorm(x) * gamma +
    /// beta` (bias and residual are added by the linear layer before).
    fn layer_norm / layer_norm_avx2 = layer_norm_impl(
        x: &mut [f32],
        gamma: &[f32],
        beta: &[f32],
        eps: f32
    )
}

#[inline(always)]
fn layer_norm_impl<const F: bool>(
    x: &mut [f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    let d = gamma.len();
    for row in x.chunks_exact_mut(d) {
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
    /// One head's `len x len` probabilities (long texts).
    probs: Vec<f32>,
    /// Their row sums' reciprocals.
    inv: Vec<f32>,
}

/// Texts at least this long take the GEMM path of [`attention`].
const GEMM_ATTENTION_LEN: usize = 32;

/// Multi-head self-attention of one text: `qkv` holds its `len` tokens'
/// query, key and value rows (`3d` values each, biases added), `ctx`
/// receives `len` rows of `d`. Every token attends to every token of the
/// text (the texts of a batch are packed, so no padding mask is needed).
/// Short texts run the fused loop of `attention_loop`; long ones per head
/// `S = Q K^T / sqrt(hd)` and `C = softmax(S) V` as two GEMMs.
pub(crate) fn attention(
    qkv: &[f32],
    ctx: &mut [f32],
    scratch: &mut AttnScratch,
    shape: AttnShape,
) {
    if qkv.len() / (3 * shape.d) >= GEMM_ATTENTION_LEN {
        attention_gemm(qkv, ctx, scratch, shape);
    } else {
        attention_loop(qkv, ctx, scratch, shape);
    }
}

/// [`attention`] as two GEMMs (the `gemm` crate) and a softmax per head.
fn attention_gemm(
    qkv: &[f32],
    ctx: &mut [f32],
    scratch: &mut AttnScratch,
    shape: AttnShape,
) {
    let AttnShape { d, heads } = shape;
    let hd = d / heads;
    let stride = 3 * d;
    let len = qkv.len() / stride;
    assert!(
        hd * heads == d && qkv.len() == len * stride && ctx.len() == len * d,
        "attention shapes"
    );
    if len == 0 {
        return;
    }
    let scale = 1.0 / (hd as f32).sqrt();
    let AttnScratch { probs, inv, .. } = scratch;
    probs.clear();
    probs.resize(len * len, 0.0);
    inv.clear();
    inv.resize(len, 0.0);
    let (st, ln, dd) = (stride as isize, len as isize, d as isize);
    for h in 0..heads {
        let q = qkv[h * hd..].as_ptr();
        let k = qkv[d + h * hd..].as_ptr();
        let v = qkv[2 * d + h * hd..].as_ptr();
        // SAFETY: row i of head h's q, k and v is qkv[i * stride + off
        // ..][..hd] with off + hd <= 3d = stride, so with i < len every
        // access is inside qkv (checked: len * stride values). `probs`
        // has len * len values, `ctx` len * d (checked) and head h's
        // columns h * hd .. (h + 1) * hd <= d. The destinations are
        // unique borrows, so they alias no input.
        unsafe {
            // probs (len x len) = scale * Q (len x hd) K^T (hd x len).
            gemm::gemm(
                len,
                len,
                hd,
                probs.as_mut_ptr(),
                1,
                ln,
                false,
                q,
                1,
                st,
                k,
                st,
                1,
                0.0,
                scale,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
        softmax_rows(probs, inv);
        let c = ctx[h * hd..].as_mut_ptr();
        // SAFETY: as above.
        unsafe {
            // ctx[:, head h] (len x hd) = P (len x len) V (len x hd).
            gemm::gemm(
                len,
                hd,
                len,
                c,
                1,
                dd,
                false,
                probs.as_ptr(),
                1,
                ln,
                v,
                1,
                st,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
        for (row, &s) in ctx.chunks_exact_mut(d).zip(inv.iter()) {
            row[h * hd..(h + 1) * hd].iter_mut().for_each(|x| *x *= s);
        }
    }
}

dispatched! {
    /// Each row of `p` (`inv.len()` rows) becomes `exp(p - max p)`, and
    /// `inv` receives `1 / sum` of each row.
    fn softmax_rows / softmax_rows_avx2 = softmax_rows_impl(
        p: &mut [f32],
        inv: &mut [f32]
    )
}

#[inline(always)]
fn softmax_rows_impl<const F: bool>(p: &mut [f32], inv: &mut [f32]) {
    let Some(len) = p.len().checked_div(inv.len()) else { return };
    if len == 0 {
        return;
    }
    for (row, s) in p.chunks_exact_mut(len).zip(inv.iter_mut()) {
        let max = max::<F>(row);
        for x in row.iter_mut() {
            *x = exp::<F>(*x - max);
        }
        *s = 1.0 / sum::<F>(row);
    }
}

#[inline(always)]
fn max<const F: bool>(v: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = v.chunks_exact(LANES);
    for c in &mut chunks {
        for (l, x) in lanes.iter_mut().zip(c) {
            *l = l.max(*x);
        }
    }
    let m = lanes.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    chunks.remainder().iter().fold(m, |a, &b| a.max(b))
}

dispatched! {
    /// [`attention`] for short texts, fused per query:
    ///
    /// ```text
    /// per head: kt = k^T in blocks of 8 keys (zero-padded)
    ///   per query i: s = (q_i / sqrt(hd)) kt   (8 keys per SIMD lane
    ///                                           set, summed over hd)
    ///                p = exp(s - max s); ctx_i = (sum_l p_l v_l) / sum p
    /// ```
    fn attention_loop / attention_loop_avx2 = attention_impl(
        qkv: &[f32],
        ctx: &mut [f32],
        scratch: &mut AttnScratch,
        shape: AttnShape
    )
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
    let AttnScratch { kt, scores, acc, .. } = scratch;
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
    fn scalar_and_simd_instantiations_agree() {
        let x: Vec<f32> =
            (0..3 * 20).map(|i| (i as f32 * 0.37).sin() * 4.0).collect();
        let g: Vec<f32> = (0..20).map(|i| 1.0 + i as f32 * 0.1).collect();
        let b: Vec<f32> = (0..20).map(|i| i as f32 * -0.05).collect();
        let close = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .all(|(x, y)| (x - y).abs() <= 2e-6 * (1.0 + y.abs()))
        };
        let (mut a, mut c) = (x.clone(), x.clone());
        gelu(&mut a);
        gelu_impl::<false>(&mut c);
        assert!(close(&a, &c), "gelu");
        let (mut a, mut c) = (x.clone(), x.clone());
        gelu_tanh(&mut a);
        gelu_tanh_impl::<false>(&mut c);
        assert!(close(&a, &c), "gelu_tanh");
        let (mut a, mut c) = (x.clone(), x.clone());
        layer_norm(&mut a, &g, &b, 1e-12);
        layer_norm_impl::<false>(&mut c, &g, &b, 1e-12);
        assert!(close(&a, &c), "layer_norm");
        let (mut a, mut c) = (x.clone(), x.clone());
        let (mut ia, mut ic) = (vec![0f32; 3], vec![0f32; 3]);
        softmax_rows(&mut a, &mut ia);
        softmax_rows_impl::<false>(&mut c, &mut ic);
        assert!(close(&a, &c) && close(&ia, &ic), "softmax_rows");
        for (row, s) in a.chunks_exact(20).zip(&ia) {
            let total: f32 = row.iter().sum();
            assert!((total * s - 1.0).abs() < 1e-6);
            assert!(row.contains(&1.0), "max maps to 1");
        }
    }

    #[test]
    fn layer_norm_matches_definition() {
        let d = 13;
        let mut x: Vec<f32> = (0..2 * d).map(|i| (i as f32).sin()).collect();
        let orig = x.clone();
        let g: Vec<f32> = (0..d).map(|i| 1.0 + i as f32 * 0.1).collect();
        let b: Vec<f32> = (0..d).map(|i| i as f32 * -0.05).collect();
        layer_norm(&mut x, &g, &b, 1e-12);
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
        for len in [1, 5, 31, 32, 37, 70, 256] {
            attention_case(len);
        }
    }

    fn attention_case(len: usize) {
        let (d, heads) = (16, 2);
        let qkv: Vec<f32> = (0..len * 3 * d)
            .map(|i| ((i * 7919) % 97) as f32 / 50.0 - 1.0)
            .collect();
        // The dispatched path, both fused-loop instantiations and the
        // GEMM path, each against the f64 reference.
        type Attn = fn(&[f32], &mut [f32], &mut AttnScratch, AttnShape);
        let paths: [Attn; 4] = [
            attention,
            attention_impl::<false>,
            attention_loop,
            attention_gemm,
        ];
        for f in paths {
            let mut ctx = vec![0f32; len * d];
            f(
                &qkv,
                &mut ctx,
                &mut AttnScratch::default(),
                AttnShape { d, heads },
            );
            check_attention(&qkv, &ctx, len, d, heads);
        }
    }

    fn check_attention(
        qkv: &[f32],
        ctx: &[f32],
        len: usize,
        d: usize,
        heads: usize,
    ) {
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
