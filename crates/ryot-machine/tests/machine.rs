//! Public behaviour of `cpu_info` and `DramProbe` on whatever CPU runs the
//! tests.

use ryot_machine::{DramProbe, KNOWN_FEATURES, ProbeError, ReadPath, cpu_info};
use ryot_pool::ThreadPool;

#[test]
fn cpu_info_is_sane() {
    let cpu = cpu_info();
    eprintln!("{cpu:#?}\nkey: {}", cpu.cache_key());
    assert!(cpu.logical_cpus >= 1);
    assert!(!cpu.model.trim().is_empty());
    assert!(!cpu.vendor.trim().is_empty());
    for (level, size) in
        [("l1d", cpu.l1d_bytes), ("l2", cpu.l2_bytes), ("l3", cpu.l3_bytes)]
    {
        if let Some(size) = size {
            assert!((4 << 10..=4 << 30).contains(&size), "{level} {size}");
        }
    }
    if let (Some(l1), Some(l2)) = (cpu.l1d_bytes, cpu.l2_bytes) {
        assert!(l1 < l2);
    }
    assert!(std::ptr::eq(cpu, cpu_info()), "cached");
}

#[test]
fn features_are_known_ordered_and_consistent() {
    let cpu = cpu_info();
    let mut last = None;
    for f in &cpu.features {
        let pos = KNOWN_FEATURES.iter().position(|k| k == f);
        assert!(pos.is_some(), "unknown feature {f}");
        assert!(pos > last, "features out of order: {:?}", cpu.features);
        last = pos;
        assert!(cpu.has(f));
    }
    assert!(!cpu.has("no-such-feature"));
    let implies = |a: &str, b: &str| {
        assert!(!cpu.has(a) || cpu.has(b), "{a} without {b}");
    };
    implies("avx2", "avx");
    implies("avx", "sse4.2");
    implies("fma", "avx");
    implies("f16c", "avx");
    for f in KNOWN_FEATURES.iter().filter(|f| f.starts_with("avx512")) {
        implies(f, "avx512f");
    }
    implies("avx512f", "avx2");
    implies("avxvnni", "avx2");
    implies("amx-int8", "amx-tile");
    implies("amx-bf16", "amx-tile");
    #[cfg(target_arch = "x86_64")]
    {
        assert_eq!(
            cpu.has("avx2"),
            std::arch::is_x86_feature_detected!("avx2")
        );
        assert_eq!(
            cpu.has("avx512f"),
            std::arch::is_x86_feature_detected!("avx512f")
        );
    }
}

#[test]
fn cache_key_is_stable_and_file_safe() {
    let key = cpu_info().cache_key();
    assert_eq!(key, cpu_info().cache_key());
    assert!(
        key.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
        "{key}"
    );
    let hash = key.rsplit('-').next().unwrap();
    assert_eq!(hash.len(), 8, "{key}");
}

#[test]
fn probe_rejects_tiny_buffers() {
    let err = DramProbe::new(4096).unwrap_err();
    assert!(matches!(err, ProbeError::TooSmall { bytes: 4096, .. }), "{err}");
    assert!(DramProbe::new(DramProbe::MIN_BYTES).is_ok());
}

#[test]
fn probe_impossible_allocation_is_an_error() {
    let err = DramProbe::new(usize::MAX).unwrap_err();
    assert!(matches!(err, ProbeError::Alloc { .. }), "{err}");
}

#[test]
fn probe_64mib_gives_positive_finite_bandwidth() {
    let probe = DramProbe::new(64 << 20).unwrap();
    assert_eq!(probe.bytes(), 64 << 20);
    let pool = ThreadPool::new(2);
    for threads in [1, 2, 5] {
        let r = probe.measure(&pool, threads, 3);
        eprintln!("{r:?}");
        assert_eq!(r.threads, threads.min(2));
        assert_eq!(r.bytes_per_pass, 64 << 20);
        assert_eq!(r.samples_gbps.len(), 3);
        assert!(r.samples_gbps.iter().all(|g| g.is_finite() && *g > 0.0));
        assert!(r.gbps_best >= r.gbps_median && r.gbps_median > 0.0);
        assert_eq!(r.streams, DramProbe::DEFAULT_STREAMS);
        assert_eq!(r.read_path, ReadPath::detect().name());
    }
    let r = probe.measure_with(&pool, 2, 0, 3, ReadPath::Scalar);
    assert_eq!(
        (r.samples_gbps.len(), r.streams, r.read_path),
        (1, 2, "scalar")
    );
}

#[test]
fn read_paths_agree_on_the_checksum() {
    let probe = DramProbe::new(8 << 20).unwrap();
    let want = probe.checksum(ReadPath::Scalar, 1).unwrap();
    assert_ne!(want, 0);
    for path in ReadPath::ALL {
        for streams in [1, 2, 4, 8, 16] {
            match probe.checksum(path, streams) {
                Some(got) => assert_eq!(got, want, "{path:?} x{streams}"),
                None => {
                    assert!(!path.is_available());
                    eprintln!("{}: skipped, not on this CPU", path.name());
                }
            }
        }
    }
    assert!(ReadPath::detect().is_available());
}

#[test]
fn probe_result_serialises() {
    let probe = DramProbe::new(DramProbe::MIN_BYTES).unwrap();
    let r = probe.measure(&ThreadPool::new(1), 1, 1);
    fn is_serialize<T: serde::Serialize>(_: &T) {}
    is_serialize(&r);
    is_serialize(cpu_info());
}
