//! The ternary formats TQ1_0 and TQ2_0 (BitNet b1.58 / TriLM weights in
//! upstream ggml): `quantize_row_tq*_0_ref` and `dequantize_row_tq*_0`.
//!
//! Both use one f16 scale `d = max|x|` per 256 elements and the trit
//! `lroundf(x / d) + 1` in 0..3 (ties away from zero). TQ1_0 packs five
//! trits per byte as a base-3 fixed-point fraction (`ceil(v * 256 / 243)`)
//! so that trit `n` can be read back with a multiply and a shift; TQ2_0
//! stores plain 2-bit fields.

use crate::blocks::{BlockTQ1_0, BlockTQ2_0, QK_K, sealed::Codec};
use crate::util::{f16_to_f32, to_f16};

/// `(d, 1/d)` with `d = max|x|` over the block.
fn absmax_scale(x: &[f32]) -> (f32, f32) {
    let amax =
        x.iter().fold(0.0f32, |a, &v| if a > v.abs() { a } else { v.abs() });
    (amax, if amax != 0.0 { 1.0 / amax } else { 0.0 })
}

/// The trit code 0, 1, 2 of `x * id` (C: `lroundf(x * id) + 1`).
fn trit(v: f32, id: f32) -> u8 {
    ((v * id).round() as i32 + 1) as u8
}

/// Packs base-3 digits (most significant first) into a byte the TQ1_0 way.
fn pack_trits(trits: impl Iterator<Item = u8>) -> u8 {
    let mut q = 0u8;
    for t in trits {
        q = q.wrapping_mul(3).wrapping_add(t);
    }
    (q as u16 * 256).div_ceil(243) as u8
}

/// Trit `n` (0 = most significant) of a TQ1_0 byte.
fn unpack_trit(byte: u8, n: usize) -> i32 {
    const POW3: [u8; 6] = [1, 3, 9, 27, 81, 243];
    let q = byte.wrapping_mul(POW3[n]);
    ((q as u16 * 3) >> 8) as i32
}

impl Codec for BlockTQ1_0 {
    fn decode(&self, y: &mut [f32]) {
        let d = f16_to_f32(self.d);
        let mut out = y.iter_mut();
        let mut put = |t: i32| {
            if let Some(o) = out.next() {
                *o = (t - 1) as f32 * d;
            }
        };
        for n in 0..5 {
            for m in 0..32 {
                put(unpack_trit(self.qs[m], n));
            }
        }
        for n in 0..5 {
            for m in 0..16 {
                put(unpack_trit(self.qs[32 + m], n));
            }
        }
        for n in 0..4 {
            for j in 0..4 {
                put(unpack_trit(self.qh[j], n));
            }
        }
    }

    fn encode(x: &[f32]) -> Self {
        debug_assert_eq!(x.len(), QK_K);
        let (d, id) = absmax_scale(x);
        let mut qs = [0u8; 48];
        for m in 0..32 {
            qs[m] = pack_trits((0..5).map(|n| trit(x[m + 32 * n], id)));
        }
        let x = &x[160..];
        for m in 0..16 {
            qs[32 + m] = pack_trits((0..5).map(|n| trit(x[m + 16 * n], id)));
        }
        let x = &x[80..];
        let mut qh = [0u8; 4];
        for j in 0..4 {
            // Four trits, then a zero trit so the first lands on top.
            let trits = (0..4).map(|m| trit(x[j + 4 * m], id)).chain([0]);
            qh[j] = pack_trits(trits);
        }
        BlockTQ1_0 { qs, qh, d: to_f16(d) }
    }
}

impl Codec for BlockTQ2_0 {
    fn decode(&self, y: &mut [f32]) {
        let d = f16_to_f32(self.d);
        for c in 0..2 {
            for n in 0..4 {
                for m in 0..32 {
                    let q = ((self.qs[32 * c + m] >> (2 * n)) & 3) as i32;
                    y[128 * c + 32 * n + m] = (q - 1) as f32 * d;
                }
            }
        }
    }

    fn encode(x: &[f32]) -> Self {
        let (d, id) = absmax_scale(x);
        let mut qs = [0u8; 64];
        for c in 0..2 {
            for m in 0..32 {
                let mut q = 0u8;
                for n in 0..4 {
                    let t = trit(x[128 * c + 32 * n + m], id);
                    q = q.wrapping_add((t & 3) << (2 * n));
                }
                qs[32 * c + m] = q;
            }
        }
        BlockTQ2_0 { qs, d: to_f16(d) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tq1_trits_round_trip() {
        for v in 0u8..243 {
            let digits = [v / 81 % 3, v / 27 % 3, v / 9 % 3, v / 3 % 3, v % 3];
            let b = pack_trits(digits.iter().copied());
            for (n, &t) in digits.iter().enumerate() {
                assert_eq!(unpack_trit(b, n), t as i32, "v={v} n={n}");
            }
        }
    }

    #[test]
    fn ternary_blocks_round_trip_exactly() {
        let x: Vec<f32> =
            (0..QK_K).map(|i| [-0.5, 0.0, 0.5][i * 7 % 3]).collect();
        let mut y = vec![0.0f32; QK_K];
        BlockTQ1_0::encode(&x).decode(&mut y);
        assert_eq!(x, y);
        BlockTQ2_0::encode(&x).decode(&mut y);
        assert_eq!(x, y);
    }
}
