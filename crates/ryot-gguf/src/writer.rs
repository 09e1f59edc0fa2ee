//! Writing GGUF v3 files: metadata, tensor infos, then tensor data streamed
//! from a callback, into a temporary file renamed into place at the end.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use ryot_quant::QuantType;

use crate::metadata::{Array, Value};

/// Default and most common alignment of tensor data.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// One tensor to be written.
#[derive(Clone, Debug)]
struct Spec {
    name: String,
    dims: Vec<u64>,
    ty: u32,
    bytes: u64,
}

/// A GGUF file under construction.
#[derive(Clone, Debug, Default)]
pub struct GgufWriter {
    kv: Vec<(String, Value)>,
    tensors: Vec<Spec>,
}

impl GgufWriter {
    /// An empty file description.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a metadata entry (later entries with the same key are
    /// rejected by readers; the caller keeps keys unique).
    pub fn add_kv(&mut self, key: impl Into<String>, value: Value) {
        self.kv.push((key.into(), value));
    }

    /// Adds a tensor of shape `dims` (GGUF order: row length first) and
    /// type `ty`; returns its size in bytes.
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        ty: QuantType,
    ) -> io::Result<u64> {
        let name = name.into();
        let row =
            *dims.first().ok_or_else(|| invalid("tensor without dims"))?;
        let rows: u64 = dims[1..].iter().product();
        let bytes = ty
            .tensor_bytes(rows as usize, row as usize)
            .map_err(|e| invalid(&format!("tensor {name}: {e}")))?
            as u64;
        self.tensors.push(Spec {
            name,
            dims: dims.to_vec(),
            ty: ty.ggml_id(),
            bytes,
        });
        Ok(bytes)
    }

    /// Writes the file to `path` atomically: `fill(i, out)` must write
    /// exactly the bytes of tensor `i` (in the order added). On any error
    /// the temporary file is removed and `path` is left untouched.
    pub fn write(
        &self,
        path: &Path,
        mut fill: impl FnMut(usize, &mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        let tmp = temp_path(path);
        let result = (|| {
            let file = File::create(&tmp)?;
            let mut w = BufWriter::with_capacity(1 << 20, file);
            let mut pos = self.write_header(&mut w)?;
            let align = DEFAULT_ALIGNMENT;
            pos += pad(&mut w, pos, align)?;
            for (i, t) in self.tensors.iter().enumerate() {
                let mut counter = Counter { inner: &mut w, n: 0 };
                fill(i, &mut counter)?;
                if counter.n != t.bytes {
                    return Err(invalid(&format!(
                        "tensor {} got {} bytes of data, expected {}",
                        t.name, counter.n, t.bytes
                    )));
                }
                pos += t.bytes;
                pos += pad(&mut w, pos, align)?;
            }
            let file = w.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            Ok(())
        })();
        match result {
            Ok(()) => std::fs::rename(&tmp, path),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    fn write_header(&self, w: &mut impl Write) -> io::Result<u64> {
        let mut c = Counter { inner: w, n: 0 };
        c.write_all(b"GGUF")?;
        c.write_all(&3u32.to_le_bytes())?;
        c.write_all(&(self.tensors.len() as u64).to_le_bytes())?;
        c.write_all(&(self.kv.len() as u64).to_le_bytes())?;
        for (k, v) in &self.kv {
            write_str(&mut c, k)?;
            c.write_all(&(v.ty() as u32).to_le_bytes())?;
            write_value(&mut c, v)?;
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            write_str(&mut c, &t.name)?;
            c.write_all(&(t.dims.len() as u32).to_le_bytes())?;
            for d in &t.dims {
                c.write_all(&d.to_le_bytes())?;
            }
            c.write_all(&t.ty.to_le_bytes())?;
            c.write_all(&offset.to_le_bytes())?;
            offset += t.bytes.next_multiple_of(DEFAULT_ALIGNMENT);
        }
        Ok(c.n)
    }
}

/// `<path>.tmp.<pid>` next to `path`.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp.{}", std::process::id()));
    path.with_file_name(name)
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

fn pad(w: &mut impl Write, pos: u64, align: u64) -> io::Result<u64> {
    let n = pos.next_multiple_of(align) - pos;
    w.write_all(&vec![0u8; n as usize])?;
    Ok(n)
}

struct Counter<'a, W: Write + ?Sized> {
    inner: &'a mut W,
    n: u64,
}

impl<W: Write + ?Sized> Write for Counter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn write_str(w: &mut impl Write, s: &str) -> io::Result<()> {
    w.write_all(&(s.len() as u64).to_le_bytes())?;
    w.write_all(s.as_bytes())
}

fn write_value(w: &mut impl Write, v: &Value) -> io::Result<()> {
    match v {
        Value::U8(x) => w.write_all(&[*x]),
        Value::I8(x) => w.write_all(&x.to_le_bytes()),
        Value::U16(x) => w.write_all(&x.to_le_bytes()),
        Value::I16(x) => w.write_all(&x.to_le_bytes()),
        Value::U32(x) => w.write_all(&x.to_le_bytes()),
        Value::I32(x) => w.write_all(&x.to_le_bytes()),
        Value::U64(x) => w.write_all(&x.to_le_bytes()),
        Value::I64(x) => w.write_all(&x.to_le_bytes()),
        Value::F32(x) => w.write_all(&x.to_le_bytes()),
        Value::F64(x) => w.write_all(&x.to_le_bytes()),
        Value::Bool(x) => w.write_all(&[*x as u8]),
        Value::String(s) => write_str(w, s),
        Value::Array(a) => write_array(w, a),
    }
}

fn write_array(w: &mut impl Write, a: &Array) -> io::Result<()> {
    w.write_all(&(a.elem_type() as u32).to_le_bytes())?;
    w.write_all(&(a.len() as u64).to_le_bytes())?;
    macro_rules! each {
        ($v:expr) => {
            for x in $v {
                w.write_all(&x.to_le_bytes())?;
            }
        };
    }
    match a {
        Array::U8(v) => w.write_all(v)?,
        Array::I8(v) => each!(v),
        Array::U16(v) => each!(v),
        Array::I16(v) => each!(v),
        Array::U32(v) => each!(v),
        Array::I32(v) => each!(v),
        Array::U64(v) => each!(v),
        Array::I64(v) => each!(v),
        Array::F32(v) => each!(v),
        Array::F64(v) => each!(v),
        Array::Bool(v) => {
            for x in v {
                w.write_all(&[*x as u8])?;
            }
        }
        Array::String(v) => {
            for s in v {
                write_str(w, s)?;
            }
        }
        Array::Array(v) => {
            for x in v {
                write_array(w, x)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Gguf;

    #[test]
    fn round_trips_through_the_reader() {
        let dir = std::env::temp_dir()
            .join(format!("ryot-gguf-writer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.gguf");
        let mut w = GgufWriter::new();
        w.add_kv("general.architecture", Value::String("llama".into()));
        w.add_kv("a.u32", Value::U32(7));
        w.add_kv("a.f32", Value::F32(1.5));
        w.add_kv(
            "a.strs",
            Value::Array(Array::String(vec!["x".into(), "yz".into()])),
        );
        w.add_kv(
            "a.nested",
            Value::Array(Array::Array(vec![Array::I32(vec![1, -2])])),
        );
        w.add_tensor("t0", &[32, 3], QuantType::Q8_0).unwrap();
        w.add_tensor("t1", &[5], QuantType::F32).unwrap();
        w.write(&path, |i, out| match i {
            0 => out.write_all(&[1u8; 34 * 3]),
            _ => out.write_all(&[2u8; 20]),
        })
        .unwrap();
        let g = Gguf::open(&path).unwrap();
        assert_eq!(g.architecture(), Some("llama"));
        assert_eq!(g.metadata().get_u32("a.u32").unwrap(), 7);
        assert_eq!(g.metadata().get_f32("a.f32").unwrap(), 1.5);
        assert_eq!(
            g.metadata().get("a.nested"),
            Some(&Value::Array(Array::Array(vec![Array::I32(vec![1, -2])])))
        );
        assert_eq!(g.tensor_data("t0").unwrap(), &[1u8; 102][..]);
        assert_eq!(g.tensor_data("t1").unwrap(), &[2u8; 20][..]);
        // A fill that writes the wrong size fails and leaves nothing.
        let bad = dir.join("bad.gguf");
        assert!(w.write(&bad, |_, out| out.write_all(&[0u8; 3])).is_err());
        assert!(!bad.exists());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
