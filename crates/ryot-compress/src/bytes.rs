//! Little-endian serialisation helpers with bounds-checked reads, so a
//! truncated or corrupt file is an error, never a panic.

use crate::error::{Error, Result};
use crate::matrix::Matrix;

/// Appends little-endian values to a byte buffer.
#[derive(Default, Debug)]
pub struct Writer {
    /// The bytes written so far.
    pub buf: Vec<u8>,
}

impl Writer {
    /// Appends a u32.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends a u64.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends an f32.
    pub fn f32(&mut self, v: f32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends a length-prefixed string.
    pub fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
    }
    /// Appends a length-prefixed f32 slice.
    pub fn f32s(&mut self, v: &[f32]) {
        self.u64(v.len() as u64);
        for x in v {
            self.f32(*x);
        }
    }
    /// Appends a matrix (rows, dim, values).
    pub fn matrix(&mut self, m: &Matrix) {
        self.u64(m.rows as u64);
        self.u64(m.dim as u64);
        for x in &m.data {
            self.f32(*x);
        }
    }
    /// Appends length-prefixed raw bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.buf.extend_from_slice(b);
    }
}

/// Reads little-endian values from a byte slice, failing cleanly at its
/// end.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.remaining() < n {
            return Err(Error::Truncated(format!(
                "need {n} bytes at offset {}, only {} left",
                self.pos,
                self.remaining()
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    /// Reads a u32.
    pub fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// Reads a u64.
    pub fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    /// Reads a u64 used as a length or count, bounded by what is left.
    pub fn len(&mut self, elem_bytes: usize) -> Result<usize> {
        let n = self.u64()?;
        let max = (self.remaining() / elem_bytes.max(1)) as u64;
        if n > max {
            return Err(Error::Truncated(format!(
                "a length of {n} items exceeds the {} bytes left",
                self.remaining()
            )));
        }
        Ok(n as usize)
    }
    /// Reads an f32.
    pub fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_bits(self.u32()?))
    }
    /// Reads a length-prefixed string.
    pub fn str(&mut self) -> Result<String> {
        let n = self.u32()? as usize;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec())
            .map_err(|_| Error::Corrupt("a string is not UTF-8".into()))
    }
    /// Reads a length-prefixed f32 slice.
    pub fn f32s(&mut self) -> Result<Vec<f32>> {
        let n = self.len(4)?;
        let b = self.take(n * 4)?;
        Ok(b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
    /// Reads a matrix.
    pub fn matrix(&mut self) -> Result<Matrix> {
        let rows = self.u64()? as usize;
        let dim = self.u64()? as usize;
        let n = rows
            .checked_mul(dim)
            .filter(|&n| n <= self.remaining() / 4)
            .ok_or_else(|| {
                Error::Truncated(format!("a {rows} x {dim} matrix"))
            })?;
        let b = self.take(n * 4)?;
        let data = b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Matrix::new(rows, dim, data)
    }
    /// Reads length-prefixed raw bytes.
    pub fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.len(1)?;
        self.take(n)
    }
}
