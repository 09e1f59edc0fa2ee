//! Test helpers: the shared reference folder.
#![allow(dead_code)]

use std::path::PathBuf;

/// The shared reference folder: `$RYOT_SHARED` or `<workspace>/../shared`.
pub fn shared_dir() -> PathBuf {
    ryot_paths::shared_dir_for(env!("CARGO_MANIFEST_DIR"))
}

/// Decodes a hex string.
pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}
