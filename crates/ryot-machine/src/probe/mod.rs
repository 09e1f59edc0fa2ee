//! A DRAM read-bandwidth probe: the yardstick kernel figures are shared of.
//!
//! GEMV and decode are DRAM-bound, and the bandwidth of the machines we run
//! on is noisy (bimodal on AMD, see `/work/shared/anchors/machines.md`), so
//! every timed kernel row is bracketed by this probe in the same run.
//!
//! How it reads, per pass:
//!
//! ```text
//! buffer (64-byte lines) = [ thread 0's share | thread 1's share | ... ]
//! each share            = [ s0 | s1 | ... | s(S-1) ]   (S streams)
//! for k in 0..share/S:  for s in 0..S:  acc[s] += line(s, k)
//! ```
//!
//! Each thread reads one contiguous share (as the kernels do), split into
//! `S` contiguous streams read in the same loop. One stream per core cannot
//! saturate DRAM on Intel (too few misses in flight); several can. Loads
//! are the widest the CPU has (AVX-512, AVX2, else `u64`), chosen at run
//! time; the sum is returned through [`std::hint::black_box`] so the reads
//! cannot be optimised away.

mod scalar;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

use ryot_pool::{ThreadPool, split_range};
use serde::Serialize;
use std::collections::TryReserveError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// One cache line of the probe buffer; the alignment lets every path use
/// aligned loads.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Line(pub(crate) [u64; 8]);

const _: () = assert!(size_of::<Line>() == 64 && align_of::<Line>() == 64);

/// Splits `len` lines into `streams` pieces of `m` lines each (stream `s`
/// is `s*m .. (s+1)*m`) plus a tail of fewer than `streams` lines starting
/// at the returned index, read afterwards by one stream.
#[inline(always)]
fn pieces(len: usize, streams: usize) -> (usize, usize) {
    let m = len / streams;
    (m, m * streams)
}

/// Why a [`DramProbe`] could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// The requested buffer is below [`DramProbe::MIN_BYTES`].
    #[error("probe buffer of {bytes} bytes is below the minimum of {min}")]
    TooSmall {
        /// Requested size in bytes.
        bytes: usize,
        /// The minimum, [`DramProbe::MIN_BYTES`].
        min: usize,
    },
    /// The allocator refused the buffer.
    #[error("cannot allocate a probe buffer of {bytes} bytes")]
    Alloc {
        /// Requested size in bytes.
        bytes: usize,
        /// The allocator's error.
        #[source]
        source: TryReserveError,
    },
}

/// Which loads the probe reads with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum ReadPath {
    /// Plain `u64` loads; available everywhere.
    Scalar,
    /// Two 256-bit loads per line; needs AVX2.
    Avx2,
    /// One 512-bit load per line; needs AVX-512F.
    Avx512,
}

impl ReadPath {
    /// Every path, narrowest first.
    pub const ALL: [ReadPath; 3] =
        [ReadPath::Scalar, ReadPath::Avx2, ReadPath::Avx512];

    /// The widest path this CPU supports.
    pub fn detect() -> Self {
        Self::ALL
            .into_iter()
            .rev()
            .find(|p| p.is_available())
            .unwrap_or(Self::Scalar)
    }

    /// Whether this CPU supports the path.
    pub fn is_available(self) -> bool {
        match self {
            ReadPath::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            ReadPath::Avx2 => avx2::is_available(),
            #[cfg(target_arch = "x86_64")]
            ReadPath::Avx512 => avx512::is_available(),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Short lower-case name: `"scalar"`, `"avx2"`, `"avx512"`.
    pub fn name(self) -> &'static str {
        match self {
            ReadPath::Scalar => "scalar",
            ReadPath::Avx2 => "avx2",
            ReadPath::Avx512 => "avx512",
        }
    }

    /// Wrapping `u64` sum of `lines` read as `streams` interleaved pieces,
    /// or `None` if this CPU lacks the path.
    fn sum(self, streams: usize, lines: &[Line]) -> Option<u64> {
        match self {
            ReadPath::Scalar => Some(scalar::sum_streams(streams, lines)),
            #[cfg(target_arch = "x86_64")]
            ReadPath::Avx2 if avx2::is_available() => {
                // SAFETY: AVX2 support was checked just above.
                Some(unsafe { avx2::sum_streams(streams, lines) })
            }
            #[cfg(target_arch = "x86_64")]
            ReadPath::Avx512 if avx512::is_available() => {
                // SAFETY: AVX-512F support was checked just above.
                Some(unsafe { avx512::sum_streams(streams, lines) })
            }
            _ => None,
        }
    }
}

/// Result of [`DramProbe::measure`]: read bandwidth in GB/s (10^9 bytes
/// per second) of whole passes over the buffer.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeResult {
    /// Threads that read, the calling thread included.
    pub threads: usize,
    /// Bytes read per pass (the whole buffer).
    pub bytes_per_pass: usize,
    /// Best pass.
    pub gbps_best: f64,
    /// Median pass.
    pub gbps_median: f64,
    /// Every timed pass, in order.
    pub samples_gbps: Vec<f64>,
    /// Concurrent read streams per thread.
    pub streams: usize,
    /// The loads used ([`ReadPath::name`]).
    pub read_path: &'static str,
}

/// A large buffer, faulted in at creation, to time streaming reads of.
///
/// Only a buffer several times the last-level cache measures DRAM: the
/// default [`DramProbe::DEFAULT_BYTES`] (512 MiB) is, on every machine we
/// know (L3 of 32 and 105 MiB). Smaller buffers, down to
/// [`DramProbe::MIN_BYTES`], are accepted for tests but measure the caches.
pub struct DramProbe {
    /// The buffer; its contents are a fixed, non-zero pattern.
    lines: Vec<Line>,
}

impl std::fmt::Debug for DramProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DramProbe").field("bytes", &self.bytes()).finish()
    }
}

impl DramProbe {
    /// The buffer size for a DRAM measurement: 512 MiB.
    pub const DEFAULT_BYTES: usize = 512 << 20;
    /// The smallest buffer accepted: 1 MiB (a cache measurement).
    pub const MIN_BYTES: usize = 1 << 20;
    /// Streams per thread used by [`measure`](Self::measure).
    pub const DEFAULT_STREAMS: usize = 8;
    /// The largest stream count; see [`measure_with`](Self::measure_with).
    pub const MAX_STREAMS: usize = 16;

    /// Allocates `bytes` (rounded down to 64) and writes every page, so the
    /// pages are really mapped (a never-written buffer would read the
    /// kernel's shared zero page, from cache). Takes a fraction of a
    /// second for 512 MiB.
    pub fn new(bytes: usize) -> Result<Self, ProbeError> {
        if bytes < Self::MIN_BYTES {
            return Err(ProbeError::TooSmall { bytes, min: Self::MIN_BYTES });
        }
        let n = bytes / size_of::<Line>();
        let mut lines = Vec::new();
        lines
            .try_reserve_exact(n)
            .map_err(|source| ProbeError::Alloc { bytes, source })?;
        lines.extend((0..n).map(pattern));
        Ok(DramProbe { lines })
    }

    /// Size of the buffer in bytes.
    pub fn bytes(&self) -> usize {
        self.lines.len() * size_of::<Line>()
    }

    /// Times `passes` reads of the whole buffer (after one untimed warm-up
    /// pass) on `threads` workers of `pool`, with
    /// [`DEFAULT_STREAMS`](Self::DEFAULT_STREAMS) streams per thread and
    /// the widest loads available.
    pub fn measure(
        &self,
        pool: &ThreadPool,
        threads: usize,
        passes: usize,
    ) -> ProbeResult {
        self.measure_with(
            pool,
            threads,
            passes,
            Self::DEFAULT_STREAMS,
            ReadPath::detect(),
        )
    }

    /// [`measure`](Self::measure) with explicit streams per thread and
    /// loads. `threads` is clamped to `1..=pool.threads()`, `passes` to at
    /// least 1, `streams` to a power of two in
    /// `1..=`[`MAX_STREAMS`](Self::MAX_STREAMS) (rounded down); a `path`
    /// this CPU lacks falls back to [`ReadPath::detect`]. The result says
    /// what was used.
    pub fn measure_with(
        &self,
        pool: &ThreadPool,
        threads: usize,
        passes: usize,
        streams: usize,
        path: ReadPath,
    ) -> ProbeResult {
        let threads = threads.clamp(1, pool.threads());
        let streams = normalize_streams(streams);
        let path = if path.is_available() { path } else { ReadPath::detect() };
        let lines = &self.lines[..];
        let sink = AtomicU64::new(0);
        let pass = || {
            let start = Instant::now();
            pool.run(threads, |i, n| {
                // Page-aligned shares (64 lines = 4 KiB).
                let share = &lines[split_range(lines.len(), n, i, 64)];
                let sum = path.sum(streams, share).unwrap_or_default();
                sink.fetch_add(sum, Ordering::Relaxed);
            });
            start.elapsed().as_secs_f64()
        };
        pass();
        let samples_gbps: Vec<f64> = (0..passes.max(1))
            .map(|_| self.bytes() as f64 / pass() / 1e9)
            .collect();
        std::hint::black_box(sink.into_inner());
        let mut sorted = samples_gbps.clone();
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        let gbps_median = if sorted.len() % 2 == 1 {
            sorted[mid]
        } else {
            (sorted[mid - 1] + sorted[mid]) / 2.0
        };
        ProbeResult {
            threads,
            bytes_per_pass: self.bytes(),
            gbps_best: sorted[sorted.len() - 1],
            gbps_median,
            samples_gbps,
            streams,
            read_path: path.name(),
        }
    }

    /// The wrapping `u64` sum of the whole buffer, read on this thread by
    /// `path` with `streams` streams (normalised as in
    /// [`measure_with`](Self::measure_with)), or `None` if this CPU lacks
    /// `path`. Every path and stream count gives the same value; this is
    /// how the read paths are tested against each other.
    pub fn checksum(&self, path: ReadPath, streams: usize) -> Option<u64> {
        path.sum(normalize_streams(streams), &self.lines)
    }
}

/// Clamps to `1..=MAX_STREAMS` and rounds down to a power of two.
fn normalize_streams(streams: usize) -> usize {
    let s = streams.clamp(1, DramProbe::MAX_STREAMS);
    1 << s.ilog2()
}

/// Contents of line `i`: distinct, non-zero words, so a path that skips or
/// repeats a line changes the checksum.
fn pattern(i: usize) -> Line {
    let base = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    Line(std::array::from_fn(|j| (base ^ ((j as u64 + 1) << 56)) | 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_normalise() {
        let got: Vec<usize> = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 100]
            .into_iter()
            .map(normalize_streams)
            .collect();
        assert_eq!(got, [1, 1, 2, 2, 4, 4, 4, 8, 8, 8, 16, 16, 16]);
    }

    #[test]
    fn every_path_and_stream_count_agrees_on_odd_lengths() {
        for len in [0, 1, 2, 7, 15, 16, 17, 63, 64, 65, 1000, 4099] {
            let lines: Vec<Line> = (0..len).map(pattern).collect();
            let want = scalar::sum_lines(&lines);
            for path in ReadPath::ALL {
                for streams in [1, 2, 4, 8, 16] {
                    match path.sum(streams, &lines) {
                        Some(got) => assert_eq!(
                            got, want,
                            "{path:?} streams={streams} len={len}"
                        ),
                        None => {
                            eprintln!("{path:?}: skipped, not on this CPU");
                        }
                    }
                }
            }
        }
    }
}
