//! The scalar twin of the Q4_K/Q6_K kernels: the reference the SIMD
//! variants are tested against, bit for bit (see the module doc of
//! [`super`] for the formula). Integer sums use the signed codes directly;
//! the SIMD variants reach the same integers by other routes.

use std::ops::Range;

use half::f16;

use super::Job;
use super::layout::{
    BLOCK, Half16, KBlock, Kind, Line, PANEL_ROWS, Q4K_SCALE_LINES,
    Q6K_SCALE_LINES,
};

/// Computes panels `panels` for every token of `job`.
pub(crate) fn gemm<B: KBlock>(job: &Job<'_, B>, panels: Range<usize>) {
    let nb = job.w.blocks();
    for p in panels {
        for t in 0..job.a.n() {
            let x = job.a.row(t).as_chunks::<BLOCK>().0;
            let dx = job.a.scales(t);
            let mut acc = [0f32; PANEL_ROWS];
            for (b, xb) in x.iter().enumerate() {
                let lines = job.w.chunk(p, b);
                let halves = job.w.halves(p, b);
                match B::KIND {
                    Kind::Q4K => {
                        let s32 = &job.a.sums32(t)[8 * b..8 * b + 8];
                        q4k_block(lines, halves, xb, s32, dx[b], &mut acc);
                    }
                    Kind::Q6K => q6k_block(lines, halves, xb, dx[b], &mut acc),
                }
            }
            debug_assert_eq!(x.len(), nb);
            job.store(p, t, &acc);
        }
    }
}

/// Row `r`'s dword of `line`.
fn dword(line: &Line, r: usize) -> [u8; 4] {
    [line.0[4 * r], line.0[4 * r + 1], line.0[4 * r + 2], line.0[4 * r + 3]]
}

/// ggml's `get_scale_min_k4`: 6-bit scale and min of sub-block `j`.
fn scale_min_k4(j: usize, q: &[u8; 12]) -> (i32, i32) {
    let (sc, m) = if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    };
    (sc as i32, m as i32)
}

/// Adds one Q4_K super-block of 16 rows to `acc`.
fn q4k_block(
    lines: &[Line],
    halves: &[Half16],
    x: &[i8; BLOCK],
    sums32: &[i16],
    dx: f32,
    acc: &mut [f32; PANEL_ROWS],
) {
    let (scale_lines, codes) = lines.split_at(Q4K_SCALE_LINES);
    for (r, a) in acc.iter_mut().enumerate() {
        let mut packed = [0u8; 12];
        for (i, line) in scale_lines.iter().enumerate() {
            packed[4 * i..4 * i + 4].copy_from_slice(&dword(line, r));
        }
        let mut s = 0i32;
        let mut mins = 0i32;
        for c in 0..4 {
            let (sc_lo, m_lo) = scale_min_k4(2 * c, &packed);
            let (sc_hi, m_hi) = scale_min_k4(2 * c + 1, &packed);
            let (mut lo, mut hi) = (0i32, 0i32);
            for u in 0..8 {
                for (e, byte) in
                    dword(&codes[8 * c + u], r).into_iter().enumerate()
                {
                    let col = 64 * c + 4 * u + e;
                    lo += (byte & 0x0f) as i32 * x[col] as i32;
                    hi += (byte >> 4) as i32 * x[col + 32] as i32;
                }
            }
            s += sc_lo * lo + sc_hi * hi;
            mins +=
                m_lo * sums32[2 * c] as i32 + m_hi * sums32[2 * c + 1] as i32;
        }
        let d = f16::from_bits(halves[0].0[r]).to_f32() * dx;
        let dmin = f16::from_bits(halves[1].0[r]).to_f32() * dx;
        *a += d * s as f32;
        *a -= dmin * mins as f32;
    }
}

/// Adds one Q6_K super-block of 16 rows to `acc`.
fn q6k_block(
    lines: &[Line],
    halves: &[Half16],
    x: &[i8; BLOCK],
    dx: f32,
    acc: &mut [f32; PANEL_ROWS],
) {
    let (scale_lines, codes) = lines.split_at(Q6K_SCALE_LINES);
    for (r, a) in acc.iter_mut().enumerate() {
        let mut sc = [0i32; 16];
        for (i, line) in scale_lines.iter().enumerate() {
            for (e, byte) in dword(line, r).into_iter().enumerate() {
                sc[4 * i + e] = byte as i8 as i32;
            }
        }
        let mut isum = [0i32; 16];
        for h in 0..2 {
            for q in 0..8 {
                let t = &codes[3 * (8 * h + q)..3 * (8 * h + q) + 3];
                let (l0, l1, l2) =
                    (dword(&t[0], r), dword(&t[1], r), dword(&t[2], r));
                for e in 0..4 {
                    let q6 = [
                        l0[e] & 63,
                        l1[e] & 63,
                        l2[e] & 63,
                        (l0[e] >> 6) | (l1[e] >> 6) << 2 | (l2[e] >> 6) << 4,
                    ];
                    for (g, &code) in q6.iter().enumerate() {
                        let col = 128 * h + 32 * g + 4 * q + e;
                        isum[8 * h + 2 * g + q / 4] +=
                            (code as i32 - 32) * x[col] as i32;
                    }
                }
            }
        }
        let s: i32 = sc.iter().zip(&isum).map(|(s, i)| s * i).sum();
        let d = f16::from_bits(halves[0].0[r]).to_f32() * dx;
        *a += d * s as f32;
    }
}
