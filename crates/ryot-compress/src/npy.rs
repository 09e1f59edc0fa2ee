//! Reading and writing `.npy` arrays (format versions 1-3): little-endian
//! C-order `float32` (`<f4`) and `int32` (`<i4`) of rank 1 or 2. Anything
//! else is a typed error naming what was found. Writes are atomic.

use std::path::Path;

use crate::error::{Error, Result};
use crate::matrix::Matrix;

const MAGIC: &[u8] = b"\x93NUMPY";

/// A parsed `.npy` header.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    /// The dtype string, e.g. `<f4`.
    pub descr: String,
    /// Whether the data are in Fortran order.
    pub fortran_order: bool,
    /// The shape.
    pub shape: Vec<usize>,
    /// Byte offset of the data.
    pub data_offset: usize,
}

/// Parses the header of a `.npy` file held in `bytes`.
pub fn parse_header(bytes: &[u8], path: &Path) -> Result<Header> {
    let bad = |msg: String| Error::Npy { path: path.to_path_buf(), msg };
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad("missing the \\x93NUMPY magic".into()));
    }
    let major = bytes[6];
    let (hlen, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(bad("header truncated".into()));
            }
            let l =
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            (l as usize, 12)
        }
        v => return Err(bad(format!("unknown format version {v}"))),
    };
    let end = start + hlen;
    if bytes.len() < end {
        return Err(bad("header truncated".into()));
    }
    let text = std::str::from_utf8(&bytes[start..end])
        .map_err(|_| bad("header is not UTF-8".into()))?;
    let descr = dict_value(text, "descr")
        .map(|v| v.trim_matches(['\'', '"']).to_string())
        .ok_or_else(|| bad("header has no 'descr'".into()))?;
    let fortran_order = match dict_value(text, "fortran_order") {
        Some("True") => true,
        Some("False") => false,
        _ => return Err(bad("header has no valid 'fortran_order'".into())),
    };
    let shape_txt = dict_value(text, "shape")
        .ok_or_else(|| bad("header has no 'shape'".into()))?;
    let inner = shape_txt
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| bad(format!("bad shape {shape_txt}")))?;
    let mut shape = Vec::new();
    for p in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        shape.push(
            p.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| bad(format!("bad shape {shape_txt}")))?,
        );
    }
    Ok(Header { descr, fortran_order, shape, data_offset: end })
}

/// The value text of `key` in a Python dict literal (no nesting beyond a
/// tuple, which is all `.npy` headers use).
fn dict_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let pat1 = format!("'{key}':");
    let pat2 = format!("\"{key}\":");
    let at = text
        .find(&pat1)
        .map(|i| i + pat1.len())
        .or_else(|| text.find(&pat2).map(|i| i + pat2.len()))?;
    let rest = text[at..].trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    Some(rest[..end].trim())
}

fn read_2d(path: &Path, want: &str) -> Result<(usize, usize, Vec<u8>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let h = parse_header(&bytes, path)?;
    let bad = |msg: String| Error::Npy { path: path.to_path_buf(), msg };
    if h.descr != want {
        return Err(bad(format!(
            "dtype {:?}, expected {want:?} (little-endian {})",
            h.descr,
            if want == "<f4" { "float32" } else { "int32" }
        )));
    }
    if h.fortran_order {
        return Err(bad("Fortran order; save with C order".into()));
    }
    let (rows, cols) = match h.shape.as_slice() {
        [n] => (1, *n),
        [r, c] => (*r, *c),
        s => {
            return Err(bad(format!(
                "rank {} (shape {s:?}); need 1 or 2",
                s.len()
            )));
        }
    };
    let need = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(4))
        .ok_or_else(|| bad("shape overflows".into()))?;
    let data = &bytes[h.data_offset..];
    if data.len() != need {
        return Err(bad(format!(
            "data has {} bytes, shape {:?} needs {need}",
            data.len(),
            h.shape
        )));
    }
    Ok((rows, cols, data.to_vec()))
}

/// Reads a float32 matrix (`<f4`, C order; rank 1 is one row).
pub fn read_f32(path: impl AsRef<Path>) -> Result<Matrix> {
    let (rows, cols, raw) = read_2d(path.as_ref(), "<f4")?;
    let data = raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Matrix::new(rows, cols, data)
}

/// Reads an int32 matrix (`<i4`, C order) as rows of `i32`.
pub fn read_i32(path: impl AsRef<Path>) -> Result<(usize, usize, Vec<i32>)> {
    let (rows, cols, raw) = read_2d(path.as_ref(), "<i4")?;
    let data = raw
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((rows, cols, data))
}

fn header_bytes(descr: &str, shape: &[usize]) -> Vec<u8> {
    let shape_txt = match shape {
        [n] => format!("({n},)"),
        s => format!(
            "({})",
            s.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
        ),
    };
    let mut dict = format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_txt}, }}"
    );
    // Pad so that magic + len + dict + '\n' is a multiple of 64.
    let total = 10 + dict.len() + 1;
    dict.extend(std::iter::repeat_n(' ', (64 - total % 64) % 64));
    dict.push('\n');
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Writes a float32 matrix as a 2-d `.npy` file, atomically.
pub fn write_f32(path: impl AsRef<Path>, m: &Matrix) -> Result<()> {
    let mut out = header_bytes("<f4", &[m.rows, m.dim]);
    out.reserve(m.data.len() * 4);
    for v in &m.data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    write_atomic(path.as_ref(), &out)
}

/// Writes an int32 matrix as a 2-d `.npy` file, atomically.
pub fn write_i32(
    path: impl AsRef<Path>,
    rows: usize,
    cols: usize,
    data: &[i32],
) -> Result<()> {
    if rows * cols != data.len() {
        return Err(Error::Shape(format!(
            "{} values cannot form {rows} x {cols}",
            data.len()
        )));
    }
    let mut out = header_bytes("<i4", &[rows, cols]);
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    write_atomic(path.as_ref(), &out)
}

/// Writes `bytes` to a temporary file next to `path`, syncs it, then
/// renames it over `path`; on failure the temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let name = path.file_name().ok_or_else(|| {
        Error::Invalid(format!("{} has no file name", path.display()))
    })?;
    let tmp = path.with_file_name(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    res.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let dir = std::env::temp_dir()
            .join(format!("ryc-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.npy");
        let m = Matrix::new(2, 3, vec![1., 2., 3., 4., 5., 6.5]).unwrap();
        write_f32(&p, &m).unwrap();
        assert_eq!(read_f32(&p).unwrap(), m);
        assert!(matches!(read_i32(&p), Err(Error::Npy { .. })));
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 2]).unwrap();
        assert!(matches!(read_f32(&p), Err(Error::Npy { .. })));
        std::fs::write(&p, b"hello").unwrap();
        assert!(matches!(read_f32(&p), Err(Error::Npy { .. })));
        let mut f = bytes.clone();
        let off = parse_header(&f, &p).unwrap().data_offset;
        let s = std::str::from_utf8(&f[10..off]).unwrap();
        let s = s.replace("False", "True ");
        f[10..off].copy_from_slice(s.as_bytes());
        std::fs::write(&p, &f).unwrap();
        assert!(matches!(read_f32(&p), Err(Error::Npy { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
