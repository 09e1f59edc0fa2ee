//! Tunable kernel parameters, persisted per CPU by `ryot tune`.
//!
//! The kernels read [`params`] once per process: the file written by the
//! tuner for this CPU when it exists and parses, the defaults otherwise.
//! The file lives at `$RYOT_TUNE_FILE`, or else
//! `$RYOT_HOME/tune/<cpu-key>.json` (`RYOT_HOME` defaults to
//! `~/.cache/ryot`), where the key names the CPU model and its features, so
//! a machine that changes CPU never reads another CPU's choice.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::isa::{self, SimdLevel};

/// Parameters the tuner chooses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TuneParams {
    /// Panels (16 rows each) a t2p GEMV walks at once: 1, 2 or 4. More
    /// panels mean more concurrent row streams and more accumulators.
    pub t2p_gemv_panels: usize,
    /// How many 64-byte lines ahead a t2p GEMV prefetches each panel
    /// stream (0: rely on the hardware prefetcher alone).
    #[serde(default)]
    pub t2p_prefetch_lines: usize,
    /// Weight bytes times tokens each thread should have at least before
    /// another thread joins: small matrices (in GEMVs and short batches)
    /// run on fewer threads, where waking a worker costs more than it
    /// saves.
    pub min_bytes_per_thread: usize,
}

impl TuneParams {
    /// The defaults for a SIMD level, used when no tuned file exists.
    pub fn defaults(level: SimdLevel) -> Self {
        TuneParams {
            // Measured on Zen 3 (AVX2): one panel at a time with a long
            // prefetch distance streams best (docs/bench-*.md); AVX-512 is
            // unmeasured.
            t2p_gemv_panels: if level >= SimdLevel::Avx512 { 4 } else { 1 },
            t2p_prefetch_lines: 128,
            min_bytes_per_thread: 32 * 1024,
        }
    }

    /// Clamps every field into its valid range.
    pub fn sanitized(mut self) -> Self {
        self.t2p_prefetch_lines = self.t2p_prefetch_lines.min(256);
        self.t2p_gemv_panels = match self.t2p_gemv_panels {
            0 | 1 => 1,
            2 | 3 => 2,
            _ => 4,
        };
        self
    }
}

/// What the tuner writes: the parameters and the facts they were measured
/// under.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TuneFile {
    /// The CPU key the file belongs to.
    pub cpu_key: String,
    /// The SIMD level measured.
    pub isa: String,
    /// The chosen parameters.
    pub params: TuneParams,
    /// Free-form measurement notes (timings per candidate).
    #[serde(default)]
    pub measurements: serde_json::Value,
}

pub use ryot_paths::ryot_home;

/// Where this CPU's tuning file is read from and written to.
pub fn tune_path() -> PathBuf {
    if let Some(p) = std::env::var_os("RYOT_TUNE_FILE") {
        return PathBuf::from(p);
    }
    let key = ryot_machine::cpu_info().cache_key();
    ryot_home().join("tune").join(format!("{key}.json"))
}

/// Reads a tuning file; `None` if it is missing, unreadable, malformed or
/// for another CPU.
pub fn load(path: &Path) -> Option<TuneFile> {
    let text = std::fs::read_to_string(path).ok()?;
    let file: TuneFile = serde_json::from_str(&text).ok()?;
    (file.cpu_key == ryot_machine::cpu_info().cache_key()).then_some(file)
}

/// Writes a tuning file atomically (temporary file, then rename).
pub fn save(path: &Path, file: &TuneFile) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let text =
        serde_json::to_string_pretty(file).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// The parameters kernels use: the tuned file's when present and made at
/// the current SIMD level, the defaults otherwise.
pub fn params() -> &'static TuneParams {
    static PARAMS: OnceLock<TuneParams> = OnceLock::new();
    PARAMS.get_or_init(|| {
        let level = isa::level();
        match load(&tune_path()) {
            Some(f) if f.isa == level.name() => f.params.sanitized(),
            _ => TuneParams::defaults(level),
        }
    })
}

static OVERRIDE: std::sync::Mutex<Option<TuneParams>> =
    std::sync::Mutex::new(None);

/// Replaces the parameters for the whole process until reset with `None`
/// (the tuner and the benchmark try candidates this way).
pub fn set_override(p: Option<TuneParams>) {
    *OVERRIDE.lock().unwrap_or_else(|e| e.into_inner()) =
        p.map(TuneParams::sanitized);
}

/// The parameters in force now: an override if one is set, else
/// [`params`].
pub fn current() -> TuneParams {
    let o = *OVERRIDE.lock().unwrap_or_else(|e| e.into_inner());
    o.unwrap_or_else(|| *params())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_load_round_trips_and_rejects_other_cpus() {
        let dir = std::env::temp_dir()
            .join(format!("ryot-tune-{}", std::process::id()));
        let path = dir.join("t.json");
        let file = TuneFile {
            cpu_key: ryot_machine::cpu_info().cache_key(),
            isa: "avx2".into(),
            params: TuneParams {
                t2p_gemv_panels: 4,
                t2p_prefetch_lines: 8,
                min_bytes_per_thread: 1,
            },
            measurements: serde_json::Value::Null,
        };
        save(&path, &file).unwrap();
        assert_eq!(load(&path).unwrap().params, file.params);
        let other = TuneFile { cpu_key: "other-cpu".into(), ..file };
        save(&path, &other).unwrap();
        assert!(load(&path).is_none());
        std::fs::write(&path, "{not json").unwrap();
        assert!(load(&path).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sanitize_clamps() {
        let p = TuneParams {
            t2p_gemv_panels: 0,
            t2p_prefetch_lines: 1000,
            min_bytes_per_thread: 0,
        };
        assert_eq!(p.sanitized().t2p_gemv_panels, 1);
        assert_eq!(p.sanitized().t2p_prefetch_lines, 256);
        let p = TuneParams { t2p_gemv_panels: 9, ..p };
        assert_eq!(p.sanitized().t2p_gemv_panels, 4);
    }
}
