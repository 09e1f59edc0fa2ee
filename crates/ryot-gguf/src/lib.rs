//! `ryot-gguf`: Ryot's own reader for GGUF model files.
//!
//! [`Gguf::open`] memory-maps a file and checks it completely before
//! returning: the header (versions 2 and 3), every metadata value (all 13
//! types, nested arrays included), every tensor description, the
//! `general.alignment`, and the position and size of every tensor's data
//! against the file. Afterwards reads cannot fail for layout reasons. A
//! truncated, corrupt or hostile file gives a [`GgufError`], never a panic
//! or an out-of-bounds read.
//!
//! Tensor types map to [`ryot_quant::QuantType`]. Type id 36 is
//! bitnet.cpp's I2_S only in files whose `general.architecture` is one of
//! [`I2S_ARCHITECTURES`]; elsewhere, and for ids Ryot does not know, the
//! tensor is kept as [`TensorType::Unknown`] and asking for its data is an
//! error.
//!
//! ```no_run
//! let g = ryot_gguf::Gguf::open("model.gguf")?;
//! let arch = g.metadata().get_str("general.architecture")?;
//! for t in g.tensors() {
//!     println!("{} {} {:?}", t.name(), t.ty(), t.dims());
//! }
//! let emb: &[u8] = g.tensor_data("token_embd.weight")?;
//! # let _ = (arch, emb);
//! # Ok::<(), ryot_gguf::GgufError>(())
//! ```

#![deny(missing_docs)]

mod error;
mod metadata;
mod parse;
mod tensor;
pub mod writer;

use std::collections::HashMap;
use std::path::Path;

pub use error::{GgufError, GgufErrorKind};
pub use metadata::{Array, Metadata, Value, ValueType};
pub use parse::{
    DEFAULT_ALIGNMENT, MAX_ARRAY_DEPTH, MAX_ARRAY_LEN, MAX_COUNT, MAX_DIMS,
    MAX_ELEMENTS, MAX_NAME_LEN, MAX_STRING_LEN,
};
pub use tensor::{I2S_ARCHITECTURES, TensorInfo, TensorType};
pub use writer::GgufWriter;

/// This crate's result type.
pub type Result<T, E = GgufError> = std::result::Result<T, E>;

/// Where the file's bytes live.
enum Backing {
    Mmap(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mmap(m) => m,
            Backing::Owned(v) => v,
        }
    }
}

/// A parsed, fully checked GGUF file.
pub struct Gguf {
    backing: Backing,
    version: u32,
    alignment: u64,
    metadata: Metadata,
    tensors: Vec<TensorInfo>,
    by_name: HashMap<String, usize>,
    data_start: usize,
    data_len: usize,
}

impl std::fmt::Debug for Gguf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gguf")
            .field("version", &self.version)
            .field("alignment", &self.alignment)
            .field("metadata_entries", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .field("data_start", &self.data_start)
            .finish_non_exhaustive()
    }
}

impl Gguf {
    /// Memory-maps and parses the file at `path`.
    ///
    /// The file must not be modified or truncated while the returned value
    /// lives (as with any memory-mapped file).
    ///
    /// # Errors
    /// [`GgufErrorKind::Io`] if the file cannot be opened or mapped, or any
    /// parse error (see [`Gguf::from_bytes`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Gguf> {
        let io = |op| move |source| GgufErrorKind::Io { op, source };
        let file =
            std::fs::File::open(path.as_ref()).map_err(io("open the file"))?;
        let len = file.metadata().map_err(io("read the file's size"))?.len();
        let backing = if len == 0 {
            Backing::Owned(Vec::new())
        } else {
            // SAFETY: the map is read-only and private to this value. The
            // usual mmap caveat applies: another process truncating or
            // rewriting the file while it is mapped is outside Rust's
            // model; Ryot documents that model files must not change while
            // open, as llama.cpp does.
            let map = unsafe { memmap2::Mmap::map(&file) }
                .map_err(io("map the file into memory"))?;
            Backing::Mmap(map)
        };
        Gguf::from_backing(backing)
    }

    /// Parses a GGUF file held in memory (copied into the returned value).
    ///
    /// # Errors
    /// A [`GgufError`] for any malformed or unsupported content: bad
    /// magic, unsupported version, truncation, oversized counts, invalid
    /// UTF-8, duplicate keys or tensor names, bad alignment, bad
    /// dimensions, and tensor data that is misaligned, out of bounds or
    /// overlapping.
    pub fn from_bytes(bytes: &[u8]) -> Result<Gguf> {
        Gguf::from_backing(Backing::Owned(bytes.to_vec()))
    }

    fn from_backing(backing: Backing) -> Result<Gguf> {
        let p = parse::parse(backing.bytes())?;
        Ok(Gguf {
            backing,
            version: p.version,
            alignment: p.alignment,
            metadata: p.metadata,
            tensors: p.tensors,
            by_name: p.by_name,
            data_start: p.data_start,
            data_len: p.data_len,
        })
    }

    /// The GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The data alignment: `general.alignment`, or 32.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// The metadata table.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// `general.architecture`, if present and a string.
    pub fn architecture(&self) -> Option<&str> {
        self.metadata.get_str("general.architecture").ok()
    }

    /// The tensor descriptions, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The description of the tensor named `name`, if any.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }

    /// File offset where the tensor data section starts.
    pub fn data_offset(&self) -> usize {
        self.data_start
    }

    /// Length of the tensor data section in bytes (to the end of the file).
    pub fn data_len(&self) -> usize {
        self.data_len
    }

    /// Length of the whole file in bytes.
    pub fn file_len(&self) -> usize {
        self.backing.bytes().len()
    }

    /// The raw bytes of the tensor named `name`.
    ///
    /// # Errors
    /// [`GgufErrorKind::TensorNotFound`], or
    /// [`GgufErrorKind::UnsupportedTensorType`] for a tensor of unknown
    /// type.
    pub fn tensor_data(&self, name: &str) -> Result<&[u8]> {
        let t = self.tensor(name).ok_or_else(|| {
            GgufErrorKind::TensorNotFound { name: name.to_string() }
        })?;
        self.data_of(t)
    }

    /// Hints that tensor `t`'s bytes will not be read again soon: their
    /// pages leave this process's resident set (a later read maps them
    /// again from the file, with the same contents). Loaders call it after
    /// copying a tensor into their own layout, so that peak memory stays
    /// near one copy of the model instead of two. A no-op for files held
    /// in memory and on non-Unix systems; failures are ignored (it is a
    /// hint).
    pub fn release(&self, t: &TensorInfo) {
        #[cfg(unix)]
        if let Backing::Mmap(m) = &self.backing {
            const PAGE: usize = 4096;
            let Ok(bytes) = self.data_of(t) else { return };
            let start = bytes.as_ptr() as usize - m.as_ptr() as usize;
            // Whole pages inside the tensor only.
            let first = start.div_ceil(PAGE) * PAGE;
            let end = (start + bytes.len()) / PAGE * PAGE;
            if end > first {
                // SAFETY: the map is a read-only shared file mapping
                // (`Mmap::map`), so MADV_DONTNEED only drops this
                // process's page-table entries: the next read faults the
                // same file contents back in, and no Rust reference can
                // observe a change. The range is inside the map.
                let _ = unsafe {
                    m.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        first,
                        end - first,
                    )
                };
            }
        }
    }

    /// The raw bytes of tensor `t` (a value from [`Gguf::tensors`]).
    ///
    /// # Errors
    /// [`GgufErrorKind::UnsupportedTensorType`] for a tensor of unknown
    /// type.
    pub fn data_of(&self, t: &TensorInfo) -> Result<&[u8]> {
        let size = t.byte_size()?;
        // Checked against the data section at parse time; checked adds and
        // `get` keep this panic-free even for a `TensorInfo` from another
        // file.
        let start = self.data_start.checked_add(t.offset());
        let end = start.and_then(|s| s.checked_add(size));
        let range = start.zip(end).map(|(s, e)| s..e);
        range.and_then(|r| self.backing.bytes().get(r)).ok_or_else(|| {
            GgufErrorKind::TensorOutOfBounds {
                name: t.name().to_string(),
                start: t.offset() as u64,
                end: (t.offset() as u64).saturating_add(size as u64),
                available: self.data_len as u64,
            }
            .into()
        })
    }
}
