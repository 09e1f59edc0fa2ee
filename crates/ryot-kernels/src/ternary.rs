//! Ternary codes (0, 1, 2 meaning -1, 0, +1) read out of the three ternary
//! storage formats: GGUF's TQ2_0 and TQ1_0 blocks and bitnet.cpp's I2_S.
//!
//! These are the element orders of the formats; repacking and the native
//! kernels' scalar twins use them.

/// Bytes of a TQ2_0 block (64 code bytes + f16 scale).
pub const TQ2_0_BYTES: usize = 66;
/// Bytes of a TQ1_0 block (48 base-3 bytes + 4 base-3 bytes + f16 scale).
pub const TQ1_0_BYTES: usize = 54;
/// Elements per TQ1_0/TQ2_0 block.
pub const TQ_BLOCK: usize = 256;
/// Elements per I2_S group (32 bytes).
pub const I2S_GROUP: usize = 128;

/// The 256 codes of one TQ2_0 block (`block.len() == 66`).
///
/// Element `e` lives in byte `(e / 128) * 32 + e % 32` at shift
/// `2 * ((e % 128) / 32)`.
pub fn tq2_0_block_codes(block: &[u8], codes: &mut [u8; TQ_BLOCK]) {
    let bytes = &block[..64];
    for (half, out) in codes.as_chunks_mut::<128>().0.iter_mut().enumerate() {
        let src = &bytes[half * 32..half * 32 + 32];
        for (j, dst) in out.as_chunks_mut::<32>().0.iter_mut().enumerate() {
            for (c, &b) in dst.iter_mut().zip(src) {
                *c = (b >> (2 * j)) & 3;
            }
        }
    }
}

/// The f16 scale of a TQ1_0/TQ2_0 block (its last two bytes), as f32.
pub fn tq_block_scale(block: &[u8]) -> f32 {
    let n = block.len();
    half::f16::from_le_bytes([block[n - 2], block[n - 1]]).to_f32()
}

/// One base-3 digit of a TQ1_0 byte: digit `n` (0 = most significant of
/// the five) of the fixed-point value `b / 256 * 243`.
#[inline]
fn tq1_digit(byte: u8, n: usize) -> u8 {
    const POW3: [u8; 5] = [1, 3, 9, 27, 81];
    let q = byte.wrapping_mul(POW3[n]);
    ((q as u16 * 3) >> 8) as u8
}

/// The 256 codes of one TQ1_0 block (`block.len() == 54`).
///
/// Bytes 0..32 hold five digits each for elements `n*32 + m`; bytes 32..48
/// hold five digits for elements `160 + n*16 + m`; the 4 `qh` bytes hold
/// four digits for elements `240 + n*4 + j`.
pub fn tq1_0_block_codes(block: &[u8], codes: &mut [u8; TQ_BLOCK]) {
    for n in 0..5 {
        for m in 0..32 {
            codes[n * 32 + m] = tq1_digit(block[m], n);
        }
        for m in 0..16 {
            codes[160 + n * 16 + m] = tq1_digit(block[32 + m], n);
        }
    }
    for n in 0..4 {
        for j in 0..4 {
            codes[240 + n * 4 + j] = tq1_digit(block[48 + j], n);
        }
    }
}

/// The code of flat element `e` of an I2_S tensor's code bytes.
///
/// Each 128 elements are 32 bytes; byte `p` holds elements `p`, `p+32`,
/// `p+64`, `p+96` at shifts 6, 4, 2, 0.
#[inline]
pub fn i2s_code(codes: &[u8], e: usize) -> u8 {
    let o = e % I2S_GROUP;
    (codes[(e / I2S_GROUP) * 32 + o % 32] >> (6 - 2 * (o / 32))) & 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tq1_digits_cover_all_trit_strings() {
        // A TQ1_0 byte stores five trits t0..t4 as ceil(v * 256 / 243) with
        // v = t0*81 + t1*27 + t2*9 + t3*3 + t4; every string decodes back.
        for v in 0u32..243 {
            let byte = ((v * 256).div_ceil(243)) as u8;
            let mut rest = v;
            for n in 0..5 {
                let p = 3u32.pow(4 - n as u32);
                assert_eq!(tq1_digit(byte, n) as u32, rest / p, "v={v} n={n}");
                rest %= p;
            }
        }
    }
}
