//! 2-D little-endian f32 `.npy` files (NumPy format 1.0), the format
//! sentence-transformers vectors are usually kept in: a thin layer over
//! `ryot_compress::npy` (one reader and writer for the workspace) that
//! reports errors as [`EmbedError`]s.

use std::path::Path;

use ryot_compress::Error as NpyError;

use crate::error::EmbedError;

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

fn convert(path: &Path, e: NpyError) -> EmbedError {
    match e {
        NpyError::Io { path, source } => EmbedError::io(path, source),
        NpyError::Npy { path, msg } => {
            EmbedError::corrupt(path, format!("npy: {msg}"))
        }
        other => EmbedError::corrupt(path, format!("npy: {other}")),
    }
}

/// Reads a 2-D `<f4` C-order `.npy` file.
pub fn read_f32(path: &Path) -> Result<Matrix, EmbedError> {
    let m = ryot_compress::npy::read_f32(path).map_err(|e| convert(path, e))?;
    Ok(Matrix { rows: m.rows, cols: m.dim, data: m.data })
}

/// Writes a `rows x cols` f32 matrix to `path` atomically (a temporary
/// file in the same folder, then a rename).
pub fn write_f32(
    path: &Path,
    data: &[f32],
    rows: usize,
    cols: usize,
) -> Result<(), EmbedError> {
    let m = ryot_compress::Matrix::new(rows, cols, data.to_vec())
        .map_err(|e| EmbedError::invalid(format!("npy: {e}")))?;
    ryot_compress::npy::write_f32(path, &m).map_err(|e| convert(path, e))
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), EmbedError> {
    ryot_compress::npy::write_atomic(path, bytes).map_err(|e| match e {
        NpyError::Io { path, source } => EmbedError::io(path, source),
        other => EmbedError::invalid(other.to_string()),
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
        assert!(write_f32(&p, &data, 5, 4).is_err());
        std::fs::write(&p, &bytes[..bytes.len() - 1]).unwrap();
        assert!(read_f32(&p).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
