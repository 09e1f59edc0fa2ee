//! What this CPU is and can do: model, vendor, caches and SIMD features.
//!
//! Benchmarks and the tuner key their results on these facts (the machine
//! under us changes between runs: see `/work/shared/anchors/machines.md`),
//! and kernels gate their ISA paths on the same feature names. Sources, in
//! order of preference: `/proc/cpuinfo` and `/sys/devices/system/cpu` on
//! Linux, then raw CPUID on x86-64 (see [`crate::x86`]).

use serde::Serialize;
use std::sync::OnceLock;

/// Every feature name [`CpuInfo::features`] may contain, in report order.
pub const KNOWN_FEATURES: &[&str] = &[
    "sse4.2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "bmi2",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512dq",
    "avx512vnni",
    "avx512bf16",
    "avx512fp16",
    "avx512vbmi",
    "avx512vbmi2",
    "avx512vpopcntdq",
    "avxvnni",
    "amx-tile",
    "amx-int8",
    "amx-bf16",
];

/// Facts about the CPU this process runs on. Obtain it with [`cpu_info`].
#[derive(Clone, Debug, Serialize)]
pub struct CpuInfo {
    /// Marketing name: `/proc/cpuinfo` "model name", else the CPUID brand
    /// string, else `"unknown"`. Under a hypervisor it may be generic
    /// (`"AMD EPYC"`).
    pub model: String,
    /// Vendor: the CPUID vendor string (`"AuthenticAMD"`, `"GenuineIntel"`)
    /// on x86-64, else `/proc/cpuinfo` "vendor_id", else `"unknown"`.
    pub vendor: String,
    /// Logical CPUs this process may use
    /// ([`std::thread::available_parallelism`]); at least 1.
    pub logical_cpus: usize,
    /// Level-1 data cache of one core, in bytes.
    pub l1d_bytes: Option<usize>,
    /// Level-2 cache as seen by one core, in bytes.
    pub l2_bytes: Option<usize>,
    /// Level-3 cache as seen by one core (the slice it shares), in bytes.
    pub l3_bytes: Option<usize>,
    /// Supported and OS-enabled features, a subset of [`KNOWN_FEATURES`] in
    /// that order. AMX features need the OS to enable tile state (XCR0); a
    /// Linux process must still request it (`arch_prctl`) before use.
    pub features: Vec<&'static str>,
}

impl CpuInfo {
    /// Detects everything now; prefer the cached [`cpu_info`].
    pub fn detect() -> Self {
        let proc = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let (l1d, l2, l3) = sysfs_caches();
        let (c1, c2, c3) = crate::x86::caches();
        CpuInfo {
            model: proc_field(&proc, "model name")
                .or_else(crate::x86::brand)
                .unwrap_or_else(|| "unknown".to_owned()),
            vendor: crate::x86::vendor()
                .or_else(|| proc_field(&proc, "vendor_id"))
                .unwrap_or_else(|| "unknown".to_owned()),
            logical_cpus: std::thread::available_parallelism()
                .map_or(1, |n| n.get()),
            l1d_bytes: l1d.or(c1),
            l2_bytes: l2.or(c2),
            l3_bytes: l3.or(c3),
            features: KNOWN_FEATURES
                .iter()
                .copied()
                .filter(|f| crate::x86::has_feature(f))
                .collect(),
        }
    }

    /// Whether `feature` (a name from [`KNOWN_FEATURES`]) is available.
    pub fn has(&self, feature: &str) -> bool {
        self.features.contains(&feature)
    }

    /// A stable, file-name-safe key for per-CPU caches (tuner results):
    /// the sanitised model name, then an 8-hex-digit FNV-1a hash of the
    /// feature list, e.g. `"amd-epyc-3f2a9c10"`. Two CPUs reporting the
    /// same model but different features get different keys.
    pub fn cache_key(&self) -> String {
        let hash = fnv1a32(self.features.join(",").as_bytes());
        let model = sanitize_model(&self.model);
        if model.is_empty() {
            format!("cpu-{hash:08x}")
        } else {
            format!("{model}-{hash:08x}")
        }
    }
}

/// The [`CpuInfo`] of this machine, detected once per process.
pub fn cpu_info() -> &'static CpuInfo {
    static INFO: OnceLock<CpuInfo> = OnceLock::new();
    INFO.get_or_init(CpuInfo::detect)
}

/// The value of the first `key : value` line of `/proc/cpuinfo` text.
fn proc_field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// L1d, L2 and L3 sizes from `/sys/devices/system/cpu/cpu0/cache`.
fn sysfs_caches() -> (Option<usize>, Option<usize>, Option<usize>) {
    let mut out = (None, None, None);
    let dir = "/sys/devices/system/cpu/cpu0/cache";
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries.flatten() {
        let path = entry.path();
        let read = |f: &str| std::fs::read_to_string(path.join(f)).ok();
        let (Some(level), Some(kind), Some(size)) =
            (read("level"), read("type"), read("size"))
        else {
            continue;
        };
        let Some(bytes) = parse_size(&size) else { continue };
        let data = matches!(kind.trim(), "Data" | "Unified");
        match level.trim() {
            "1" if kind.trim() == "Data" => out.0 = Some(bytes),
            "2" if data => out.1 = Some(bytes),
            "3" if data => out.2 = Some(bytes),
            _ => {}
        }
    }
    out
}

/// Parses a sysfs cache size: `"32K"`, `"2048K"`, `"1M"`, `"512"`.
fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let (digits, unit) = match s.char_indices().find(|(_, c)| c.is_alphabetic())
    {
        Some((i, _)) => s.split_at(i),
        None => (s, ""),
    };
    let n: usize = digits.trim().parse().ok()?;
    let scale = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// Lower-case words of a model name joined by `-`, without trademark
/// marks, "CPU"/"Processor" or the "@ 2.10GHz" suffix; at most 40 bytes.
fn sanitize_model(model: &str) -> String {
    let model = model.split('@').next().unwrap_or("").to_ascii_lowercase();
    let model = ["(r)", "(tm)", "(c)"]
        .iter()
        .fold(model, |m, mark| m.replace(mark, " "));
    let words: Vec<&str> = model
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty() && !matches!(*w, "cpu" | "processor"))
        .collect();
    let mut out = String::new();
    for w in words {
        if out.len() + w.len() + 1 > 40 {
            break;
        }
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(w);
    }
    out
}

/// 32-bit FNV-1a: tiny, and stable across Rust versions (unlike
/// `DefaultHasher`), which a key written to disk needs.
fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(0x811c_9dc5, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("32K\n"), Some(32 << 10));
        assert_eq!(parse_size("32768K"), Some(32 << 20));
        assert_eq!(parse_size("2M"), Some(2 << 20));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("12Q"), None);
    }

    #[test]
    fn models_sanitize() {
        assert_eq!(sanitize_model("AMD EPYC"), "amd-epyc");
        assert_eq!(
            sanitize_model("Intel(R) Xeon(R) Platinum 8480+"),
            "intel-xeon-platinum-8480"
        );
        assert_eq!(
            sanitize_model("Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz"),
            "intel-core-i7-8700"
        );
        assert_eq!(
            sanitize_model("AMD EPYC 9B45 128-Core Processor"),
            "amd-epyc-9b45-128-core"
        );
        assert_eq!(sanitize_model("  "), "");
        assert!(sanitize_model(&"abcdefgh ".repeat(20)).len() <= 40);
    }

    #[test]
    fn proc_fields_parse() {
        let text = "processor\t: 0\nvendor_id\t: AuthenticAMD\n\
                    model name\t: AMD EPYC\nflags\t\t: fpu\n\n\
                    processor\t: 1\nmodel name\t: other\n";
        assert_eq!(proc_field(text, "model name").as_deref(), Some("AMD EPYC"));
        assert_eq!(
            proc_field(text, "vendor_id").as_deref(),
            Some("AuthenticAMD")
        );
        assert_eq!(proc_field(text, "missing"), None);
    }

    #[test]
    fn fnv_is_stable() {
        // Reference values of 32-bit FNV-1a.
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn cache_key_depends_on_features() {
        let mut info = CpuInfo {
            model: "AMD EPYC".into(),
            vendor: "AuthenticAMD".into(),
            logical_cpus: 2,
            l1d_bytes: None,
            l2_bytes: None,
            l3_bytes: None,
            features: vec!["avx", "avx2"],
        };
        let a = info.cache_key();
        assert!(a.starts_with("amd-epyc-") && a.len() == "amd-epyc-".len() + 8);
        info.features.push("avx512f");
        assert_ne!(a, info.cache_key());
        info.model.clear();
        assert!(info.cache_key().starts_with("cpu-"));
    }

    #[test]
    fn sysfs_matches_cpuid_where_both_exist() {
        let sys = sysfs_caches();
        let cpuid = crate::x86::caches();
        for (name, s, c) in [
            ("l1d", sys.0, cpuid.0),
            ("l2", sys.1, cpuid.1),
            ("l3", sys.2, cpuid.2),
        ] {
            if let (Some(s), Some(c)) = (s, c) {
                assert_eq!(s, c, "{name}: sysfs vs CPUID");
            } else {
                eprintln!("{name}: sysfs {s:?}, CPUID {c:?} (not compared)");
            }
        }
    }
}
