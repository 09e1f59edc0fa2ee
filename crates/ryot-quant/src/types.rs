//! [`QuantType`]: the tensor types this crate knows, with their ggml ids,
//! names and block geometry (ggml's `type_traits` table as a Rust enum).

use std::fmt;
use std::str::FromStr;

use crate::{QuantError, QuantErrorKind};

/// A tensor storage type of GGML/GGUF (plus bitnet.cpp's I2_S).
///
/// The geometry table (elements and bytes per block) follows ggml's
/// `type_traits` in `ggml/src/ggml.c`, except for I2_S, whose "block" here
/// is its 128-element packing group (see [`crate::i2s`]).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum QuantType {
    /// IEEE float32, 4 bytes per element.
    F32,
    /// IEEE float16, 2 bytes per element.
    F16,
    /// bfloat16, 2 bytes per element.
    BF16,
    /// 32-element blocks, 4-bit codes, one f16 scale: 4.5 bpw.
    Q4_0,
    /// 32-element blocks, 4-bit codes, f16 scale and min: 5.0 bpw.
    Q4_1,
    /// 32-element blocks, 5-bit codes, one f16 scale: 5.5 bpw.
    Q5_0,
    /// 32-element blocks, 5-bit codes, f16 scale and min: 6.0 bpw.
    Q5_1,
    /// 32-element blocks, int8 codes, one f16 scale: 8.5 bpw.
    Q8_0,
    /// 256-element super-blocks, 2-bit codes, 4-bit scales/mins: 2.625 bpw.
    Q2_K,
    /// 256-element super-blocks, 3-bit codes, 6-bit scales: 3.4375 bpw.
    Q3_K,
    /// 256-element super-blocks, 4-bit codes, 6-bit scales/mins: 4.5 bpw.
    Q4_K,
    /// 256-element super-blocks, 5-bit codes, 6-bit scales/mins: 5.5 bpw.
    Q5_K,
    /// 256-element super-blocks, 6-bit codes, int8 scales: 6.5625 bpw.
    Q6_K,
    /// 256-element ternary blocks, 5 trits per byte: 1.6875 bpw.
    TQ1_0,
    /// 256-element ternary blocks, 2 bits per trit: 2.0625 bpw.
    TQ2_0,
    /// bitnet.cpp ternary: 2-bit codes in 128-element groups, one f32 scale
    /// per tensor: 2 bpw plus a 32-byte tensor trailer.
    I2_S,
}

/// Geometry row: (ggml id, name, block elements, block bytes).
struct Info {
    id: u32,
    name: &'static str,
    elems: usize,
    bytes: usize,
}

impl QuantType {
    /// Every type, in declaration order.
    pub const ALL: &[QuantType] = &[
        QuantType::F32,
        QuantType::F16,
        QuantType::BF16,
        QuantType::Q4_0,
        QuantType::Q4_1,
        QuantType::Q5_0,
        QuantType::Q5_1,
        QuantType::Q8_0,
        QuantType::Q2_K,
        QuantType::Q3_K,
        QuantType::Q4_K,
        QuantType::Q5_K,
        QuantType::Q6_K,
        QuantType::TQ1_0,
        QuantType::TQ2_0,
        QuantType::I2_S,
    ];

    const fn info(self) -> Info {
        use QuantType::*;
        let (id, name, elems, bytes) = match self {
            F32 => (0, "F32", 1, 4),
            F16 => (1, "F16", 1, 2),
            BF16 => (30, "BF16", 1, 2),
            Q4_0 => (2, "Q4_0", 32, 18),
            Q4_1 => (3, "Q4_1", 32, 20),
            Q5_0 => (6, "Q5_0", 32, 22),
            Q5_1 => (7, "Q5_1", 32, 24),
            Q8_0 => (8, "Q8_0", 32, 34),
            Q2_K => (10, "Q2_K", 256, 84),
            Q3_K => (11, "Q3_K", 256, 110),
            Q4_K => (12, "Q4_K", 256, 144),
            Q5_K => (13, "Q5_K", 256, 176),
            Q6_K => (14, "Q6_K", 256, 210),
            TQ1_0 => (34, "TQ1_0", 256, 54),
            TQ2_0 => (35, "TQ2_0", 256, 66),
            I2_S => (36, "I2_S", 128, 32),
        };
        Info { id, name, elems, bytes }
    }

    /// The `ggml_type` enum value. I2_S is 36, as in bitnet.cpp's llama.cpp
    /// fork (upstream ggml has since given 36+ to other types; a GGUF
    /// reader must decide by context).
    pub const fn ggml_id(self) -> u32 {
        self.info().id
    }

    /// The type with this `ggml_type` value, if this crate knows it.
    /// 36 maps to I2_S.
    pub fn from_ggml_id(id: u32) -> Option<QuantType> {
        QuantType::ALL.iter().copied().find(|t| t.ggml_id() == id)
    }

    /// The ggml name: `"F32"`, `"Q4_K"`, `"TQ2_0"`, `"I2_S"`, ...
    pub const fn name(self) -> &'static str {
        self.info().name
    }

    /// The type with this name, ignoring ASCII case (`"tq2_0"` works).
    pub fn from_name(s: &str) -> Option<QuantType> {
        QuantType::ALL
            .iter()
            .copied()
            .find(|t| t.name().eq_ignore_ascii_case(s))
    }

    /// Elements per block: 1 for F32/F16/BF16, 32 for the legacy types,
    /// 256 for K-quants and TQ*, 128 for I2_S (its packing group).
    pub const fn block_elems(self) -> usize {
        self.info().elems
    }

    /// Bytes per block. For I2_S, 32 bytes per 128-element group; the
    /// per-tensor trailer is not included (see [`crate::i2s::tensor_bytes`]).
    pub const fn block_bytes(self) -> usize {
        self.info().bytes
    }

    /// Bytes of one row of `k` elements (`k / block_elems * block_bytes`).
    ///
    /// For I2_S this is the code bytes of one row (`k / 4`); the tensor's
    /// scale trailer comes on top, see [`QuantType::tensor_bytes`].
    ///
    /// # Errors
    /// [`QuantErrorKind::NotBlockMultiple`] if `k` is not a multiple of
    /// [`QuantType::block_elems`].
    pub fn row_bytes(self, k: usize) -> Result<usize, QuantError> {
        let block = self.block_elems();
        if !k.is_multiple_of(block) {
            return Err(QuantErrorKind::NotBlockMultiple {
                ty: self,
                k,
                block,
            }
            .into());
        }
        // k / block * bytes <= k * 4 / 1 cannot overflow for F32 only if
        // k <= usize::MAX / 4, so check.
        (k / block).checked_mul(self.block_bytes()).ok_or_else(|| {
            QuantErrorKind::SizeOverflow { what: "row bytes" }.into()
        })
    }

    /// Bytes of a whole `[rows, k]` tensor as stored in a GGUF file:
    /// `rows * row_bytes(k)`, and for I2_S `rows * k / 4 + 32` (codes plus
    /// the f32 scale and 28 padding bytes).
    ///
    /// # Errors
    /// As [`QuantType::row_bytes`], plus [`QuantErrorKind::SizeOverflow`].
    pub fn tensor_bytes(
        self,
        rows: usize,
        k: usize,
    ) -> Result<usize, QuantError> {
        if self == QuantType::I2_S {
            return crate::i2s::tensor_bytes(rows, k);
        }
        self.row_bytes(k)?.checked_mul(rows).ok_or_else(|| {
            QuantErrorKind::SizeOverflow { what: "tensor bytes" }.into()
        })
    }

    /// Storage bits per weight: `8 * block_bytes / block_elems` (I2_S: 2.0,
    /// not counting its 32-byte per-tensor trailer).
    pub fn bits_per_weight(self) -> f64 {
        8.0 * self.block_bytes() as f64 / self.block_elems() as f64
    }
}

impl fmt::Display for QuantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for QuantType {
    type Err = QuantError;

    fn from_str(s: &str) -> Result<QuantType, QuantError> {
        QuantType::from_name(s).ok_or_else(|| {
            QuantErrorKind::UnknownName { name: s.to_owned() }.into()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_round_trip() {
        for &t in QuantType::ALL {
            assert_eq!(QuantType::from_name(t.name()), Some(t));
            assert_eq!(
                QuantType::from_name(&t.name().to_ascii_lowercase()),
                Some(t)
            );
            assert_eq!(QuantType::from_ggml_id(t.ggml_id()), Some(t));
            assert_eq!(t.to_string().parse::<QuantType>().unwrap(), t);
        }
        assert_eq!(QuantType::from_ggml_id(9), None);
        assert!("Q9_9".parse::<QuantType>().is_err());
    }

    #[test]
    fn bits_per_weight_match_ggml_comments() {
        assert_eq!(QuantType::Q4_K.bits_per_weight(), 4.5);
        assert_eq!(QuantType::Q6_K.bits_per_weight(), 6.5625);
        assert_eq!(QuantType::Q3_K.bits_per_weight(), 3.4375);
        assert_eq!(QuantType::Q2_K.bits_per_weight(), 2.625);
        assert_eq!(QuantType::TQ1_0.bits_per_weight(), 1.6875);
        assert_eq!(QuantType::TQ2_0.bits_per_weight(), 2.0625);
        assert_eq!(QuantType::I2_S.bits_per_weight(), 2.0);
    }

    #[test]
    fn row_bytes_rejects_partial_blocks() {
        assert_eq!(QuantType::Q4_0.row_bytes(64).unwrap(), 36);
        let e = QuantType::Q4_K.row_bytes(300).unwrap_err();
        assert!(matches!(
            e.kind(),
            QuantErrorKind::NotBlockMultiple { block: 256, k: 300, .. }
        ));
        assert_eq!(QuantType::I2_S.row_bytes(256).unwrap(), 64);
        assert_eq!(QuantType::I2_S.tensor_bytes(4, 512).unwrap(), 544);
    }
}
