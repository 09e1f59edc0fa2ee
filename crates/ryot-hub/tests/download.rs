//! End-to-end downloads from a small HTTP server on loopback that serves a
//! file of `../shared/models` the way the hub does (`/resolve/main/`,
//! ranges, `X-Linked-Etag`): a full download, a resumed one, an
//! interrupted one, a checksum mismatch and a missing file.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::thread;

use ryot_hub::{HubError, HubFile, download, part_path, sha256_file};

fn shared_model() -> PathBuf {
    ryot_paths::shared_dir_for(env!("CARGO_MANIFEST_DIR"))
        .join("models/stories260K-q4_0.gguf")
}

#[derive(Clone, Copy)]
enum Mode {
    Good,
    /// Send only the first `n` bytes of the body, then close.
    CutAt(usize),
    /// Advertise a wrong digest.
    WrongEtag,
}

/// Serves `requests` requests, then stops. Returns the base URL.
fn serve(requests: usize, mode: Mode) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let data = std::fs::read(shared_model()).unwrap();
    let sha = sha256_file(&shared_model()).unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut s = stream.unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let path = line.split(' ').nth(1).unwrap_or("").to_string();
            let mut start = 0usize;
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                let lower = h.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("range: bytes=") {
                    start = v.trim().trim_end_matches('-').parse().unwrap();
                }
            }
            if !path.ends_with("/resolve/main/stories.gguf") {
                let _ = s.write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\
                      connection: close\r\n\r\n",
                );
                continue;
            }
            let etag = match mode {
                Mode::WrongEtag => "0".repeat(64),
                _ => sha.clone(),
            };
            let body = &data[start..];
            let status =
                if start > 0 { "206 Partial Content" } else { "200 OK" };
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\n\
                 x-linked-etag: \"{etag}\"\r\nconnection: close\r\n\r\n",
                body.len()
            );
            s.write_all(head.as_bytes()).unwrap();
            let n = match mode {
                Mode::CutAt(n) => n.min(body.len()),
                _ => body.len(),
            };
            let _ = s.write_all(&body[..n]);
        }
    });
    format!("http://{addr}")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir()
        .join(format!("ryot-hub-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn url(base: &str) -> String {
    HubFile::parse("test/repo/stories.gguf").unwrap().url(base)
}

#[test]
fn full_download_checks_the_hub_digest() {
    let d = tmp("full");
    let dest = d.join("m.gguf");
    let mut calls = 0;
    let sha =
        download(&url(&serve(1, Mode::Good)), &dest, None, |_, _| calls += 1)
            .unwrap();
    assert_eq!(sha, sha256_file(&shared_model()).unwrap());
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        std::fs::read(shared_model()).unwrap()
    );
    assert!(!part_path(&dest).exists());
    assert!(calls > 1);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn interrupted_download_leaves_only_a_part_file_and_resumes() {
    let d = tmp("resume");
    let dest = d.join("m.gguf");
    let err =
        download(&url(&serve(1, Mode::CutAt(100_000))), &dest, None, |_, _| {})
            .unwrap_err();
    assert!(matches!(err, HubError::Transfer { .. }), "{err}");
    assert!(!dest.exists(), "no file under the final name");
    assert_eq!(std::fs::metadata(part_path(&dest)).unwrap().len(), 100_000);
    // The rerun asks for the rest with a range request.
    let mut first = None;
    download(&url(&serve(1, Mode::Good)), &dest, None, |done, _| {
        first.get_or_insert(done);
    })
    .unwrap();
    assert_eq!(first, Some(100_000));
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        std::fs::read(shared_model()).unwrap()
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn checksum_mismatch_and_missing_file_are_errors() {
    let d = tmp("bad");
    let dest = d.join("m.gguf");
    let err =
        download(&url(&serve(1, Mode::WrongEtag)), &dest, None, |_, _| {})
            .unwrap_err();
    assert!(matches!(err, HubError::Checksum { .. }), "{err}");
    assert!(!dest.exists() && !part_path(&dest).exists());
    // A caller-given digest is checked too.
    let err = download(
        &url(&serve(1, Mode::Good)),
        &dest,
        Some(&"ab".repeat(32)),
        |_, _| {},
    )
    .unwrap_err();
    assert!(matches!(err, HubError::Checksum { .. }), "{err}");
    let base = serve(1, Mode::Good);
    let missing = HubFile::parse("test/repo/nope.gguf").unwrap().url(&base);
    let err = download(&missing, &dest, None, |_, _| {}).unwrap_err();
    assert!(matches!(err, HubError::Status { status: 404, .. }), "{err}");
    assert!(!dest.exists());
    std::fs::remove_dir_all(&d).unwrap();
}
