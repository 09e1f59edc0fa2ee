//! The int16 GEMM: scalar/SIMD parity (bit for bit, codes and results),
//! batch invariance, exactness against the dequantized operands, accuracy
//! against f32 within the quantization bound, the i32 bound at extreme
//! codes, and typed errors for bad input.

mod common;

use common::{Rng, levels};
use proptest::prelude::*;
use ryot_kernels::int16::{Int16Acts, Int16Weights, W_MAX, X_MAX, gemm_at};
use ryot_kernels::{KernelErrorKind, SimdLevel};

/// Activations with a few outlier channels, as encoder layers have.
fn acts(rng: &mut Rng, n: usize, k: usize) -> Vec<f32> {
    let mut x = rng.vec(n * k);
    for (i, v) in x.iter_mut().enumerate() {
        if i % k % 97 == 5 {
            *v *= 25.0;
        }
    }
    x
}

fn run(
    level: SimdLevel,
    w: &Int16Weights,
    x: &[f32],
    n: usize,
    init: f32,
) -> Vec<f32> {
    let mut a = Int16Acts::new();
    a.quantize_at(level, x, n, w.k()).unwrap();
    let mut out = vec![init; n * w.m()];
    gemm_at(level, w, &a, &mut out).unwrap();
    out
}

/// (m, k, n): every tail of panels (16 rows), pairs (odd k), blocks (64
/// pairs), token tiles (6) and token blocks.
const SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (1, 2, 1),
    (3, 5, 2),
    (16, 128, 6),
    (17, 129, 7),
    (31, 255, 13),
    (33, 256, 5),
    (40, 383, 11),
    (384, 384, 64),
    (64, 1536, 37),
    (1536, 384, 3),
    (7, 3000, 9),
];

#[test]
fn simd_matches_scalar_bit_for_bit() {
    let mut rng = Rng(11);
    for &(m, k, n) in SHAPES {
        let wf = rng.vec(m * k);
        let w = Int16Weights::from_f32(&wf, m, k).unwrap();
        let x = acts(&mut rng, n, k);
        let want = run(SimdLevel::Scalar, &w, &x, n, 0.25);
        for level in levels() {
            let got = run(level, &w, &x, n, 0.25);
            let same =
                want.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{level} differs from scalar at {m}x{k}, n={n}");
        }
    }
}

#[test]
fn quantized_codes_match_across_levels() {
    let mut rng = Rng(5);
    // Values on exact half steps (ties) as well as random ones.
    let k = 77;
    let mut x = acts(&mut rng, 9, k);
    x[0] = 1.0;
    for (i, v) in x[1..k].iter_mut().enumerate() {
        *v = (i as f32 + 0.5) / X_MAX as f32;
    }
    let w = Int16Weights::from_f32(&rng.vec(16 * k), 16, k).unwrap();
    let want = run(SimdLevel::Scalar, &w, &x, 9, 0.0);
    for level in levels() {
        let got = run(level, &w, &x, 9, 0.0);
        assert_eq!(
            want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "{level}"
        );
    }
}

#[test]
fn a_token_does_not_depend_on_its_batch() {
    let mut rng = Rng(3);
    let (m, k, n) = (50, 300, 23);
    let w = Int16Weights::from_f32(&rng.vec(m * k), m, k).unwrap();
    let x = acts(&mut rng, n, k);
    for level in levels() {
        let all = run(level, &w, &x, n, 0.0);
        for t in [0, 5, 6, 22] {
            let one = run(level, &w, &x[t * k..(t + 1) * k], 1, 0.0);
            assert_eq!(
                one.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                all[t * m..(t + 1) * m]
                    .iter()
                    .map(|v| v.to_bits())
                    .collect::<Vec<_>>(),
                "{level}, token {t}"
            );
        }
    }
}

/// Scale and codes of one row, by the documented rule.
fn quantize(row: &[f32], max: i32) -> (f64, Vec<f64>) {
    let absmax = row.iter().fold(0f32, |a, v| a.max(v.abs()));
    if absmax == 0.0 {
        return (0.0, vec![0.0; row.len()]);
    }
    let inv = max as f32 / absmax;
    let codes =
        row.iter().map(|v| (v * inv).round_ties_even() as f64).collect();
    ((absmax / max as f32) as f64, codes)
}

/// Checks `got` (n x m, started from 0) against the f64 product of the
/// dequantized operands (tolerance: f32 rounding of the block sums and of
/// the three final operations, 1e-6 relative to sum |terms|), and against
/// the f32 inputs (tolerance: half a quantization step on each operand,
/// sum_c |x_c| dw/2 + |w_c| dx/2 + dx dw / 4, plus the same 1e-6).
fn check(wf: &[f32], x: &[f32], m: usize, k: usize, n: usize, got: &[f32]) {
    let wq: Vec<_> = wf.chunks(k).map(|r| quantize(r, W_MAX)).collect();
    for t in 0..n {
        let xr = &x[t * k..(t + 1) * k];
        let (xs, xc) = quantize(xr, X_MAX);
        for r in 0..m {
            let wr = &wf[r * k..(r + 1) * k];
            let (ws, wc) = &wq[r];
            let mut deq = 0f64;
            let mut mag = 0f64;
            let mut exact = 0f64;
            let mut bound = 0f64;
            for c in 0..k {
                let term = xc[c] * xs * wc[c] * ws;
                deq += term;
                mag += term.abs();
                exact += xr[c] as f64 * wr[c] as f64;
                bound += xr[c].abs() as f64 * ws / 2.0
                    + wr[c].abs() as f64 * xs / 2.0
                    + xs * ws / 4.0;
            }
            let g = got[t * m + r] as f64;
            let tol = 1e-6 * mag + 1e-30;
            assert!(
                (g - deq).abs() <= tol,
                "t{t} r{r}: {g} vs dequantized {deq}"
            );
            assert!(
                (g - exact).abs() <= bound + tol,
                "t{t} r{r}: {g} vs f32 {exact} (bound {bound})"
            );
        }
    }
}

#[test]
fn results_equal_the_dequantized_product_and_stay_near_f32() {
    let mut rng = Rng(17);
    for &(m, k, n) in SHAPES.iter().filter(|s| s.0 * s.1 * s.2 < 4_000_000) {
        let wf = rng.vec(m * k);
        let w = Int16Weights::from_f32(&wf, m, k).unwrap();
        let x = acts(&mut rng, n, k);
        for level in levels() {
            check(&wf, &x, m, k, n, &run(level, &w, &x, n, 0.0));
        }
    }
}

#[test]
fn dequantize_is_codes_times_scales() {
    let mut rng = Rng(2);
    let (m, k) = (19, 33);
    let wf = rng.vec(m * k);
    let w = Int16Weights::from_f32(&wf, m, k).unwrap();
    let d = w.dequantize();
    for r in 0..m {
        let (s, c) = quantize(&wf[r * k..(r + 1) * k], W_MAX);
        for j in 0..k {
            assert_eq!(d[r * k + j], (c[j] * s) as f32, "r{r} c{j}");
        }
    }
}

#[test]
fn extreme_codes_fill_a_block_without_overflow() {
    // Every code at its largest magnitude, with signs that agree: each
    // block sum reaches 2 * 64 * X_MAX * W_MAX, just under 2^31.
    let (m, k, n) = (16, 1024, 2);
    let wf = vec![-1.0f32; m * k];
    let x: Vec<f32> = vec![-3.0; n * k];
    let w = Int16Weights::from_f32(&wf, m, k).unwrap();
    for level in levels() {
        let out = run(level, &w, &x, n, 0.0);
        for v in &out {
            assert!((*v - 3.0 * k as f32).abs() <= 1e-3, "{level}: {v}");
        }
    }
}

#[test]
fn zero_rows_give_zero() {
    let w = Int16Weights::from_f32(&[0.0; 8], 2, 4).unwrap();
    for level in levels() {
        let out =
            run(level, &w, &[0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0], 2, 1.5);
        assert_eq!(out, vec![1.5; 4], "{level}");
    }
}

#[test]
fn bad_input_gets_typed_errors() {
    let e = Int16Weights::from_f32(&[1.0, f32::NAN], 1, 2).unwrap_err();
    assert!(matches!(e.kind(), KernelErrorKind::NonFinite { .. }), "{e}");
    let e = Int16Weights::from_f32(&[1.0; 5], 2, 3).unwrap_err();
    assert!(matches!(e.kind(), KernelErrorKind::LengthMismatch { .. }), "{e}");
    let e = Int16Weights::from_f32(&[], 0, 3).unwrap_err();
    assert!(matches!(e.kind(), KernelErrorKind::BadShape { .. }), "{e}");
    let e = Int16Weights::from_f32(&[], usize::MAX, 3).unwrap_err();
    assert!(matches!(e.kind(), KernelErrorKind::BadShape { .. }), "{e}");

    let mut a = Int16Acts::new();
    let e = a.quantize(&[1.0, f32::INFINITY], 1, 2).unwrap_err();
    assert!(matches!(e.kind(), KernelErrorKind::NonFinite { .. }), "{e}");
    for level in levels() {
        for at in [0, 3, 9, 16] {
            for bad in [f32::NAN, f32::NEG_INFINITY] {
                let mut x = vec![0.5f32; 17];
                x[at] = bad;
                let e = a.quantize_at(level, &x, 1, 17).unwrap_err();
                assert!(
                    matches!(e.kind(), KernelErrorKind::NonFinite { .. }),
                    "{level} {at}: {e}"
                );
            }
        }
    }
    let e = a.quantize(&[1.0; 3], 2, 2).unwrap_err();
    assert!(matches!(e.kind(), KernelErrorKind::LengthMismatch { .. }), "{e}");
    let e = a.quantize(&[], 1, 0).unwrap_err();
    assert!(matches!(e.kind(), KernelErrorKind::BadShape { .. }), "{e}");

    let w = Int16Weights::from_f32(&[1.0; 6], 2, 3).unwrap();
    a.quantize(&[1.0; 4], 2, 2).unwrap();
    let mut out = vec![0.0; 4];
    let e = ryot_kernels::int16::gemm(&w, &a, &mut out).unwrap_err();
    assert!(matches!(e.kind(), KernelErrorKind::BadShape { .. }), "{e}");
    a.quantize(&[1.0; 6], 2, 3).unwrap();
    let e = ryot_kernels::int16::gemm(&w, &a, &mut out[..3]).unwrap_err();
    assert!(matches!(e.kind(), KernelErrorKind::LengthMismatch { .. }), "{e}");
    ryot_kernels::int16::gemm(&w, &a, &mut out).unwrap();
    assert!(out.iter().all(|v| (*v - 3.0).abs() < 1e-3), "{out:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn random_shapes_match_scalar_and_the_bound(
        m in 1usize..70, k in 1usize..400, n in 1usize..20, seed in any::<u64>()
    ) {
        let mut rng = Rng(seed);
        let wf = rng.vec(m * k);
        let w = Int16Weights::from_f32(&wf, m, k).unwrap();
        let x = acts(&mut rng, n, k);
        let want = run(SimdLevel::Scalar, &w, &x, n, 0.0);
        check(&wf, &x, m, k, n, &want);
        for level in levels() {
            let got = run(level, &w, &x, n, 0.0);
            prop_assert!(want.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }
}
