//! Raw x86-64 CPU identification: feature tests, CPUID strings and cache
//! leaves, used by [`crate::cpu`] where std and Linux do not answer.
//!
//! `is_x86_feature_detected!` covers every feature we report except AMX
//! (still unstable there), so AMX is read from CPUID leaf 7 and XCR0. On
//! other architectures every function here answers "unknown".

/// Whether `feature` (a name of [`crate::KNOWN_FEATURES`]) is supported by
/// the CPU and enabled by the OS.
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_feature(feature: &str) -> bool {
    use std::arch::is_x86_feature_detected as has;
    match feature {
        "sse4.2" => has!("sse4.2"),
        "avx" => has!("avx"),
        "avx2" => has!("avx2"),
        "fma" => has!("fma"),
        "f16c" => has!("f16c"),
        "bmi2" => has!("bmi2"),
        "avx512f" => has!("avx512f"),
        "avx512bw" => has!("avx512bw"),
        "avx512vl" => has!("avx512vl"),
        "avx512dq" => has!("avx512dq"),
        "avx512vnni" => has!("avx512vnni"),
        "avx512bf16" => has!("avx512bf16"),
        "avx512fp16" => has!("avx512fp16"),
        "avx512vbmi" => has!("avx512vbmi"),
        "avx512vbmi2" => has!("avx512vbmi2"),
        "avx512vpopcntdq" => has!("avx512vpopcntdq"),
        "avxvnni" => has!("avxvnni"),
        // CPUID.(EAX=7,ECX=0):EDX bits 24, 25 and 22.
        "amx-tile" => amx(24),
        "amx-int8" => amx(25),
        "amx-bf16" => amx(22),
        _ => false,
    }
}

/// Non-x86 targets report no x86 feature.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn has_feature(_feature: &str) -> bool {
    false
}

/// AMX feature `edx_bit` of CPUID leaf 7, if the OS also enabled tile state
/// (XCR0 bits 17 XTILECFG and 18 XTILEDATA).
#[cfg(target_arch = "x86_64")]
fn amx(edx_bit: u32) -> bool {
    use std::arch::x86_64::__cpuid_count;
    if __cpuid_count(0, 0).eax < 7 {
        return false;
    }
    if __cpuid_count(7, 0).edx & (1 << edx_bit) == 0 {
        return false;
    }
    const TILE_STATE: u64 = (1 << 17) | (1 << 18);
    xcr0().is_some_and(|x| x & TILE_STATE == TILE_STATE)
}

/// XCR0, the set of register states the OS saves, if readable.
#[cfg(target_arch = "x86_64")]
fn xcr0() -> Option<u64> {
    use std::arch::x86_64::{__cpuid_count, _xgetbv};
    // CPUID.1:ECX bit 27 (OSXSAVE): the OS has enabled XGETBV.
    if __cpuid_count(1, 0).ecx & (1 << 27) == 0 {
        return None;
    }
    // SAFETY: `_xgetbv` needs the XSAVE feature, which OSXSAVE (checked
    // just above) implies, and register 0 (XCR0) always exists then.
    Some(unsafe { _xgetbv(0) })
}

/// The 12-byte CPUID vendor string (`"GenuineIntel"`, `"AuthenticAMD"`).
#[cfg(target_arch = "x86_64")]
pub(crate) fn vendor() -> Option<String> {
    let r = std::arch::x86_64::__cpuid_count(0, 0);
    regs_to_string(&[r.ebx, r.edx, r.ecx])
}

/// The 48-byte CPUID brand string (leaves 0x8000_0002..=0x8000_0004).
#[cfg(target_arch = "x86_64")]
pub(crate) fn brand() -> Option<String> {
    use std::arch::x86_64::__cpuid_count;
    if __cpuid_count(0x8000_0000, 0).eax < 0x8000_0004 {
        return None;
    }
    let regs: Vec<u32> = (0x8000_0002..=0x8000_0004)
        .flat_map(|leaf| {
            let r = __cpuid_count(leaf, 0);
            [r.eax, r.ebx, r.ecx, r.edx]
        })
        .collect();
    regs_to_string(&regs)
}

/// Registers as little-endian ASCII, trimmed of NULs and spaces.
#[cfg(target_arch = "x86_64")]
fn regs_to_string(regs: &[u32]) -> Option<String> {
    let bytes: Vec<u8> = regs.iter().flat_map(|r| r.to_le_bytes()).collect();
    let s = String::from_utf8_lossy(&bytes);
    let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!s.is_empty()).then(|| s.to_owned())
}

/// L1d, L2 and L3 sizes from CPUID: the deterministic cache leaf (4 on
/// Intel, 0x8000_001D on AMD with TOPOEXT), else AMD's legacy leaves
/// 0x8000_0005/6.
#[cfg(target_arch = "x86_64")]
pub(crate) fn caches() -> (Option<usize>, Option<usize>, Option<usize>) {
    use std::arch::x86_64::__cpuid_count;
    let max_basic = __cpuid_count(0, 0).eax;
    let max_ext = __cpuid_count(0x8000_0000, 0).eax;
    let amd =
        vendor().is_some_and(|v| v == "AuthenticAMD" || v == "HygonGenuine");
    let topoext = max_ext >= 0x8000_0001
        && __cpuid_count(0x8000_0001, 0).ecx & (1 << 22) != 0;
    let leaf = if amd && topoext && max_ext >= 0x8000_001D {
        Some(0x8000_001D)
    } else if !amd && max_basic >= 4 {
        Some(4)
    } else {
        None
    };
    let mut out = leaf.map_or((None, None, None), deterministic_caches);
    if amd && max_ext >= 0x8000_0006 {
        // Legacy AMD leaves: sizes in KiB (L3 in 512 KiB units).
        let l1 = __cpuid_count(0x8000_0005, 0).ecx >> 24;
        let l2 = __cpuid_count(0x8000_0006, 0).ecx >> 16;
        let l3 = __cpuid_count(0x8000_0006, 0).edx >> 18;
        let kib = |k: u32| (k != 0).then_some(k as usize * 1024);
        out.0 = out.0.or(kib(l1));
        out.1 = out.1.or(kib(l2));
        out.2 = out.2.or(kib(l3 * 512));
    }
    out
}

/// Walks the subleaves of a deterministic cache parameter leaf (4 or
/// 0x8000_001D; both share one layout) and sums up each level's size.
#[cfg(target_arch = "x86_64")]
fn deterministic_caches(
    leaf: u32,
) -> (Option<usize>, Option<usize>, Option<usize>) {
    let mut out = (None, None, None);
    for sub in 0..32 {
        let r = std::arch::x86_64::__cpuid_count(leaf, sub);
        // EAX[4:0]: 0 none (end), 1 data, 2 instruction, 3 unified.
        let kind = r.eax & 0x1f;
        if kind == 0 {
            break;
        }
        let level = (r.eax >> 5) & 0x7;
        let ways = ((r.ebx >> 22) & 0x3ff) as usize + 1;
        let partitions = ((r.ebx >> 12) & 0x3ff) as usize + 1;
        let line = (r.ebx & 0xfff) as usize + 1;
        let sets = r.ecx as usize + 1;
        let bytes = Some(ways * partitions * line * sets);
        match (level, kind) {
            (1, 1) => out.0 = bytes,
            (2, 1 | 3) => out.1 = bytes,
            (3, 1 | 3) => out.2 = bytes,
            _ => {}
        }
    }
    out
}

/// Non-x86 targets: no CPUID vendor.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn vendor() -> Option<String> {
    None
}

/// Non-x86 targets: no CPUID brand string.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn brand() -> Option<String> {
    None
}

/// Non-x86 targets: no CPUID cache leaves.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn caches() -> (Option<usize>, Option<usize>, Option<usize>) {
    (None, None, None)
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    #[test]
    fn cpuid_strings() {
        let v = super::vendor().expect("CPUID vendor");
        assert_eq!(v.len(), 12, "{v:?}");
        if let Some(b) = super::brand() {
            assert!(b.is_ascii() && !b.is_empty(), "{b:?}");
        }
    }

    #[test]
    fn cpuid_caches_plausible() {
        let (l1, l2, l3) = super::caches();
        eprintln!("CPUID caches: {l1:?} {l2:?} {l3:?}");
        for size in [l1, l2, l3].into_iter().flatten() {
            assert!((4 << 10..=4 << 30).contains(&size), "{size}");
        }
    }
}
