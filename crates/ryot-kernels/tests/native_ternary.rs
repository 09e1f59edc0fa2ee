//! Kernels on the native ternary layouts (TQ2_0, TQ1_0, I2_S): goldens,
//! scalar/SIMD parity (bit-exact), batch and thread invariance
//! (bit-exact), agreement with t2p, accuracy against a naive f64
//! reference, and typed errors.

mod common;

use common::{
    Rng, bits, f32s, levels, pack_i2s, pack_tq2_0_block, pool, read_golden,
};
use half::f16;
use proptest::prelude::*;
use ryot_kernels::act::ActI8;
use ryot_kernels::matmul::t2p_with_acts;
use ryot_kernels::native::{I2s, Tq1_0, Tq2_0};
use ryot_kernels::{
    KernelErrorKind, SimdLevel, TernaryPanels, Weights, matmul_at,
};
use ryot_quant::QuantType;

/// The three formats, behind one interface for the tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    Tq2_0,
    Tq1_0,
    I2s,
}

const TYPES: [Ty; 3] = [Ty::Tq2_0, Ty::Tq1_0, Ty::I2s];

impl Ty {
    /// `k` must be a multiple of this.
    fn block(self) -> usize {
        match self {
            Ty::Tq2_0 | Ty::Tq1_0 => 256,
            Ty::I2s => 128,
        }
    }
}

/// Weights of one of the three formats.
#[derive(Clone, Debug)]
enum W {
    Tq2_0(Tq2_0),
    Tq1_0(Tq1_0),
    I2s(I2s),
}

impl W {
    fn new(ty: Ty, bytes: &[u8], m: usize, k: usize) -> W {
        match ty {
            Ty::Tq2_0 => W::Tq2_0(Tq2_0::from_gguf(bytes, m, k).unwrap()),
            Ty::Tq1_0 => W::Tq1_0(Tq1_0::from_gguf(bytes, m, k).unwrap()),
            Ty::I2s => W::I2s(I2s::from_gguf(bytes, m, k).unwrap()),
        }
    }

    fn m(&self) -> usize {
        match self {
            W::Tq2_0(w) => w.m(),
            W::Tq1_0(w) => w.m(),
            W::I2s(w) => w.m(),
        }
    }

    fn dequantize(&self) -> Vec<f32> {
        match self {
            W::Tq2_0(w) => w.dequantize(),
            W::Tq1_0(w) => w.dequantize(),
            W::I2s(w) => w.dequantize(),
        }
    }

    /// Columns per scale group: a TQ block, or the whole I2_S row.
    fn group(&self) -> usize {
        match self {
            W::I2s(w) => w.k(),
            _ => 256,
        }
    }

    fn run(&self, level: SimdLevel, a: &ActI8, threads: usize) -> Vec<f32> {
        let mut out = vec![f32::NAN; a.n() * self.m()];
        let (p, t) = (pool(), threads);
        match self {
            W::Tq2_0(w) => w.matmul_acts(level, a, &mut out, p, t),
            W::Tq1_0(w) => w.matmul_acts(level, a, &mut out, p, t),
            W::I2s(w) => w.matmul_acts(level, a, &mut out, p, t),
        }
        .unwrap();
        out
    }

    fn weights(&self) -> Weights {
        match self.clone() {
            W::Tq2_0(w) => Weights::Tq2_0(w),
            W::Tq1_0(w) => Weights::Tq1_0(w),
            W::I2s(w) => Weights::I2s(w),
        }
    }
}

/// Packs one TQ1_0 block from 256 codes (0..=2) and a scale, as ggml's
/// `quantize_row_tq1_0` does: five trits per byte as `ceil(v * 256 /
/// 243)`, most significant first; the `qh` bytes carry four.
fn pack_tq1_0_block(codes: &[u8], d: f16, out: &mut Vec<u8>) {
    let byte = |trits: &mut dyn Iterator<Item = u8>| {
        let v = trits.fold(0u32, |v, t| v * 3 + t as u32);
        (v * 256).div_ceil(243) as u8
    };
    for m in 0..32 {
        out.push(byte(&mut (0..5).map(|n| codes[n * 32 + m])));
    }
    for m in 0..16 {
        out.push(byte(&mut (0..5).map(|n| codes[160 + n * 16 + m])));
    }
    for j in 0..4 {
        let mut it = (0..4).map(|n| codes[240 + n * 4 + j]).chain([0]);
        out.push(byte(&mut it));
    }
    out.extend_from_slice(&d.to_le_bytes());
}

/// How the random weights are made.
#[derive(Clone, Copy)]
enum Fill {
    /// Codes 0..=2 from a generator; every block has the same scale.
    Uniform,
    /// Codes 0..=2; each block gets its own scale.
    PerBlock,
    /// Random code bytes (TQ2_0 code 3 = +2, TQ1_0 bytes past 242, I2_S
    /// code 3 = 0), random per-block scales.
    RawBytes,
}

/// Random weights of type `ty`, `m x k`, as file bytes.
fn random_bytes(
    rng: &mut Rng,
    ty: Ty,
    m: usize,
    k: usize,
    fill: Fill,
) -> Vec<u8> {
    let shared = f16::from_f32(0.5 + rng.unit().abs());
    let scale = |rng: &mut Rng| match fill {
        Fill::Uniform => shared,
        _ => f16::from_f32(0.05 + rng.unit().abs() * 2.0),
    };
    let raw = matches!(fill, Fill::RawBytes);
    match ty {
        Ty::Tq2_0 | Ty::Tq1_0 => {
            let mut bytes = Vec::new();
            for _ in 0..m * (k / 256) {
                let d = scale(rng);
                let start = bytes.len();
                if ty == Ty::Tq2_0 {
                    pack_tq2_0_block(&rng.codes(256), d, &mut bytes);
                } else {
                    pack_tq1_0_block(&rng.codes(256), d, &mut bytes);
                }
                if raw {
                    let end = bytes.len() - 2;
                    for b in &mut bytes[start..end] {
                        *b = rng.next_u64() as u8;
                    }
                }
            }
            bytes
        }
        Ty::I2s => {
            let s = scale(rng).to_f32();
            let mut bytes = pack_i2s(&rng.codes(m * k), s);
            if raw {
                for b in &mut bytes[..m * k / 4] {
                    *b = rng.next_u64() as u8;
                }
            }
            bytes
        }
    }
}

/// The exact result in f64 from the dequantized weights, and the sum of
/// the magnitudes of the per-group terms (for error bounds).
fn naive(
    wd: &[f32],
    m: usize,
    k: usize,
    group: usize,
    a: &ActI8,
) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(a.n() * m);
    for t in 0..a.n() {
        let q = a.row(t);
        let s = a.scales()[t] as f64;
        for r in 0..m {
            let (mut sum, mut mag) = (0f64, 0f64);
            for g in (0..k).step_by(group) {
                // Products of an f32 weight and an int8 are exact in f64,
                // and so are their sums here (|sum| < 2^53 ulps).
                let term = (g..g + group)
                    .map(|c| wd[r * k + c] as f64 * q[c] as f64)
                    .sum::<f64>()
                    / s;
                sum += term;
                mag += term.abs();
            }
            out.push((sum, mag));
        }
    }
    out
}

/// The kernel result is within rounding of the exact value: each group's
/// term is rounded twice (the division, the scaling) and the sum of
/// `groups` terms once per addition, each relative `2^-24` of at most the
/// sum of magnitudes, so `(groups + 2) * 2^-24 * mag` bounds the error.
fn assert_close(got: &[f32], want: &[(f64, f64)], groups: usize, what: &str) {
    let u = f32::EPSILON as f64 / 2.0;
    for (i, (&g, &(e, mag))) in got.iter().zip(want).enumerate() {
        let tol = (groups + 2) as f64 * u * mag * 1.0001 + 1e-30;
        assert!(
            (g as f64 - e).abs() <= tol,
            "{what} [{i}]: {g} vs {e} (tol {tol})"
        );
    }
}

#[test]
fn tq_goldens_dequantize_and_multiply() {
    let mut rng = Rng(5);
    let (m, k) = (4, 1024);
    for (name, ty) in [("TQ2_0", Ty::Tq2_0), ("TQ1_0", Ty::Tq1_0)] {
        let blocks = read_golden(&format!("{name}.blocks.bin"));
        let want = f32s(&read_golden(&format!("{name}.dequant.f32.bin")));
        let w = W::new(ty, &blocks, m, k);
        assert_eq!(bits(&w.dequantize()), bits(&want), "{name} dequant");
        for n in [1, 3, 9] {
            let a = ActI8::quantize(&rng.vec(n * k), n, k).unwrap();
            let reference = naive(&want, m, k, 256, &a);
            let scalar = w.run(SimdLevel::Scalar, &a, 1);
            assert_close(&scalar, &reference, k / 256, name);
            for level in levels() {
                assert_eq!(
                    bits(&w.run(level, &a, 2)),
                    bits(&scalar),
                    "{name} {level}"
                );
            }
        }
    }
}

#[test]
fn i2s_goldens_match_bitnet_bit_for_bit() {
    for (prefix, m, k) in [("I2_S", 4, 512), ("I2_S.3x256", 3, 256)] {
        let blocks = read_golden(&format!("{prefix}.blocks.bin"));
        let w = W::new(Ty::I2s, &blocks, m, k);
        let dq = f32s(&read_golden(&format!("{prefix}.dequant.f32.bin")));
        assert_eq!(bits(&w.dequantize()), bits(&dq), "{prefix} dequant");
        let x = f32s(&read_golden(&format!("{prefix}.act.f32.bin")));
        let n = x.len() / k;
        let a = ActI8::quantize(&x, n, k).unwrap();
        let want = f32s(&read_golden(&format!("{prefix}.matmul.f32.bin")));
        for level in levels() {
            for threads in [1, 2] {
                let got = w.run(level, &a, threads);
                assert_eq!(bits(&got), bits(&want), "{prefix} at {level}");
            }
        }
    }
}

/// Shapes that hit every tail: one row, odd rows, rows that are not a
/// multiple of the row tiles (8 AVX2 GEMV, 16 AVX-512 and per unit), one
/// and several blocks (odd I2_S group counts), token counts that use every
/// token tile (8, 4, 2, 1 tokens on AVX2; 16, 8, 4, 2, 1 on AVX-512) with
/// remainders.
const SHAPES: &[(usize, usize, usize)] = &[
    (1, 256, 1),
    (1, 512, 2),
    (3, 256, 3),
    (7, 768, 1),
    (9, 256, 5),
    (15, 1024, 4),
    (16, 512, 6),
    (17, 256, 7),
    (31, 1280, 13),
    (33, 512, 17),
    (40, 2560, 1),
    (65, 768, 2),
    (20, 512, 16),
    (9, 768, 31),
];

#[test]
fn simd_matches_scalar_bit_for_bit() {
    let mut rng = Rng(42);
    for ty in TYPES {
        for &(m, k, n) in SHAPES {
            let ks: &[usize] = if ty == Ty::I2s { &[k, k - 128] } else { &[k] };
            for &k in ks.iter().filter(|&&k| k > 0) {
                for fill in [Fill::PerBlock, Fill::RawBytes] {
                    let w = W::new(
                        ty,
                        &random_bytes(&mut rng, ty, m, k, fill),
                        m,
                        k,
                    );
                    let a = ActI8::quantize(&rng.vec(n * k), n, k).unwrap();
                    let want = w.run(SimdLevel::Scalar, &a, 1);
                    for level in levels() {
                        assert_eq!(
                            bits(&w.run(level, &a, 2)),
                            bits(&want),
                            "{ty:?} {level} m={m} k={k} n={n}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn extreme_activations_stay_exact() {
    // All-max codes against all -128 / +127 activations: the largest
    // 16-bit partial sums the AVX2 kernels form.
    let (m, k, n) = (17, 4096, 3);
    for ty in TYPES {
        let code = if ty == Ty::Tq1_0 { 2 } else { 3 };
        let bytes = match ty {
            Ty::Tq2_0 => {
                let mut b = Vec::new();
                for _ in 0..m * k / 256 {
                    pack_tq2_0_block(&[code; 256], f16::from_f32(1.0), &mut b);
                }
                b
            }
            Ty::Tq1_0 => {
                let mut b = Vec::new();
                for _ in 0..m * k / 256 {
                    pack_tq1_0_block(&[code; 256], f16::from_f32(1.0), &mut b);
                }
                b
            }
            // Code 3 reads as 0 in I2_S; 2 is its largest.
            Ty::I2s => pack_i2s(&vec![2; m * k], 1.0),
        };
        let w = W::new(ty, &bytes, m, k);
        let mut x = vec![-1.0f32; n * k];
        x[k..2 * k].fill(1.0);
        // A clamp to -128 is reachable only through rounding; the kernels
        // must not care either way.
        let a = ActI8::quantize(&x, n, k).unwrap();
        let want = w.run(SimdLevel::Scalar, &a, 1);
        let wd = w.dequantize();
        assert_close(
            &want,
            &naive(&wd, m, k, w.group(), &a),
            k / w.group(),
            "extreme",
        );
        for level in levels() {
            assert_eq!(
                bits(&w.run(level, &a, 1)),
                bits(&want),
                "{ty:?} {level}"
            );
        }
    }
}

#[test]
fn batch_and_threads_do_not_change_a_row() {
    let mut rng = Rng(9);
    let (m, k, n) = (70, 768, 11);
    for ty in TYPES {
        let w =
            W::new(ty, &random_bytes(&mut rng, ty, m, k, Fill::PerBlock), m, k);
        let x = rng.vec(n * k);
        let a = ActI8::quantize(&x, n, k).unwrap();
        for level in levels() {
            let gemm = w.run(level, &a, 1);
            for threads in [2, 3] {
                assert_eq!(bits(&w.run(level, &a, threads)), bits(&gemm));
            }
            for t in 0..n {
                let a1 = ActI8::quantize(&x[t * k..(t + 1) * k], 1, k).unwrap();
                for threads in [1, 2] {
                    let gemv = w.run(level, &a1, threads);
                    let row = &gemm[t * m..(t + 1) * m];
                    assert_eq!(bits(&gemv), bits(row), "{ty:?} {level} t={t}");
                }
            }
            // Any sub-batch gives the same rows too (different tiles).
            for (t0, len) in [(0, 2), (3, 3), (1, 5), (2, 9)] {
                let sub = &x[t0 * k..(t0 + len) * k];
                let got =
                    w.run(level, &ActI8::quantize(sub, len, k).unwrap(), 2);
                assert_eq!(bits(&got), bits(&gemm[t0 * m..(t0 + len) * m]));
            }
        }
    }
}

#[test]
fn native_agrees_with_t2p() {
    let mut rng = Rng(11);
    for ty in TYPES {
        for &(m, k, n) in &[(19, 512, 1), (33, 1024, 5), (8, 2560, 2)] {
            for fill in [Fill::Uniform, Fill::PerBlock] {
                let bytes = random_bytes(&mut rng, ty, m, k, fill);
                let w = W::new(ty, &bytes, m, k);
                let p = match ty {
                    Ty::Tq2_0 => TernaryPanels::from_tq2_0(&bytes, m, k),
                    Ty::Tq1_0 => TernaryPanels::from_tq1_0(&bytes, m, k),
                    Ty::I2s => TernaryPanels::from_i2s(&bytes, m, k),
                }
                .unwrap();
                assert_eq!(bits(&w.dequantize()), bits(&p.dequantize()));
                let a = ActI8::quantize(&rng.vec(n * k), n, k).unwrap();
                let native = w.run(SimdLevel::Scalar, &a, 1);
                let mut t2p = vec![0f32; n * m];
                t2p_with_acts(SimdLevel::Scalar, &p, &a, &mut t2p, pool(), 1)
                    .unwrap();
                // Per-block scales make t2p use one group per block, the
                // native kernels' exact formula; I2_S is one group in
                // both. Then the results are identical.
                if ty == Ty::I2s || matches!(fill, Fill::PerBlock) {
                    assert_eq!(bits(&native), bits(&t2p), "{ty:?} m={m} k={k}");
                    continue;
                }
                // With one scale per row t2p adds the integer sums of all
                // blocks first and rounds twice at the end, while the
                // native kernels round each block's term twice and add
                // k/256 of them in f32. Both are within the rounding
                // bound of `assert_close` of the exact value, so they are
                // within twice that of each other.
                let exact = naive(&w.dequantize(), m, k, 256, &a);
                let u = f32::EPSILON as f64 / 2.0;
                for (i, (&x, &y)) in native.iter().zip(&t2p).enumerate() {
                    let tol =
                        2.0 * (k / 256 + 2) as f64 * u * exact[i].1 + 1e-30;
                    assert!(
                        (x as f64 - y as f64).abs() <= tol,
                        "{ty:?} [{i}]: {x} vs {y}"
                    );
                }
            }
        }
    }
}

#[test]
fn i2s_code_3_reads_as_zero() {
    let mut rng = Rng(4);
    let (m, k) = (5, 384);
    let mut codes = rng.codes(m * k);
    let plain = pack_i2s(&codes, 0.5);
    for c in codes.iter_mut().step_by(3) {
        if *c == 1 {
            *c = 3;
        }
    }
    let with3 = pack_i2s(&codes, 0.5);
    let a = W::new(Ty::I2s, &plain, m, k);
    let b = W::new(Ty::I2s, &with3, m, k);
    assert_eq!(a.dequantize(), b.dequantize());
    let acts = ActI8::quantize(&rng.vec(2 * k), 2, k).unwrap();
    for level in levels() {
        assert_eq!(
            bits(&a.run(level, &acts, 1)),
            bits(&b.run(level, &acts, 1))
        );
    }
}

#[test]
fn weights_enum_and_f32_entry_point() {
    let mut rng = Rng(1);
    let (m, k, n) = (20, 512, 3);
    for (ty, name) in
        [(Ty::Tq2_0, "tq2_0"), (Ty::Tq1_0, "tq1_0"), (Ty::I2s, "i2_s")]
    {
        let bytes = random_bytes(&mut rng, ty, m, k, Fill::PerBlock);
        let w = W::new(ty, &bytes, m, k);
        let ww = w.weights();
        let qt =
            [QuantType::TQ2_0, QuantType::TQ1_0, QuantType::I2_S][ty as usize];
        let from_gguf = Weights::from_gguf(qt, &bytes, m, k).unwrap();
        assert_eq!(from_gguf.type_name(), name);
        assert_eq!(ww.type_name(), name);
        assert_eq!(ww.stored_bytes(), bytes.len());
        assert_eq!((ww.m(), ww.k()), (m, k));
        let x = rng.vec(n * k);
        let a = ActI8::quantize(&x, n, k).unwrap();
        let mut out = vec![0f32; n * m];
        for level in levels() {
            matmul_at(level, &ww, &x, n, &mut out, pool(), 2).unwrap();
            assert_eq!(bits(&out), bits(&w.run(level, &a, 2)));
        }
        let err =
            matmul_at(SimdLevel::Scalar, &ww, &x, n, &mut out[1..], pool(), 1);
        assert!(matches!(
            err.unwrap_err().kind(),
            KernelErrorKind::LengthMismatch { .. }
        ));
        let err =
            matmul_at(SimdLevel::Scalar, &ww, &x[1..], n, &mut out, pool(), 1);
        assert!(matches!(
            err.unwrap_err().kind(),
            KernelErrorKind::LengthMismatch { .. }
        ));
    }
}

#[test]
fn bad_input_is_a_typed_error() {
    use KernelErrorKind as K;
    let kind = |r: Result<(), ryot_kernels::KernelError>| {
        format!("{:?}", r.unwrap_err().kind())
    };
    let tq2 = |b: &[u8], m, k| Tq2_0::from_gguf(b, m, k).map(drop);
    let tq1 = |b: &[u8], m, k| Tq1_0::from_gguf(b, m, k).map(drop);
    let i2s = |b: &[u8], m, k| I2s::from_gguf(b, m, k).map(drop);
    assert!(kind(tq2(&[0; 65], 1, 256)).starts_with("LengthMismatch"));
    assert!(kind(tq2(&[0; 66], 1, 255)).starts_with("NotBlockMultiple"));
    assert!(kind(tq2(&[0; 132], 1, 384)).starts_with("NotBlockMultiple"));
    assert!(kind(tq1(&[0; 55], 1, 256)).starts_with("LengthMismatch"));
    assert!(kind(tq1(&[0; 54], 1, 128)).starts_with("NotBlockMultiple"));
    assert!(kind(tq1(&[], 0, 256)).starts_with("BadShape"));
    assert!(kind(i2s(&[0; 63], 1, 128)).starts_with("LengthMismatch"));
    assert!(kind(i2s(&[0; 64], 1, 64)).starts_with("NotBlockMultiple"));
    assert!(kind(i2s(&[0; 64], 0, 128)).starts_with("BadShape"));
    assert!(kind(i2s(&[0; 64], 1, 0)).starts_with("BadShape"));
    assert!(kind(tq2(&[], usize::MAX, 256)).starts_with("BadShape"));
    let w = Tq2_0::from_gguf(&[0; 66 * 2], 1, 512).unwrap();
    let a = ActI8::quantize(&[1.0; 256], 1, 256).unwrap();
    let mut out = [0f32; 1];
    let e =
        w.matmul_acts(SimdLevel::Scalar, &a, &mut out, pool(), 1).unwrap_err();
    assert!(matches!(e.kind(), K::BadShape { .. }));
    let a = ActI8::quantize(&[1.0; 512], 1, 512).unwrap();
    let e = w
        .matmul_acts(SimdLevel::Scalar, &a, &mut [0f32; 2], pool(), 1)
        .unwrap_err();
    assert!(matches!(e.kind(), K::LengthMismatch { .. }));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any shape and values: every level equals scalar bit for bit, and
    /// scalar is within rounding of the naive f64 reference.
    #[test]
    fn prop_matches_naive(ty in 0usize..3, m in 1usize..40, blocks in 1usize..6,
                          n in 1usize..10, raw in any::<bool>(), seed in any::<u64>()) {
        let ty = TYPES[ty];
        let k = blocks * ty.block();
        let mut rng = Rng(seed);
        let fill = if raw { Fill::RawBytes } else { Fill::PerBlock };
        let w = W::new(ty, &random_bytes(&mut rng, ty, m, k, fill), m, k);
        let a = ActI8::quantize(&rng.vec(n * k), n, k).unwrap();
        let want = w.run(SimdLevel::Scalar, &a, 1);
        for level in levels() {
            prop_assert_eq!(bits(&w.run(level, &a, 2)), bits(&want));
        }
        let exact = naive(&w.dequantize(), m, k, w.group(), &a);
        assert_close(&want, &exact, k / w.group(), "prop");
    }
}
