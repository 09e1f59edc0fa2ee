//! Scan kernels over packed codes, dispatched once at run time to SIMD
//! code or the portable scalar twins (the reference the tests compare
//! with).
//!
//! Levels ([`Isa`]): `scalar`, `avx2`, and `avx512` (AVX-512
//! F/BW/VL/VBMI/VNNI: Ice Lake, Sapphire Rapids, Zen 4 and later). Only
//! fast-scan has an `avx512` kernel (`vpermb` table lookups summed by
//! `vpdpbusd`); every other scan runs its AVX2 code at that level.
//! `RYOT_FORCE_ISA=scalar|avx2|avx512|amx` caps the level, as in
//! `ryot-kernels`: `amx` means `avx512` here, and a name above what the
//! CPU has gives the highest level it has (`avx512` there needs no VBMI),
//! except that `avx2` on a CPU without AVX2 is an error. Integer kernels
//! (Hamming, fast-scan) match their scalar twins exactly; float kernels
//! sum in the same order per output, so they match to the last bit
//! except for FMA contraction (tolerance [`F32_TOL`]).

#[cfg(target_arch = "x86_64")]
pub mod avx2;
pub mod fastscan;
pub mod scalar;

use std::sync::OnceLock;

use crate::error::{Error, Result};

/// Relative tolerance between SIMD and scalar float kernels.
pub const F32_TOL: f32 = 1e-5;

/// The SIMD level the scan kernels run at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// Portable Rust.
    Scalar,
    /// AVX2 + FMA + POPCNT.
    Avx2,
    /// [`Isa::Avx2`] plus AVX-512 F/BW/VL/VBMI/VNNI.
    Avx512,
}

impl Isa {
    /// The name used in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }
}

fn hw() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("popcnt")
        {
            if is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vl")
                && is_x86_feature_detected!("avx512vbmi")
                && is_x86_feature_detected!("avx512vnni")
            {
                return Isa::Avx512;
            }
            return Isa::Avx2;
        }
    }
    Isa::Scalar
}

/// The level a `RYOT_FORCE_ISA` value names, `None` for an unknown name.
fn parse_forced(v: &str) -> Option<Isa> {
    match v.trim().to_ascii_lowercase().as_str() {
        "scalar" => Some(Isa::Scalar),
        "avx2" => Some(Isa::Avx2),
        "avx512" | "amx" => Some(Isa::Avx512),
        _ => None,
    }
}

/// Checks `RYOT_FORCE_ISA`: `Ok(None)` when unset, the capped level when
/// set, an error for an unknown name or for `avx2` on a CPU without it.
pub fn forced() -> Result<Option<Isa>> {
    let Ok(v) = std::env::var("RYOT_FORCE_ISA") else {
        return Ok(None);
    };
    let Some(want) = parse_forced(&v) else {
        return Err(Error::Isa(v));
    };
    let have = hw();
    if want == Isa::Avx2 && have < Isa::Avx2 {
        return Err(Error::Isa(v));
    }
    Ok(Some(want.min(have)))
}

/// The level in use (detected once; an invalid override falls back to the
/// hardware level — callers that can report errors check [`forced`]).
pub fn isa() -> Isa {
    static L: OnceLock<Isa> = OnceLock::new();
    *L.get_or_init(|| forced().ok().flatten().unwrap_or_else(hw))
}

/// Inner product of two equal-length slices.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    match isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa()` is Avx2 or above only when avx2, fma and popcnt
        // were detected on this CPU.
        Isa::Avx2 | Isa::Avx512 => unsafe { avx2::dot(a, b) },
        _ => scalar::dot(a, b),
    }
}

/// `out[i] = sum_j w[j] * codes[i * stride + j]` for `j < w.len()`.
pub fn scan_u8(w: &[f32], codes: &[u8], stride: usize, out: &mut [f32]) {
    check(w.len(), codes, stride, out.len());
    match isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: see `dot`; shapes were checked above.
        Isa::Avx2 | Isa::Avx512 => unsafe {
            avx2::scan_u8(w, codes, stride, out)
        },
        _ => scalar::scan_u8(w, codes, stride, out),
    }
}

/// Like [`scan_u8`] for 4-bit codes, two per byte (low nibble first):
/// `w.len()` must be even, and covers `w.len() / 2` bytes of each code.
pub fn scan_u4(w: &[f32], codes: &[u8], stride: usize, out: &mut [f32]) {
    check(w.len().div_ceil(2), codes, stride, out.len());
    match isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: see `dot`; shapes were checked above.
        Isa::Avx2 | Isa::Avx512 => unsafe {
            avx2::scan_u4(w, codes, stride, out)
        },
        _ => scalar::scan_u4(w, codes, stride, out),
    }
}

/// Byte-lookup ADC over bit planes: for each code `i`,
/// `out[i] = sum_p 2^p * sum_m lut[m*256 + codes[i*stride + p*nbytes + m]]`
/// with `m < nbytes`, `p < planes`. `planes = 1` is plain PQ ADC.
pub fn scan_adc(
    lut: &[f32],
    nbytes: usize,
    planes: usize,
    codes: &[u8],
    stride: usize,
    out: &mut [f32],
) {
    assert_eq!(lut.len(), nbytes * 256);
    check(nbytes * planes, codes, stride, out.len());
    // Every level runs the scalar kernel (four independent add chains):
    // the AVX2 gather twin (`avx2::scan_adc`, same sums bit for bit) was
    // slower on AMD Zen 3, 314 vs 494 qps for pq:48x8 over 50k codes.
    scalar::scan_adc(lut, nbytes, planes, codes, stride, out);
}

/// Byte-lookup ADC divided by the reconstruction's length: for each code
/// `i`, `out[i] = sum_m lut[m][c_m] / sqrt(sum_m norms[m][c_m])` with
/// `c_m = codes[i*stride + m]`, `m < nbytes` (`norms` holds the squared
/// lengths of the sub-vectors the bytes stand for): the cosine between
/// the query and the reconstructed vector, times the query's length.
pub fn scan_adc_cos(
    lut: &[f32],
    norms: &[f32],
    nbytes: usize,
    codes: &[u8],
    stride: usize,
    out: &mut [f32],
) {
    assert_eq!(lut.len(), nbytes * 256);
    assert_eq!(norms.len(), nbytes * 256);
    check(nbytes, codes, stride, out.len());
    scalar::scan_adc_cos(lut, norms, nbytes, codes, stride, out);
}

/// Hamming distance of `q` to each code (first `q.len()` bytes).
pub fn hamming(q: &[u8], codes: &[u8], stride: usize, out: &mut [u32]) {
    check(q.len(), codes, stride, out.len());
    match isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: see `dot`; shapes were checked above.
        Isa::Avx2 | Isa::Avx512 => unsafe {
            avx2::hamming(q, codes, stride, out)
        },
        _ => scalar::hamming(q, codes, stride, out),
    }
}

fn check(used: usize, codes: &[u8], stride: usize, n: usize) {
    assert!(used <= stride, "code prefix {used} > stride {stride}");
    assert!(codes.len() >= n * stride, "codes shorter than n * stride");
}
