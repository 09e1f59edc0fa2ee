//! AVX2 + FMA + F16C variant of [`super::attend`], bit-identical to the
//! scalar one.

use std::arch::x86_64::*;

use super::{HeadJob, KvRows, reduce8};

/// Whether this CPU runs this variant.
pub(super) fn is_available() -> bool {
    is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
}

/// Loads 8 cached values at `p` as f32.
///
/// # Safety
/// `p` must point to 8 readable values of the row type; F16C available.
#[inline(always)]
unsafe fn load8(rows: KvRows<'_>, at: usize) -> __m256 {
    match rows {
        // SAFETY: the caller guarantees `at + 8` is in bounds.
        KvRows::F16(x) => unsafe {
            _mm256_cvtph_ps(_mm_loadu_si128(x.as_ptr().add(at).cast()))
        },
        // SAFETY: as above.
        KvRows::F32(x) => unsafe { _mm256_loadu_ps(x.as_ptr().add(at)) },
        KvRows::Q8 { .. } => {
            let v: [f32; 8] = std::array::from_fn(|i| rows.get(at + i));
            // SAFETY: `v` holds 8 f32.
            unsafe { _mm256_loadu_ps(v.as_ptr()) }
        }
    }
}

#[inline(always)]
fn get(rows: KvRows<'_>, at: usize) -> f32 {
    rows.get(at)
}

/// Rounds 8 lanes to f16 and back.
#[inline(always)]
fn round8(v: __m256) -> __m256 {
    // SAFETY: only called from functions enabling F16C.
    unsafe { _mm256_cvtph_ps(_mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v)) }
}

/// # Safety
/// AVX2, FMA and F16C must be available; the job's rows must hold
/// `ctx` positions of `stride` values.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn attend(
    job: &HeadJob<'_>,
    q: &[f32],
    out: &mut [f32],
) -> f32 {
    let d = job.d;
    let full = d / 8 * 8;
    let (mut max, mut sum) = (f32::NEG_INFINITY, 0.0f32);
    out.iter_mut().for_each(|v| *v = 0.0);
    let check = |rows: KvRows<'_>| rows.len();
    assert!(
        job.ctx == 0
            || ((job.ctx - 1) * job.stride + job.off + d <= check(job.k)
                && (job.ctx - 1) * job.stride + job.off + d <= check(job.v))
    );
    for j in 0..job.ctx {
        let at = j * job.stride + job.off;
        let mut acc = _mm256_setzero_ps();
        let mut i = 0;
        while i < full {
            // SAFETY: `i + 8 <= d` and the row bound was checked above.
            let (qv, kv) = unsafe {
                (_mm256_loadu_ps(q.as_ptr().add(i)), load8(job.k, at + i))
            };
            acc = _mm256_fmadd_ps(qv, kv, acc);
            i += 8;
        }
        let mut lanes = [0.0f32; 8];
        // SAFETY: `lanes` holds 8 f32.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc) };
        for i in full..d {
            lanes[i % 8] = q[i].mul_add(get(job.k, at + i), lanes[i % 8]);
        }
        let s = reduce8(&lanes) * job.scale;
        let (mut ms, mut vs) = (1.0f32, 1.0f32);
        let rescale = s > max;
        if rescale {
            ms = (max - s).exp();
            max = s;
        } else {
            vs = (s - max).exp();
        }
        let (msv, vsv) = (_mm256_set1_ps(ms), _mm256_set1_ps(vs));
        let mut i = 0;
        while i < full {
            // SAFETY: `i + 8 <= d`, rows checked above, `out` has `d`.
            unsafe {
                let p = out.as_mut_ptr().add(i);
                let mut a = _mm256_loadu_ps(p);
                if rescale {
                    a = _mm256_mul_ps(a, msv);
                    if job.f16_acc {
                        a = round8(a);
                    }
                }
                a = _mm256_fmadd_ps(load8(job.v, at + i), vsv, a);
                if job.f16_acc {
                    a = round8(a);
                }
                _mm256_storeu_ps(p, a);
            }
            i += 8;
        }
        for (i, o) in out.iter_mut().enumerate().skip(full) {
            let mut a = *o;
            if rescale {
                a *= ms;
                if job.f16_acc {
                    a = half::f16::from_f32(a).to_f32();
                }
            }
            a = get(job.v, at + i).mul_add(vs, a);
            if job.f16_acc {
                a = half::f16::from_f32(a).to_f32();
            }
            *o = a;
        }
        sum = sum * ms + vs;
    }
    sum
}
