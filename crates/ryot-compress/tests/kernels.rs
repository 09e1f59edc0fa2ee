//! SIMD kernels against their scalar twins: integer kernels exactly,
//! float kernels within `F32_TOL` (relative to the sum of |terms|).

use ryot_compress::kernels::{F32_TOL, scalar};
use ryot_compress::rng::Rng;

const DIMS: [usize; 12] = [0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 384];

fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("popcnt")
        {
            return true;
        }
    }
    eprintln!("skipped: no AVX2 on this CPU");
    false
}

fn floats(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.normal()).collect()
}

fn bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.next_u64() as u8).collect()
}

fn close(a: &[f32], b: &[f32], scale: f32) {
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x - y).abs() <= F32_TOL * scale.max(1.0),
            "{x} vs {y} (scale {scale})"
        );
    }
}

#[test]
#[cfg(target_arch = "x86_64")]
fn dot_and_scans_match_scalar() {
    use ryot_compress::kernels::avx2 as simd;
    if !avx2() {
        return;
    }
    let mut rng = Rng::new(42);
    for d in DIMS {
        let a = floats(&mut rng, d);
        let b = floats(&mut rng, d);
        let scale: f32 = a.iter().zip(&b).map(|(x, y)| (x * y).abs()).sum();
        // SAFETY: AVX2, FMA and POPCNT were detected above.
        let s = unsafe { simd::dot(&a, &b) };
        close(&[s], &[scalar::dot(&a, &b)], scale);
        let n = 13;
        let stride = d + 3;
        let codes = bytes(&mut rng, n * stride);
        let (mut x, mut y) = (vec![0f32; n], vec![0f32; n]);
        // SAFETY: as above.
        unsafe { simd::scan_u8(&a, &codes, stride, &mut x) };
        scalar::scan_u8(&a, &codes, stride, &mut y);
        let sc: f32 = a.iter().map(|v| v.abs() * 255.0).sum();
        close(&x, &y, sc);
        let stride4 = d.div_ceil(2) + 1;
        let codes4 = bytes(&mut rng, n * stride4);
        // SAFETY: as above.
        unsafe { simd::scan_u4(&a, &codes4, stride4, &mut x) };
        scalar::scan_u4(&a, &codes4, stride4, &mut y);
        close(&x, &y, sc);
    }
}

#[test]
#[cfg(target_arch = "x86_64")]
fn adc_and_hamming_match_scalar_exactly() {
    use ryot_compress::kernels::avx2 as simd;
    if !avx2() {
        return;
    }
    let mut rng = Rng::new(7);
    for nbytes in [1usize, 3, 6, 48] {
        for planes in [1usize, 2, 4] {
            for n in [0usize, 1, 7, 8, 9, 33] {
                let lut = floats(&mut rng, nbytes * 256);
                let stride = nbytes * planes + 4;
                let codes = bytes(&mut rng, n * stride);
                let (mut x, mut y) = (vec![0f32; n], vec![0f32; n]);
                // SAFETY: AVX2 was detected above; shapes as documented.
                unsafe {
                    simd::scan_adc(&lut, nbytes, planes, &codes, stride, &mut x)
                };
                scalar::scan_adc(&lut, nbytes, planes, &codes, stride, &mut y);
                assert_eq!(x, y, "adc nbytes {nbytes} planes {planes} n {n}");
            }
        }
    }
    for nb in [1usize, 7, 8, 9, 48, 50] {
        let q = bytes(&mut rng, nb);
        let n = 11;
        let codes = bytes(&mut rng, n * (nb + 2));
        let (mut x, mut y) = (vec![0u32; n], vec![0u32; n]);
        // SAFETY: POPCNT was detected above.
        unsafe { simd::hamming(&q, &codes, nb + 2, &mut x) };
        scalar::hamming(&q, &codes, nb + 2, &mut y);
        assert_eq!(x, y);
    }
}

#[test]
fn dispatch_respects_force_isa_names() {
    // The dispatcher's view must be one of the two levels, and an
    // invalid override must be reported by `forced`.
    let l = ryot_compress::kernels::isa();
    assert!(matches!(l.name(), "scalar" | "avx2"));
    if std::env::var("RYOT_FORCE_ISA").is_ok_and(|v| v == "scalar") {
        assert_eq!(l.name(), "scalar");
    }
}
