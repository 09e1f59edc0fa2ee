//! Test helpers: the shared reference folder.
#![allow(dead_code)]

use std::path::PathBuf;

/// The shared reference folder: `$RYOT_SHARED` or `<workspace>/../shared`.
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("RYOT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
        });
    assert!(
        dir.join("golden/tokenizer").is_dir(),
        "shared reference data not found at {} (set RYOT_SHARED)",
        dir.display()
    );
    dir
}

/// Decodes a hex string.
pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}
