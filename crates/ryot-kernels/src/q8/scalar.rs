//! The scalar twin of the Q8_0/Q4_0/Q4_1/Q5_0 kernels: the reference the
//! SIMD variants are tested against, bit for bit (see the module doc of
//! [`super`] for the formula).

use std::ops::Range;

use half::f16;

use super::layout::{BLOCK, Kind, Line, PANEL_ROWS};
use super::{Job, QBlock};

/// Computes panels `panels` for every token of `job`.
pub(crate) fn gemm<B: QBlock>(job: &Job<'_, B>, panels: Range<usize>) {
    let nb = job.w.blocks();
    for p in panels {
        let lines = job.w.panel_lines(p);
        let scales = job.w.panel_scales(p);
        for t in 0..job.a.n() {
            let x = job.a.row(t);
            let dx = job.a.scales(t);
            let xsum = job.a.sums(t);
            let mut acc = [0f32; PANEL_ROWS];
            for b in 0..nb {
                let bl = &lines[b * B::LINES..(b + 1) * B::LINES];
                let xb = &x[b * BLOCK..(b + 1) * BLOCK];
                let off = B::OFFSET * xsum[b];
                let isum = match B::KIND {
                    Kind::Q8_0 => isum_q8_0(bl, xb),
                    Kind::Q4_0 | Kind::Q4_1 => isum_q4(bl, xb).map(|s| s - off),
                    Kind::Q5_0 => isum_q5_0(bl, xb).map(|s| s - off),
                };
                let sc = &scales[b * B::SCALES..(b + 1) * B::SCALES];
                for (r, a) in acc.iter_mut().enumerate() {
                    let d = f16::from_bits(sc[0].0[r]).to_f32() * dx[b];
                    *a = (isum[r] as f32).mul_add(d, *a);
                    if B::SCALES == 2 {
                        // Q4_1: + m * d_x * sum(code_x).
                        let m = f16::from_bits(sc[1].0[r]).to_f32() * dx[b];
                        *a = (xsum[b] as f32).mul_add(m, *a);
                    }
                }
            }
            job.store(p, t, &acc);
        }
    }
}

/// Exact `sum(code_w * code_x)` per row for one Q8_0 block (8 lines of
/// `code + 128`).
fn isum_q8_0(lines: &[Line], x: &[i8]) -> [i32; PANEL_ROWS] {
    let mut s = [0i32; PANEL_ROWS];
    for (j, line) in lines.iter().enumerate() {
        for (r, sr) in s.iter_mut().enumerate() {
            for e in 0..4 {
                let w = (line.0[4 * r + e] ^ 0x80) as i8;
                *sr += w as i32 * x[4 * j + e] as i32;
            }
        }
    }
    s
}

/// Exact `sum(q * code_x)` per row for one block of 4 nibble lines (the
/// unsigned nibbles `q`; the caller subtracts `OFFSET * sum(x)`).
fn isum_q4(lines: &[Line], x: &[i8]) -> [i32; PANEL_ROWS] {
    let mut s = [0i32; PANEL_ROWS];
    for (v, line) in lines.iter().enumerate().take(4) {
        for (r, sr) in s.iter_mut().enumerate() {
            for e in 0..4 {
                let byte = line.0[4 * r + e];
                let lo = (byte & 0x0f) as i32;
                let hi = (byte >> 4) as i32;
                *sr += lo * x[4 * v + e] as i32 + hi * x[16 + 4 * v + e] as i32;
            }
        }
    }
    s
}

/// Exact `sum(q * code_x)` per row for one Q5_0 block (4 nibble lines and
/// the fifth-bit line; the caller subtracts `16 * sum(x)`).
fn isum_q5_0(lines: &[Line], x: &[i8]) -> [i32; PANEL_ROWS] {
    let mut s = [0i32; PANEL_ROWS];
    let hb = &lines[4].0;
    for (v, line) in lines.iter().enumerate().take(4) {
        for (r, sr) in s.iter_mut().enumerate() {
            for e in 0..4 {
                let byte = line.0[4 * r + e];
                let h = hb[4 * r + e];
                let lo = (byte & 0x0f) as i32 | (((h >> v) & 1) as i32) << 4;
                let hi =
                    (byte >> 4) as i32 | (((h >> (4 + v)) & 1) as i32) << 4;
                *sr += lo * x[4 * v + e] as i32 + hi * x[16 + 4 * v + e] as i32;
            }
        }
    }
    s
}
