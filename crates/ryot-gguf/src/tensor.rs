//! Tensor descriptions: [`TensorInfo`] and [`TensorType`].

use std::fmt;

use ryot_quant::QuantType;

use crate::{GgufErrorKind, Result};

/// The storage type of a tensor as this reader understands it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TensorType {
    /// A type [`ryot_quant`] knows: its data can be read.
    Known(QuantType),
    /// Any other ggml type id (upstream types Ryot does not support, future
    /// types, or id 36 outside bitnet.cpp files). The tensor is kept as
    /// opaque bytes; asking for its size or data is an error.
    Unknown(u32),
}

/// Architectures (`general.architecture`) in which ggml type id 36 means
/// bitnet.cpp's I2_S. Elsewhere 36 is an unrelated upstream id.
pub const I2S_ARCHITECTURES: &[&str] = &["bitnet-b1.58", "bitnet-25"];

impl TensorType {
    /// Resolves a raw ggml type id. `architecture` is the file's
    /// `general.architecture`, which decides what id 36 means.
    pub fn from_ggml_id(id: u32, architecture: Option<&str>) -> TensorType {
        if id == QuantType::I2_S.ggml_id() {
            return match architecture {
                Some(a) if I2S_ARCHITECTURES.contains(&a) => {
                    TensorType::Known(QuantType::I2_S)
                }
                _ => TensorType::Unknown(id),
            };
        }
        match QuantType::from_ggml_id(id) {
            Some(t) => TensorType::Known(t),
            None => TensorType::Unknown(id),
        }
    }

    /// The raw ggml type id as stored in the file.
    pub fn ggml_id(self) -> u32 {
        match self {
            TensorType::Known(t) => t.ggml_id(),
            TensorType::Unknown(id) => id,
        }
    }

    /// The known type, if any.
    pub fn known(self) -> Option<QuantType> {
        match self {
            TensorType::Known(t) => Some(t),
            TensorType::Unknown(_) => None,
        }
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TensorType::Known(t) => write!(f, "{t}"),
            TensorType::Unknown(id) => write!(f, "type#{id}"),
        }
    }
}

/// One tensor's description from the file's tensor-info table. Every field
/// has been checked against the file when the [`crate::Gguf`] was built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub(crate) name: String,
    pub(crate) dims: Vec<u64>,
    pub(crate) ty: TensorType,
    pub(crate) offset: usize,
    pub(crate) size: Option<usize>,
    pub(crate) info_offset: u64,
}

impl TensorInfo {
    /// The tensor's name (`"blk.0.attn_q.weight"`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Dimensions in ggml order: `dims[0]` is the row length (contiguous),
    /// then rows, and so on (the reverse of the PyTorch shape).
    pub fn dims(&self) -> &[u64] {
        &self.dims
    }

    /// The storage type.
    pub fn ty(&self) -> TensorType {
        self.ty
    }

    /// Start of the data relative to the data section (a multiple of the
    /// file's alignment).
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Where this tensor's info record starts in the file.
    pub fn info_offset(&self) -> u64 {
        self.info_offset
    }

    /// Number of elements (the product of the dimensions; 1 for none).
    pub fn n_elements(&self) -> u64 {
        // Checked at parse time not to overflow.
        self.dims.iter().product()
    }

    /// Row length `k` (`dims[0]`, or 1 for a scalar).
    pub fn row_len(&self) -> u64 {
        self.dims.first().copied().unwrap_or(1)
    }

    /// Number of rows: the product of `dims[1..]`.
    pub fn n_rows(&self) -> u64 {
        self.dims.iter().skip(1).product()
    }

    /// Size of the data in bytes, if the type is known.
    pub fn known_byte_size(&self) -> Option<usize> {
        self.size
    }

    /// Size of the data in bytes: `QuantType::tensor_bytes(rows, k)`, which
    /// for I2_S is `rows * k / 4 + 32`.
    ///
    /// # Errors
    /// [`GgufErrorKind::UnsupportedTensorType`] for an unknown type.
    pub fn byte_size(&self) -> Result<usize> {
        self.size.ok_or_else(|| self.unsupported())
    }

    pub(crate) fn unsupported(&self) -> crate::GgufError {
        let id = self.ty.ggml_id();
        let hint = if id == QuantType::I2_S.ggml_id() {
            "; id 36 is read as bitnet.cpp's I2_S only when \
             general.architecture is bitnet-b1.58 or bitnet-25"
        } else {
            ""
        };
        GgufErrorKind::UnsupportedTensorType {
            name: self.name.clone(),
            id,
            hint,
        }
        .into()
    }
}
