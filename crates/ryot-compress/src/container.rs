//! The file container shared by codec (`.ryc`) and index (`.ryi`) files:
//!
//! ```text
//! offset 0   8 bytes  magic "RYOTCMP\0"
//!        8   u32      format version (1 or 2; this build writes 2)
//!       12   u32      kind: 1 = codec, 2 = index
//!       16   u64      payload length in bytes
//!       24   32 bytes SHA-256 of the payload
//!       56   payload
//! ```
//!
//! All integers little-endian. Files are written atomically (temporary
//! file, then rename). Reading checks magic, version, length and checksum
//! before anything in the payload is trusted.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::npy::write_atomic;

/// File magic.
pub const MAGIC: &[u8; 8] = b"RYOTCMP\0";
/// The format version this build writes (it reads 1 and 2). Version 2
/// changed only the index payload (see [`crate::index`]).
pub const VERSION: u32 = 2;
/// Header length in bytes.
pub const HEADER: usize = 56;

/// What a container holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A trained pipeline only.
    Codec = 1,
    /// A pipeline with codes, ids and an optional rescoring tier.
    Index = 2,
}

/// The header plus payload bytes for `payload`.
pub fn build(kind: Kind, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(kind as u32).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(payload));
    out.extend_from_slice(payload);
    out
}

/// Writes a container atomically.
pub fn write(path: &Path, kind: Kind, payload: &[u8]) -> Result<()> {
    write_atomic(path, &build(kind, payload))
}

/// Checks a whole file image and returns the payload range.
pub fn check(bytes: &[u8], want: Kind) -> Result<std::ops::Range<usize>> {
    if bytes.len() < HEADER {
        if bytes.len() >= 8 && &bytes[..8] != MAGIC {
            return Err(Error::Corrupt("not a ryot-compress file".into()));
        }
        return Err(Error::Truncated(format!(
            "{} bytes, the header alone is {HEADER}",
            bytes.len()
        )));
    }
    if &bytes[..8] != MAGIC {
        return Err(Error::Corrupt("not a ryot-compress file (magic)".into()));
    }
    let u32_at = |o: usize| {
        u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]])
    };
    let version = u32_at(8);
    if version == 0 || version > VERSION {
        return Err(Error::Version { found: version, supported: VERSION });
    }
    let kind = u32_at(12);
    if kind != want as u32 {
        return Err(Error::Corrupt(format!(
            "this is {} file, expected {} file",
            kind_name(kind),
            kind_name(want as u32)
        )));
    }
    let mut l = [0u8; 8];
    l.copy_from_slice(&bytes[16..24]);
    let len = u64::from_le_bytes(l);
    let have = (bytes.len() - HEADER) as u64;
    if len > have {
        return Err(Error::Truncated(format!(
            "payload should be {len} bytes, only {have} present"
        )));
    }
    if len < have {
        return Err(Error::Corrupt(format!(
            "{} trailing bytes after the payload",
            have - len
        )));
    }
    let range = HEADER..bytes.len();
    let digest = Sha256::digest(&bytes[range.clone()]);
    if digest.as_slice() != &bytes[24..56] {
        return Err(Error::Corrupt("checksum mismatch".into()));
    }
    Ok(range)
}

/// The format version of a file image already accepted by [`check`].
pub fn version(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]])
}

fn kind_name(k: u32) -> &'static str {
    match k {
        1 => "a codec",
        2 => "an index",
        _ => "an unknown",
    }
}

/// Reads a file and returns its payload.
pub fn read(path: &Path, want: Kind) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let r = check(&bytes, want)?;
    Ok(bytes[r].to_vec())
}
