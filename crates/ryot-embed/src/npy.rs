//! Reading and writing 2-D little-endian f32 `.npy` files (NumPy format
//! 1.0), the format sentence-transformers vectors are usually kept in.

use std::io::Write;
use std::path::Path;

use crate::error::EmbedError;

const MAGIC: &[u8] = b"\x93NUMPY";

/// A row-major f32 matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// `rows * cols` values.
    pub data: Vec<f32>,
}

impl Matrix {
    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
}

/// Reads a 2-D `<f4` C-order `.npy` file.
pub fn read_f32(path: &Path) -> Result<Matrix, EmbedError> {
    let bytes = std::fs::read(path).map_err(|e| EmbedError::io(path, e))?;
    let bad = |m: &str| EmbedError::corrupt(path, format!("npy: {m}"));
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad("not a .npy file"));
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]])
                as usize,
            12,
        ),
        _ => return Err(bad("unsupported format version")),
    };
    let header = bytes
        .get(start..start + hlen)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| bad("truncated header"))?;
    let compact: String =
        header.chars().filter(|c| !c.is_whitespace()).collect();
    if !compact.contains("'descr':'<f4'") {
        return Err(bad("dtype is not little-endian float32 ('<f4')"));
    }
    if !compact.contains("'fortran_order':False") {
        return Err(bad("Fortran order is not supported"));
    }
    let shape = compact
        .split_once("'shape':(")
        .and_then(|(_, r)| r.split_once(')'))
        .map(|(s, _)| s)
        .ok_or_else(|| bad("no shape"))?;
    let dims: Vec<usize> = shape
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| bad("bad shape")))
        .collect::<Result<_, _>>()?;
    let [rows, cols] = dims[..] else {
        return Err(bad("not a 2-D array"));
    };
    let body = &bytes[start + hlen..];
    let want = rows.checked_mul(cols).and_then(|n| n.checked_mul(4));
    if want != Some(body.len()) {
        return Err(bad(&format!(
            "shape ({rows}, {cols}) needs {want:?} data bytes, file has {}",
            body.len()
        )));
    }
    let data = body
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(Matrix { rows, cols, data })
}

/// Encodes a `rows x cols` f32 matrix as `.npy` bytes.
pub fn encode_f32(data: &[f32], rows: usize, cols: usize) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}"
    );
    // Magic (6) + version (2) + length (2) + dict + padding + '\n' is a
    // multiple of 64.
    let unpadded = 10 + dict.len() + 1;
    let pad = unpadded.next_multiple_of(64) - unpadded;
    let hlen = dict.len() + pad + 1;
    let mut out = Vec::with_capacity(10 + hlen + data.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(hlen as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', pad));
    out.push(b'\n');
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Writes a `rows x cols` f32 matrix to `path` atomically (a temporary
/// file in the same folder, then a rename).
pub fn write_f32(
    path: &Path,
    data: &[f32],
    rows: usize,
    cols: usize,
) -> Result<(), EmbedError> {
    if data.len() != rows.saturating_mul(cols) {
        return Err(EmbedError::invalid(format!(
            "npy: {} values do not make a {rows} x {cols} matrix",
            data.len()
        )));
    }
    write_atomic(path, &encode_f32(data, rows, cols))
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), EmbedError> {
    let name = path
        .file_name()
        .ok_or_else(|| EmbedError::invalid("output path has no file name"))?;
    let tmp = path.with_file_name(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        EmbedError::io(path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = std::env::temp_dir()
            .join(format!("ryot-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("m.npy");
        let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 1.0).collect();
        write_f32(&p, &data, 3, 4).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let m = read_f32(&p).unwrap();
        assert_eq!((m.rows, m.cols), (3, 4));
        assert_eq!(m.data, data);
        std::fs::write(&p, &bytes[..bytes.len() - 1]).unwrap();
        assert!(read_f32(&p).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
