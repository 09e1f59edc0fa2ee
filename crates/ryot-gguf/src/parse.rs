//! The parser: header, metadata, tensor infos and layout checks, over a
//! byte slice.
//!
//! Every read goes through [`Cursor`], which checks the length it needs
//! against what is left before touching the slice, and every count is
//! bounded by the bytes that could hold it before anything is allocated,
//! so a hostile file can neither read out of bounds nor make us allocate
//! much more than its own size.
//!
//! Layout (little-endian; spec: ggml `docs/gguf.md`):
//! ```text
//! "GGUF" u32 version  u64 n_tensors  u64 n_kv
//! n_kv   × { string key, u32 value_type, value }
//! n_tensors × { string name, u32 n_dims, u64 dims[n_dims], u32 ggml_type,
//!               u64 offset }
//! padding to general.alignment, then the tensor data section
//! ```

use std::collections::HashMap;

use crate::{
    Array, GgufErrorKind, Metadata, Result, TensorInfo, TensorType, Value,
    ValueType,
};

/// Default alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Most dimensions a tensor may have (ggml's `GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;
/// Deepest nesting of arrays inside arrays.
pub const MAX_ARRAY_DEPTH: usize = 8;
/// Longest metadata key or tensor name, in bytes.
pub const MAX_NAME_LEN: u64 = 65_535;
/// Longest string value, in bytes (1 GiB).
pub const MAX_STRING_LEN: u64 = 1 << 30;
/// Most elements in one array.
pub const MAX_ARRAY_LEN: u64 = 1 << 32;
/// Most metadata entries or tensors.
pub const MAX_COUNT: u64 = 1 << 24;
/// Most elements in one tensor (2^50).
pub const MAX_ELEMENTS: u64 = 1 << 50;

/// Bounds-checked little-endian reader over the whole file.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8]> {
        let available = self.remaining();
        if n > available {
            return Err(GgufErrorKind::Truncated {
                what: what(),
                offset: self.pos as u64,
                needed: n,
                available,
            }
            .into());
        }
        // n <= remaining, so it fits usize and the range is in bounds.
        let n = n as usize;
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let s = self.take(N as u64, &|| what.to_string())?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// Reads a count and checks it against `cap` and against what the rest
    /// of the file could hold at `min_size` bytes per item.
    fn count(&mut self, what: &str, min_size: u64, cap: u64) -> Result<u64> {
        let offset = self.pos as u64;
        let n = self.u64(what)?;
        let max = cap.min(self.remaining() / min_size.max(1));
        if n > max {
            return Err(GgufErrorKind::TooLarge {
                what: what.to_string(),
                offset,
                got: n,
                max,
            }
            .into());
        }
        Ok(n)
    }

    fn string(
        &mut self,
        what: &dyn Fn() -> String,
        cap: u64,
    ) -> Result<String> {
        let offset = self.pos as u64;
        let len = self.u64(&format!("length of {}", what()))?;
        if len > cap {
            return Err(GgufErrorKind::TooLarge {
                what: format!("length of {}", what()),
                offset,
                got: len,
                max: cap,
            }
            .into());
        }
        let start = self.pos as u64;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| {
            GgufErrorKind::InvalidUtf8 { what: what(), offset: start }.into()
        })
    }

    fn value_type(&mut self, what: &str) -> Result<ValueType> {
        let offset = self.pos as u64;
        let id = self.u32(what)?;
        ValueType::from_id(id).ok_or_else(|| {
            GgufErrorKind::BadValueType { offset, got: id }.into()
        })
    }
}

/// The result of a parse, independent of the buffer's lifetime.
pub(crate) struct Parsed {
    pub version: u32,
    pub alignment: u64,
    pub metadata: Metadata,
    pub tensors: Vec<TensorInfo>,
    pub by_name: HashMap<String, usize>,
    pub data_start: usize,
    pub data_len: usize,
}

/// Parses a whole GGUF file held in `buf`.
pub(crate) fn parse(buf: &[u8]) -> Result<Parsed> {
    let mut c = Cursor { buf, pos: 0 };
    let magic: [u8; 4] = c.array("magic")?;
    if &magic != b"GGUF" {
        return Err(GgufErrorKind::BadMagic { got: magic }.into());
    }
    let version = c.u32("version")?;
    match version {
        2 | 3 => {}
        _ => {
            let hint = if version == 1 {
                "; version 1 (before Oct 2023) used 32-bit counts: \
                 re-convert the model with a current llama.cpp"
            } else if version.swap_bytes() <= 3 {
                "; this looks like a big-endian GGUF, which Ryot does not \
                 read: use the little-endian file"
            } else {
                ""
            };
            return Err(
                GgufErrorKind::UnsupportedVersion { version, hint }.into()
            );
        }
    }
    // Minimal sizes: a tensor info is a name length (8), n_dims (4), type
    // (4) and offset (8); a metadata entry a key length (8), a type (4) and
    // at least one value byte.
    let n_tensors = c.count("tensor count", 24, MAX_COUNT)?;
    let n_kv = c.count("metadata entry count", 13, MAX_COUNT)?;

    let mut metadata = Metadata::default();
    for i in 0..n_kv {
        let offset = c.pos as u64;
        let key =
            c.string(&|| format!("key of metadata entry {i}"), MAX_NAME_LEN)?;
        let ty = c.value_type(&format!("type of metadata {key:?}"))?;
        let value = read_value(&mut c, ty, &key, 0)?;
        if !metadata.insert(key.clone(), value) {
            return Err(GgufErrorKind::DuplicateKey { key, offset }.into());
        }
    }

    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(Value::U32(a)) => u64::from(*a),
        Some(v) => {
            return Err(GgufErrorKind::WrongType {
                key: "general.alignment".into(),
                expected: "uint32",
                got: v.ty(),
            }
            .into());
        }
    };
    if alignment == 0 || !alignment.is_power_of_two() {
        return Err(GgufErrorKind::BadAlignment { got: alignment }.into());
    }
    let arch = match metadata.get("general.architecture") {
        Some(Value::String(s)) => Some(s.as_str()),
        _ => None,
    };

    let mut tensors = Vec::with_capacity(n_tensors as usize);
    let mut by_name = HashMap::with_capacity(n_tensors as usize);
    for i in 0..n_tensors {
        let info_offset = c.pos as u64;
        let name = c.string(&|| format!("name of tensor {i}"), MAX_NAME_LEN)?;
        let n_dims = c.u32(&format!("dimension count of tensor {name:?}"))?;
        if n_dims as usize > MAX_DIMS {
            return Err(GgufErrorKind::BadDimCount {
                name,
                offset: info_offset,
                got: n_dims,
                max: MAX_DIMS,
            }
            .into());
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for d in 0..n_dims {
            dims.push(c.u64(&format!("dimension {d} of tensor {name:?}"))?);
        }
        // Zero dims count as 1 here, so that every partial product (rows,
        // for instance) is bounded too, not just the (zero) total.
        let bound = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d.max(1)))
            .filter(|&n| n <= MAX_ELEMENTS);
        if bound.is_none() {
            return Err(GgufErrorKind::TooManyElements {
                name,
                offset: info_offset,
                dims,
                max: MAX_ELEMENTS,
            }
            .into());
        }
        let id = c.u32(&format!("type of tensor {name:?}"))?;
        let offset = c.u64(&format!("data offset of tensor {name:?}"))?;
        if by_name.insert(name.clone(), tensors.len()).is_some() {
            return Err(GgufErrorKind::DuplicateTensor {
                name,
                offset: info_offset,
            }
            .into());
        }
        let ty = TensorType::from_ggml_id(id, arch);
        tensors.push((name, dims, ty, offset, info_offset));
    }

    // The data section starts at the next multiple of the alignment.
    let end_of_infos = c.pos as u64;
    let data_start =
        end_of_infos.checked_next_multiple_of(alignment).unwrap_or(u64::MAX);
    let file_len = buf.len() as u64;
    let (data_start, data_len) = if data_start <= file_len {
        (data_start as usize, (file_len - data_start) as usize)
    } else if tensors.is_empty() {
        // A metadata-only file (a vocabulary) may omit the padding.
        (buf.len(), 0)
    } else {
        return Err(GgufErrorKind::Truncated {
            what: "padding before the tensor data section".into(),
            offset: end_of_infos,
            needed: data_start.saturating_sub(end_of_infos),
            available: file_len - end_of_infos,
        }
        .into());
    };

    let tensors = tensors
        .into_iter()
        .map(|(name, dims, ty, offset, info_offset)| {
            check_tensor(
                name,
                dims,
                ty,
                offset,
                info_offset,
                alignment,
                data_len,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    check_overlap(&tensors)?;

    Ok(Parsed {
        version,
        alignment,
        metadata,
        tensors,
        by_name,
        data_start,
        data_len,
    })
}

/// Reads one value of type `ty` (the value of `key`, or an element of an
/// array under it at nesting `depth`).
fn read_value(
    c: &mut Cursor<'_>,
    ty: ValueType,
    key: &str,
    depth: usize,
) -> Result<Value> {
    let what = || format!("value of metadata {key:?}");
    Ok(match ty {
        ValueType::String => Value::String(c.string(&what, MAX_STRING_LEN)?),
        ValueType::Array => Value::Array(read_array(c, key, depth + 1)?),
        _ => {
            // A scalar is a one-element run of its fixed-size type.
            let arr = read_fixed(c, ty, 1, key)?;
            arr.get(0).expect("read_fixed returned one element")
        }
    })
}

fn read_array(c: &mut Cursor<'_>, key: &str, depth: usize) -> Result<Array> {
    let start = c.pos as u64;
    if depth > MAX_ARRAY_DEPTH {
        return Err(GgufErrorKind::NestingTooDeep {
            offset: start,
            max: MAX_ARRAY_DEPTH,
        }
        .into());
    }
    let ety = c.value_type(&format!("element type of array {key:?}"))?;
    let min_size = match ety {
        ValueType::String => 8,
        ValueType::Array => 12,
        t => t.fixed_size().unwrap_or(1) as u64,
    };
    let what = format!("length of array {key:?}");
    let n = c.count(&what, min_size, MAX_ARRAY_LEN)?;
    // n * min_size <= remaining bytes, so n fits usize.
    let n = n as usize;
    Ok(match ety {
        ValueType::String => {
            let mut v = Vec::with_capacity(n);
            for i in 0..n {
                v.push(c.string(
                    &|| format!("element {i} of array {key:?}"),
                    MAX_STRING_LEN,
                )?);
            }
            Array::String(v)
        }
        ValueType::Array => {
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(read_array(c, key, depth + 1)?);
            }
            Array::Array(v)
        }
        t => read_fixed(c, t, n, key)?,
    })
}

/// Reads `n` fixed-size elements of type `ty` as an [`Array`].
fn read_fixed(
    c: &mut Cursor<'_>,
    ty: ValueType,
    n: usize,
    key: &str,
) -> Result<Array> {
    let size = ty.fixed_size().unwrap_or(1);
    // The caller bounded n by remaining / size, so this cannot overflow;
    // take() checks the length again anyway.
    let total = (n as u64).saturating_mul(size as u64);
    let bytes = c.take(total, &|| format!("value of metadata {key:?}"))?;
    macro_rules! conv {
        ($variant:ident, $t:ty) => {
            Array::$variant(
                bytes
                    .chunks_exact(size)
                    .map(|b| <$t>::from_le_bytes(b.try_into().unwrap()))
                    .collect(),
            )
        };
    }
    Ok(match ty {
        ValueType::U8 => Array::U8(bytes.to_vec()),
        ValueType::I8 => Array::I8(bytes.iter().map(|&b| b as i8).collect()),
        ValueType::Bool => Array::Bool(bytes.iter().map(|&b| b != 0).collect()),
        ValueType::U16 => conv!(U16, u16),
        ValueType::I16 => conv!(I16, i16),
        ValueType::U32 => conv!(U32, u32),
        ValueType::I32 => conv!(I32, i32),
        ValueType::F32 => conv!(F32, f32),
        ValueType::U64 => conv!(U64, u64),
        ValueType::I64 => conv!(I64, i64),
        ValueType::F64 => conv!(F64, f64),
        ValueType::String | ValueType::Array => {
            unreachable!("read_fixed is only called for fixed-size types")
        }
    })
}

/// Checks one tensor's type, shape, alignment and bounds.
fn check_tensor(
    name: String,
    dims: Vec<u64>,
    ty: TensorType,
    offset: u64,
    info_offset: u64,
    alignment: u64,
    data_len: usize,
) -> Result<TensorInfo> {
    if !offset.is_multiple_of(alignment) {
        return Err(GgufErrorKind::MisalignedTensor {
            name,
            got: offset,
            alignment,
        }
        .into());
    }
    let out_of_bounds =
        |name: String, end: u64| GgufErrorKind::TensorOutOfBounds {
            name,
            start: offset,
            end,
            available: data_len as u64,
        };
    if offset > data_len as u64 {
        return Err(out_of_bounds(name, offset).into());
    }
    let offset = offset as usize;
    let size = match ty {
        TensorType::Unknown(_) => None,
        TensorType::Known(q) => {
            let k = dims.first().copied().unwrap_or(1);
            let rows: u64 = dims.iter().skip(1).product();
            // Both are <= MAX_ELEMENTS < 2^50, so they fit usize on the
            // 64-bit platforms Ryot supports; saturate elsewhere so that
            // tensor_bytes reports the overflow.
            let rows = usize::try_from(rows).unwrap_or(usize::MAX);
            let k = usize::try_from(k).unwrap_or(usize::MAX);
            let size = match q.tensor_bytes(rows, k) {
                Ok(s) => s,
                Err(source) => {
                    return Err(GgufErrorKind::BadTensorShape {
                        name,
                        offset: info_offset,
                        ty: q,
                        dims,
                        source,
                    }
                    .into());
                }
            };
            match offset.checked_add(size) {
                Some(end) if end <= data_len => {}
                end => {
                    let end = end.map_or(u64::MAX, |e| e as u64);
                    return Err(out_of_bounds(name, end).into());
                }
            }
            Some(size)
        }
    };
    Ok(TensorInfo { name, dims, ty, offset, size, info_offset })
}

/// Checks that no two tensors of known size share bytes.
fn check_overlap(tensors: &[TensorInfo]) -> Result<()> {
    let mut spans: Vec<(usize, usize, &str)> = tensors
        .iter()
        .filter_map(|t| Some((t.offset, t.offset + t.size?, t.name.as_str())))
        .filter(|&(s, e, _)| e > s)
        .collect();
    spans.sort_unstable();
    for w in spans.windows(2) {
        let (_, first_end, first) = w[0];
        let (at, _, second) = w[1];
        if at < first_end {
            return Err(GgufErrorKind::TensorOverlap {
                first: first.to_string(),
                second: second.to_string(),
                at: at as u64,
                first_end: first_end as u64,
            }
            .into());
        }
    }
    Ok(())
}
