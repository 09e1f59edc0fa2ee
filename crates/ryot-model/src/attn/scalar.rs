//! The portable reference of [`super::attend`].

use super::{HeadJob, KvRows, exp_le0, reduce8, round_f16};

/// Returns the softmax denominator; `out` holds the unnormalised sum.
pub(super) fn attend(job: &HeadJob<'_>, q: &[f32], out: &mut [f32]) -> f32 {
    let d = job.d;
    let mut row = vec![0.0f32; d];
    let read = |rows: KvRows<'_>, j: usize, dst: &mut [f32]| {
        let at = j * job.stride + job.off;
        match rows {
            KvRows::F16(x) => {
                dst.iter_mut().zip(&x[at..at + d]).for_each(|(o, h)| {
                    *o = h.to_f32();
                });
            }
            KvRows::F32(x) => dst.copy_from_slice(&x[at..at + d]),
            KvRows::Q8 { .. } => {
                dst.iter_mut().enumerate().for_each(|(i, o)| {
                    *o = rows.get(at + i);
                });
            }
        }
    };
    let (mut max, mut sum) = (f32::NEG_INFINITY, 0.0f32);
    out.iter_mut().for_each(|v| *v = 0.0);
    for j in 0..job.ctx {
        read(job.k, j, &mut row);
        let mut lanes = [0.0f32; 8];
        for (i, (&a, &b)) in q.iter().zip(&row).enumerate() {
            lanes[i % 8] = a.mul_add(b, lanes[i % 8]);
        }
        let s = reduce8(&lanes) * job.scale;
        let (mut ms, mut vs) = (1.0f32, 1.0f32);
        if s > max {
            ms = exp_le0(max - s);
            max = s;
            out.iter_mut().for_each(|a| *a *= ms);
            if job.f16_acc {
                round_f16(out);
            }
        } else {
            vs = exp_le0(s - max);
        }
        read(job.v, j, &mut row);
        out.iter_mut().zip(&row).for_each(|(a, &v)| *a = v.mul_add(vs, *a));
        if job.f16_acc {
            round_f16(out);
        }
        sum = sum * ms + vs;
    }
    sum
}
