//! The 32-element "legacy" formats Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (and the
//! Q8_1 activation block): llama.cpp's `quantize_row_*_ref` and
//! `dequantize_row_*` from `ggml/src/ggml-quants.c`, written again in Rust
//! with the same float operations in the same order.
//!
//! C details that matter for bit-exactness and are kept here:
//! * Q4_0/Q5_0 take the signed value of largest magnitude (first one wins
//!   on ties) and use `d = max / -8` (`-16`), so the extreme maps to code 0.
//! * Codes are made by truncating `x * id + 8.5` (a C float-to-int8 cast),
//!   not by rounding; Q8_0 uses `roundf` (ties away from zero).
//! * `id = 1 / d` is computed from the f32 `d`, not from its f16 rounding.

use crate::blocks::{
    BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, BlockQ8_1, QK,
    sealed::Codec,
};
use crate::util::{f16_to_f32, to_f16};

/// Value of largest magnitude, signed (the first one on ties).
fn signed_absmax(x: &[f32]) -> f32 {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    max
}

/// (min, max) as ggml's Q4_1/Q5_1 loop computes them.
fn min_max(x: &[f32]) -> (f32, f32) {
    let mut min = f32::MAX;
    let mut max = -f32::MAX;
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

fn inverse(d: f32) -> f32 {
    if d != 0.0 { 1.0 / d } else { 0.0 }
}

/// Packs 5-bit codes: low nibbles into `qs`, 5th bits into the `qh` word.
fn pack5(codes: &[u8; QK]) -> ([u8; 16], [u8; 4]) {
    let mut qs = [0u8; 16];
    let mut qh = 0u32;
    for j in 0..16 {
        let (a, b) = (codes[j], codes[j + 16]);
        qs[j] = (a & 0x0f) | ((b & 0x0f) << 4);
        qh |= (((a & 0x10) >> 4) as u32) << j;
        qh |= (((b & 0x10) >> 4) as u32) << (j + 16);
    }
    (qs, qh.to_le_bytes())
}

/// The 5-bit codes of elements j and j + 16.
fn unpack5(qs: &[u8; 16], qh: [u8; 4], j: usize) -> (i32, i32) {
    let qh = u32::from_le_bytes(qh);
    let h0 = ((qh >> j) << 4) & 0x10;
    let h1 = (qh >> (j + 12)) & 0x10;
    (((qs[j] & 0x0f) as u32 | h0) as i32, ((qs[j] >> 4) as u32 | h1) as i32)
}

impl Codec for BlockQ4_0 {
    fn decode(&self, y: &mut [f32]) {
        let d = f16_to_f32(self.d);
        for j in 0..16 {
            let x0 = (self.qs[j] & 0x0f) as i32 - 8;
            let x1 = (self.qs[j] >> 4) as i32 - 8;
            y[j] = x0 as f32 * d;
            y[j + 16] = x1 as f32 * d;
        }
    }

    fn encode(x: &[f32]) -> Self {
        let d = signed_absmax(x) / -8.0;
        let id = inverse(d);
        let mut qs = [0u8; 16];
        for j in 0..16 {
            let x0 = x[j] * id;
            let x1 = x[j + 16] * id;
            let q0 = ((x0 + 8.5) as i8).min(15) as u8;
            let q1 = ((x1 + 8.5) as i8).min(15) as u8;
            qs[j] = q0 | (q1 << 4);
        }
        BlockQ4_0 { d: to_f16(d), qs }
    }
}

impl Codec for BlockQ4_1 {
    fn decode(&self, y: &mut [f32]) {
        let d = f16_to_f32(self.d);
        let m = f16_to_f32(self.m);
        for j in 0..16 {
            let x0 = (self.qs[j] & 0x0f) as f32;
            let x1 = (self.qs[j] >> 4) as f32;
            y[j] = x0 * d + m;
            y[j + 16] = x1 * d + m;
        }
    }

    fn encode(x: &[f32]) -> Self {
        let (min, max) = min_max(x);
        let d = (max - min) / 15.0;
        let id = inverse(d);
        let mut qs = [0u8; 16];
        for j in 0..16 {
            let x0 = (x[j] - min) * id;
            let x1 = (x[j + 16] - min) * id;
            let q0 = ((x0 + 0.5) as i8).min(15) as u8;
            let q1 = ((x1 + 0.5) as i8).min(15) as u8;
            qs[j] = q0 | (q1 << 4);
        }
        BlockQ4_1 { d: to_f16(d), m: to_f16(min), qs }
    }
}

impl Codec for BlockQ5_0 {
    fn decode(&self, y: &mut [f32]) {
        let d = f16_to_f32(self.d);
        for j in 0..16 {
            let (x0, x1) = unpack5(&self.qs, self.qh, j);
            y[j] = (x0 - 16) as f32 * d;
            y[j + 16] = (x1 - 16) as f32 * d;
        }
    }

    fn encode(x: &[f32]) -> Self {
        let d = signed_absmax(x) / -16.0;
        let id = inverse(d);
        let mut codes = [0u8; QK];
        for (c, &v) in codes.iter_mut().zip(x) {
            *c = ((v * id + 16.5) as i8).min(31) as u8;
        }
        let (qs, qh) = pack5(&codes);
        BlockQ5_0 { d: to_f16(d), qh, qs }
    }
}

impl Codec for BlockQ5_1 {
    fn decode(&self, y: &mut [f32]) {
        let d = f16_to_f32(self.d);
        let m = f16_to_f32(self.m);
        for j in 0..16 {
            let (x0, x1) = unpack5(&self.qs, self.qh, j);
            y[j] = x0 as f32 * d + m;
            y[j + 16] = x1 as f32 * d + m;
        }
    }

    fn encode(x: &[f32]) -> Self {
        let (min, max) = min_max(x);
        let d = (max - min) / 31.0;
        let id = inverse(d);
        let mut codes = [0u8; QK];
        for (c, &v) in codes.iter_mut().zip(x) {
            // C: (uint8_t)(x0 + 0.5f), no clamp.
            *c = ((v - min) * id + 0.5) as u8;
        }
        let (qs, qh) = pack5(&codes);
        BlockQ5_1 { d: to_f16(d), m: to_f16(min), qh, qs }
    }
}

/// `amax / 127`, ggml's Q8 scale.
fn q8_scale(x: &[f32]) -> f32 {
    let amax =
        x.iter().fold(0.0f32, |a, &v| if a > v.abs() { a } else { v.abs() });
    amax / 127.0
}

impl Codec for BlockQ8_0 {
    fn decode(&self, y: &mut [f32]) {
        let d = f16_to_f32(self.d);
        for (o, &q) in y.iter_mut().zip(&self.qs) {
            *o = q as f32 * d;
        }
    }

    fn encode(x: &[f32]) -> Self {
        let d = q8_scale(x);
        let id = inverse(d);
        let mut qs = [0i8; QK];
        for (q, &v) in qs.iter_mut().zip(x) {
            *q = (v * id).round() as i8;
        }
        BlockQ8_0 { d: to_f16(d), qs }
    }
}

/// `quantize_row_q8_1_ref` for one block.
pub(crate) fn encode_q8_1(x: &[f32]) -> BlockQ8_1 {
    let d = q8_scale(x);
    let id = inverse(d);
    let mut qs = [0i8; QK];
    let mut sum = 0i32;
    for j in 0..16 {
        let v0 = (x[j] * id).round() as i8;
        let v1 = (x[j + 16] * id).round() as i8;
        qs[j] = v0;
        qs[j + 16] = v1;
        sum += v0 as i32 + v1 as i32;
    }
    BlockQ8_1 { d: to_f16(d), s: to_f16(sum as f32 * d), qs }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_0_extreme_maps_to_code_zero() {
        let mut x = [0.0f32; QK];
        x[3] = -4.0;
        x[7] = 2.0;
        let b = BlockQ4_0::encode(&x);
        assert_eq!(b.d.to_f32(), 0.5);
        assert_eq!(b.qs[3] & 0x0f, 0); // -4 / 0.5 = -8 -> code 0
        assert_eq!(b.qs[7] & 0x0f, 12); // 2 / 0.5 = 4 -> code 12
        let mut y = [0.0f32; QK];
        b.decode(&mut y);
        assert_eq!(y[3], -4.0);
        assert_eq!(y[7], 2.0);
    }

    #[test]
    fn q5_bits_round_trip() {
        let codes: [u8; QK] = std::array::from_fn(|i| (i * 7 % 32) as u8);
        let (qs, qh) = pack5(&codes);
        for j in 0..16 {
            let (a, b) = unpack5(&qs, qh, j);
            assert_eq!((a as u8, b as u8), (codes[j], codes[j + 16]));
        }
    }
}
