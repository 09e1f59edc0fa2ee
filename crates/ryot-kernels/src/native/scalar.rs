//! The scalar twins of the native kernels: the reference the SIMD variants
//! are tested against, bit for bit. They decode with the readers of
//! [`crate::ternary`] and use the tokens in their natural order.

use std::ops::Range;

use super::{Format, Job};
use crate::ternary::{
    TQ_BLOCK, tq_block_scale, tq1_0_block_codes, tq2_0_block_codes,
};

/// Computes rows `rows` for every token of `job`.
pub(crate) fn gemm(job: &Job<'_>, rows: Range<usize>) {
    match job.w.fmt {
        Format::Tq2_0 => tq(job, rows, tq2_0_block_codes),
        Format::Tq1_0 => tq(job, rows, tq1_0_block_codes),
        Format::I2s => i2s(job, rows),
    }
}

fn dot(codes: &[u8], q: &[i8]) -> i32 {
    codes.iter().zip(q).map(|(&c, &q)| c as i32 * q as i32).sum()
}

fn tq(
    job: &Job<'_>,
    rows: Range<usize>,
    decode: fn(&[u8], &mut [u8; TQ_BLOCK]),
) {
    let n = job.n();
    let mut acc = vec![0f32; n];
    let mut codes = [0u8; TQ_BLOCK];
    for r in rows {
        acc.fill(0.0);
        for b in 0..job.w.blocks() {
            let blk = job.w.block(r, b);
            decode(blk, &mut codes);
            let d = tq_block_scale(blk);
            for (t, acc) in acc.iter_mut().enumerate() {
                let q = &job.acts.a.row(t)[b * TQ_BLOCK..(b + 1) * TQ_BLOCK];
                let isum = dot(&codes, q) - job.acts.gsum(b, t);
                *acc += isum as f32 / job.act_scale(t) * d;
            }
        }
        for (t, &v) in acc.iter().enumerate() {
            job.out.write_rows(t, r, &[v]);
        }
    }
}

fn i2s(job: &Job<'_>, rows: Range<usize>) {
    let k = job.w.k;
    let scale = job.w.i2s_scale();
    for r in rows {
        let codes = job.w.row_codes(r);
        for t in 0..job.n() {
            let isum =
                dot(&codes, &job.acts.a.row(t)[..k]) - job.acts.gsum(0, t);
            let v = 0.0 + isum as f32 / job.act_scale(t) * scale;
            job.out.write_rows(t, r, &[v]);
        }
    }
}
