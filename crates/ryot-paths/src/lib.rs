//! Where Ryot's files live.
//!
//! - [`ryot_home`]: caches, tuning files and downloaded models,
//!   `$RYOT_HOME` or `~/.cache/ryot`.
//! - [`shared_dir`]: the read-only reference data (goldens, models, data
//!   sets) that tests and benchmarks read, `$RYOT_SHARED` or the `shared`
//!   folder beside the workspace.
#![deny(missing_docs)]

use std::path::{Path, PathBuf};

/// The environment variable that overrides [`ryot_home`].
pub const HOME_ENV: &str = "RYOT_HOME";
/// The environment variable that overrides [`shared_dir`].
pub const SHARED_ENV: &str = "RYOT_SHARED";

/// The directory Ryot keeps caches and models in: `$RYOT_HOME`, else
/// `~/.cache/ryot`.
pub fn ryot_home() -> PathBuf {
    if let Some(h) = std::env::var_os(HOME_ENV) {
        return PathBuf::from(h);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    home.join(".cache").join("ryot")
}

/// The shared reference folder: `$RYOT_SHARED`, else `../shared` from the
/// current directory (the workspace root, where the README's commands
/// run).
pub fn shared_dir() -> PathBuf {
    std::env::var_os(SHARED_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared"))
}

/// The shared reference folder for a test or benchmark of the crate at
/// `manifest_dir` (pass `env!("CARGO_MANIFEST_DIR")`): `$RYOT_SHARED`, else
/// `<workspace>/../shared`, with crates at `<workspace>/crates/<name>`.
///
/// # Panics
/// If the folder does not exist (tests cannot run without it; the message
/// says how to point at it).
pub fn shared_dir_for(manifest_dir: &str) -> PathBuf {
    let dir = std::env::var_os(SHARED_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(manifest_dir).join("../../../shared"));
    assert!(
        dir.is_dir(),
        "shared reference data not found at {} (set {SHARED_ENV})",
        dir.display()
    );
    dir
}
