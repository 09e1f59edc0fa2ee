//! Ryot's ternary panel layout: lossless repacking, scalar/SIMD parity
//! (bit-exact), batch and thread invariance (bit-exact) and accuracy
//! against a naive f32 reference.

mod common;

use common::{
    Rng, bits, f32s, levels, pack_i2s, pack_tq2_0_block, pool, read_golden,
};
use proptest::prelude::*;
use ryot_kernels::act::ActI8;
use ryot_kernels::matmul::t2p_with_acts;
use ryot_kernels::tune::{self};
use ryot_kernels::{SimdLevel, TernaryPanels, Weights, matmul_at};

/// Random ternary weights as TQ2_0 bytes; `per_block` gives each block
/// its own scale, otherwise every block shares one.
fn random_tq2_0(rng: &mut Rng, m: usize, k: usize, per_block: bool) -> Vec<u8> {
    let mut bytes = Vec::new();
    let shared = half::f16::from_f32(0.5 + rng.unit().abs());
    for _ in 0..m * (k / 256) {
        let d = if per_block {
            half::f16::from_f32(0.05 + rng.unit().abs() * 2.0)
        } else {
            shared
        };
        pack_tq2_0_block(&rng.codes(256), d, &mut bytes);
    }
    bytes
}

fn run(
    level: SimdLevel,
    w: &TernaryPanels,
    a: &ActI8,
    threads: usize,
) -> Vec<f32> {
    let mut out = vec![f32::NAN; a.n() * w.m()];
    t2p_with_acts(level, w, a, &mut out, pool(), threads).unwrap();
    out
}

/// Naive reference: dequantized weights times dequantized activations,
/// summed in f64.
fn naive(w: &TernaryPanels, a: &ActI8) -> Vec<f64> {
    let wd = w.dequantize();
    let (m, k) = (w.m(), w.k());
    let mut out = vec![0f64; a.n() * m];
    for t in 0..a.n() {
        let q = a.row(t);
        let s = a.scales()[t] as f64;
        for r in 0..m {
            // Each product is exact in f64 and so is the sum (all terms
            // are multiples of one f32 scale), so the only rounding is the
            // final division.
            out[t * m + r] =
                (0..k).map(|c| wd[r * k + c] as f64 * q[c] as f64).sum::<f64>()
                    / s;
        }
    }
    out
}

#[test]
fn repack_tq2_0_golden_is_lossless() {
    let blocks = read_golden("TQ2_0.blocks.bin");
    let want = f32s(&read_golden("TQ2_0.dequant.f32.bin"));
    let w = TernaryPanels::from_tq2_0(&blocks, 4, 1024).unwrap();
    let got = w.dequantize();
    for (i, (g, e)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, e, "element {i}");
    }
}

#[test]
fn repack_tq1_0_golden_is_lossless() {
    let blocks = read_golden("TQ1_0.blocks.bin");
    let want = f32s(&read_golden("TQ1_0.dequant.f32.bin"));
    let w = TernaryPanels::from_tq1_0(&blocks, 4, 1024).unwrap();
    let got = w.dequantize();
    for (i, (g, e)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, e, "element {i}");
    }
}

#[test]
fn repack_i2s_golden_is_lossless_and_matches_bitnet_matmul() {
    for (prefix, m, k) in [("I2_S", 4, 512), ("I2_S.3x256", 3, 256)] {
        let blocks = read_golden(&format!("{prefix}.blocks.bin"));
        let want = f32s(&read_golden(&format!("{prefix}.dequant.f32.bin")));
        let w = TernaryPanels::from_i2s(&blocks, m, k).unwrap();
        assert_eq!(w.dequantize(), want, "{prefix} dequant");
        // bitnet.cpp's kernel output for 2 tokens, bit for bit.
        let x = f32s(&read_golden(&format!("{prefix}.act.f32.bin")));
        let n = x.len() / k;
        let a = ActI8::quantize(&x, n, k).unwrap();
        let q8: Vec<i8> = read_golden(&format!("{prefix}.act.i8.bin"))
            .into_iter()
            .map(|b| b as i8)
            .collect();
        for t in 0..n {
            assert_eq!(
                &a.row(t)[..k],
                &q8[t * k..(t + 1) * k],
                "{prefix} acts"
            );
        }
        let want = f32s(&read_golden(&format!("{prefix}.matmul.f32.bin")));
        for level in levels() {
            let got = run(level, &w, &a, 1);
            assert_eq!(bits(&got), bits(&want), "{prefix} matmul at {level}");
        }
    }
}

#[test]
fn i2s_and_tq2_0_give_the_same_panels() {
    let mut rng = Rng(7);
    let (m, k) = (19, 512);
    let codes = rng.codes(m * k);
    let i2s = pack_i2s(&codes, 0.75);
    let mut tq = Vec::new();
    for r in 0..m {
        for b in 0..k / 256 {
            let s = r * k + b * 256;
            pack_tq2_0_block(
                &codes[s..s + 256],
                half::f16::from_f32(0.75),
                &mut tq,
            );
        }
    }
    let a = TernaryPanels::from_i2s(&i2s, m, k).unwrap();
    let b = TernaryPanels::from_tq2_0(&tq, m, k).unwrap();
    for r in 0..m {
        for c in 0..k {
            assert_eq!(a.code(r, c), codes[r * k + c]);
            assert_eq!(b.code(r, c), codes[r * k + c]);
        }
    }
    assert_eq!(a.dequantize(), b.dequantize());
}

/// Shapes that hit every tail: one row, a partial panel, odd rows, k not a
/// multiple of a line, one and many tokens, token tiles with remainders
/// (AMX: 16-token tiles in pairs, from 16 tokens on).
const SHAPES: &[(usize, usize, usize)] = &[
    (17, 100, 16),
    (48, 300, 33),
    (33, 1000, 40),
    (16, 64, 8),
    (1, 16, 1),
    (1, 1, 1),
    (3, 5, 2),
    (15, 17, 1),
    (16, 64, 3),
    (17, 100, 7),
    (33, 250, 1),
    (33, 256, 6),
    (48, 300, 13),
    (64, 576, 5),
    (65, 1000, 2),
    (100, 2048, 1),
    (129, 2560, 9),
];

#[test]
fn simd_matches_scalar_bit_for_bit() {
    let mut rng = Rng(42);
    for &(m, k, n) in SHAPES {
        let w = TernaryPanels::quantize_absmean(&rng.vec(m * k), m, k).unwrap();
        let a = ActI8::quantize(&rng.vec(n * k), n, k).unwrap();
        let want = run(SimdLevel::Scalar, &w, &a, 1);
        for level in levels() {
            assert_eq!(
                bits(&run(level, &w, &a, 2)),
                bits(&want),
                "{level} m={m} k={k} n={n}"
            );
        }
    }
}

#[test]
fn gemv_tiling_does_not_change_results() {
    let mut rng = Rng(5);
    let (m, k) = (16 * 7 + 3, 640);
    let w = TernaryPanels::quantize_absmean(&rng.vec(m * k), m, k).unwrap();
    let a = ActI8::quantize(&rng.vec(k), 1, k).unwrap();
    let _ = pool();
    let want = run(SimdLevel::Scalar, &w, &a, 1);
    for panels in [1, 2, 4] {
        let mut p = tune::current();
        p.t2p_gemv_panels = panels;
        tune::set_override(Some(p));
        for level in levels() {
            for threads in [1, 2, 3] {
                let got = run(level, &w, &a, threads);
                assert_eq!(bits(&got), bits(&want), "{level} panels={panels}");
            }
        }
    }
}

#[test]
fn per_block_scales_match_scalar_and_naive() {
    let mut rng = Rng(3);
    for &(m, k, n) in &[
        (16, 256, 1),
        (17, 512, 3),
        (40, 1024, 8),
        (5, 2560, 2),
        (33, 768, 35),
    ] {
        for per_block in [false, true] {
            let bytes = random_tq2_0(&mut rng, m, k, per_block);
            let w = TernaryPanels::from_tq2_0(&bytes, m, k).unwrap();
            let a = ActI8::quantize(&rng.vec(n * k), n, k).unwrap();
            let want = run(SimdLevel::Scalar, &w, &a, 1);
            for level in levels() {
                assert_eq!(
                    bits(&run(level, &w, &a, 3)),
                    bits(&want),
                    "{level}"
                );
            }
            // Integer sums are exact; each of the <= k/256 f32 steps
            // rounds once (rel. 2^-24), so 1e-5 relative to the sum of
            // magnitudes is generous.
            let r = naive(&w, &a);
            let wd = w.dequantize();
            for t in 0..n {
                let q = a.row(t);
                for row in 0..m {
                    let mag: f64 = (0..k)
                        .map(|c| (wd[row * k + c] as f64 * q[c] as f64).abs())
                        .sum::<f64>()
                        / a.scales()[t] as f64;
                    let (g, e) = (want[t * m + row] as f64, r[t * m + row]);
                    assert!((g - e).abs() <= 1e-5 * mag + 1e-30, "{g} vs {e}");
                }
            }
        }
    }
}

#[test]
fn batch_and_threads_do_not_change_a_row() {
    let mut rng = Rng(9);
    let (m, k, n) = (70, 768, 11);
    let bytes = random_tq2_0(&mut rng, m, k, true);
    let w = TernaryPanels::from_tq2_0(&bytes, m, k).unwrap();
    let x = rng.vec(n * k);
    for level in levels() {
        let a = ActI8::quantize(&x, n, k).unwrap();
        let gemm = run(level, &w, &a, 1);
        for threads in [2, 3] {
            assert_eq!(bits(&run(level, &w, &a, threads)), bits(&gemm));
        }
        for t in 0..n {
            let a1 = ActI8::quantize(&x[t * k..(t + 1) * k], 1, k).unwrap();
            for threads in [1, 2] {
                let gemv = run(level, &w, &a1, threads);
                assert_eq!(
                    bits(&gemv),
                    bits(&gemm[t * m..(t + 1) * m]),
                    "t={t}"
                );
            }
        }
    }
}

#[test]
fn f32_entry_point_and_errors() {
    let mut rng = Rng(1);
    let (m, k, n) = (20, 64, 2);
    let w = Weights::T2p(
        TernaryPanels::quantize_absmean(&rng.vec(m * k), m, k).unwrap(),
    );
    let x = rng.vec(n * k);
    let mut out = vec![0f32; n * m];
    for level in levels() {
        matmul_at(level, &w, &x, n, &mut out, pool(), 2).unwrap();
    }
    assert!(
        matmul_at(SimdLevel::Scalar, &w, &x, n, &mut out[1..], pool(), 1)
            .is_err()
    );
    assert!(
        matmul_at(SimdLevel::Scalar, &w, &x[1..], n, &mut out, pool(), 1)
            .is_err()
    );
    let mut bad = x.clone();
    bad[3] = f32::NAN;
    assert!(
        matmul_at(SimdLevel::Scalar, &w, &bad, n, &mut out, pool(), 1).is_err()
    );
    assert!(TernaryPanels::from_tq2_0(&[0u8; 65], 1, 256).is_err());
    assert!(TernaryPanels::from_tq2_0(&[0u8; 66], 1, 255).is_err());
    assert!(TernaryPanels::from_i2s(&[0u8; 63], 1, 128).is_err());
    assert!(TernaryPanels::from_tq1_0(&[], 0, 256).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any shape and values: every level equals scalar bit for bit, and
    /// the result equals the naive f64 reference to within one f32
    /// rounding of the final division and scaling (rel. 4 * 2^-24).
    #[test]
    fn prop_matches_naive(m in 1usize..40, k in 1usize..600, n in 1usize..9,
                          seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let w = TernaryPanels::quantize_absmean(&rng.vec(m * k), m, k).unwrap();
        let a = ActI8::quantize(&rng.vec(n * k), n, k).unwrap();
        let want = run(SimdLevel::Scalar, &w, &a, 1);
        for level in levels() {
            prop_assert_eq!(bits(&run(level, &w, &a, 2)), bits(&want));
        }
        for (g, e) in want.iter().zip(naive(&w, &a)) {
            let tol = 4.0 * f32::EPSILON as f64 * e.abs() + 1e-30;
            prop_assert!((*g as f64 - e).abs() <= tol, "{} vs {}", g, e);
        }
    }
}
