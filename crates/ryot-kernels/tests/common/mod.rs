//! Shared helpers for the kernel tests: a seeded generator, golden-file
//! access and packers that write ternary formats from codes.
#![allow(dead_code)]

use std::path::PathBuf;

use ryot_kernels::SimdLevel;
use ryot_kernels::tune::{self, TuneParams};
use ryot_pool::ThreadPool;

/// SplitMix64: a tiny seeded generator, so inputs are reproducible.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    /// Roughly normal (sum of 4 uniforms), scaled.
    pub fn normal(&mut self) -> f32 {
        (self.unit() + self.unit() + self.unit() + self.unit()) * 0.866
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.normal()).collect()
    }
    pub fn codes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.below(3) as u8).collect()
    }
}

/// The shared reference folder: `$RYOT_SHARED` or `<workspace>/../shared`.
pub fn shared_dir() -> PathBuf {
    ryot_paths::shared_dir_for(env!("CARGO_MANIFEST_DIR"))
}

pub fn read_golden(name: &str) -> Vec<u8> {
    let p = shared_dir().join("golden/quants").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The SIMD levels this CPU can run, printing the ones it skips.
pub fn levels() -> Vec<SimdLevel> {
    SimdLevel::ALL
        .into_iter()
        .filter(|l| {
            let ok = l.is_available();
            if !ok {
                eprintln!("skipped: {l} is not available on this CPU");
            }
            ok
        })
        .collect()
}

/// Packs one TQ2_0 block from 256 codes and a scale.
pub fn pack_tq2_0_block(codes: &[u8], d: half::f16, out: &mut Vec<u8>) {
    let mut qs = [0u8; 64];
    for (e, &c) in codes.iter().enumerate() {
        qs[(e / 128) * 32 + e % 32] |= c << (2 * ((e % 128) / 32));
    }
    out.extend_from_slice(&qs);
    out.extend_from_slice(&d.to_le_bytes());
}

/// Packs an I2_S tensor from `m*k` codes and a scale.
pub fn pack_i2s(codes: &[u8], scale: f32) -> Vec<u8> {
    let mut out = vec![0u8; codes.len() / 4 + 32];
    for (e, &c) in codes.iter().enumerate() {
        let o = e % 128;
        out[(e / 128) * 32 + o % 32] |= c << (6 - 2 * (o / 32));
    }
    let n = codes.len() / 4;
    out[n..n + 4].copy_from_slice(&scale.to_le_bytes());
    out
}

/// A shared 3-worker pool. Its first use lets every matrix use all
/// threads (small test matrices would otherwise run on one), so thread
/// splits are really exercised.
pub fn pool() -> &'static ThreadPool {
    static POOL: std::sync::OnceLock<ThreadPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let mut p = TuneParams::defaults(ryot_kernels::isa::level());
        p.min_bytes_per_thread = 1;
        tune::set_override(Some(p));
        ThreadPool::new(3)
    })
}

/// The bit patterns of `v`, for exact comparisons with readable diffs.
pub fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}
