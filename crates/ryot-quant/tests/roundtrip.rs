//! Property tests: quantize -> dequantize error within llama.cpp's named
//! tolerances, exact round trips of ternary data, and typed errors (never
//! panics) for bad lengths, bad bytes and non-finite input.

use proptest::prelude::*;
use ryot_quant::{
    BlockQ4K, BlockQ8_0, QuantErrorKind, QuantType, act, dequantize,
    dequantize_blocks, dequantize_row, i2s, quantize, quantize_blocks,
    quantize_row,
};

// Tolerances of llama.cpp `tests/test-quantize-fns.cpp` (same metric:
// sqrt(sum of squared errors) / n on 0.1 + 2 cos(i + offset), n = 4096).
const MAX_QUANTIZATION_TOTAL_ERROR: f64 = 0.002;
const MAX_QUANTIZATION_TOTAL_ERROR_TERNARY: f64 = 0.01;
const MAX_QUANTIZATION_TOTAL_ERROR_2BITS: f64 = 0.0075;
const MAX_QUANTIZATION_TOTAL_ERROR_3BITS: f64 = 0.0040;

/// The types with a per-row quantizer (all but I2_S).
const ROW_TYPES: [QuantType; 15] = [
    QuantType::F32,
    QuantType::F16,
    QuantType::BF16,
    QuantType::Q4_0,
    QuantType::Q4_1,
    QuantType::Q5_0,
    QuantType::Q5_1,
    QuantType::Q8_0,
    QuantType::Q2_K,
    QuantType::Q3_K,
    QuantType::Q4_K,
    QuantType::Q5_K,
    QuantType::Q6_K,
    QuantType::TQ1_0,
    QuantType::TQ2_0,
];

fn max_total_error(ty: QuantType) -> f64 {
    match ty {
        QuantType::TQ1_0 | QuantType::TQ2_0 => {
            MAX_QUANTIZATION_TOTAL_ERROR_TERNARY
        }
        QuantType::Q2_K => MAX_QUANTIZATION_TOTAL_ERROR_2BITS,
        QuantType::Q3_K => MAX_QUANTIZATION_TOTAL_ERROR_3BITS,
        _ => MAX_QUANTIZATION_TOTAL_ERROR,
    }
}

/// llama.cpp's `generate_data`: 0.1 + amplitude * cos(i + offset).
fn generate_data(offset: f32, n: usize, amplitude: f32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            (0.1 + amplitude as f64 * (i as f32 + offset).cos() as f64) as f32
        })
        .collect()
}

/// `array_rmse` of test-quantize-fns.cpp: sqrt(sum d^2) / n.
fn total_error(a: &[f32], b: &[f32]) -> f64 {
    let sum: f64 =
        a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum();
    sum.sqrt() / a.len() as f64
}

fn round_trip(ty: QuantType, x: &[f32]) -> Vec<f32> {
    let mut bytes = vec![0u8; ty.row_bytes(x.len()).unwrap()];
    quantize_row(ty, x, &mut bytes).unwrap();
    let mut y = vec![0.0f32; x.len()];
    dequantize_row(ty, &bytes, &mut y).unwrap();
    y
}

#[test]
fn llama_cpp_test_data_is_within_tolerance() {
    // Exactly the data test-quantize-fns.cpp uses (offset 0, n = 32 * 128).
    let x = generate_data(0.0, 32 * 128, 2.0);
    for ty in ROW_TYPES {
        let err = total_error(&x, &round_trip(ty, &x));
        assert!(err < max_total_error(ty), "{ty}: {err}");
    }
}

/// A ternary value times a scale: `t * c` with `t` in {-1, 0, 1}.
fn ternary(len: usize) -> impl Strategy<Value = Vec<i8>> {
    prop::collection::vec(prop::sample::select(vec![-1i8, 0, 1]), len)
}

/// A positive normal f16 value (so the f16 block scale stores it exactly).
fn f16_scale() -> impl Strategy<Value = f32> {
    (0x1400u16..0x6000).prop_map(|b| half::f16::from_bits(b).to_f32())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn round_trip_error_within_named_tolerance(
        offset in 0.0f32..1000.0,
        amplitude in 0.25f32..4.0,
    ) {
        let x = generate_data(offset, 4096, amplitude);
        for ty in ROW_TYPES {
            // The tolerances are absolute for amplitude 2; scale them.
            let tol = max_total_error(ty) * (amplitude as f64 / 2.0).max(1.0);
            let err = total_error(&x, &round_trip(ty, &x));
            prop_assert!(err < tol, "{} err {} tol {}", ty, err, tol);
        }
    }

    #[test]
    fn ternary_data_round_trips_exactly_through_tq(
        t in ternary(1024),
        scales in prop::collection::vec(f16_scale(), 4),
    ) {
        let x: Vec<f32> =
            t.iter().enumerate().map(|(i, &t)| t as f32 * scales[i / 256]).collect();
        for ty in [QuantType::TQ1_0, QuantType::TQ2_0] {
            let y = round_trip(ty, &x);
            prop_assert_eq!(&y, &x, "{}", ty);
        }
    }

    #[test]
    fn ternary_data_round_trips_exactly_through_i2s(
        t in ternary(3 * 256),
        c in 1e-5f32..1e5,
    ) {
        let x: Vec<f32> = t.iter().map(|&t| t as f32 * c).collect();
        let bytes = quantize(QuantType::I2_S, &x, 3, 256).unwrap();
        let mut y = vec![0.0f32; x.len()];
        dequantize(QuantType::I2_S, &bytes, 3, 256, &mut y).unwrap();
        prop_assert_eq!(&y, &x);
        // Codes read back through the accessor.
        for (i, &t) in t.iter().enumerate() {
            prop_assert_eq!(i2s::code(&bytes, i), (t + 1) as u8);
        }
    }

    #[test]
    fn absmean_then_i2s_is_lossless_on_the_ternarized_values(
        w in prop::collection::vec(-3.0f32..3.0, 2 * 128),
    ) {
        let (t, scale) = i2s::ternarize_absmean(&w);
        let bytes = i2s::quantize(&t, 2, 128).unwrap();
        let mut y = vec![0.0f32; t.len()];
        i2s::dequantize(&bytes, 2, 128, &mut y).unwrap();
        prop_assert_eq!(&y, &t);
        if t.iter().any(|&v| v != 0.0) {
            prop_assert_eq!(i2s::scale(&bytes, 2, 128).unwrap(), scale);
        }
    }

    #[test]
    fn f16_and_bf16_values_round_trip_exactly(bits in prop::collection::vec(any::<u16>(), 64)) {
        let f16s: Vec<f32> = bits.iter().map(|&b| half::f16::from_bits(b).to_f32()).collect();
        let bf16s: Vec<f32> = bits.iter().map(|&b| f32::from_bits((b as u32) << 16)).collect();
        for (ty, x) in [(QuantType::F16, &f16s), (QuantType::BF16, &bf16s)] {
            let y = round_trip(ty, x);
            for (a, b) in x.iter().zip(&y) {
                // NaN payloads may be quieted; everything else is exact.
                prop_assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
            }
        }
    }

    #[test]
    fn moderate_inputs_give_finite_outputs(x in prop::collection::vec(-1000.0f32..1000.0, 512)) {
        for ty in ROW_TYPES {
            prop_assert!(round_trip(ty, &x).iter().all(|v| v.is_finite()), "{}", ty);
        }
    }

    #[test]
    fn any_bytes_dequantize_without_panic(
        bytes in prop::collection::vec(any::<u8>(), 2 * 210),
        t in prop::sample::select(ROW_TYPES.to_vec()),
    ) {
        let k = 2 * t.block_elems();
        let n = t.row_bytes(k).unwrap();
        let mut y = vec![0.0f32; k];
        let mut src = bytes;
        src.resize(n, 0x55);
        prop_assert!(dequantize_row(t, &src, &mut y).is_ok());
    }

    #[test]
    fn non_finite_input_is_rejected_with_its_index(
        idx in 0usize..512,
        bad in prop::sample::select(vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY]),
    ) {
        let mut x = vec![0.5f32; 512];
        x[idx] = bad;
        for ty in ROW_TYPES.iter().copied().filter(|t| t.block_elems() > 1) {
            let mut out = vec![0u8; ty.row_bytes(512).unwrap()];
            let err = quantize_row(ty, &x, &mut out).unwrap_err();
            match err.kind() {
                QuantErrorKind::NonFinite { index, .. } => prop_assert_eq!(*index, idx),
                other => prop_assert!(false, "{}: {:?}", ty, other),
            }
        }
        let err = i2s::quantize(&x, 4, 128).unwrap_err();
        let is_non_finite = matches!(err.kind(), QuantErrorKind::NonFinite { .. });
        prop_assert!(is_non_finite);
    }

    #[test]
    fn bad_lengths_are_errors_not_panics(
        t in prop::sample::select(QuantType::ALL.to_vec()),
        k in 0usize..600,
        extra in 0usize..3,
        rows in 0usize..4,
    ) {
        let block = t.block_elems();
        let good_k = k % block == 0;
        let x = vec![0.25f32; k];

        // Row API.
        if t == QuantType::I2_S {
            let mut out = vec![0u8; k];
            let needs_tensor = matches!(
                quantize_row(t, &x, &mut out).unwrap_err().kind(),
                QuantErrorKind::NeedsWholeTensor { .. }
            );
            prop_assert!(needs_tensor);
            let mut y = vec![0.0f32; k];
            prop_assert!(dequantize_row(t, &out, &mut y).is_err());
        } else {
            let rb = t.row_bytes(k);
            prop_assert_eq!(rb.is_ok(), good_k);
            let want = rb.clone().unwrap_or(k);
            for len in [want, want + 1 + extra, want.saturating_sub(1 + extra)] {
                let mut out = vec![0u8; len];
                let ok = quantize_row(t, &x, &mut out).is_ok();
                prop_assert_eq!(ok, good_k && len == want);
                let mut y = vec![0.0f32; k];
                let ok = dequantize_row(t, &out, &mut y).is_ok();
                prop_assert_eq!(ok, good_k && len == want);
            }
        }

        // Whole-tensor API.
        let src = vec![0.25f32; rows * k + extra];
        let res = quantize(t, &src, rows, k);
        prop_assert_eq!(res.is_ok(), good_k && extra == 0);
        let tb = t.tensor_bytes(rows, k);
        prop_assert_eq!(tb.is_ok(), good_k);
        if let Ok(tb) = tb {
            if let Ok(bytes) = &res {
                prop_assert_eq!(bytes.len(), tb);
            }
            let bytes = vec![0u8; tb + extra];
            let mut y = vec![0.0f32; rows * k];
            prop_assert_eq!(dequantize(t, &bytes, rows, k, &mut y).is_ok(), extra == 0);
            let bytes = vec![0u8; tb];
            let mut y = vec![0.0f32; rows * k + extra];
            prop_assert_eq!(dequantize(t, &bytes, rows, k, &mut y).is_ok(), extra == 0);
        }
    }

    #[test]
    fn i2s_helpers_reject_bad_lengths(
        m in 0usize..4,
        k in 0usize..520,
        n_tokens in 0usize..3,
        extra in 1usize..3,
    ) {
        let good_k = k % 128 == 0;
        prop_assert_eq!(i2s::tensor_bytes(m, k).is_ok(), good_k);
        let q = vec![1i8; k];
        let codes = vec![0xAAu8; k / 4];
        prop_assert_eq!(i2s::kernel_sumi(&codes, &q).is_ok(), good_k);
        let short = &codes[..(k / 4).saturating_sub(extra)];
        prop_assert!(i2s::kernel_sumi(short, &q).is_err() || k / 4 == 0);
        if let Ok(tb) = i2s::tensor_bytes(m, k) {
            let w = vec![0x55u8; tb];
            let act = vec![0.5f32; n_tokens * k];
            let mut out = vec![0.0f32; n_tokens * m];
            prop_assert!(i2s::reference_matmul(&w, m, k, &act, n_tokens, &mut out).is_ok());
            let mut out_bad = vec![0.0f32; n_tokens * m + extra];
            prop_assert!(i2s::reference_matmul(&w, m, k, &act, n_tokens, &mut out_bad).is_err());
            prop_assert!(i2s::scale(&w[..tb - 1], m, k).is_err());
            let mut y = vec![0.0f32; m * k + extra];
            prop_assert!(i2s::dequantize(&w, m, k, &mut y).is_err());
        }
        prop_assert_eq!(i2s::get_code(&codes, k), None);
    }
}

#[test]
fn typed_block_helpers_check_lengths() {
    let x = generate_data(1.0, 512, 2.0);
    let mut blocks = vec![bytemuck::Zeroable::zeroed(); 2];
    quantize_blocks::<BlockQ4K>(&x, &mut blocks).unwrap();
    let mut y = vec![0.0f32; 512];
    dequantize_blocks(&blocks, &mut y).unwrap();
    assert_eq!(y, round_trip(QuantType::Q4_K, &x));
    assert!(quantize_blocks::<BlockQ4K>(&x[..511], &mut blocks).is_err());
    assert!(dequantize_blocks(&blocks, &mut y[..300]).is_err());

    let mut q8 = vec![bytemuck::Zeroable::zeroed(); 16];
    act::quantize_row_q8_0(&x, &mut q8);
    let mut y8 = vec![0.0f32; 512];
    dequantize_blocks::<BlockQ8_0>(&q8, &mut y8).unwrap();
    assert_eq!(y8, round_trip(QuantType::Q8_0, &x));
    assert!(act::try_quantize_row_q8_0(&x[..100], &mut q8).is_err());
    let mut qk = vec![bytemuck::Zeroable::zeroed(); 3];
    assert!(act::try_quantize_row_q8_k(&x, &mut qk).is_err());
    let mut q1 = vec![bytemuck::Zeroable::zeroed(); 15];
    assert!(act::try_quantize_row_q8_1(&x, &mut q1).is_err());
}

#[test]
fn q8_k_dequantizes_close_to_input() {
    let x = generate_data(2.0, 512, 2.0);
    let mut b = vec![bytemuck::Zeroable::zeroed(); 2];
    act::quantize_row_q8_k(&x, &mut b);
    let mut y = vec![0.0f32; 512];
    act::dequantize_row_q8_k(&b, &mut y).unwrap();
    assert!(total_error(&x, &y) < MAX_QUANTIZATION_TOTAL_ERROR);
    assert!(act::dequantize_row_q8_k(&b, &mut y[..10]).is_err());
}

#[test]
#[should_panic(expected = "quantize_row_i8_s")]
fn infallible_act_helpers_panic_with_a_message_on_bad_lengths() {
    let mut q = [0i8; 3];
    act::quantize_row_i8_s(&[1.0; 4], &mut q);
}
