//! Q8_0 / Q4_0 / Q4_1 / Q5_0 kernels: lossless repacking (golden files and random
//! blocks), the activation quantizer against llama.cpp's reference,
//! scalar/SIMD parity (bit for bit), batch and thread invariance (bit for
//! bit), accuracy against a naive f64 reference and llama.cpp's dot
//! product test, and typed errors for bad input.

mod common;

use common::{Rng, bits, f32s, levels, pool, read_golden};
use proptest::prelude::*;
use ryot_kernels::q8::{
    ActQ8_0, Q4_0Panels, Q4_1Panels, Q5_0Panels, Q8_0Panels, QBlock, QPanels,
    matmul_q8_acts,
};
use ryot_kernels::{
    KernelError, KernelErrorKind, SimdLevel, Weights, matmul_at,
};
use ryot_quant::{BlockQ8_0, QuantType};

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

fn run_acts<B: QBlock>(
    level: SimdLevel,
    w: &QPanels<B>,
    a: &ActQ8_0,
    threads: usize,
) -> Vec<f32> {
    let mut out = vec![f32::NAN; a.n() * w.m()];
    matmul_q8_acts(level, w, a, &mut out, pool(), threads).unwrap();
    out
}

/// Random Q8_0 bytes: every code -128..=127 (a GGUF file may hold -128
/// even though llama.cpp's quantizer never writes it), random scales
/// (some zero, some subnormal f16).
fn random_q8_0(rng: &mut Rng, m: usize, k: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..m * k / 32 {
        out.extend_from_slice(&random_scale(rng).to_le_bytes());
        out.extend((0..32).map(|_| rng.below(256) as u8));
    }
    out
}

/// Random Q4_0 bytes: every nibble 0..=15, random scales.
fn random_q4_0(rng: &mut Rng, m: usize, k: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..m * k / 32 {
        out.extend_from_slice(&random_scale(rng).to_le_bytes());
        out.extend((0..16).map(|_| rng.below(256) as u8));
    }
    out
}

/// Random Q4_1 bytes: every nibble 0..=15, random scales and minimums
/// (of either sign).
fn random_q4_1(rng: &mut Rng, m: usize, k: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..m * k / 32 {
        out.extend_from_slice(&random_scale(rng).to_le_bytes());
        let min = -random_scale(rng) * half::f16::from_f32(8.0);
        out.extend_from_slice(&min.to_le_bytes());
        out.extend((0..16).map(|_| rng.below(256) as u8));
    }
    out
}

/// Random Q5_0 bytes: every 5-bit code 0..=31, random scales.
fn random_q5_0(rng: &mut Rng, m: usize, k: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..m * k / 32 {
        out.extend_from_slice(&random_scale(rng).to_le_bytes());
        out.extend((0..20).map(|_| rng.below(256) as u8));
    }
    out
}

fn random_scale(rng: &mut Rng) -> half::f16 {
    match rng.below(16) {
        0 => half::f16::ZERO,
        1 => half::f16::from_bits(rng.below(0x400) as u16), // subnormal
        2 => -half::f16::from_f32(rng.unit().abs() * 0.1),
        _ => half::f16::from_f32(rng.unit().abs() * 0.1 + 1e-4),
    }
}

/// All four formats from random weights: (weights, their GGUF bytes).
fn all(rng: &mut Rng, m: usize, k: usize) -> [(Weights, Vec<u8>); 4] {
    let a = random_q8_0(rng, m, k);
    let b = random_q4_0(rng, m, k);
    let c = random_q4_1(rng, m, k);
    let d = random_q5_0(rng, m, k);
    [
        (Weights::Q8_0(Q8_0Panels::from_gguf(&a, m, k).unwrap()), a),
        (Weights::Q4_0(Q4_0Panels::from_gguf(&b, m, k).unwrap()), b),
        (Weights::Q4_1(Q4_1Panels::from_gguf(&c, m, k).unwrap()), c),
        (Weights::Q5_0(Q5_0Panels::from_gguf(&d, m, k).unwrap()), d),
    ]
}

fn dequantize(w: &Weights) -> Vec<f32> {
    match w {
        Weights::Q8_0(q) => q.dequantize(),
        Weights::Q4_0(q) => q.dequantize(),
        Weights::Q4_1(q) => q.dequantize(),
        Weights::Q5_0(q) => q.dequantize(),
        _ => unreachable!("q8 tests only build Q8_0/Q4_0/Q4_1/Q5_0"),
    }
}

fn to_gguf(w: &Weights) -> Vec<u8> {
    match w {
        Weights::Q8_0(q) => q.to_gguf(),
        Weights::Q4_0(q) => q.to_gguf(),
        Weights::Q4_1(q) => q.to_gguf(),
        Weights::Q5_0(q) => q.to_gguf(),
        _ => unreachable!("q8 tests only build Q8_0/Q4_0/Q4_1/Q5_0"),
    }
}

fn quant_type(w: &Weights) -> QuantType {
    match w {
        Weights::Q8_0(_) => QuantType::Q8_0,
        Weights::Q4_0(_) => QuantType::Q4_0,
        Weights::Q4_1(_) => QuantType::Q4_1,
        Weights::Q5_0(_) => QuantType::Q5_0,
        _ => unreachable!("q8 tests only build Q8_0/Q4_0/Q4_1/Q5_0"),
    }
}

/// The weights exactly, in f64 (`d * q + m` for Q4_1, which f32
/// dequantization rounds), and the magnitudes the kernels' terms can
/// reach per element (`|d q| + |m|` for Q4_1, `|w|` otherwise).
fn exact_weights(
    ty: QuantType,
    bytes: &[u8],
    m: usize,
    k: usize,
) -> Vec<(f64, f64)> {
    if ty != QuantType::Q4_1 {
        let mut wd = vec![0f32; m * k];
        ryot_quant::dequantize(ty, bytes, m, k, &mut wd).unwrap();
        return wd.iter().map(|&w| (w as f64, (w as f64).abs())).collect();
    }
    let f16 = |b: &[u8]| half::f16::from_le_bytes([b[0], b[1]]).to_f64();
    let mut out = vec![(0.0, 0.0); m * k];
    for (blk, y) in bytes.chunks_exact(20).zip(out.chunks_exact_mut(32)) {
        let (d, mn) = (f16(&blk[0..2]), f16(&blk[2..4]));
        for j in 0..16 {
            for (e, q) in [(j, blk[4 + j] & 15), (j + 16, blk[4 + j] >> 4)] {
                let dq = d * q as f64;
                y[e] = (dq + mn, dq.abs() + mn.abs());
            }
        }
    }
    out
}

#[test]
fn repack_golden_is_lossless() {
    // llama.cpp's quantized tensors (4 x 1024) and gguf-py's dequantization.
    for ty in
        [QuantType::Q8_0, QuantType::Q4_0, QuantType::Q4_1, QuantType::Q5_0]
    {
        let name = ty.name();
        let bytes = read_golden(&format!("{name}.blocks.bin"));
        let want = f32s(&read_golden(&format!("{name}.dequant.f32.bin")));
        let w = Weights::from_gguf(ty, &bytes, 4, 1024).unwrap();
        assert_eq!(bits(&dequantize(&w)), bits(&want), "{name}");
        assert_eq!(to_gguf(&w), bytes, "{name}");
    }
}

#[test]
fn repack_random_is_lossless() {
    let mut rng = Rng(17);
    for &(m, k) in &[(1, 32), (3, 64), (16, 32), (17, 96), (40, 320)] {
        for (w, bytes) in all(&mut rng, m, k) {
            let mut want = vec![0f32; m * k];
            ryot_quant::dequantize(quant_type(&w), &bytes, m, k, &mut want)
                .unwrap();
            assert_eq!(
                bits(&dequantize(&w)),
                bits(&want),
                "{} {m}x{k}",
                w.type_name()
            );
            assert_eq!(to_gguf(&w), bytes);
            // Lines and Scales16 per (panel, block).
            let (lines, scales) = match quant_type(&w) {
                QuantType::Q8_0 => (8, 1),
                QuantType::Q4_1 => (4, 2),
                QuantType::Q5_0 => (5, 1),
                _ => (4, 1),
            };
            assert_eq!(
                w.stored_bytes(),
                m.div_ceil(16) * (k / 32) * (lines * 64 + scales * 32)
            );
        }
    }
}

/// Activation inputs that stress the quantizer: random normals, values
/// that land exactly on .5 after scaling (roundf rounds them away from
/// zero, ties-to-even would not), zero blocks, tiny blocks whose `1/d`
/// overflows, and large values.
fn hard_acts(rng: &mut Rng, n: usize, k: usize) -> Vec<f32> {
    let mut x = rng.vec(n * k);
    for (i, blk) in x.chunks_exact_mut(32).enumerate() {
        match i % 6 {
            1 => {
                // amax = 127 gives d = 1, id = 1: the values are the codes.
                for (j, v) in blk.iter_mut().enumerate() {
                    *v = (j as f32 - 16.0) * 4.0 + 0.5;
                }
                blk[5] = 127.0;
            }
            2 => blk.fill(0.0),
            3 => blk.iter_mut().for_each(|v| *v *= 1e-39),
            4 => blk.iter_mut().for_each(|v| *v *= 1e3),
            _ => {}
        }
    }
    x
}

#[test]
fn activation_quantizer_matches_llama_cpp_reference() {
    let mut rng = Rng(23);
    for &(n, k) in &[(1, 32), (3, 96), (5, 2560)] {
        let x = hard_acts(&mut rng, n, k);
        for level in levels() {
            let a = ActQ8_0::quantize_at(level, &x, n, k).unwrap();
            for t in 0..n {
                let mut want =
                    vec![BlockQ8_0 { d: half::f16::ZERO, qs: [0; 32] }; k / 32];
                ryot_quant::act::quantize_row_q8_0(
                    &x[t * k..(t + 1) * k],
                    &mut want,
                );
                assert_eq!(a.to_blocks(t), want, "{level} token {t}");
                for (b, blk) in want.iter().enumerate() {
                    let sum: i32 = blk.qs.iter().map(|&q| q as i32).sum();
                    assert_eq!(a.sums(t)[b], sum);
                    assert_eq!(
                        a.scales(t)[b].to_bits(),
                        blk.d.to_f32().to_bits()
                    );
                }
            }
        }
    }
}

/// Shapes that hit every tail: one row, odd rows, a partial panel, rows
/// not a multiple of the GEMV panel step, k = one block, odd block
/// counts, n = 1, 2, 3, token tiles (4 for AVX2, 6 for AVX-512) and their
/// remainders, and larger batches.
const SHAPES: &[(usize, usize, usize)] = &[
    (16, 32, 16),
    (17, 96, 33),
    (40, 320, 40),
    (1, 32, 1),
    (1, 32, 2),
    (3, 64, 3),
    (15, 96, 1),
    (16, 32, 4),
    (17, 160, 5),
    (33, 256, 1),
    (48, 288, 6),
    (64, 512, 7),
    (65, 1024, 13),
    (100, 2560, 1),
    (129, 640, 2),
    (257, 64, 17),
];

#[test]
fn simd_matches_scalar_bit_for_bit() {
    let mut rng = Rng(42);
    for &(m, k, n) in SHAPES {
        let x = hard_acts(&mut rng, n, k);
        for (w, _) in all(&mut rng, m, k) {
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
    let (m, k, n) = (150, 320, 19);
    let x = rng.vec(n * k);
    for (w, _) in all(&mut rng, m, k) {
        for level in levels() {
            let gemm = run(level, &w, &x, n, 1);
            for threads in [2, 3] {
                assert_eq!(bits(&run(level, &w, &x, n, threads)), bits(&gemm));
            }
            // Every window of 1..=9 tokens at every offset gives the same
            // bits as inside the batch (windows of 1 are GEMVs).
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

/// The largest codes every format can hold against activation codes of
/// -128 (blocks whose `1 / d` overflows) and 127: the i16 partial sums of
/// the AVX2 kernels stay in range, and every level agrees with scalar and
/// with the exact result.
#[test]
fn extreme_codes_do_not_overflow() {
    let (m, k, n) = (17, 128, 3);
    let one = half::f16::ONE.to_le_bytes();
    let mut x = vec![0f32; n * k];
    for (i, blk) in x.chunks_exact_mut(32).enumerate() {
        match i % 3 {
            0 => blk.fill(-1e-39), // codes -128 (d = 0)
            1 => blk.fill(-1.0),   // codes -127
            _ => blk
                .iter_mut()
                .enumerate()
                .for_each(|(j, v)| *v = if j % 2 == 0 { 1.0 } else { -1.0 }),
        }
    }
    let a = ActQ8_0::quantize(&x, n, k).unwrap();
    assert!(a.row(0)[..32].iter().all(|&c| c == -128));
    let blocks = m * k / 32;
    let rep = |blk: Vec<u8>| blk.repeat(blocks);
    let q8 = rep([&one[..], &[0x80; 32]].concat());
    let q4 = rep([&one[..], &[0xff; 16]].concat());
    let q41 = rep([&one[..], &one[..], &[0xff; 16]].concat());
    let q5 = rep([&one[..], &[0xff; 20]].concat());
    for (ty, bytes) in [
        (QuantType::Q8_0, q8),
        (QuantType::Q4_0, q4),
        (QuantType::Q4_1, q41),
        (QuantType::Q5_0, q5),
    ] {
        let w = Weights::from_gguf(ty, &bytes, m, k).unwrap();
        let want = run(SimdLevel::Scalar, &w, &x, n, 1);
        for level in levels() {
            assert_eq!(bits(&run(level, &w, &x, n, 2)), bits(&want), "{ty:?}");
        }
        let wd = exact_weights(ty, &bytes, m, k);
        for (g, (e, mag)) in want.iter().zip(naive(&wd, &a, m)) {
            assert!((*g as f64 - e).abs() <= tol(ty, k, mag), "{ty:?}");
        }
    }
}

/// Naive reference: exact weights (see [`exact_weights`]) times
/// dequantized activations in f64, with the sum of term magnitudes
/// `sum |w x|` (`sum (|d q| + |m|) |x|` for Q4_1) for the error bound.
fn naive(wd: &[(f64, f64)], a: &ActQ8_0, m: usize) -> Vec<(f64, f64)> {
    let k = a.k();
    let mut out = Vec::with_capacity(a.n() * m);
    for t in 0..a.n() {
        let xd: Vec<f64> = (0..k)
            .map(|c| a.row(t)[c] as f64 * a.scales(t)[c / 32] as f64)
            .collect();
        for r in 0..m {
            let (mut s, mut mag) = (0f64, 0f64);
            for ((w, wm), x) in wd[r * k..(r + 1) * k].iter().zip(&xd) {
                s += w * x;
                mag += (wm * x).abs();
            }
            out.push((s, mag));
        }
    }
    out
}

/// Error bound for the kernels' arithmetic: every block's integer sum and
/// scale product are exact, and the `k / 32` fused multiply-adds each
/// round once, so the error is at most `(k / 32) * u * sum |w x|` to first
/// order (recursive summation, Higham 2nd ed. §4.2, `u = 2^-24`). We
/// allow twice that. The f64 reference itself is exact to about 2^-53
/// relative (its terms are products of f32 values with at most 19
/// significant bits).
fn q8_tol(k: usize, mag: f64) -> f64 {
    2.0 * (k / 32) as f64 * (f32::EPSILON as f64 / 2.0) * mag + 1e-30
}

/// Q4_1's bound: as [`q8_tol`], with two fused multiply-adds per block
/// (the `d` term, then the `m` term), whose exact terms sum in magnitude
/// to at most `sum (|d q| + |m|) |x|`.
fn q4_1_tol(k: usize, mag: f64) -> f64 {
    q8_tol(2 * k, mag)
}

/// The tolerance for `ty`.
fn tol(ty: QuantType, k: usize, mag: f64) -> f64 {
    if ty == QuantType::Q4_1 { q4_1_tol(k, mag) } else { q8_tol(k, mag) }
}

#[test]
fn accuracy_against_naive_f64() {
    let mut rng = Rng(5);
    for &(m, k, n) in SHAPES {
        let x = rng.vec(n * k);
        let a = ActQ8_0::quantize(&x, n, k).unwrap();
        for (w, bytes) in all(&mut rng, m, k) {
            let got = run(SimdLevel::Scalar, &w, &x, n, 1);
            let ty = quant_type(&w);
            let wd = exact_weights(ty, &bytes, m, k);
            for (g, (e, mag)) in got.iter().zip(naive(&wd, &a, m)) {
                let tol = tol(ty, k, mag);
                assert!((*g as f64 - e).abs() <= tol, "{g} vs {e} (tol {tol})");
            }
        }
    }
}

/// llama.cpp's `tests/test-quantize-fns.cpp` dot product test: weights
/// `0.1 + 2 cos(i)` and activations `0.1 + 2 cos(i + 1)`, 4096 elements,
/// both quantized with the reference quantizers; `|dot - exact| / 4096`
/// must be below `MAX_DOT_PRODUCT_ERROR = 0.02`. We check it for several
/// rows (offsets) at every level.
#[test]
fn llama_cpp_dot_product_error() {
    const MAX_DOT_PRODUCT_ERROR: f64 = 0.02;
    let k = 32 * 128;
    let m = 5;
    let data = |off: f32| -> Vec<f32> {
        (0..k)
            .map(|i| (0.1 + 2.0 * (i as f32 + off).cos() as f64) as f32)
            .collect()
    };
    let w: Vec<f32> = (0..m).flat_map(|r| data(r as f32 * 0.37)).collect();
    let x = data(1.0);
    let ws = [
        Weights::Q8_0(Q8_0Panels::quantize(&w, m, k).unwrap()),
        Weights::Q4_0(Q4_0Panels::quantize(&w, m, k).unwrap()),
        Weights::Q4_1(Q4_1Panels::quantize(&w, m, k).unwrap()),
        Weights::Q5_0(Q5_0Panels::quantize(&w, m, k).unwrap()),
    ];
    for wt in &ws {
        for level in levels() {
            let got = run(level, wt, &x, 1, 1);
            for r in 0..m {
                let exact: f64 =
                    (0..k).map(|c| w[r * k + c] as f64 * x[c] as f64).sum();
                let err = (got[r] as f64 - exact).abs() / k as f64;
                assert!(
                    err < MAX_DOT_PRODUCT_ERROR,
                    "{} {level} row {r}: {err}",
                    wt.type_name()
                );
            }
        }
    }
}

#[test]
fn prequantized_entry_point_matches() {
    let mut rng = Rng(31);
    let (m, k, n) = (37, 128, 5);
    let x = rng.vec(n * k);
    let bytes = random_q4_0(&mut rng, m, k);
    let w = Q4_0Panels::from_gguf(&bytes, m, k).unwrap();
    let a = ActQ8_0::quantize(&x, n, k).unwrap();
    let wt = Weights::Q4_0(w.clone());
    for level in levels() {
        assert_eq!(
            bits(&run_acts(level, &w, &a, 2)),
            bits(&run(level, &wt, &x, n, 2))
        );
    }
    let a64 = ActQ8_0::quantize(&x[..64 * n], n, 64).unwrap();
    let mut out = vec![0f32; n * m];
    let e = matmul_q8_acts(SimdLevel::Scalar, &w, &a64, &mut out, pool(), 1)
        .unwrap_err();
    assert!(matches!(e.kind(), KernelErrorKind::BadShape { .. }));
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
    let good = random_q8_0(&mut Rng(1), 2, 64);
    assert!(matches!(
        err(Q8_0Panels::from_gguf(&good, 0, 64)).kind(),
        K::BadShape { .. }
    ));
    assert!(matches!(
        err(Q8_0Panels::from_gguf(&good, 2, 0)).kind(),
        K::BadShape { .. }
    ));
    assert!(matches!(
        err(Q8_0Panels::from_gguf(&good, 2, 48)).kind(),
        K::NotBlockMultiple { k: 48, block: 32, .. }
    ));
    assert!(matches!(
        err(Q8_0Panels::from_gguf(&good[1..], 2, 64)).kind(),
        K::LengthMismatch { .. }
    ));
    assert!(matches!(
        err(Q4_0Panels::from_gguf(&good, 2, 64)).kind(),
        K::LengthMismatch { .. }
    ));
    assert!(matches!(
        err(Q4_0Panels::from_gguf(&good, usize::MAX, 64)).kind(),
        K::BadShape { .. }
    ));
    assert!(matches!(
        err(Q8_0Panels::from_gguf(&good, 2, usize::MAX / 32 * 32)).kind(),
        K::BadShape { .. }
    ));
    let mut nan = good.clone();
    nan[34..36].copy_from_slice(&half::f16::NAN.to_le_bytes());
    assert!(matches!(
        err(Q8_0Panels::from_gguf(&nan, 2, 64)).kind(),
        K::NonFinite { .. }
    ));
    let mut inf = random_q4_0(&mut Rng(2), 1, 32);
    inf[0..2].copy_from_slice(&half::f16::INFINITY.to_le_bytes());
    assert!(matches!(
        err(Q4_0Panels::from_gguf(&inf, 1, 32)).kind(),
        K::NonFinite { .. }
    ));
    assert!(matches!(
        err(Q4_0Panels::quantize(&[0.0; 40], 1, 40)).kind(),
        K::NotBlockMultiple { .. }
    ));
    assert!(matches!(
        err(Q4_0Panels::quantize(&[f32::NAN; 32], 1, 32)).kind(),
        K::Quant(_)
    ));
    assert!(matches!(
        err(Q8_0Panels::quantize(&[0.0; 31], 1, 32)).kind(),
        K::Quant(_)
    ));

    assert!(matches!(
        err(ActQ8_0::quantize(&[0.0; 32], 0, 32)).kind(),
        K::BadShape { .. }
    ));
    assert!(matches!(
        err(ActQ8_0::quantize(&[0.0; 40], 1, 40)).kind(),
        K::NotBlockMultiple { .. }
    ));
    assert!(matches!(
        err(ActQ8_0::quantize(&[0.0; 33], 1, 32)).kind(),
        K::LengthMismatch { .. }
    ));
    assert!(matches!(
        err(ActQ8_0::quantize(&[f32::INFINITY; 32], 1, 32)).kind(),
        K::NonFinite { .. }
    ));

    let (m, k, n) = (2, 64, 2);
    let w = Weights::from_gguf(QuantType::Q8_0, &good, m, k).unwrap();
    assert_eq!(w.type_name(), "q8_0");
    let x = vec![0.5f32; n * k];
    let mut out = vec![0f32; n * m];
    let (s, p) = (SimdLevel::Scalar, pool());
    assert!(matches!(
        err(matmul_at(s, &w, &x, n, &mut out[1..], p, 1)).kind(),
        K::LengthMismatch { .. }
    ));
    assert!(matches!(
        err(matmul_at(s, &w, &x[1..], n, &mut out, p, 1)).kind(),
        K::LengthMismatch { .. }
    ));
    let mut xb = x.clone();
    xb[7] = f32::NAN;
    assert!(matches!(
        err(matmul_at(s, &w, &xb, n, &mut out, p, 1)).kind(),
        K::NonFinite { .. }
    ));
    let q4 = random_q4_0(&mut Rng(3), m, k);
    assert_eq!(
        Weights::from_gguf(QuantType::Q4_0, &q4, m, k).unwrap().type_name(),
        "q4_0"
    );

    // Q4_1 and Q5_0.
    let q41 = random_q4_1(&mut Rng(4), m, k);
    let q50 = random_q5_0(&mut Rng(5), m, k);
    let w41 = Weights::from_gguf(QuantType::Q4_1, &q41, m, k).unwrap();
    let w50 = Weights::from_gguf(QuantType::Q5_0, &q50, m, k).unwrap();
    assert_eq!((w41.type_name(), w50.type_name()), ("q4_1", "q5_0"));
    assert_eq!((w41.m(), w41.k(), w50.m(), w50.k()), (m, k, m, k));
    assert!(matches!(
        err(Q4_1Panels::from_gguf(&q41, 2, 96)).kind(),
        K::LengthMismatch { .. }
    ));
    assert!(matches!(
        err(Q5_0Panels::from_gguf(&q50[2..], 2, 64)).kind(),
        K::LengthMismatch { .. }
    ));
    assert!(matches!(
        err(Q5_0Panels::from_gguf(&q50, 2, 40)).kind(),
        K::NotBlockMultiple { k: 40, block: 32, .. }
    ));
    assert!(matches!(
        err(Q4_1Panels::from_gguf(&q41, 0, 64)).kind(),
        K::BadShape { .. }
    ));
    assert!(matches!(
        err(Q5_0Panels::from_gguf(&q50, usize::MAX, 64)).kind(),
        K::BadShape { .. }
    ));
    // A NaN minimum (second block of row 0) and an infinite Q5_0 scale.
    let mut nan = q41.clone();
    nan[22..24].copy_from_slice(&half::f16::NAN.to_le_bytes());
    assert!(matches!(
        err(Q4_1Panels::from_gguf(&nan, m, k)).kind(),
        K::NonFinite { .. }
    ));
    let mut inf = q50.clone();
    inf[22..24].copy_from_slice(&half::f16::NEG_INFINITY.to_le_bytes());
    assert!(matches!(
        err(Weights::from_gguf(QuantType::Q5_0, &inf, m, k)).kind(),
        K::NonFinite { .. }
    ));
    assert!(matches!(
        err(Q4_1Panels::quantize(&[f32::NAN; 32], 1, 32)).kind(),
        K::Quant(_)
    ));
    assert!(matches!(
        err(Q5_0Panels::quantize(&[0.0; 48], 1, 48)).kind(),
        K::NotBlockMultiple { .. }
    ));
    assert!(matches!(
        err(matmul_at(s, &w50, &x[1..], n, &mut out, p, 1)).kind(),
        K::LengthMismatch { .. }
    ));
    assert!(matches!(
        err(matmul_at(s, &w41, &xb, n, &mut out, p, 1)).kind(),
        K::NonFinite { .. }
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any shape and values: every level equals scalar bit for bit, and
    /// the result is within `q8_tol` of the naive f64 reference.
    #[test]
    fn prop_matches_naive(m in 1usize..40, blocks in 1usize..12, n in 1usize..10,
                          scale in -10i32..10, seed in any::<u64>()) {
        let k = 32 * blocks;
        let mut rng = Rng(seed);
        let s = 2f32.powi(scale);
        let x: Vec<f32> = hard_acts(&mut rng, n, k).iter().map(|v| v * s).collect();
        let a = ActQ8_0::quantize(&x, n, k).unwrap();
        for (w, bytes) in all(&mut rng, m, k) {
            let want = run(SimdLevel::Scalar, &w, &x, n, 1);
            for level in levels() {
                prop_assert_eq!(bits(&run(level, &w, &x, n, 2)), bits(&want));
            }
            let ty = quant_type(&w);
            let wd = exact_weights(ty, &bytes, m, k);
            for (g, (e, mag)) in want.iter().zip(naive(&wd, &a, m)) {
                let tol = tol(ty, k, mag);
                prop_assert!((*g as f64 - e).abs() <= tol, "{} vs {} (tol {})", g, e, tol);
            }
        }
    }
}
