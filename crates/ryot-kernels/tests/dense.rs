//! Dense (F32, F16, BF16) kernels: lossless repacking, scalar/SIMD parity (bit
//! for bit), batch and thread invariance (bit for bit), accuracy against a
//! naive f64 reference, and typed errors for bad input.

mod common;

use common::{Rng, bits, f32s, levels, pool, read_golden};
use proptest::prelude::*;
use ryot_kernels::dense::{CHUNK, DenseBf16, DenseF16, DenseF32};
use ryot_kernels::{
    KernelError, KernelErrorKind, SimdLevel, Weights, matmul_at,
};
use ryot_quant::QuantType;

fn run(
    level: SimdLevel,
    w: &Weights,
    x: &[f32],
    n: usize,
    threads: usize,
) -> Vec<f32> {
    let mut out = vec![f32::NAN; n * w.m()];
    matmul_at(level, w, x, n, &mut out, pool(), threads).unwrap();
    out
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f16_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| half::f16::from_f32(*x).to_le_bytes()).collect()
}

fn bf16_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| half::bf16::from_f32(*x).to_le_bytes()).collect()
}

/// The three dense types built from the same f32 matrix.
fn all(w: &[f32], m: usize, k: usize) -> [Weights; 3] {
    [
        Weights::F32(DenseF32::from_f32(w, m, k).unwrap()),
        Weights::F16(DenseF16::from_f32(w, m, k).unwrap()),
        Weights::Bf16(DenseBf16::from_f32(w, m, k).unwrap()),
    ]
}

fn dequantize(w: &Weights) -> Vec<f32> {
    match w {
        Weights::F32(d) => d.dequantize(),
        Weights::F16(d) => d.dequantize(),
        Weights::Bf16(d) => d.dequantize(),
        _ => unreachable!("dense tests only build F32/F16/BF16"),
    }
}

/// Naive reference in f64 and the sum of magnitudes `sum |w x|` per
/// output, for the error bound.
fn naive(
    wd: &[f32],
    x: &[f32],
    m: usize,
    k: usize,
    n: usize,
) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(n * m);
    for t in 0..n {
        let xt = &x[t * k..(t + 1) * k];
        for r in 0..m {
            let row = &wd[r * k..(r + 1) * k];
            let (mut s, mut mag) = (0f64, 0f64);
            for (w, x) in row.iter().zip(xt) {
                let p = *w as f64 * *x as f64;
                s += p;
                mag += p.abs();
            }
            out.push((s, mag));
        }
    }
    out
}

/// Error bound for the dense kernels' order of operations (module doc of
/// `ryot_kernels::dense`): a fused multiply-add chain of at most `CHUNK`
/// terms per chunk, then `ceil(k / CHUNK)` chunk sums added in order.
/// Recursive summation of `L` terms errs by at most `L * u * sum|terms|`
/// to first order (Higham, Accuracy and Stability of Numerical
/// Algorithms, 2nd ed., §4.2), `u = 2^-24`; the chain length is
/// `min(k, CHUNK) + ceil(k / CHUNK)`. We allow twice that.
fn dense_tol(k: usize, mag: f64) -> f64 {
    let steps = k.min(CHUNK) + k.div_ceil(CHUNK);
    2.0 * steps as f64 * (f32::EPSILON as f64 / 2.0) * mag + 1e-30
}

#[test]
fn repack_is_lossless() {
    let mut rng = Rng(11);
    for &(m, k) in &[(1, 1), (3, 7), (16, 33), (17, 64), (40, 300)] {
        let w = rng.vec(m * k);
        let f = DenseF32::from_f32(&w, m, k).unwrap();
        assert_eq!(bits(&f.dequantize()), bits(&w));
        let g = DenseF32::from_gguf(&f32_bytes(&w), m, k).unwrap();
        assert_eq!(bits(&g.dequantize()), bits(&w));
        assert_eq!(f.stored_bytes(), m.div_ceil(16) * 16 * k * 4);

        let bytes = f16_bytes(&w);
        let mut want = vec![0f32; m * k];
        ryot_quant::dequantize(QuantType::F16, &bytes, m, k, &mut want)
            .unwrap();
        let h = DenseF16::from_gguf(&bytes, m, k).unwrap();
        assert_eq!(bits(&h.dequantize()), bits(&want));
        let h2 = DenseF16::from_f32(&w, m, k).unwrap();
        assert_eq!(bits(&h2.dequantize()), bits(&want));
        assert_eq!(h.stored_bytes(), m.div_ceil(16) * 16 * k * 2);

        // BF16: ggml's rounding (ryot_quant::quantize) and half's agree
        // on finite values; both repacks give ggml's dequantization.
        let bytes = ryot_quant::quantize(QuantType::BF16, &w, m, k).unwrap();
        assert_eq!(bytes, bf16_bytes(&w));
        ryot_quant::dequantize(QuantType::BF16, &bytes, m, k, &mut want)
            .unwrap();
        let b = DenseBf16::from_gguf(&bytes, m, k).unwrap();
        assert_eq!(bits(&b.dequantize()), bits(&want));
        let b2 = DenseBf16::from_f32(&w, m, k).unwrap();
        assert_eq!(bits(&b2.dequantize()), bits(&want));
        assert_eq!(b.stored_bytes(), m.div_ceil(16) * 16 * k * 2);
    }
}

#[test]
fn repack_f16_golden_is_lossless() {
    // llama.cpp's F16 tensor (4 x 1024) and gguf-py's dequantization.
    let bytes = read_golden("F16.blocks.bin");
    let want = f32s(&read_golden("F16.dequant.f32.bin"));
    let w = DenseF16::from_gguf(&bytes, 4, 1024).unwrap();
    assert_eq!(bits(&w.dequantize()), bits(&want));
}

#[test]
fn repack_bf16_golden_is_lossless() {
    // llama.cpp's BF16 tensor (4 x 1024) and gguf-py's dequantization.
    let bytes = read_golden("BF16.blocks.bin");
    let want = f32s(&read_golden("BF16.dequant.f32.bin"));
    let w = DenseBf16::from_gguf(&bytes, 4, 1024).unwrap();
    assert_eq!(bits(&w.dequantize()), bits(&want));
    let mut ours = vec![0f32; 4 * 1024];
    ryot_quant::dequantize(QuantType::BF16, &bytes, 4, 1024, &mut ours)
        .unwrap();
    assert_eq!(bits(&ours), bits(&want));
}

/// Shapes that hit every tail: one row, odd rows, a partial panel, rows
/// not a multiple of the GEMV panel step (4 or 8 panels), k = 1, k not a
/// multiple of 8 or 16 lanes nor of the 256-column chunk, n = 1, 2, 3,
/// token tiles (6 for AVX2, 8 for AVX-512) and their remainders.
const SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (1, 16, 2),
    (3, 5, 3),
    (15, 17, 1),
    (16, 64, 6),
    (17, 100, 7),
    (33, 250, 1),
    (48, 256, 8),
    (64, 257, 9),
    (65, 300, 13),
    (100, 513, 1),
    (129, 1000, 2),
    (143, 2560, 1),
    (257, 64, 17),
];

#[test]
fn simd_matches_scalar_bit_for_bit() {
    let mut rng = Rng(42);
    for &(m, k, n) in SHAPES {
        let wf = rng.vec(m * k);
        let x = rng.vec(n * k);
        for w in all(&wf, m, k) {
            let want = run(SimdLevel::Scalar, &w, &x, n, 1);
            for level in levels() {
                assert_eq!(
                    bits(&run(level, &w, &x, n, 2)),
                    bits(&want),
                    "{} {level} m={m} k={k} n={n}",
                    w.type_name()
                );
            }
        }
    }
}

#[test]
fn batch_and_threads_do_not_change_a_result() {
    let mut rng = Rng(9);
    let (m, k, n) = (150, 700, 19);
    let wf = rng.vec(m * k);
    let x = rng.vec(n * k);
    for w in all(&wf, m, k) {
        for level in levels() {
            let gemm = run(level, &w, &x, n, 1);
            for threads in [2, 3] {
                assert_eq!(bits(&run(level, &w, &x, n, threads)), bits(&gemm));
            }
            // Every token alone, and every window of 1..=9 tokens at
            // every offset, gives the same bits as inside the batch.
            for t in 0..n {
                let gemv = run(level, &w, &x[t * k..(t + 1) * k], 1, 2);
                assert_eq!(
                    bits(&gemv),
                    bits(&gemm[t * m..(t + 1) * m]),
                    "t={t}"
                );
            }
            for len in 1..=9 {
                for t0 in 0..=n - len {
                    let sub =
                        run(level, &w, &x[t0 * k..(t0 + len) * k], len, 2);
                    assert_eq!(
                        bits(&sub),
                        bits(&gemm[t0 * m..(t0 + len) * m]),
                        "{} {level} tokens {t0}..{}",
                        w.type_name(),
                        t0 + len
                    );
                }
            }
        }
    }
}

#[test]
fn accuracy_against_naive_f64() {
    let mut rng = Rng(5);
    for &(m, k, n) in SHAPES {
        let wf = rng.vec(m * k);
        let x = rng.vec(n * k);
        for w in all(&wf, m, k) {
            let got = run(SimdLevel::Scalar, &w, &x, n, 1);
            let want = naive(&dequantize(&w), &x, m, k, n);
            for (g, (e, mag)) in got.iter().zip(want) {
                let tol = dense_tol(k, mag);
                assert!((*g as f64 - e).abs() <= tol, "{g} vs {e} (tol {tol})");
            }
        }
    }
}

#[test]
fn from_gguf_through_weights() {
    let mut rng = Rng(2);
    let (m, k, n) = (21, 40, 3);
    let wf = rng.vec(m * k);
    let x = rng.vec(n * k);
    let a = Weights::from_gguf(QuantType::F32, &f32_bytes(&wf), m, k).unwrap();
    let b = Weights::from_gguf(QuantType::F16, &f16_bytes(&wf), m, k).unwrap();
    let c =
        Weights::from_gguf(QuantType::BF16, &bf16_bytes(&wf), m, k).unwrap();
    assert_eq!(
        (a.type_name(), b.type_name(), c.type_name()),
        ("f32", "f16", "bf16")
    );
    assert_eq!((a.m(), a.k(), b.m(), b.k()), (m, k, m, k));
    assert_eq!((c.m(), c.k()), (m, k));
    for (w, w2) in [a, b, c].iter().zip(all(&wf, m, k)) {
        assert_eq!(w.stored_bytes(), w2.stored_bytes());
        for level in levels() {
            assert_eq!(
                bits(&run(level, w, &x, n, 2)),
                bits(&run(level, &w2, &x, n, 1))
            );
        }
    }
}

/// The error of `r`, which must be one; its message must display.
fn err<T: std::fmt::Debug>(r: Result<T, KernelError>) -> KernelError {
    let e = r.expect_err("expected an error");
    assert!(!e.to_string().is_empty());
    e
}

#[test]
fn bad_input_gives_typed_errors() {
    use KernelErrorKind as K;
    let w = vec![0.5f32; 6];
    assert!(matches!(
        err(DenseF32::from_f32(&w, 2, 2)).kind(),
        K::LengthMismatch { .. }
    ));
    assert!(matches!(
        err(DenseF32::from_f32(&[], 0, 3)).kind(),
        K::BadShape { .. }
    ));
    assert!(matches!(
        err(DenseF32::from_f32(&[], 3, 0)).kind(),
        K::BadShape { .. }
    ));
    assert!(matches!(
        err(DenseF16::from_f32(&w, 2, 4)).kind(),
        K::LengthMismatch { .. }
    ));
    assert!(matches!(
        err(DenseF32::from_f32(&w, usize::MAX, 2)).kind(),
        K::BadShape { .. }
    ));
    assert!(matches!(
        err(DenseF32::from_gguf(&[0; 23], 2, 3)).kind(),
        K::LengthMismatch { .. }
    ));
    assert!(matches!(
        err(DenseF16::from_gguf(&[0; 11], 2, 3)).kind(),
        K::LengthMismatch { .. }
    ));
    assert!(matches!(
        err(DenseF16::from_gguf(&[0; 12], usize::MAX / 2, 3)).kind(),
        K::BadShape { .. }
    ));
    // m * k fits, but not its byte count.
    assert!(matches!(
        err(DenseF32::from_gguf(&[0; 4], usize::MAX / 32, 16)).kind(),
        K::BadShape { .. }
    ));
    let mut bad = w.clone();
    bad[4] = f32::NAN;
    assert!(matches!(
        err(DenseF32::from_f32(&bad, 2, 3)).kind(),
        K::NonFinite { .. }
    ));
    assert!(matches!(
        err(DenseF16::from_f32(&bad, 2, 3)).kind(),
        K::NonFinite { .. }
    ));
    bad[4] = f32::INFINITY;
    assert!(matches!(
        err(DenseF32::from_gguf(&f32_bytes(&bad), 2, 3)).kind(),
        K::NonFinite { .. }
    ));
    // 1e5 overflows f16.
    bad[4] = 1e5;
    assert!(matches!(
        err(DenseF16::from_f32(&bad, 2, 3)).kind(),
        K::NonFinite { .. }
    ));
    let mut hb = f16_bytes(&w);
    hb[3] = 0x7e; // element 1 becomes a NaN
    assert!(matches!(
        err(DenseF16::from_gguf(&hb, 2, 3)).kind(),
        K::NonFinite { .. }
    ));

    assert!(matches!(
        err(DenseBf16::from_f32(&w, 2, 4)).kind(),
        K::LengthMismatch { .. }
    ));
    assert!(matches!(
        err(DenseBf16::from_f32(&[], 0, 4)).kind(),
        K::BadShape { .. }
    ));
    assert!(matches!(
        err(DenseBf16::from_gguf(&[0; 11], 2, 3)).kind(),
        K::LengthMismatch { .. }
    ));
    assert!(matches!(
        err(DenseBf16::from_gguf(&[0; 12], usize::MAX / 2, 3)).kind(),
        K::BadShape { .. }
    ));
    bad[4] = f32::NAN;
    assert!(matches!(
        err(DenseBf16::from_f32(&bad, 2, 3)).kind(),
        K::NonFinite { .. }
    ));
    // 3.4e38 rounds up to bf16 infinity.
    bad[4] = f32::MAX;
    assert!(matches!(
        err(DenseBf16::from_f32(&bad, 2, 3)).kind(),
        K::NonFinite { .. }
    ));
    let mut bb = bf16_bytes(&w);
    bb[3] = 0xff; // element 1 becomes a NaN (0xff80 | low byte)
    bb[2] = 0xc1;
    assert!(matches!(
        err(DenseBf16::from_gguf(&bb, 2, 3)).kind(),
        K::NonFinite { .. }
    ));
    bb[2] = 0x80; // -infinity
    assert!(matches!(
        err(DenseBf16::from_gguf(&bb, 2, 3)).kind(),
        K::NonFinite { .. }
    ));
    assert!(matches!(
        err(Weights::from_gguf(QuantType::BF16, &bb[1..], 2, 3)).kind(),
        K::LengthMismatch { .. }
    ));

    let (m, k, n) = (5, 3, 2);
    let wt = Weights::F32(DenseF32::from_f32(&vec![1.0; m * k], m, k).unwrap());
    let x = vec![1.0f32; n * k];
    let mut out = vec![0f32; n * m];
    let s = SimdLevel::Scalar;
    let p = pool();
    assert!(matches!(
        err(matmul_at(s, &wt, &x, n, &mut out[1..], p, 1)).kind(),
        K::LengthMismatch { .. }
    ));
    assert!(matches!(
        err(matmul_at(s, &wt, &x[1..], n, &mut out, p, 1)).kind(),
        K::LengthMismatch { .. }
    ));
    assert!(matches!(
        err(matmul_at(s, &wt, &[], 0, &mut [], p, 1)).kind(),
        K::BadShape { .. }
    ));
    let mut xb = x.clone();
    xb[2] = f32::NEG_INFINITY;
    assert!(matches!(
        err(matmul_at(s, &wt, &xb, n, &mut out, p, 1)).kind(),
        K::NonFinite { .. }
    ));
    // Zero threads is treated as one.
    matmul_at(s, &wt, &x, n, &mut out, p, 0).unwrap();
    assert!(out.iter().all(|&v| v == 3.0));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any shape and values: every level equals scalar bit for bit, and
    /// the result is within `dense_tol` of the naive f64 reference.
    #[test]
    fn prop_matches_naive(m in 1usize..40, k in 1usize..600, n in 1usize..11,
                          scale in -8i32..8, seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let s = 2f32.powi(scale);
        let wf: Vec<f32> = rng.vec(m * k).iter().map(|v| v * s).collect();
        let x = rng.vec(n * k);
        for w in all(&wf, m, k) {
            let want = run(SimdLevel::Scalar, &w, &x, n, 1);
            for level in levels() {
                prop_assert_eq!(bits(&run(level, &w, &x, n, 2)), bits(&want));
            }
            for (g, (e, mag)) in want.iter().zip(naive(&dequantize(&w), &x, m, k, n)) {
                let tol = dense_tol(k, mag);
                prop_assert!((*g as f64 - e).abs() <= tol, "{} vs {} (tol {})", g, e, tol);
            }
        }
    }
}
