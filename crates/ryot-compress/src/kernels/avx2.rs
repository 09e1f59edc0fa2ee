//! AVX2 + FMA + POPCNT kernels. Each function is `unsafe` because it
//! must only run on a CPU with those features; the dispatcher in
//! `mod.rs` checks that once. Shapes are checked by the caller.

use std::arch::x86_64::*;

#[inline]
#[target_feature(enable = "avx2,fma")]
fn reduce(v: __m256) -> f32 {
    let lo = _mm256_castps256_ps128(v);
    let hi = _mm256_extractf128_ps(v, 1);
    let b = _mm_add_ps(lo, hi); // [a0+a4, a1+a5, a2+a6, a3+a7]
    let sh = _mm_movehl_ps(b, b); // [b2, b3, ..]
    let c = _mm_add_ps(b, sh); // [b0+b2, b1+b3, ..]
    let d = _mm_add_ss(c, _mm_shuffle_ps(c, c, 1));
    _mm_cvtss_f32(d)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn combine(a: [__m256; 4]) -> f32 {
    reduce(_mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3])))
}

/// Inner product.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `a.len() == b.len()`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let n32 = n / 32 * 32;
    let n8 = n / 8 * 8;
    let mut acc = [_mm256_setzero_ps(); 4];
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    for j in (0..n32).step_by(32) {
        for (k, ak) in acc.iter_mut().enumerate() {
            // SAFETY: j + 8k + 8 <= n32 <= len of both slices.
            unsafe {
                let x = _mm256_loadu_ps(pa.add(j + 8 * k));
                let y = _mm256_loadu_ps(pb.add(j + 8 * k));
                *ak = _mm256_fmadd_ps(x, y, *ak);
            }
        }
    }
    for j in (n32..n8).step_by(8) {
        // SAFETY: j + 8 <= n8 <= len of both slices.
        unsafe {
            let x = _mm256_loadu_ps(pa.add(j));
            let y = _mm256_loadu_ps(pb.add(j));
            acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
        }
    }
    let mut s = combine(acc);
    for j in n8..n {
        s += a[j] * b[j];
    }
    s
}

/// See [`super::scan_u8`].
///
/// # Safety
/// The CPU must support AVX2 and FMA; shapes as checked by the caller.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn scan_u8(w: &[f32], codes: &[u8], stride: usize, out: &mut [f32]) {
    let d = w.len();
    let n32 = d / 32 * 32;
    let n8 = d / 8 * 8;
    let pw = w.as_ptr();
    for (i, o) in out.iter_mut().enumerate() {
        let c = &codes[i * stride..i * stride + d];
        let pc = c.as_ptr();
        let mut acc = [_mm256_setzero_ps(); 4];
        for j in (0..n32).step_by(32) {
            for (k, ak) in acc.iter_mut().enumerate() {
                // SAFETY: j + 8k + 8 <= d = c.len() = w.len(); an
                // unaligned 8-byte load reads c[j+8k..j+8k+8].
                unsafe {
                    let b =
                        _mm_loadl_epi64(pc.add(j + 8 * k) as *const __m128i);
                    let f = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b));
                    let x = _mm256_loadu_ps(pw.add(j + 8 * k));
                    *ak = _mm256_fmadd_ps(x, f, *ak);
                }
            }
        }
        for j in (n32..n8).step_by(8) {
            // SAFETY: as above, j + 8 <= d.
            unsafe {
                let b = _mm_loadl_epi64(pc.add(j) as *const __m128i);
                let f = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b));
                let x = _mm256_loadu_ps(pw.add(j));
                acc[0] = _mm256_fmadd_ps(x, f, acc[0]);
            }
        }
        let mut s = combine(acc);
        for j in n8..d {
            s += w[j] * c[j] as f32;
        }
        *o = s;
    }
}

/// See [`super::scan_u4`] and the scalar twin for the lane layout.
///
/// # Safety
/// The CPU must support AVX2 and FMA; shapes as checked by the caller.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn scan_u4(w: &[f32], codes: &[u8], stride: usize, out: &mut [f32]) {
    let d = w.len();
    let n32 = d / 32 * 32;
    let n16 = d / 16 * 16;
    // Even-index and odd-index weights, de-interleaved once.
    let mut we = vec![0f32; n16 / 2];
    let mut wo = vec![0f32; n16 / 2];
    for j in 0..n16 / 2 {
        we[j] = w[2 * j];
        wo[j] = w[2 * j + 1];
    }
    let mask = _mm_set1_epi8(15);
    let step = |acc: &mut [__m256; 4], c: &[u8], j: usize, a: usize| {
        // SAFETY: bytes j/2..j/2+8 lie within c (j + 16 <= d), and we/wo
        // hold n16/2 values with j/2 + 8 <= n16/2; the enclosing function
        // requires AVX2.
        unsafe {
            let b = _mm_loadl_epi64(c.as_ptr().add(j / 2) as *const __m128i);
            let lo = _mm_and_si128(b, mask);
            let hi = _mm_and_si128(_mm_srli_epi16(b, 4), mask);
            let flo = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo));
            let fhi = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi));
            let xe = _mm256_loadu_ps(we.as_ptr().add(j / 2));
            let xo = _mm256_loadu_ps(wo.as_ptr().add(j / 2));
            acc[a] = _mm256_fmadd_ps(xe, flo, acc[a]);
            acc[a + 1] = _mm256_fmadd_ps(xo, fhi, acc[a + 1]);
        }
    };
    for (i, o) in out.iter_mut().enumerate() {
        let c = &codes[i * stride..i * stride + d.div_ceil(2)];
        let mut acc = [_mm256_setzero_ps(); 4];
        for j in (0..n32).step_by(32) {
            step(&mut acc, c, j, 0);
            step(&mut acc, c, j + 16, 2);
        }
        for j in (n32..n16).step_by(16) {
            step(&mut acc, c, j, 0);
        }
        let mut s = combine(acc);
        for j in n16..d {
            let b = c[j / 2];
            let v = if j % 2 == 0 { b & 15 } else { b >> 4 };
            s += w[j] * v as f32;
        }
        *o = s;
    }
}

/// See [`super::scan_adc`]: eight codes at a time, one gather per byte
/// position, summed in the same order as the scalar twin.
///
/// # Safety
/// The CPU must support AVX2; shapes as checked by the caller.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn scan_adc(
    lut: &[f32],
    nbytes: usize,
    planes: usize,
    codes: &[u8],
    stride: usize,
    out: &mut [f32],
) {
    let n = out.len();
    let n8 = n / 8 * 8;
    for i in (0..n8).step_by(8) {
        let base = &codes[i * stride..(i + 8) * stride];
        let mut total = _mm256_setzero_ps();
        let mut scale = 1f32;
        for p in 0..planes {
            // Byte m into partial sum m % 4, as the scalar twin.
            let mut s4 = [_mm256_setzero_ps(); 4];
            for m in 0..nbytes {
                let k = p * nbytes + m;
                let idx = _mm256_setr_epi32(
                    base[k] as i32,
                    base[stride + k] as i32,
                    base[2 * stride + k] as i32,
                    base[3 * stride + k] as i32,
                    base[4 * stride + k] as i32,
                    base[5 * stride + k] as i32,
                    base[6 * stride + k] as i32,
                    base[7 * stride + k] as i32,
                );
                // SAFETY: every index is a byte (< 256) and the row
                // m*256..m*256+256 lies within lut (len nbytes*256).
                let g = unsafe {
                    _mm256_i32gather_ps::<4>(lut.as_ptr().add(m * 256), idx)
                };
                s4[m % 4] = _mm256_add_ps(s4[m % 4], g);
            }
            let s = _mm256_add_ps(
                _mm256_add_ps(s4[0], s4[1]),
                _mm256_add_ps(s4[2], s4[3]),
            );
            total =
                _mm256_add_ps(total, _mm256_mul_ps(_mm256_set1_ps(scale), s));
            scale *= 2.0;
        }
        // SAFETY: i + 8 <= n8 <= out.len().
        unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(i), total) };
    }
    super::scalar::scan_adc(
        lut,
        nbytes,
        planes,
        &codes[n8 * stride..],
        stride,
        &mut out[n8..],
    );
}

/// See [`super::hamming`].
///
/// # Safety
/// The CPU must support POPCNT (checked with AVX2 by the dispatcher).
#[target_feature(enable = "avx2,popcnt")]
pub unsafe fn hamming(q: &[u8], codes: &[u8], stride: usize, out: &mut [u32]) {
    let nb = q.len();
    let w8 = nb / 8;
    let qw: Vec<u64> = (0..w8)
        .map(|k| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&q[k * 8..k * 8 + 8]);
            u64::from_le_bytes(a)
        })
        .collect();
    for (i, o) in out.iter_mut().enumerate() {
        let c = &codes[i * stride..i * stride + nb];
        let mut h = 0u32;
        for (k, &qv) in qw.iter().enumerate() {
            let mut a = [0u8; 8];
            a.copy_from_slice(&c[k * 8..k * 8 + 8]);
            h += (u64::from_le_bytes(a) ^ qv).count_ones();
        }
        for k in w8 * 8..nb {
            h += (q[k] ^ c[k]).count_ones();
        }
        *o = h;
    }
}
