//! Q4_K / Q6_K kernels: lossless repacking, llama.cpp goldens, scalar/SIMD
//! parity (bit-exact), batch and thread invariance (bit-exact), accuracy
//! against a naive f64 reference with a derived error bound, and typed
//! errors for bad input.

mod common;

use common::{Rng, bits, f32s, levels, pool, read_golden};
use half::f16;
use proptest::prelude::*;
use ryot_kernels::kq::{
    ActQ8K, KBlock, KPanels, Q4KPanels, Q6KPanels, matmul_q8k_acts,
};
use ryot_kernels::{KernelErrorKind, SimdLevel, Weights, matmul_at};
use ryot_quant::{BlockQ4K, BlockQ6K, QuantType};

fn run<B: KBlock>(
    level: SimdLevel,
    w: &KPanels<B>,
    a: &ActQ8K,
    threads: usize,
) -> Vec<f32> {
    let mut out = vec![f32::NAN; a.n() * w.m()];
    matmul_q8k_acts(level, w, a, &mut out, pool(), threads).unwrap();
    out
}

/// ggml's `get_scale_min_k4`, written again for the test's own decoder.
fn scale_min_k4(j: usize, q: &[u8; 12]) -> (f64, f64) {
    let (sc, m) = if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    };
    (sc as f64, m as f64)
}

/// Per element, the magnitude of the terms its dequantized value is made
/// of: `|d sc q| + |dmin m|` (Q4_K) or `|d sc (q - 32)|` (Q6_K), in f64.
/// The error bound below is relative to these (Q4_K values can cancel).
fn term_magnitudes(ty: QuantType, bytes: &[u8]) -> Vec<f64> {
    let mut out = Vec::new();
    match ty {
        QuantType::Q4_K => {
            for raw in bytes.chunks_exact(size_of::<BlockQ4K>()) {
                let b: BlockQ4K = bytemuck::pod_read_unaligned(raw);
                let (d, dmin) = (b.d.to_f64(), b.dmin.to_f64());
                let mut y = [0f64; 256];
                for c in 0..4 {
                    for (half, shift) in [(0, 0), (1, 4)] {
                        let (sc, m) = scale_min_k4(2 * c + half, &b.scales);
                        for l in 0..32 {
                            let q = ((b.qs[32 * c + l] >> shift) & 15) as f64;
                            y[64 * c + 32 * half + l] =
                                (d * sc * q).abs() + (dmin * m).abs();
                        }
                    }
                }
                out.extend_from_slice(&y);
            }
        }
        QuantType::Q6_K => {
            let mut y = [0f32; 256];
            for raw in bytes.chunks_exact(size_of::<BlockQ6K>()) {
                let b: BlockQ6K = bytemuck::pod_read_unaligned(raw);
                ryot_quant::dequantize_blocks(&[b], &mut y).unwrap();
                out.extend(y.iter().map(|v| (*v as f64).abs()));
            }
        }
        _ => unreachable!(),
    }
    out
}

/// Bound on |kernel - naive| for one output, with `mag = sum_e
/// term_magnitude_e * |x_e|` over the row.
///
/// Each 256-block term of the kernel is exact integers times `f32(d_w) *
/// d_x`, then `f32(S)` and the product: 3 roundings of relative `u =
/// 2^-24` of the term; the running sum adds one rounding per add (two per
/// block for Q4_K), each at most `u` times the sum of the magnitudes so
/// far. The naive side multiplies f32 weights that ggml's dequantizer
/// rounded up to 3 times (`d * sc`, `* q`, `- dmin * m`) with exact f64
/// activations. So `(6 + 2 * blocks) * u * mag` bounds the difference.
fn bound(blocks: usize, mag: f64) -> f64 {
    (6.0 + 2.0 * blocks as f64) * (f32::EPSILON as f64 / 2.0) * mag
}

/// Checks `got` (n x m, token-major) against f64 sums of the dequantized
/// weights times the dequantized Q8_K activations.
fn check_naive(
    got: &[f32],
    wd: &[f32],
    mags: &[f64],
    a: &ActQ8K,
    m: usize,
    what: &str,
) {
    let k = a.k();
    for t in 0..a.n() {
        let mut xd = vec![0f32; k];
        ryot_quant::act::dequantize_row_q8_k(&a.to_blocks(t), &mut xd).unwrap();
        for r in 0..m {
            let (mut want, mut mag) = (0f64, 0f64);
            for c in 0..k {
                want += wd[r * k + c] as f64 * xd[c] as f64;
                mag += mags[r * k + c] * (xd[c] as f64).abs();
            }
            let g = got[t * m + r] as f64;
            let tol = bound(k / 256, mag);
            assert!(
                (g - want).abs() <= tol,
                "{what}: t={t} row={r}: {g} vs {want} (tol {tol:e})"
            );
        }
    }
}

/// Random but valid block bytes: every code and packed scale bit random,
/// f16 scales of either sign in a sane range.
fn random_bytes(rng: &mut Rng, ty: QuantType, m: usize, k: usize) -> Vec<u8> {
    let blocks = m * k / 256;
    let size = ty.block_bytes();
    let mut out = Vec::with_capacity(blocks * size);
    for _ in 0..blocks {
        let start = out.len();
        out.extend((0..size).map(|_| rng.below(256) as u8));
        let mut f = |at: usize| {
            let v = f16::from_f32(rng.unit() * 0.01);
            out[start + at..start + at + 2].copy_from_slice(&v.to_le_bytes());
        };
        match ty {
            QuantType::Q4_K => {
                f(0);
                f(2);
            }
            _ => f(208),
        }
    }
    out
}

fn acts(rng: &mut Rng, n: usize, k: usize) -> ActQ8K {
    ActQ8K::quantize(&rng.vec(n * k), n, k).unwrap()
}

#[test]
fn repack_goldens_are_lossless() {
    for ty in [QuantType::Q4_K, QuantType::Q6_K] {
        let bytes = read_golden(&format!("{ty}.blocks.bin"));
        let want = f32s(&read_golden(&format!("{ty}.dequant.f32.bin")));
        let (got, back) = match ty {
            QuantType::Q4_K => {
                let w = Q4KPanels::from_gguf(&bytes, 4, 1024).unwrap();
                (w.dequantize(), w.to_gguf())
            }
            _ => {
                let w = Q6KPanels::from_gguf(&bytes, 4, 1024).unwrap();
                (w.dequantize(), w.to_gguf())
            }
        };
        assert_eq!(back, bytes, "{ty} bytes");
        assert_eq!(bits(&got), bits(&want), "{ty} dequant");
    }
}

#[test]
fn repack_random_is_lossless() {
    let mut rng = Rng(11);
    for &(m, k) in &[(1, 256), (17, 512), (40, 768)] {
        for ty in [QuantType::Q4_K, QuantType::Q6_K] {
            let bytes = random_bytes(&mut rng, ty, m, k);
            let mut want = vec![0f32; m * k];
            ryot_quant::dequantize(ty, &bytes, m, k, &mut want).unwrap();
            let (got, back) = match ty {
                QuantType::Q4_K => {
                    let w = Q4KPanels::from_gguf(&bytes, m, k).unwrap();
                    (w.dequantize(), w.to_gguf())
                }
                _ => {
                    let w = Q6KPanels::from_gguf(&bytes, m, k).unwrap();
                    (w.dequantize(), w.to_gguf())
                }
            };
            assert_eq!(back, bytes, "{ty} {m}x{k}");
            assert_eq!(bits(&got), bits(&want), "{ty} {m}x{k}");
        }
    }
}

#[test]
fn goldens_match_naive_f64() {
    for ty in [QuantType::Q4_K, QuantType::Q6_K] {
        let bytes = read_golden(&format!("{ty}.blocks.bin"));
        let wd = f32s(&read_golden(&format!("{ty}.dequant.f32.bin")));
        // The golden's own input rows serve as 4 tokens of activations.
        let x = f32s(&read_golden(&format!("{ty}.input.f32.bin")));
        let a = ActQ8K::quantize(&x, 4, 1024).unwrap();
        // The activations are exactly llama.cpp's quantize_row_q8_K_ref.
        for t in 0..4 {
            let mut want = vec![bytemuck::Zeroable::zeroed(); 4];
            let row = &x[t * 1024..(t + 1) * 1024];
            ryot_quant::act::quantize_row_q8_k(row, &mut want);
            assert_eq!(
                bytemuck::cast_slice::<_, u8>(&a.to_blocks(t)),
                bytemuck::cast_slice::<_, u8>(&want),
                "{ty} token {t}"
            );
        }
        let mags = term_magnitudes(ty, &bytes);
        for level in levels() {
            let got = match ty {
                QuantType::Q4_K => run(
                    level,
                    &Q4KPanels::from_gguf(&bytes, 4, 1024).unwrap(),
                    &a,
                    1,
                ),
                _ => run(
                    level,
                    &Q6KPanels::from_gguf(&bytes, 4, 1024).unwrap(),
                    &a,
                    1,
                ),
            };
            check_naive(&got, &wd, &mags, &a, 4, &format!("{ty} {level}"));
        }
    }
}

/// llama.cpp's `tests/test-quantize-fns.cpp` dot-product check: weights
/// `0.1 + 2 cos(i)` quantized by the reference quantizer, activations `0.1
/// + 2 cos(i + 1)` as Q8_K; the error against the f32 dot product, divided
/// by the length, must stay under its `MAX_DOT_PRODUCT_ERROR = 0.02`.
#[test]
fn dot_product_error_like_llama_cpp() {
    const MAX_DOT_PRODUCT_ERROR: f64 = 0.02;
    const N: usize = 32 * 128;
    let generate = |off: f32| -> Vec<f32> {
        (0..N).map(|i| 0.1 + 2.0 * (i as f32 + off).cos()).collect()
    };
    let (w, x) = (generate(0.0), generate(1.0));
    let dot: f64 = w.iter().zip(&x).map(|(a, b)| *a as f64 * *b as f64).sum();
    let a = ActQ8K::quantize(&x, 1, N).unwrap();
    for level in levels() {
        let q4 = run(level, &Q4KPanels::quantize(&w, 1, N).unwrap(), &a, 1)[0];
        let q6 = run(level, &Q6KPanels::quantize(&w, 1, N).unwrap(), &a, 1)[0];
        for (ty, got) in [("q4_k", q4), ("q6_k", q6)] {
            let err = (got as f64 - dot).abs() / N as f64;
            assert!(err < MAX_DOT_PRODUCT_ERROR, "{ty} {level}: {err}");
        }
    }
}

/// Shapes that hit every tail: one row, odd rows, partial panels, panel
/// counts that are not multiples of the GEMV step (2 or 4 panels), one and
/// several blocks, and token counts 1, 2, 3, tile + 1 (5) and 13.
const SHAPES: &[(usize, usize, usize)] = &[
    (1, 256, 1),
    (1, 512, 2),
    (3, 256, 3),
    (15, 768, 1),
    (16, 256, 5),
    (17, 512, 13),
    (33, 256, 1),
    (48, 1024, 2),
    (77, 512, 1),
    (77, 256, 4),
    (112, 768, 1),
    (113, 256, 9),
    (129, 2560, 1),
];

#[test]
fn simd_matches_scalar_bit_for_bit() {
    let mut rng = Rng(42);
    for &(m, k, n) in SHAPES {
        let a = acts(&mut rng, n, k);
        let w4 = Q4KPanels::from_gguf(
            &random_bytes(&mut rng, QuantType::Q4_K, m, k),
            m,
            k,
        )
        .unwrap();
        let w6 = Q6KPanels::from_gguf(
            &random_bytes(&mut rng, QuantType::Q6_K, m, k),
            m,
            k,
        )
        .unwrap();
        let want4 = run(SimdLevel::Scalar, &w4, &a, 1);
        let want6 = run(SimdLevel::Scalar, &w6, &a, 1);
        for level in levels() {
            let what = format!("{level} m={m} k={k} n={n}");
            assert_eq!(
                bits(&run(level, &w4, &a, 2)),
                bits(&want4),
                "q4_k {what}"
            );
            assert_eq!(
                bits(&run(level, &w6, &a, 2)),
                bits(&want6),
                "q6_k {what}"
            );
        }
    }
}

/// The largest codes, scales and activations: every i16 intermediate of
/// the AVX2 path at its bound, and the results still exact.
#[test]
fn extreme_codes_and_scales_stay_exact() {
    let (m, k, n) = (20, 512, 3);
    let mut x = vec![0f32; n * k];
    for (i, v) in x.iter_mut().enumerate() {
        // Token 0 all +1, token 1 all -1 (codes +-127), token 2 alternating.
        *v = match i / k {
            0 => 1.0,
            1 => -1.0,
            _ => {
                if i % 2 == 0 {
                    1.0
                } else {
                    -1.0
                }
            }
        };
    }
    let a = ActQ8K::quantize(&x, n, k).unwrap();
    let mut q4 = BlockQ4K {
        d: f16::from_f32(0.5),
        dmin: f16::from_f32(0.25),
        scales: [0xff; 12],
        qs: [0xff; 128],
    };
    let mut q6 = BlockQ6K {
        ql: [0xff; 128],
        qh: [0xff; 64],
        scales: [127; 16],
        d: f16::from_f32(0.5),
    };
    for variant in 0..3 {
        if variant == 1 {
            q6.scales = [-128; 16];
            q4.qs = [0xf0; 128];
        }
        if variant == 2 {
            q6.ql = [0; 128];
            q6.qh = [0; 64];
        }
        let b4: Vec<u8> = (0..m * k / 256)
            .flat_map(|_| bytemuck::bytes_of(&q4).to_vec())
            .collect();
        let b6: Vec<u8> = (0..m * k / 256)
            .flat_map(|_| bytemuck::bytes_of(&q6).to_vec())
            .collect();
        let w4 = Q4KPanels::from_gguf(&b4, m, k).unwrap();
        let w6 = Q6KPanels::from_gguf(&b6, m, k).unwrap();
        let want4 = run(SimdLevel::Scalar, &w4, &a, 1);
        let want6 = run(SimdLevel::Scalar, &w6, &a, 1);
        check_naive(
            &want4,
            &w4.dequantize(),
            &term_magnitudes(QuantType::Q4_K, &b4),
            &a,
            m,
            "q4_k",
        );
        check_naive(
            &want6,
            &w6.dequantize(),
            &term_magnitudes(QuantType::Q6_K, &b6),
            &a,
            m,
            "q6_k",
        );
        for level in levels() {
            assert_eq!(
                bits(&run(level, &w4, &a, 1)),
                bits(&want4),
                "q4_k {level} {variant}"
            );
            assert_eq!(
                bits(&run(level, &w6, &a, 1)),
                bits(&want6),
                "q6_k {level} {variant}"
            );
        }
    }
}

#[test]
fn batch_and_threads_do_not_change_a_row() {
    let mut rng = Rng(9);
    let (m, k, n) = (70, 768, 13);
    let b4 = random_bytes(&mut rng, QuantType::Q4_K, m, k);
    let b6 = random_bytes(&mut rng, QuantType::Q6_K, m, k);
    let w4 = Q4KPanels::from_gguf(&b4, m, k).unwrap();
    let w6 = Q6KPanels::from_gguf(&b6, m, k).unwrap();
    let x = rng.vec(n * k);
    let a = ActQ8K::quantize(&x, n, k).unwrap();
    for level in levels() {
        let g4 = run(level, &w4, &a, 1);
        let g6 = run(level, &w6, &a, 1);
        for threads in [2, 3] {
            assert_eq!(bits(&run(level, &w4, &a, threads)), bits(&g4));
            assert_eq!(bits(&run(level, &w6, &a, threads)), bits(&g6));
        }
        // Every prefix batch and every single token give the same rows.
        for nn in [1, 2, 3, 5, 8] {
            let an = ActQ8K::quantize(&x[..nn * k], nn, k).unwrap();
            assert_eq!(
                bits(&run(level, &w4, &an, 2)),
                bits(&g4[..nn * m]),
                "n={nn}"
            );
            assert_eq!(
                bits(&run(level, &w6, &an, 2)),
                bits(&g6[..nn * m]),
                "n={nn}"
            );
        }
        for t in 0..n {
            let a1 = ActQ8K::quantize(&x[t * k..(t + 1) * k], 1, k).unwrap();
            for threads in [1, 2] {
                let r = t * m..(t + 1) * m;
                assert_eq!(
                    bits(&run(level, &w4, &a1, threads)),
                    bits(&g4[r.clone()]),
                    "t={t}"
                );
                assert_eq!(
                    bits(&run(level, &w6, &a1, threads)),
                    bits(&g6[r]),
                    "t={t}"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Reference-quantized weights and random activations against the
    /// naive f64 product, within the derived bound of [`bound`].
    #[test]
    fn matches_naive(
        m in 1usize..40,
        blocks in 1usize..4,
        n in 1usize..7,
        seed in any::<u64>(),
        scale in prop_oneof![Just(1e-3f32), Just(1.0f32), Just(1e3f32)],
    ) {
        let k = 256 * blocks;
        let mut rng = Rng(seed);
        let wf: Vec<f32> = rng.vec(m * k).iter().map(|v| v * scale).collect();
        let a = acts(&mut rng, n, k);
        for ty in [QuantType::Q4_K, QuantType::Q6_K] {
            let bytes = ryot_quant::quantize(ty, &wf, m, k).unwrap();
            let mags = term_magnitudes(ty, &bytes);
            let mut wd = vec![0f32; m * k];
            ryot_quant::dequantize(ty, &bytes, m, k, &mut wd).unwrap();
            for level in levels() {
                let got = match ty {
                    QuantType::Q4_K => run(level, &Q4KPanels::from_gguf(&bytes, m, k).unwrap(), &a, 2),
                    _ => run(level, &Q6KPanels::from_gguf(&bytes, m, k).unwrap(), &a, 2),
                };
                check_naive(&got, &wd, &mags, &a, m, &format!("{ty} {level}"));
            }
        }
    }
}

#[test]
fn weights_entry_point() {
    let mut rng = Rng(1);
    let (m, k, n) = (20, 512, 3);
    let x = rng.vec(n * k);
    for (ty, name) in [(QuantType::Q4_K, "q4_k"), (QuantType::Q6_K, "q6_k")] {
        let bytes = random_bytes(&mut rng, ty, m, k);
        let w = Weights::from_gguf(ty, &bytes, m, k).unwrap();
        assert_eq!((w.type_name(), w.m(), w.k()), (name, m, k));
        assert_eq!(w.stored_bytes(), 32 * (bytes.len() / m));
        let mut want = vec![0f32; n * m];
        matmul_at(SimdLevel::Scalar, &w, &x, n, &mut want, pool(), 1).unwrap();
        for level in levels() {
            let mut out = vec![0f32; n * m];
            matmul_at(level, &w, &x, n, &mut out, pool(), 2).unwrap();
            assert_eq!(bits(&out), bits(&want), "{name} {level}");
        }
    }
}

#[test]
fn bad_input_gives_typed_errors() {
    let mut rng = Rng(2);
    let (m, k) = (5, 512);
    let bytes = random_bytes(&mut rng, QuantType::Q4_K, m, k);
    let kind = |r: Result<Q4KPanels, ryot_kernels::KernelError>| {
        format!("{:?}", r.unwrap_err().kind())
    };
    assert!(matches!(
        Q4KPanels::from_gguf(&bytes[1..], m, k).unwrap_err().kind(),
        KernelErrorKind::LengthMismatch { expected, .. } if *expected == bytes.len()
    ));
    assert!(matches!(
        Q6KPanels::from_gguf(&bytes, m, k).unwrap_err().kind(),
        KernelErrorKind::LengthMismatch { .. }
    ));
    assert!(matches!(
        Q4KPanels::from_gguf(&bytes, 10, 512).unwrap_err().kind(),
        KernelErrorKind::LengthMismatch { .. }
    ));
    assert!(matches!(
        Q4KPanels::from_gguf(&bytes, m, 300).unwrap_err().kind(),
        KernelErrorKind::NotBlockMultiple { block: 256, k: 300, .. }
    ));
    assert!(matches!(
        Weights::from_gguf(QuantType::Q6_K, &bytes, m, 128).unwrap_err().kind(),
        KernelErrorKind::NotBlockMultiple { block: 256, .. }
    ));
    assert!(kind(Q4KPanels::from_gguf(&[], 0, 256)).starts_with("BadShape"));
    assert!(
        kind(Q4KPanels::from_gguf(&[], usize::MAX, 256))
            .starts_with("BadShape")
    );
    let mut nan = bytes.clone();
    nan[2..4].copy_from_slice(&f16::NAN.to_le_bytes()); // dmin of block 0
    assert!(matches!(
        Q4KPanels::from_gguf(&nan, m, k).unwrap_err().kind(),
        KernelErrorKind::NonFinite { .. }
    ));
    let b6 = random_bytes(&mut rng, QuantType::Q6_K, 1, 256);
    let mut inf = b6.clone();
    inf[208..210].copy_from_slice(&f16::INFINITY.to_le_bytes());
    assert!(matches!(
        Q6KPanels::from_gguf(&inf, 1, 256).unwrap_err().kind(),
        KernelErrorKind::NonFinite { .. }
    ));

    let w = Q4KPanels::from_gguf(&bytes, m, k).unwrap();
    let mut x = rng.vec(2 * k);
    assert!(matches!(
        ActQ8K::quantize(&x, 2, 200).unwrap_err().kind(),
        KernelErrorKind::NotBlockMultiple { .. }
    ));
    assert!(matches!(
        ActQ8K::quantize(&x[1..], 2, k).unwrap_err().kind(),
        KernelErrorKind::LengthMismatch { .. }
    ));
    let a256 = ActQ8K::quantize(&x[..256], 1, 256).unwrap();
    let mut out = vec![0f32; m];
    assert!(matches!(
        matmul_q8k_acts(SimdLevel::Scalar, &w, &a256, &mut out, pool(), 1)
            .unwrap_err()
            .kind(),
        KernelErrorKind::BadShape { .. }
    ));
    let wk = Weights::Q4K(w);
    let mut out = vec![0f32; 2 * m];
    assert!(matches!(
        matmul_at(SimdLevel::Scalar, &wk, &x, 2, &mut out[1..], pool(), 1)
            .unwrap_err()
            .kind(),
        KernelErrorKind::LengthMismatch { .. }
    ));
    x[7] = f32::INFINITY;
    assert!(matches!(
        matmul_at(SimdLevel::Scalar, &wk, &x, 2, &mut out, pool(), 1)
            .unwrap_err()
            .kind(),
        KernelErrorKind::NonFinite { .. }
    ));
}
