//! Downloading model files from the Hugging Face Hub (or any server with
//! the same URL layout, `HF_ENDPOINT`): `REPO/FILE` specs and short
//! aliases, resumable transfers into a `.part` file, progress callbacks, a
//! sha256 check against the hub's `X-Linked-Etag` (or a digest the caller
//! gives), and an atomic rename into place, so no partial file ever sits
//! under the final name.
#![deny(missing_docs)]

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Default hub address; `HF_ENDPOINT` overrides it.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Short names for common GGUF files.
pub const ALIASES: [(&str, &str); 3] = [
    (
        "smollm2-135m",
        "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/smollm2-135m-instruct-q8_0.gguf",
    ),
    (
        "qwen2.5-0.5b-instruct",
        "Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf",
    ),
    (
        "qwen2.5-0.5b",
        "Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf",
    ),
];

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// The spec is neither an alias nor `owner/name/file`.
    #[error(
        "bad model spec {0:?}: expected OWNER/REPO/FILE (e.g. \
         Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf) \
         or an alias ({aliases})",
        aliases = alias_names()
    )]
    BadSpec(String),
    /// The server answered with an error status.
    #[error("{url}: HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The connection failed or broke.
    #[error("{url}: {msg} (a rerun resumes from the partial file)")]
    Transfer {
        /// The URL.
        url: String,
        /// What went wrong.
        msg: String,
    },
    /// The file's digest is not the expected one.
    #[error(
        "sha256 mismatch for {path}: expected {expected}, got {got}; the \
         download was discarded"
    )]
    Checksum {
        /// Where it was going.
        path: String,
        /// Expected digest.
        expected: String,
        /// Actual digest.
        got: String,
    },
    /// A local file operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn alias_names() -> String {
    ALIASES.iter().map(|a| a.0).collect::<Vec<_>>().join(", ")
}

/// A file on the hub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubFile {
    /// `owner/name`.
    pub repo: String,
    /// Path inside the repository.
    pub file: String,
}

impl HubFile {
    /// Parses an alias or `OWNER/REPO/FILE`.
    pub fn parse(spec: &str) -> Result<HubFile, HubError> {
        let spec = ALIASES.iter().find(|a| a.0 == spec).map_or(spec, |a| a.1);
        let mut parts = spec.splitn(3, '/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(o), Some(n), Some(f))
                if !o.is_empty()
                    && !n.is_empty()
                    && !f.is_empty()
                    && !f.split('/').any(|c| c == ".." || c.is_empty()) =>
            {
                Ok(HubFile { repo: format!("{o}/{n}"), file: f.to_string() })
            }
            _ => Err(HubError::BadSpec(spec.to_string())),
        }
    }

    /// The download URL at `endpoint`.
    pub fn url(&self, endpoint: &str) -> String {
        format!(
            "{}/{}/resolve/main/{}",
            endpoint.trim_end_matches('/'),
            self.repo,
            self.file
        )
    }

    /// Where the file is stored under `home`.
    pub fn local_path(&self, home: &Path) -> PathBuf {
        home.join("models").join(&self.repo).join(&self.file)
    }
}

/// The hub endpoint: `$HF_ENDPOINT` or [`DEFAULT_ENDPOINT`].
pub fn endpoint() -> String {
    std::env::var("HF_ENDPOINT").unwrap_or_else(|_| DEFAULT_ENDPOINT.into())
}

/// Downloads `url` to `dest`: bytes go to `dest.part` (resumed with an
/// HTTP range request if it exists), then the sha256 is checked against
/// `expected` or the server's `X-Linked-Etag`, then the file is renamed to
/// `dest`. `progress(done, total)` is called as bytes arrive (`total` 0 if
/// unknown). Returns the file's sha256 (hex).
pub fn download(
    url: &str,
    dest: &Path,
    expected: Option<&str>,
    mut progress: impl FnMut(u64, u64),
) -> Result<String, HubError> {
    let io = |what, path: &Path| {
        let path = path.display().to_string();
        move |source| HubError::Io { what, path, source }
    };
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
    }
    let part = part_path(dest);
    let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.get(url);
    if have > 0 {
        req = req.header("Range", &format!("bytes={have}-"));
    }
    let transfer = |e: ureq::Error| HubError::Transfer {
        url: url.to_string(),
        msg: e.to_string(),
    };
    let resp = req.call().map_err(transfer)?;
    let status = resp.status().as_u16();
    let header = |k: &str| {
        resp.headers().get(k).and_then(|v| v.to_str().ok()).map(String::from)
    };
    let linked = header("x-linked-etag").or_else(|| header("etag"));
    let server_sha = linked
        .map(|e| e.trim_matches('"').trim_start_matches("W/").to_string())
        .filter(|e| e.len() == 64 && e.bytes().all(|b| b.is_ascii_hexdigit()));
    let len: u64 =
        header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let (mut file, mut done, total) = match status {
        206 => {
            let f = OpenOptions::new()
                .append(true)
                .open(&part)
                .map_err(io("opening", &part))?;
            (f, have, have + len)
        }
        200 => {
            let f = File::create(&part).map_err(io("creating", &part))?;
            (f, 0, len)
        }
        416 if have > 0 => {
            // The partial file is already complete.
            let f = OpenOptions::new()
                .append(true)
                .open(&part)
                .map_err(io("opening", &part))?;
            (f, have, have)
        }
        s => return Err(HubError::Status { url: url.to_string(), status: s }),
    };
    progress(done, total);
    if status != 416 {
        let mut body = resp.into_body().into_reader();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = body.read(&mut buf).map_err(|e| HubError::Transfer {
                url: url.to_string(),
                msg: e.to_string(),
            })?;
            if n == 0 {
                break;
            }
            file.write_all(&buf[..n]).map_err(io("writing", &part))?;
            done += n as u64;
            progress(done, total);
        }
    }
    file.sync_all().map_err(io("syncing", &part))?;
    drop(file);
    if total > 0 && done != total {
        return Err(HubError::Transfer {
            url: url.to_string(),
            msg: format!("connection closed after {done} of {total} bytes"),
        });
    }
    let got = sha256_file(&part)?;
    let want = expected.map(|s| s.to_ascii_lowercase()).or(server_sha);
    if let Some(want) = want
        && want != got
    {
        let _ = std::fs::remove_file(&part);
        return Err(HubError::Checksum {
            path: dest.display().to_string(),
            expected: want,
            got,
        });
    }
    std::fs::rename(&part, dest).map_err(io("renaming", dest))?;
    Ok(got)
}

/// `<dest>.part`.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// The sha256 of a file, as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, HubError> {
    let mut f = File::open(path).map_err(|source| HubError::Io {
        what: "reading",
        path: path.display().to_string(),
        source,
    })?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|source| HubError::Io {
            what: "reading",
            path: path.display().to_string(),
            source,
        })?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_aliases() {
        let f = HubFile::parse("a/b/c/d.gguf").unwrap();
        assert_eq!(f.repo, "a/b");
        assert_eq!(f.file, "c/d.gguf");
        assert_eq!(f.url("http://x/"), "http://x/a/b/resolve/main/c/d.gguf");
        assert!(HubFile::parse("smollm2-135m").is_ok());
        for bad in ["", "a", "a/b", "a/b/", "a/b/../x", "/b/c"] {
            assert!(HubFile::parse(bad).is_err(), "{bad}");
        }
    }
}
