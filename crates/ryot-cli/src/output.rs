//! Writing results: atomic JSON files and progress bars.

use std::path::Path;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

/// Writes `value` as pretty JSON to `path` atomically: a temporary file in
/// the same directory, then a rename, so a crash never leaves half a file.
pub fn write_json_atomic(
    path: &Path,
    value: &impl serde::Serialize,
) -> anyhow::Result<()> {
    let text =
        serde_json::to_string_pretty(value).context("serializing JSON")?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(d) = dir {
        std::fs::create_dir_all(d)
            .with_context(|| format!("creating directory {}", d.display()))?;
    }
    let name = path.file_name().context("the JSON path has no file name")?;
    let tmp = path.with_file_name(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, text + "\n")
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::Error::from(e)
            .context(format!("renaming to {}", path.display()))
    })
}

/// A progress bar on stderr for `total` steps (hidden when stderr is not a
/// terminal).
pub fn bar(total: u64) -> ProgressBar {
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb
}
