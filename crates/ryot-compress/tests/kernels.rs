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
    assert!(matches!(l.name(), "scalar" | "avx2" | "avx512"));
    if std::env::var("RYOT_FORCE_ISA").is_ok_and(|v| v == "scalar") {
        assert_eq!(l.name(), "scalar");
    }
}

mod fast_scan {
    use ryot_compress::kernels::fastscan::{self, BLOCK, Limits};
    use ryot_compress::rng::Rng;

    /// Direct integer sums from row-major codes.
    fn direct(lut: &[u8], rows: &[u8], cb: usize, n: usize) -> Vec<u32> {
        (0..n)
            .map(|i| {
                (0..cb)
                    .map(|p| {
                        let c = rows[i * cb + p];
                        u32::from(lut[32 * p + (c & 15) as usize])
                            + u32::from(lut[32 * p + 16 + (c >> 4) as usize])
                    })
                    .sum()
            })
            .collect()
    }

    /// A random table within `lim` (entries up to the limit, scaled down
    /// when the total would pass it).
    fn table(rng: &mut Rng, cb: usize, lim: Limits) -> Vec<u8> {
        let top = u64::from(lim.entry) + 1;
        let per = (u64::from(lim.total) / (2 * cb as u64)).min(top - 1);
        (0..cb * 32).map(|_| (rng.next_u64() % top).min(per) as u8).collect()
    }

    #[test]
    fn dispatched_sums_and_search_equal_the_scalar_twin() {
        // Runs whatever ISA is dispatched against the scalar reference
        // and a direct sum, on odd sizes, with tables up to the kernel's
        // limits and quantized ones.
        let mut rng = Rng::new(5);
        let lim = fastscan::table_limits();
        for cb in [1, 2, 3, 7, 48] {
            for n in [1, 5, 31, 32, 33, 100, 257] {
                let rows: Vec<u8> =
                    (0..n * cb).map(|_| rng.next_u64() as u8).collect();
                let blocks = fastscan::to_blocks(&rows, cb, n);
                assert_eq!(fastscan::from_blocks(&blocks, cb, n), rows);
                let full = table(&mut rng, cb, lim);
                let t: Vec<f32> = (0..cb * 32).map(|_| rng.normal()).collect();
                let q = fastscan::quantize_lut(&t, 2 * cb).lut;
                for lut in [&full, &q] {
                    let want = direct(lut, &rows, cb, n);
                    let mut got = vec![0u32; n];
                    fastscan::sums(lut, &blocks, cb, n, &mut got);
                    assert_eq!(got, want, "cb {cb} n {n}");
                    for c in [1, 10, n] {
                        let a = fastscan::search(lut, &blocks, cb, n, c);
                        let b =
                            fastscan::search_reference(lut, &blocks, cb, n, c);
                        assert_eq!(a, b, "cb {cb} n {n} c {c}");
                        assert_eq!(a.len(), c.min(n));
                        // Best first, ties by lower row.
                        let mut w: Vec<(u32, u32)> = want
                            .iter()
                            .enumerate()
                            .map(|(i, &s)| (s, i as u32))
                            .collect();
                        w.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
                        assert_eq!(a, w[..c.min(n)].to_vec());
                    }
                }
            }
        }
        assert_eq!(BLOCK, 32);
    }

    #[test]
    fn quantized_tables_fit_the_kernel_limits() {
        let mut rng = Rng::new(6);
        for lim in [fastscan::AVX2_LIMITS, fastscan::WIDE_LIMITS] {
            for m in [2, 96, 600] {
                let t: Vec<f32> =
                    (0..m * 16).map(|_| rng.normal() * 3.0).collect();
                let q = fastscan::quantize_lut_within(&t, m, lim);
                assert!(fastscan::within(&q.lut, lim), "m {m} {lim:?}");
                // The largest range uses the whole entry range unless
                // the total binds.
                let hi = *q.lut.iter().max().unwrap();
                assert!(hi >= lim.entry - 1 || lim.total < u32::MAX);
                // The float score is recovered to within rounding.
                let (j, k) = (m / 2, 7);
                let back = q.lut[j * 16 + k] as f32 / q.scale;
                let mins: f32 = t[j * 16..(j + 1) * 16]
                    .iter()
                    .copied()
                    .fold(f32::INFINITY, f32::min);
                assert!((back + mins - t[j * 16 + k]).abs() <= 0.51 / q.scale);
            }
            // A constant table does not divide by zero.
            let q = fastscan::quantize_lut_within(&[1.0; 32], 2, lim);
            assert!(q.lut.iter().all(|&v| v == 0) && q.scale.is_finite());
        }
        // The dispatched kernel's tables are within its limits.
        let t: Vec<f32> = (0..96 * 16).map(|_| rng.normal()).collect();
        let q = fastscan::quantize_lut(&t, 96);
        assert!(fastscan::within(&q.lut, fastscan::table_limits()));
        assert!(!fastscan::within(&[64; 16], fastscan::AVX2_LIMITS));
    }

    #[test]
    fn tables_beyond_the_limits_are_refused() {
        let lim = fastscan::table_limits();
        if lim.entry == u8::MAX {
            eprintln!("skipped: the dispatched kernel takes any u8 table");
            return;
        }
        let mut lut = vec![0u8; 32];
        lut[3] = lim.entry + 1;
        let blocks = fastscan::to_blocks(&[0u8; 1], 1, 1);
        let r = std::panic::catch_unwind(|| {
            fastscan::search(&lut, &blocks, 1, 1, 1)
        });
        assert!(r.is_err(), "a table beyond {lim:?} was scanned");
    }
}

#[test]
fn fast_scan_batches_equal_single_queries() {
    use ryot_compress::kernels::fastscan;
    let mut rng = Rng::new(8);
    for (cb, n) in [(1, 33), (5, 100), (48, 257)] {
        let rows = bytes(&mut rng, n * cb);
        let blocks = fastscan::to_blocks(&rows, cb, n);
        for nq in [1, 2, 3, 4, 5, 7, 9, 17] {
            let luts: Vec<Vec<u8>> = (0..nq)
                .map(|_| {
                    let t = floats(&mut rng, cb * 32);
                    fastscan::quantize_lut(&t, 2 * cb).lut
                })
                .collect();
            let refs: Vec<&[u8]> = luts.iter().map(Vec::as_slice).collect();
            for c in [1, 10] {
                let got = fastscan::search_batch(&refs, &blocks, cb, n, c);
                for (l, g) in luts.iter().zip(&got) {
                    let want = fastscan::search_reference(l, &blocks, cb, n, c);
                    assert_eq!(g, &want, "cb {cb} n {n} nq {nq} c {c}");
                }
            }
        }
    }
}
