//! A same-run int8 compute peak: how many int8 multiply-adds per second one
//! core issues in a tight loop of the kernels' own dot-product instruction
//! (`vpdpbusd` zmm at the AVX-512 level, `vpmaddubsw` + `vpaddw` ymm at
//! AVX2), counted as 2 ops each. GEMM rows are reported as a share of it.

use std::time::Instant;

use ryot_kernels::SimdLevel;

/// Independent accumulator chains per loop iteration (enough to cover the
/// instruction's latency at full throughput).
const CHAINS: usize = 12;
/// Loop iterations per timed run.
const ITERS: usize = 2_000_000;

/// int8 GOP/s of one core at `level` (best of 5 runs); `None` for scalar.
pub fn int8_gops_per_core(level: SimdLevel) -> Option<f64> {
    let per_iter = match level {
        SimdLevel::Scalar => return None,
        // 16 lanes x 4 products, per chain.
        SimdLevel::Avx512 | SimdLevel::Amx => CHAINS * 64,
        // 32 products per maddubs, per chain.
        SimdLevel::Avx2 => CHAINS * 32,
    };
    let mut best = 0f64;
    for _ in 0..5 {
        let t = Instant::now();
        let sink = run(level);
        let s = t.elapsed().as_secs_f64();
        std::hint::black_box(sink);
        best = best.max(2.0 * (per_iter * ITERS) as f64 / s / 1e9);
    }
    Some(best)
}

/// AMX int8 tile GOP/s of one core when `level` is `amx`; `None` otherwise.
pub fn amx_int8_gops_per_core(level: SimdLevel) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    if level == SimdLevel::Amx {
        return ryot_kernels::amx::peak_gops();
    }
    let _ = level;
    None
}

fn run(level: SimdLevel) -> i32 {
    #[cfg(target_arch = "x86_64")]
    {
        assert!(level.is_supported_by_cpu());
        match level {
            // SAFETY: the CPU supports the level (asserted above).
            SimdLevel::Avx512 | SimdLevel::Amx => unsafe {
                x86::dpbusd_loop(ITERS)
            },
            // SAFETY: as above.
            SimdLevel::Avx2 => unsafe { x86::maddubs_loop(ITERS) },
            SimdLevel::Scalar => 0,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = level;
        0
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::CHAINS;

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) fn dpbusd_loop(iters: usize) -> i32 {
        let a = _mm512_set1_epi8(std::hint::black_box(1));
        let b = _mm512_set1_epi8(std::hint::black_box(1));
        let mut acc = [_mm512_setzero_si512(); CHAINS];
        for _ in 0..iters {
            for x in acc.iter_mut() {
                *x = _mm512_dpbusd_epi32(*x, a, b);
            }
        }
        acc.iter().fold(0, |s, x| s.wrapping_add(_mm512_reduce_add_epi32(*x)))
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn maddubs_loop(iters: usize) -> i32 {
        let a = _mm256_set1_epi8(std::hint::black_box(1));
        let b = _mm256_set1_epi8(std::hint::black_box(1));
        let mut acc = [_mm256_setzero_si256(); CHAINS];
        // The accumulator feeds the multiply, so nothing is loop-invariant
        // (a constant maddubs would be hoisted out of the loop).
        let _ = a;
        for _ in 0..iters {
            for x in acc.iter_mut() {
                *x = _mm256_add_epi16(*x, _mm256_maddubs_epi16(*x, b));
            }
        }
        let mut lanes = [0i16; 16];
        let mut s = 0i32;
        for x in acc {
            // SAFETY: lanes holds 16 i16s (32 bytes).
            unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), x) };
            s = lanes.iter().fold(s, |s, &v| s.wrapping_add(v as i32));
        }
        s
    }
}
