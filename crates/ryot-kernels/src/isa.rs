//! Which SIMD level the kernels run at, detected once per process.
//!
//! Kernels exist in three variants, `scalar`, `avx2` and `avx512`, and
//! batched ones (GEMM) may add a fourth, `amx`, on CPUs with Intel's AMX
//! tile unit. The level is detected at run time (never at compile time: a
//! plain release build must use AVX-512 where the CPU has it and must not
//! SIGILL where it does not) and cached. `RYOT_FORCE_ISA=scalar|avx2|avx512|amx`
//! lowers it, e.g. to test the scalar twins on a machine with AVX-512;
//! asking for a level the CPU lacks is an error ([`SimdLevel::from_env`])
//! that the CLI reports. A kernel without an `amx` variant runs its
//! `avx512` one at that level.

use std::fmt;
use std::sync::OnceLock;

use crate::error::{KernelError, KernelErrorKind};

/// A SIMD instruction-set level, ordered from weakest to strongest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SimdLevel {
    /// Portable Rust, no SIMD intrinsics: the reference every other level
    /// is tested against.
    Scalar,
    /// AVX2 + FMA + F16C (x86-64-v3).
    Avx2,
    /// AVX-512 F/BW/VL/DQ plus VNNI (`vpdpbusd`), as on Zen 4/5 and
    /// Sapphire Rapids.
    Avx512,
    /// [`SimdLevel::Avx512`] plus Intel AMX int8 and bf16 tiles (Sapphire
    /// Rapids and later), with the kernel's permission to use them granted
    /// (Linux `arch_prctl(ARCH_REQ_XCOMP_PERM)`).
    Amx,
}

impl SimdLevel {
    /// All levels, weakest first.
    pub const ALL: [SimdLevel; 4] =
        [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512, SimdLevel::Amx];

    /// The name used in `RYOT_FORCE_ISA`, tables and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            SimdLevel::Scalar => "scalar",
            SimdLevel::Avx2 => "avx2",
            SimdLevel::Avx512 => "avx512",
            SimdLevel::Amx => "amx",
        }
    }

    /// Parses a level name (`scalar`, `avx2`, `avx512`, `amx`;
    /// case-insensitive).
    pub fn parse(s: &str) -> Option<SimdLevel> {
        SimdLevel::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(s.trim()))
    }

    /// Whether kernels of this level may run: the CPU supports it and
    /// `RYOT_FORCE_ISA` does not lower the level below it. Forcing a level
    /// makes the stronger ones look absent, as on a CPU without them.
    pub fn is_available(self) -> bool {
        self <= level()
    }

    /// Whether the CPU itself supports this level (ignores
    /// `RYOT_FORCE_ISA`).
    pub fn is_supported_by_cpu(self) -> bool {
        self <= best_available()
    }

    /// The level requested by `RYOT_FORCE_ISA`, if set. An unknown name or a
    /// level this CPU lacks is an error.
    pub fn from_env() -> Result<Option<SimdLevel>, KernelError> {
        let Ok(raw) = std::env::var("RYOT_FORCE_ISA") else {
            return Ok(None);
        };
        let Some(level) = SimdLevel::parse(&raw) else {
            return Err(KernelError::new(KernelErrorKind::BadIsaName {
                name: raw,
            }));
        };
        if !level.is_supported_by_cpu() {
            return Err(KernelError::new(KernelErrorKind::IsaUnavailable {
                level,
                best: best_available(),
            }));
        }
        Ok(Some(level))
    }
}

impl fmt::Display for SimdLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The strongest level this CPU supports, ignoring `RYOT_FORCE_ISA`.
pub fn best_available() -> SimdLevel {
    static BEST: OnceLock<SimdLevel> = OnceLock::new();
    *BEST.get_or_init(detect_hardware)
}

/// The level kernels dispatch to: the strongest available one, lowered by
/// `RYOT_FORCE_ISA` when that names an available level. An invalid
/// `RYOT_FORCE_ISA` is ignored here (with one warning on stderr); callers
/// that can report errors check [`SimdLevel::from_env`] first.
pub fn level() -> SimdLevel {
    static LEVEL: OnceLock<SimdLevel> = OnceLock::new();
    *LEVEL.get_or_init(|| match SimdLevel::from_env() {
        Ok(Some(forced)) => forced,
        Ok(None) => best_available(),
        Err(e) => {
            eprintln!("ryot: warning: {e}; using {}", best_available());
            best_available()
        }
    })
}

#[cfg(target_arch = "x86_64")]
fn detect_hardware() -> SimdLevel {
    let avx512 = is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512dq")
        && is_x86_feature_detected!("avx512vnni");
    let avx2 = is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c");
    if avx512 && avx2 && amx::enable() {
        SimdLevel::Amx
    } else if avx512 && avx2 {
        SimdLevel::Avx512
    } else if avx2 {
        SimdLevel::Avx2
    } else {
        SimdLevel::Scalar
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect_hardware() -> SimdLevel {
    SimdLevel::Scalar
}

/// AMX detection and the Linux permission request.
#[cfg(target_arch = "x86_64")]
mod amx {
    use std::arch::x86_64::__cpuid_count;

    /// `arch_prctl` code asking for permission to use an XSAVE feature.
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    /// The XSAVE feature number of AMX tile data.
    const XFEATURE_XTILEDATA: i64 = 18;
    /// `SYS_arch_prctl` on x86-64 Linux.
    #[cfg(target_os = "linux")]
    const SYS_ARCH_PRCTL: i64 = 158;

    /// Whether the CPU has AMX tiles with int8 and bf16 and the OS lets
    /// this process use them (asking once, as Linux requires).
    pub(super) fn enable() -> bool {
        // CPUID leaf 7 exists on every CPU with AVX-512, which the caller
        // has already detected.
        let leaf7 = __cpuid_count(7, 0);
        let tile = leaf7.edx & (1 << 24) != 0;
        let int8 = leaf7.edx & (1 << 25) != 0;
        let bf16 = leaf7.edx & (1 << 22) != 0;
        tile && int8 && bf16 && request_permission()
    }

    #[cfg(target_os = "linux")]
    fn request_permission() -> bool {
        let ret: i64;
        // SAFETY: arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) only
        // changes which XSAVE state the kernel lets this process use; it
        // reads and writes no memory of ours. The syscall clobbers rcx and
        // r11, declared below.
        unsafe {
            std::arch::asm!(
                "syscall",
                inlateout("rax") SYS_ARCH_PRCTL => ret,
                in("rdi") ARCH_REQ_XCOMP_PERM,
                in("rsi") XFEATURE_XTILEDATA,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        ret == 0
    }

    /// Other systems: not attempted (no way to ask for the tile state).
    #[cfg(not(target_os = "linux"))]
    fn request_permission() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips() {
        for l in SimdLevel::ALL {
            assert_eq!(SimdLevel::parse(l.name()), Some(l));
        }
        assert_eq!(SimdLevel::parse(" AVX2 "), Some(SimdLevel::Avx2));
        assert_eq!(SimdLevel::parse("sse2"), None);
    }

    #[test]
    fn scalar_is_always_available_and_level_is_available() {
        assert!(SimdLevel::Scalar.is_available());
        assert!(level().is_available());
    }
}
