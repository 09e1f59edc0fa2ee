//! The K-quant super-block formats Q2_K, Q3_K, Q4_K, Q5_K and Q6_K:
//! llama.cpp's `quantize_row_q*_K_ref` (what `ggml_quantize_chunk` runs
//! without an importance matrix) and `dequantize_row_q*_K`.
//!
//! The quantizers first search a scale (and min) per sub-block, quantize
//! those to 4/6/8 bits against an f16 super-scale, and then requantize every
//! element against the *stored* (rounded) scales. Sub-blocks whose stored
//! scale is zero keep the codes from the search, as in C.

use crate::blocks::{
    BlockQ2K, BlockQ3K, BlockQ4K, BlockQ5K, BlockQ6K, QK_K, sealed::Codec,
};
use crate::ksearch::{
    GROUP_MAX_EPS, Qkx2, make_q3_quants, make_qkx2_quants, make_qx_quants,
};
use crate::util::{f16_to_f32, nearest_int, to_f16};

/// ggml's `get_scale_min_k4`: 6-bit scale and min of sub-block `j`.
fn scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Inverse of [`scale_min_k4`] for all 8 sub-blocks.
fn pack_scale_min_k4(ls: &[u8; 8], lm: &[u8; 8]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for j in 0..8 {
        if j < 4 {
            s[j] = ls[j];
            s[j + 4] = lm[j];
        } else {
            s[j + 4] = (ls[j] & 0x0f) | ((lm[j] & 0x0f) << 4);
            s[j - 4] |= (ls[j] >> 4) << 6;
            s[j] |= (lm[j] >> 4) << 6;
        }
    }
    s
}

/// Packs 2-bit codes as Q2_K/Q3_K do: element `128 n + 32 j + l` goes to
/// bits `2 j` of byte `32 n + l`.
fn pack_2bit(l: &[u8; QK_K]) -> [u8; 64] {
    let mut qs = [0u8; 64];
    for n in 0..2 {
        for i in 0..32 {
            let b = 128 * n + i;
            qs[32 * n + i] =
                l[b] | (l[b + 32] << 2) | (l[b + 64] << 4) | (l[b + 96] << 6);
        }
    }
    qs
}

/// Quantizes sub-block maxima (scales or mins) to 6 bits the way the Q4_K
/// and Q5_K reference quantizers do: `min(63, nearest_int(63/max * v))`.
fn six_bit(values: &[f32; 8], max: f32) -> [u8; 8] {
    let inv = if max > 0.0 { 63.0 / max } else { 0.0 };
    values.map(|v| (nearest_int(inv * v) as u8).min(63))
}

/// Shared body of the Q4_K and Q5_K reference quantizers: returns the
/// block's `d`, `dmin`, packed scales and the codes `0..=nmax`.
fn quantize_k4_like(
    x: &[f32],
    p: &Qkx2,
) -> (half::f16, half::f16, [u8; 12], [u8; QK_K]) {
    let mut l = [0u8; QK_K];
    let mut weights = [0.0f32; 32];
    let mut scales = [0.0f32; 8];
    let mut mins = [0.0f32; 8];
    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        let mut sum_x2 = 0.0f32;
        for &v in xs {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        for (w, &v) in weights.iter_mut().zip(xs) {
            *w = av_x + v.abs();
        }
        let (s, m) =
            make_qkx2_quants(p, xs, &weights, &mut l[32 * j..32 * j + 32]);
        scales[j] = s;
        mins[j] = m;
        if s > max_scale {
            max_scale = s;
        }
        if m > max_min {
            max_min = m;
        }
    }
    let packed = pack_scale_min_k4(
        &six_bit(&scales, max_scale),
        &six_bit(&mins, max_min),
    );
    let d = to_f16(max_scale / 63.0);
    let dmin = to_f16(max_min / 63.0);
    for j in 0..8 {
        let (sc, m) = scale_min_k4(j, &packed);
        let dj = f16_to_f32(d) * sc as f32;
        if dj == 0.0 {
            continue;
        }
        let dm = f16_to_f32(dmin) * m as f32;
        for ii in 0..32 {
            let q = nearest_int((x[32 * j + ii] + dm) / dj).clamp(0, p.nmax);
            l[32 * j + ii] = q as u8;
        }
    }
    (d, dmin, packed, l)
}

impl Codec for BlockQ2K {
    fn decode(&self, y: &mut [f32]) {
        let d = f16_to_f32(self.d);
        let min = f16_to_f32(self.dmin);
        for n in 0..2 {
            for j in 0..4 {
                for half in 0..2 {
                    let sc = self.scales[8 * n + 2 * j + half];
                    let dl = d * (sc & 0x0f) as f32;
                    let ml = min * (sc >> 4) as f32;
                    for l in 0..16 {
                        let i = 16 * half + l;
                        let q = (self.qs[32 * n + i] >> (2 * j)) & 3;
                        y[128 * n + 32 * j + i] = dl * q as f32 - ml;
                    }
                }
            }
        }
    }

    fn encode(x: &[f32]) -> Self {
        const Q4SCALE: f32 = 15.0;
        let p =
            Qkx2 { nmax: 3, rmin: -0.5, rdelta: 0.1, nstep: 15, use_mad: true };
        let mut l = [0u8; QK_K];
        let mut weights = [0.0f32; 16];
        let mut scales = [0.0f32; 16];
        let mut mins = [0.0f32; 16];
        let mut max_scale = 0.0f32;
        let mut max_min = 0.0f32;
        for j in 0..16 {
            let xs = &x[16 * j..16 * j + 16];
            for (w, &v) in weights.iter_mut().zip(xs) {
                *w = v.abs();
            }
            let (s, m) =
                make_qkx2_quants(&p, xs, &weights, &mut l[16 * j..16 * j + 16]);
            scales[j] = s;
            mins[j] = m;
            if s > max_scale {
                max_scale = s;
            }
            if m > max_min {
                max_min = m;
            }
        }
        let mut sc = [0u8; 16];
        let d = if max_scale > 0.0 {
            let iscale = Q4SCALE / max_scale;
            for j in 0..16 {
                sc[j] = nearest_int(iscale * scales[j]) as u8;
            }
            to_f16(max_scale / Q4SCALE)
        } else {
            to_f16(0.0)
        };
        let dmin = if max_min > 0.0 {
            let iscale = Q4SCALE / max_min;
            for j in 0..16 {
                sc[j] |= (nearest_int(iscale * mins[j]) << 4) as u8;
            }
            to_f16(max_min / Q4SCALE)
        } else {
            to_f16(0.0)
        };
        for j in 0..16 {
            let dj = f16_to_f32(d) * (sc[j] & 0x0f) as f32;
            if dj == 0.0 {
                continue;
            }
            let dm = f16_to_f32(dmin) * (sc[j] >> 4) as f32;
            for ii in 0..16 {
                let q = nearest_int((x[16 * j + ii] + dm) / dj).clamp(0, 3);
                l[16 * j + ii] = q as u8;
            }
        }
        BlockQ2K { scales: sc, qs: pack_2bit(&l), d, dmin }
    }
}

/// The 16 signed 6-bit scales of a Q3_K block (already minus 32).
fn q3k_scales(s: &[u8; 12]) -> [i8; 16] {
    std::array::from_fn(|j| {
        let low = (s[j % 8] >> (4 * (j / 8))) & 0x0f;
        let high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        (low | (high << 4)) as i8 - 32
    })
}

impl Codec for BlockQ3K {
    fn decode(&self, y: &mut [f32]) {
        let d_all = f16_to_f32(self.d);
        let scales = q3k_scales(&self.scales);
        for n in 0..2 {
            for j in 0..4 {
                let bit = 4 * n + j;
                for half in 0..2 {
                    let dl = d_all * scales[8 * n + 2 * j + half] as f32;
                    for l in 0..16 {
                        let i = 16 * half + l;
                        let lo = ((self.qs[32 * n + i] >> (2 * j)) & 3) as i32;
                        let hi =
                            if self.hmask[i] & (1 << bit) != 0 { 0 } else { 4 };
                        y[128 * n + 32 * j + i] = dl * (lo - hi) as f32;
                    }
                }
            }
        }
    }

    fn encode(x: &[f32]) -> Self {
        let mut l = [0i8; QK_K];
        let mut scales = [0.0f32; 16];
        let mut max_scale = 0.0f32;
        let mut amax = 0.0f32;
        for j in 0..16 {
            scales[j] = make_q3_quants(
                4,
                &x[16 * j..16 * j + 16],
                &mut l[16 * j..16 * j + 16],
            );
            let scale = scales[j].abs();
            if scale > amax {
                amax = scale;
                max_scale = scales[j];
            }
        }
        let mut sc = [0u8; 12];
        let d = if max_scale != 0.0 {
            let iscale = -32.0 / max_scale;
            for j in 0..16 {
                let q = nearest_int(iscale * scales[j]) as i8;
                let q = (q.clamp(-32, 31) + 32) as u8;
                if j < 8 {
                    sc[j] = q & 0x0f;
                } else {
                    sc[j - 8] |= (q & 0x0f) << 4;
                }
                sc[j % 4 + 8] |= (q >> 4) << (2 * (j / 4));
            }
            to_f16(1.0 / iscale)
        } else {
            to_f16(0.0)
        };
        let stored = q3k_scales(&sc);
        for j in 0..16 {
            let dj = f16_to_f32(d) * stored[j] as f32;
            if dj == 0.0 {
                continue;
            }
            for ii in 0..16 {
                let q = nearest_int(x[16 * j + ii] / dj).clamp(-4, 3);
                l[16 * j + ii] = (q + 4) as i8;
            }
        }
        let mut hmask = [0u8; 32];
        let mut low = [0u8; QK_K];
        for (j, (&q, lo)) in l.iter().zip(low.iter_mut()).enumerate() {
            let mut q = q as u8;
            if q > 3 {
                hmask[j % 32] |= 1 << (j / 32);
                q -= 4;
            }
            *lo = q;
        }
        BlockQ3K { hmask, qs: pack_2bit(&low), scales: sc, d }
    }
}

impl Codec for BlockQ4K {
    fn decode(&self, y: &mut [f32]) {
        let d = f16_to_f32(self.d);
        let min = f16_to_f32(self.dmin);
        for c in 0..4 {
            let (sc1, m1) = scale_min_k4(2 * c, &self.scales);
            let (sc2, m2) = scale_min_k4(2 * c + 1, &self.scales);
            let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
            let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
            for l in 0..32 {
                let q = self.qs[32 * c + l];
                y[64 * c + l] = d1 * (q & 0x0f) as f32 - m1;
                y[64 * c + 32 + l] = d2 * (q >> 4) as f32 - m2;
            }
        }
    }

    fn encode(x: &[f32]) -> Self {
        let p = Qkx2 {
            nmax: 15,
            rmin: -1.0,
            rdelta: 0.1,
            nstep: 20,
            use_mad: false,
        };
        let (d, dmin, scales, l) = quantize_k4_like(x, &p);
        let mut qs = [0u8; 128];
        for c in 0..4 {
            for i in 0..32 {
                qs[32 * c + i] = l[64 * c + i] | (l[64 * c + 32 + i] << 4);
            }
        }
        BlockQ4K { d, dmin, scales, qs }
    }
}

impl Codec for BlockQ5K {
    fn decode(&self, y: &mut [f32]) {
        let d = f16_to_f32(self.d);
        let min = f16_to_f32(self.dmin);
        for c in 0..4 {
            let (sc1, m1) = scale_min_k4(2 * c, &self.scales);
            let (sc2, m2) = scale_min_k4(2 * c + 1, &self.scales);
            let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
            let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
            let (u1, u2) = (1u8 << (2 * c), 2u8 << (2 * c));
            for l in 0..32 {
                let q = self.qs[32 * c + l];
                let h = self.qh[l];
                let q1 = (q & 0x0f) + if h & u1 != 0 { 16 } else { 0 };
                let q2 = (q >> 4) + if h & u2 != 0 { 16 } else { 0 };
                y[64 * c + l] = d1 * q1 as f32 - m1;
                y[64 * c + 32 + l] = d2 * q2 as f32 - m2;
            }
        }
    }

    fn encode(x: &[f32]) -> Self {
        let p = Qkx2 {
            nmax: 31,
            rmin: -0.5,
            rdelta: 0.1,
            nstep: 15,
            use_mad: false,
        };
        let (d, dmin, scales, l) = quantize_k4_like(x, &p);
        let mut qs = [0u8; 128];
        let mut qh = [0u8; 32];
        for c in 0..4 {
            let (m1, m2) = (1u8 << (2 * c), 2u8 << (2 * c));
            for i in 0..32 {
                let mut l1 = l[64 * c + i];
                if l1 > 15 {
                    l1 -= 16;
                    qh[i] |= m1;
                }
                let mut l2 = l[64 * c + 32 + i];
                if l2 > 15 {
                    l2 -= 16;
                    qh[i] |= m2;
                }
                qs[32 * c + i] = l1 | (l2 << 4);
            }
        }
        BlockQ5K { d, dmin, scales, qh, qs }
    }
}

impl Codec for BlockQ6K {
    fn decode(&self, y: &mut [f32]) {
        let d = f16_to_f32(self.d);
        for h in 0..2 {
            let ql = &self.ql[64 * h..64 * h + 64];
            let qh = &self.qh[32 * h..32 * h + 32];
            let sc = &self.scales[8 * h..8 * h + 8];
            let y = &mut y[128 * h..128 * h + 128];
            for l in 0..32 {
                let is = l / 16;
                let q1 = ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) as i32 - 32;
                let q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4))
                    as i32
                    - 32;
                let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                let q4 =
                    ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                y[l] = d * sc[is] as f32 * q1 as f32;
                y[l + 32] = d * sc[is + 2] as f32 * q2 as f32;
                y[l + 64] = d * sc[is + 4] as f32 * q3 as f32;
                y[l + 96] = d * sc[is + 6] as f32 * q4 as f32;
            }
        }
    }

    fn encode(x: &[f32]) -> Self {
        let mut l = [0i8; QK_K];
        let mut scales = [0.0f32; 16];
        let mut max_scale = 0.0f32;
        let mut max_abs_scale = 0.0f32;
        let groups = x.chunks_exact(16).zip(l.chunks_exact_mut(16));
        for (s, (xs, ls)) in scales.iter_mut().zip(groups) {
            let scale = make_qx_quants(32, xs, ls);
            *s = scale;
            if scale.abs() > max_abs_scale {
                max_abs_scale = scale.abs();
                max_scale = scale;
            }
        }
        if max_abs_scale < GROUP_MAX_EPS {
            return bytemuck::Zeroable::zeroed();
        }
        let iscale = -128.0 / max_scale;
        let d = to_f16(1.0 / iscale);
        let sc: [i8; 16] =
            scales.map(|s| nearest_int(iscale * s).min(127) as i8);
        for j in 0..16 {
            let dj = f16_to_f32(d) * sc[j] as f32;
            if dj == 0.0 {
                continue;
            }
            for ii in 0..16 {
                let q = nearest_int(x[16 * j + ii] / dj).clamp(-32, 31);
                l[16 * j + ii] = (q + 32) as i8;
            }
        }
        let l = l.map(|v| v as u8);
        let mut ql = [0u8; 128];
        let mut qh = [0u8; 64];
        for h in 0..2 {
            for i in 0..32 {
                let b = 128 * h + i;
                let (a, b2, c, e) = (l[b], l[b + 32], l[b + 64], l[b + 96]);
                ql[64 * h + i] = (a & 0x0f) | ((c & 0x0f) << 4);
                ql[64 * h + i + 32] = (b2 & 0x0f) | ((e & 0x0f) << 4);
                qh[32 * h + i] = (a >> 4)
                    | ((b2 >> 4) << 2)
                    | ((c >> 4) << 4)
                    | ((e >> 4) << 6);
            }
        }
        BlockQ6K { ql, qh, scales: sc, d }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_min_k4_packing_round_trips() {
        let ls: [u8; 8] = std::array::from_fn(|i| (i * 9 % 64) as u8);
        let lm: [u8; 8] = std::array::from_fn(|i| (63 - i * 5) as u8);
        let packed = pack_scale_min_k4(&ls, &lm);
        for j in 0..8 {
            assert_eq!(scale_min_k4(j, &packed), (ls[j], lm[j]));
        }
    }

    #[test]
    fn zero_block_is_all_zero() {
        let x = [0.0f32; QK_K];
        let b = BlockQ6K::encode(&x);
        assert_eq!(bytemuck::bytes_of(&b), &[0u8; 210][..]);
        let mut y = [1.0f32; QK_K];
        BlockQ4K::encode(&x).decode(&mut y);
        assert!(y.iter().all(|&v| v == 0.0));
    }
}
