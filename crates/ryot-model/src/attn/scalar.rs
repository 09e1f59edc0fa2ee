//! The portable reference of [`super::attend`].

use super::{HeadJob, KEYS, KvRows, exp_poly, reduce8, round_f16};

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
    let mut s = [0.0f32; KEYS];
    for j0 in (0..job.ctx).step_by(KEYS) {
        let nk = KEYS.min(job.ctx - j0);
        for (jj, sj) in s.iter_mut().enumerate().take(nk) {
            read(job.k, j0 + jj, &mut row);
            let mut lanes = [0.0f32; 8];
            for (i, (&a, &b)) in q.iter().zip(&row).enumerate() {
                lanes[i % 8] = a.mul_add(b, lanes[i % 8]);
            }
            *sj = reduce8(&lanes) * job.scale;
        }
        let m = s[..nk].iter().fold(max, |m, &x| m.max(x));
        if m > max {
            let alpha = exp_poly(max - m);
            out.iter_mut().for_each(|a| *a *= alpha);
            if job.f16_acc {
                round_f16(out);
            }
            sum *= alpha;
            max = m;
        }
        let mut p = [0.0f32; KEYS];
        for (jj, (&sj, pj)) in s.iter().zip(&mut p).enumerate().take(nk) {
            *pj = exp_poly(sj - max);
            read(job.v, j0 + jj, &mut row);
            out.iter_mut()
                .zip(&row)
                .for_each(|(a, &v)| *a = v.mul_add(*pj, *a));
            if job.f16_acc {
                round_f16(out);
            }
        }
        sum += reduce8(&p);
    }
    sum
}
