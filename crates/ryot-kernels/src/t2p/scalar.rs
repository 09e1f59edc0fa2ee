//! The scalar twin of the t2p kernels: the reference the SIMD variants are
//! tested against, bit for bit.

use std::ops::Range;

use super::Job;
use super::layout::LINE_COLS;

/// Computes panels `panels` for every token of `job`.
pub(crate) fn gemm(job: &Job<'_>, panels: Range<usize>) {
    let w = job.w;
    let groups = job.groups();
    let lines_per_group = w.group_cols() / LINE_COLS;
    for p in panels {
        let lines = w.panel(p);
        for t in 0..job.a.n() {
            let q = job.a.row(t);
            let act_scale = job.a.scales()[t];
            let mut acc = [0f32; 16];
            for g in 0..groups {
                let mut isum = [0i32; 16];
                let first = g * lines_per_group;
                for (c, line) in
                    lines[first..first + lines_per_group].iter().enumerate()
                {
                    let col0 = (first + c) * LINE_COLS;
                    for (r, s) in isum.iter_mut().enumerate() {
                        for j in 0..4 {
                            for tt in 0..4 {
                                let code = (line.0[r * 4 + tt] >> (2 * j)) & 3;
                                *s += code as i32 * q[col0 + 4 * j + tt] as i32;
                            }
                        }
                    }
                }
                let gsum = job.gsums[t * groups + g];
                let ws = w.group_scales(p, g);
                for r in 0..16 {
                    let v = (isum[r] - gsum) as f32 / act_scale * ws[r];
                    acc[r] += v;
                }
            }
            job.store(p, t, &acc);
        }
    }
}
