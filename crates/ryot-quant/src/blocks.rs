//! The ggml block structs, byte for byte.
//!
//! Each struct is `#[repr(C)]`, has no padding (checked by a `const`
//! size assertion, and by `bytemuck::Pod`'s derive), and uses ggml's field
//! names from `ggml/src/ggml-common.h` (llama.cpp commit
//! `34af94cd9ab277632e27caeec2d41de2fd091b31`). Every multi-byte field is
//! little-endian on disk; this crate only builds for little-endian targets,
//! so the structs can be cast from file bytes with `bytemuck`.
//!
//! Because `half::f16` has alignment 2 and `f32` alignment 4, a `&[u8]`
//! taken from a file may not be castable in place; use
//! [`bytemuck::pod_read_unaligned`] per block (as this crate does) or copy
//! into an aligned buffer.
//!
//! Formulas use `q` for the stored code, `d`/`dmin` for the f16 super-scales
//! and `sc`/`m` for the per-sub-block 4/6/8-bit scales and mins.

use bytemuck::{Pod, Zeroable};
use half::f16;

use crate::QuantType;

/// Elements in a K-quant / ternary super-block (`QK_K`).
pub const QK_K: usize = 256;

/// Elements in a legacy block (`QK4_0` = `QK8_0` = 32).
pub const QK: usize = 32;

/// Q4_0: `x = d * (q - 8)`, q in 0..16. 32 elements, 18 bytes, 4.5 bpw.
///
/// `qs[j]` holds element `j` in its low nibble and element `j + 16` in its
/// high nibble.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ4_0 {
    /// Scale (delta).
    pub d: f16,
    /// Nibbles: low = element j, high = element j + 16.
    pub qs: [u8; 16],
}
const _: () = assert!(size_of::<BlockQ4_0>() == 18);

/// Q4_1: `x = d * q + m`, q in 0..16. 32 elements, 20 bytes, 5.0 bpw.
///
/// Nibble layout as [`BlockQ4_0`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ4_1 {
    /// Scale (delta).
    pub d: f16,
    /// Offset (the block minimum).
    pub m: f16,
    /// Nibbles: low = element j, high = element j + 16.
    pub qs: [u8; 16],
}
const _: () = assert!(size_of::<BlockQ4_1>() == 20);

/// Q5_0: `x = d * (q - 16)`, q in 0..32. 32 elements, 22 bytes, 5.5 bpw.
///
/// The low 4 bits are laid out as in [`BlockQ4_0`]; bit `j` of the
/// little-endian `u32` in `qh` is the 5th bit of element `j`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ5_0 {
    /// Scale (delta).
    pub d: f16,
    /// Fifth bits, a little-endian `u32`: bit j belongs to element j.
    pub qh: [u8; 4],
    /// Low nibbles: low = element j, high = element j + 16.
    pub qs: [u8; 16],
}
const _: () = assert!(size_of::<BlockQ5_0>() == 22);

/// Q5_1: `x = d * q + m`, q in 0..32. 32 elements, 24 bytes, 6.0 bpw.
///
/// Bit layout as [`BlockQ5_0`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ5_1 {
    /// Scale (delta).
    pub d: f16,
    /// Offset (the block minimum).
    pub m: f16,
    /// Fifth bits, a little-endian `u32`: bit j belongs to element j.
    pub qh: [u8; 4],
    /// Low nibbles: low = element j, high = element j + 16.
    pub qs: [u8; 16],
}
const _: () = assert!(size_of::<BlockQ5_1>() == 24);

/// Q8_0: `x = d * q`, q in -127..=127. 32 elements, 34 bytes, 8.5 bpw.
///
/// Also the activation format paired with Q4_0, Q5_0 and Q8_0 weights.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ8_0 {
    /// Scale (delta).
    pub d: f16,
    /// Codes.
    pub qs: [i8; 32],
}
const _: () = assert!(size_of::<BlockQ8_0>() == 34);

/// Q8_1 (activation only): `x = d * q`, with `s = d * sum(q)`. 32 elements,
/// 36 bytes. The activation format paired with Q4_1 and Q5_1 weights.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ8_1 {
    /// Scale (delta).
    pub d: f16,
    /// `d * sum(qs)`, rounded to f16.
    pub s: f16,
    /// Codes.
    pub qs: [i8; 32],
}
const _: () = assert!(size_of::<BlockQ8_1>() == 36);

/// Q2_K: `x = d * sc * q - dmin * m`, q in 0..4; 16 sub-blocks of 16 with
/// 4-bit `sc` (low nibble of `scales`) and 4-bit `m` (high nibble).
/// 256 elements, 84 bytes, 2.625 bpw.
///
/// Element `e = 128 n + 32 j + l` (n < 2, j < 4, l < 32) is
/// `(qs[32 n + l] >> 2 j) & 3` with scale index `8 n + 2 j + l / 16`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ2K {
    /// Sub-block scales (low nibble) and mins (high nibble).
    pub scales: [u8; 16],
    /// 2-bit codes, four per byte.
    pub qs: [u8; 64],
    /// Super-block scale for the scales.
    pub d: f16,
    /// Super-block scale for the mins.
    pub dmin: f16,
}
const _: () = assert!(size_of::<BlockQ2K>() == 84);

/// Q3_K: `x = d * (sc - 32) * (q - 4)`, q in 0..8 (2 low bits in `qs`, high
/// bit in `hmask`); 16 sub-blocks of 16 with 6-bit `sc`.
/// 256 elements, 110 bytes, 3.4375 bpw.
///
/// Element `e = 128 n + 32 j + l` has low bits `(qs[32 n + l] >> 2 j) & 3`,
/// high bit `hmask[l] >> (4 n + j) & 1` and scale index `8 n + 2 j + l / 16`.
/// Scale `i` is `(scales[i % 8] >> 4 (i / 8)) & 15 | ((scales[8 + i % 4] >>
/// 2 (i / 4)) & 3) << 4`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ3K {
    /// High bits of the codes (bit b of byte l: element 32 b + l).
    pub hmask: [u8; 32],
    /// Low 2 bits of the codes.
    pub qs: [u8; 64],
    /// 16 six-bit scales, packed.
    pub scales: [u8; 12],
    /// Super-block scale.
    pub d: f16,
}
const _: () = assert!(size_of::<BlockQ3K>() == 110);

/// Q4_K: `x = d * sc * q - dmin * m`, q in 0..16; 8 sub-blocks of 32 with
/// 6-bit `sc` and `m` packed in `scales` (ggml's `get_scale_min_k4`).
/// 256 elements, 144 bytes, 4.5 bpw.
///
/// Element `e = 64 c + l` (l < 32) is the low nibble of `qs[32 c + l]`
/// with sub-block `2 c`; element `64 c + 32 + l` is its high nibble with
/// sub-block `2 c + 1`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ4K {
    /// Super-block scale for the scales.
    pub d: f16,
    /// Super-block scale for the mins.
    pub dmin: f16,
    /// 8 six-bit scales and 8 six-bit mins, packed.
    pub scales: [u8; 12],
    /// 4-bit codes.
    pub qs: [u8; 128],
}
const _: () = assert!(size_of::<BlockQ4K>() == 144);

/// Q5_K: `x = d * sc * q - dmin * m`, q in 0..32; scales as [`BlockQ4K`],
/// low nibbles as [`BlockQ4K`], 5th bit of element `64 c + l` in bit `2 c`
/// of `qh[l]` and of element `64 c + 32 + l` in bit `2 c + 1`.
/// 256 elements, 176 bytes, 5.5 bpw.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ5K {
    /// Super-block scale for the scales.
    pub d: f16,
    /// Super-block scale for the mins.
    pub dmin: f16,
    /// 8 six-bit scales and 8 six-bit mins, packed.
    pub scales: [u8; 12],
    /// Fifth bits of the codes.
    pub qh: [u8; 32],
    /// Low 4 bits of the codes.
    pub qs: [u8; 128],
}
const _: () = assert!(size_of::<BlockQ5K>() == 176);

/// Q6_K: `x = d * sc * (q - 32)`, q in 0..64; 16 sub-blocks of 16 with
/// signed 8-bit `sc`. 256 elements, 210 bytes, 6.5625 bpw.
///
/// In half `h` (128 elements), for `l < 32`: elements `l`, `l + 32`,
/// `l + 64`, `l + 96` take their low nibbles from `ql[64 h + l]` (low),
/// `ql[64 h + l + 32]` (low), `ql[64 h + l]` (high), `ql[64 h + l + 32]`
/// (high) and their top 2 bits from `qh[32 h + l]` at shifts 0, 2, 4, 6.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ6K {
    /// Low 4 bits of the codes.
    pub ql: [u8; 128],
    /// High 2 bits of the codes.
    pub qh: [u8; 64],
    /// Sub-block scales.
    pub scales: [i8; 16],
    /// Super-block scale.
    pub d: f16,
}
const _: () = assert!(size_of::<BlockQ6K>() == 210);

/// TQ1_0: `x = d * (t - 1)`, trit t in 0..3, packed 5 trits per byte
/// (base 3, most significant trit first, scaled by 256/243 and rounded up).
/// 256 elements, 54 bytes, 1.6875 bpw.
///
/// `qs[0..32]` hold elements `m + 32 n` (n < 5) of the first 160,
/// `qs[32..48]` elements `160 + m + 16 n` of the next 80, and `qh[j]` the
/// four elements `240 + j + 4 n` (n < 4) in its top four trits. Trit `n` of
/// a byte `b` is `((b * 3^n) as u8 as u16 * 3) >> 8`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockTQ1_0 {
    /// Five trits per byte.
    pub qs: [u8; 48],
    /// Four trits per byte.
    pub qh: [u8; 4],
    /// Scale.
    pub d: f16,
}
const _: () = assert!(size_of::<BlockTQ1_0>() == 54);

/// TQ2_0: `x = d * (q - 1)`, q in 0..3 (3 is never written).
/// 256 elements, 66 bytes, 2.0625 bpw.
///
/// Element `128 c + 32 n + m` is `(qs[32 c + m] >> 2 n) & 3`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockTQ2_0 {
    /// 2-bit codes, four per byte.
    pub qs: [u8; 64],
    /// Scale.
    pub d: f16,
}
const _: () = assert!(size_of::<BlockTQ2_0>() == 66);

/// Q8_K (activation only): `x = d * q`, q in -127..=127, with `bsums[i]` =
/// sum of the 16 codes `16 i .. 16 i + 16`. 256 elements, 292 bytes.
/// The activation format paired with K-quant and TQ weights.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ8K {
    /// Scale (f32, not f16).
    pub d: f32,
    /// Codes.
    pub qs: [i8; 256],
    /// Sums of the codes in groups of 16.
    pub bsums: [i16; 16],
}
const _: () = assert!(size_of::<BlockQ8K>() == 292);

/// A ggml weight block with a quantizer and dequantizer in this crate.
///
/// Implemented for every block struct that is the storage of a
/// [`QuantType`]. Use [`crate::quantize_blocks`] and
/// [`crate::dequantize_blocks`] to convert typed slices. The trait is
/// sealed.
pub trait QuantBlock: Pod + sealed::Codec {
    /// The storage type this block belongs to.
    const TYPE: QuantType;
    /// Elements per block.
    const ELEMS: usize;
    /// Bytes per block (`size_of::<Self>()`).
    const BYTES: usize = size_of::<Self>();
    /// The activation block ggml pairs with this weight block in its dot
    /// product (`vec_dot_type`).
    type DotWith: Pod;
}

macro_rules! quant_block {
    ($($b:ty => $t:ident, $n:expr, $dot:ty;)*) => {$(
        impl QuantBlock for $b {
            const TYPE: QuantType = QuantType::$t;
            const ELEMS: usize = $n;
            type DotWith = $dot;
        }
    )*};
}

quant_block! {
    BlockQ4_0 => Q4_0, QK, BlockQ8_0;
    BlockQ4_1 => Q4_1, QK, BlockQ8_1;
    BlockQ5_0 => Q5_0, QK, BlockQ8_0;
    BlockQ5_1 => Q5_1, QK, BlockQ8_1;
    BlockQ8_0 => Q8_0, QK, BlockQ8_0;
    BlockQ2K => Q2_K, QK_K, BlockQ8K;
    BlockQ3K => Q3_K, QK_K, BlockQ8K;
    BlockQ4K => Q4_K, QK_K, BlockQ8K;
    BlockQ5K => Q5_K, QK_K, BlockQ8K;
    BlockQ6K => Q6_K, QK_K, BlockQ8K;
    BlockTQ1_0 => TQ1_0, QK_K, BlockQ8K;
    BlockTQ2_0 => TQ2_0, QK_K, BlockQ8K;
}

pub(crate) mod sealed {
    /// Per-block conversion, implemented next to each format's code.
    /// Slices passed in always have exactly `ELEMS` elements and finite
    /// values (for `encode`); callers in this crate check that.
    pub trait Codec: Sized {
        /// Writes the block's `ELEMS` values to `y`.
        fn decode(&self, y: &mut [f32]);
        /// Quantizes `ELEMS` values with llama.cpp's reference algorithm.
        fn encode(x: &[f32]) -> Self;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_sizes_match_the_type_table() {
        fn check<B: QuantBlock>() {
            assert_eq!(B::BYTES, B::TYPE.block_bytes(), "{}", B::TYPE);
            assert_eq!(B::ELEMS, B::TYPE.block_elems(), "{}", B::TYPE);
        }
        check::<BlockQ4_0>();
        check::<BlockQ4_1>();
        check::<BlockQ5_0>();
        check::<BlockQ5_1>();
        check::<BlockQ8_0>();
        check::<BlockQ2K>();
        check::<BlockQ3K>();
        check::<BlockQ4K>();
        check::<BlockQ5K>();
        check::<BlockQ6K>();
        check::<BlockTQ1_0>();
        check::<BlockTQ2_0>();
    }
}
