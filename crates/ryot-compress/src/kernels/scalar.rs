//! Portable reference kernels. The summation order mirrors the AVX2
//! versions (8 lanes, then a fixed reduction), so results agree to
//! rounding of fused multiply-adds.

/// Reduces 8 lane sums in the order the AVX2 code uses.
#[inline]
pub fn reduce8(a: [f32; 8]) -> f32 {
    let b = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    let c = [b[0] + b[2], b[1] + b[3]];
    c[0] + c[1]
}

/// Combines four 8-lane accumulators as the AVX2 code does.
#[inline]
pub fn combine(a: &[[f32; 8]; 4]) -> f32 {
    let mut t = [0f32; 8];
    for l in 0..8 {
        t[l] = (a[0][l] + a[1][l]) + (a[2][l] + a[3][l]);
    }
    reduce8(t)
}

/// Inner product.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [[0f32; 8]; 4];
    let n = a.len();
    let n32 = n / 32 * 32;
    let n8 = n / 8 * 8;
    for j in (0..n32).step_by(32) {
        for (k, ak) in acc.iter_mut().enumerate() {
            for l in 0..8 {
                ak[l] += a[j + 8 * k + l] * b[j + 8 * k + l];
            }
        }
    }
    for j in (n32..n8).step_by(8) {
        for l in 0..8 {
            acc[0][l] += a[j + l] * b[j + l];
        }
    }
    let mut s = combine(&acc);
    for j in n8..n {
        s += a[j] * b[j];
    }
    s
}

/// See [`super::scan_u8`].
pub fn scan_u8(w: &[f32], codes: &[u8], stride: usize, out: &mut [f32]) {
    let d = w.len();
    let n32 = d / 32 * 32;
    let n8 = d / 8 * 8;
    for (i, o) in out.iter_mut().enumerate() {
        let c = &codes[i * stride..i * stride + d];
        let mut acc = [[0f32; 8]; 4];
        for j in (0..n32).step_by(32) {
            for (k, ak) in acc.iter_mut().enumerate() {
                for l in 0..8 {
                    ak[l] += w[j + 8 * k + l] * c[j + 8 * k + l] as f32;
                }
            }
        }
        for j in (n32..n8).step_by(8) {
            for l in 0..8 {
                acc[0][l] += w[j + l] * c[j + l] as f32;
            }
        }
        let mut s = combine(&acc);
        for j in n8..d {
            s += w[j] * c[j] as f32;
        }
        *o = s;
    }
}

/// See [`super::scan_u4`]. Lanes of accumulator 0 take the low nibbles
/// of bytes `8t..8t+8` (even dims), accumulator 1 their high nibbles;
/// accumulators 2 and 3 the next 8 bytes, 32 dims per step.
pub fn scan_u4(w: &[f32], codes: &[u8], stride: usize, out: &mut [f32]) {
    let d = w.len();
    let n32 = d / 32 * 32;
    let n16 = d / 16 * 16;
    for (i, o) in out.iter_mut().enumerate() {
        let c = &codes[i * stride..];
        let mut acc = [[0f32; 8]; 4];
        let step = |acc: &mut [[f32; 8]; 4], j: usize, a: usize| {
            let b = &c[j / 2..j / 2 + 8];
            for l in 0..8 {
                acc[a][l] += w[j + 2 * l] * (b[l] & 15) as f32;
                acc[a + 1][l] += w[j + 2 * l + 1] * (b[l] >> 4) as f32;
            }
        };
        for j in (0..n32).step_by(32) {
            step(&mut acc, j, 0);
            step(&mut acc, j + 16, 2);
        }
        for j in (n32..n16).step_by(16) {
            step(&mut acc, j, 0);
        }
        let mut s = combine(&acc);
        for j in n16..d {
            let b = c[j / 2];
            let v = if j % 2 == 0 { b & 15 } else { b >> 4 };
            s += w[j] * v as f32;
        }
        *o = s;
    }
}

/// See [`super::scan_adc`].
pub fn scan_adc(
    lut: &[f32],
    nbytes: usize,
    planes: usize,
    codes: &[u8],
    stride: usize,
    out: &mut [f32],
) {
    for (i, o) in out.iter_mut().enumerate() {
        let c = &codes[i * stride..];
        let mut total = 0f32;
        let mut scale = 1f32;
        for p in 0..planes {
            let cp = &c[p * nbytes..(p + 1) * nbytes];
            // Four partial sums (byte m into sum m % 4), combined as
            // (s0 + s1) + (s2 + s3): independent add chains, and the
            // order the AVX2 twin uses.
            let row = |m: usize, b: u8| {
                let t: &[f32; 256] =
                    lut[m * 256..m * 256 + 256].try_into().expect("256");
                t[b as usize]
            };
            let (mut s0, mut s1, mut s2, mut s3) = (0f32, 0f32, 0f32, 0f32);
            let whole = nbytes / 4 * 4;
            for m in (0..whole).step_by(4) {
                s0 += row(m, cp[m]);
                s1 += row(m + 1, cp[m + 1]);
                s2 += row(m + 2, cp[m + 2]);
                s3 += row(m + 3, cp[m + 3]);
            }
            let mut s = [s0, s1, s2, s3];
            for m in whole..nbytes {
                s[m % 4] += row(m, cp[m]);
            }
            total += scale * ((s[0] + s[1]) + (s[2] + s[3]));
            scale *= 2.0;
        }
        *o = total;
    }
}

/// See [`super::hamming`].
pub fn hamming(q: &[u8], codes: &[u8], stride: usize, out: &mut [u32]) {
    let nb = q.len();
    for (i, o) in out.iter_mut().enumerate() {
        let c = &codes[i * stride..i * stride + nb];
        *o = q.iter().zip(c).map(|(a, b)| (a ^ b).count_ones()).sum();
    }
}

/// See [`super::scan_adc_cos`].
pub fn scan_adc_cos(
    lut: &[f32],
    norms: &[f32],
    nbytes: usize,
    codes: &[u8],
    stride: usize,
    out: &mut [f32],
) {
    for (i, o) in out.iter_mut().enumerate() {
        let c = &codes[i * stride..i * stride + nbytes];
        *o = adc_cos_one(c, norms, |m, b| lut[m * 256 + b]);
    }
}

/// The score [`scan_adc_cos`] gives one code, with the byte table given
/// as `lut(byte index, byte value)` (so a caller can compute entries on
/// the fly): `sum lut / sqrt(sum norms)`.
#[inline]
pub fn adc_cos_one(
    c: &[u8],
    norms: &[f32],
    lut: impl Fn(usize, usize) -> f32,
) -> f32 {
    let nbytes = c.len();
    // Two independent add chains per table, as in `scan_adc`.
    let (mut s0, mut s1, mut n0, mut n1) = (0f32, 0f32, 0f32, 0f32);
    let whole = nbytes / 2 * 2;
    for m in (0..whole).step_by(2) {
        let (b0, b1) = (c[m] as usize, c[m + 1] as usize);
        s0 += lut(m, b0);
        s1 += lut(m + 1, b1);
        n0 += norms[m * 256 + b0];
        n1 += norms[(m + 1) * 256 + b1];
    }
    if whole < nbytes {
        let b = c[whole] as usize;
        s0 += lut(whole, b);
        n0 += norms[whole * 256 + b];
    }
    (s0 + s1) / (n0 + n1).max(f32::MIN_POSITIVE).sqrt()
}
