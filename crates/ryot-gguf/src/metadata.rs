//! Metadata values ([`Value`], [`Array`], [`ValueType`]) and the key-value
//! table [`Metadata`] with typed getters.
//!
//! Arrays are stored typed (`Vec<f32>`, `Vec<String>`, ...) rather than as
//! a `Vec<Value>`, so a 150k-entry vocabulary costs what its strings cost
//! and the tokenizer gets a plain slice.

use std::collections::HashMap;
use std::fmt;

use crate::{GgufError, GgufErrorKind, Result};

/// The 13 GGUF metadata value types, with their on-disk ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ValueType {
    /// `uint8`.
    U8 = 0,
    /// `int8`.
    I8 = 1,
    /// `uint16`.
    U16 = 2,
    /// `int16`.
    I16 = 3,
    /// `uint32`.
    U32 = 4,
    /// `int32`.
    I32 = 5,
    /// `float32`.
    F32 = 6,
    /// `bool` (one byte, 0 or 1).
    Bool = 7,
    /// UTF-8 string: u64 length, then bytes.
    String = 8,
    /// Array: u32 element type, u64 count, then elements.
    Array = 9,
    /// `uint64`.
    U64 = 10,
    /// `int64`.
    I64 = 11,
    /// `float64`.
    F64 = 12,
}

impl ValueType {
    /// The type with this on-disk id.
    pub fn from_id(id: u32) -> Option<ValueType> {
        use ValueType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// The lower-case name gguf-py uses (`"uint32"`, `"string"`, ...).
    pub const fn name(self) -> &'static str {
        use ValueType::*;
        match self {
            U8 => "uint8",
            I8 => "int8",
            U16 => "uint16",
            I16 => "int16",
            U32 => "uint32",
            I32 => "int32",
            F32 => "float32",
            Bool => "bool",
            String => "string",
            Array => "array",
            U64 => "uint64",
            I64 => "int64",
            F64 => "float64",
        }
    }

    /// Bytes per value on disk for fixed-size types; `None` for strings and
    /// arrays.
    pub const fn fixed_size(self) -> Option<usize> {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `uint8`.
    U8(u8),
    /// `int8`.
    I8(i8),
    /// `uint16`.
    U16(u16),
    /// `int16`.
    I16(i16),
    /// `uint32`.
    U32(u32),
    /// `int32`.
    I32(i32),
    /// `uint64`.
    U64(u64),
    /// `int64`.
    I64(i64),
    /// `float32`.
    F32(f32),
    /// `float64`.
    F64(f64),
    /// `bool`.
    Bool(bool),
    /// `string`.
    String(String),
    /// `array`.
    Array(Array),
}

impl Value {
    /// The value's type.
    pub fn ty(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F32(_) => ValueType::F32,
            Value::F64(_) => ValueType::F64,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::Array(_) => ValueType::Array,
        }
    }

    /// The value as a non-negative integer, whatever its integer type.
    pub fn as_uint(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }
}

/// A typed array value. Nested arrays are allowed (up to
/// [`crate::MAX_ARRAY_DEPTH`] levels).
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)] // one variant per element type, named as ValueType
pub enum Array {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bool(Vec<bool>),
    String(Vec<String>),
    Array(Vec<Array>),
}

impl Array {
    /// The element type.
    pub fn elem_type(&self) -> ValueType {
        match self {
            Array::U8(_) => ValueType::U8,
            Array::I8(_) => ValueType::I8,
            Array::U16(_) => ValueType::U16,
            Array::I16(_) => ValueType::I16,
            Array::U32(_) => ValueType::U32,
            Array::I32(_) => ValueType::I32,
            Array::U64(_) => ValueType::U64,
            Array::I64(_) => ValueType::I64,
            Array::F32(_) => ValueType::F32,
            Array::F64(_) => ValueType::F64,
            Array::Bool(_) => ValueType::Bool,
            Array::String(_) => ValueType::String,
            Array::Array(_) => ValueType::Array,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Array::U8(v) => v.len(),
            Array::I8(v) => v.len(),
            Array::U16(v) => v.len(),
            Array::I16(v) => v.len(),
            Array::U32(v) => v.len(),
            Array::I32(v) => v.len(),
            Array::U64(v) => v.len(),
            Array::I64(v) => v.len(),
            Array::F32(v) => v.len(),
            Array::F64(v) => v.len(),
            Array::Bool(v) => v.len(),
            Array::String(v) => v.len(),
            Array::Array(v) => v.len(),
        }
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` as a [`Value`] (cloned), or `None` past the end.
    pub fn get(&self, i: usize) -> Option<Value> {
        Some(match self {
            Array::U8(v) => Value::U8(*v.get(i)?),
            Array::I8(v) => Value::I8(*v.get(i)?),
            Array::U16(v) => Value::U16(*v.get(i)?),
            Array::I16(v) => Value::I16(*v.get(i)?),
            Array::U32(v) => Value::U32(*v.get(i)?),
            Array::I32(v) => Value::I32(*v.get(i)?),
            Array::U64(v) => Value::U64(*v.get(i)?),
            Array::I64(v) => Value::I64(*v.get(i)?),
            Array::F32(v) => Value::F32(*v.get(i)?),
            Array::F64(v) => Value::F64(*v.get(i)?),
            Array::Bool(v) => Value::Bool(*v.get(i)?),
            Array::String(v) => Value::String(v.get(i)?.clone()),
            Array::Array(v) => Value::Array(v.get(i)?.clone()),
        })
    }
}

/// The metadata table: key-value pairs in file order, with lookup by key.
#[derive(Clone, Debug, Default)]
pub struct Metadata {
    entries: Vec<(String, Value)>,
    index: HashMap<String, usize>,
}

/// Generates a strict typed getter for one scalar variant.
macro_rules! getter {
    ($(#[$doc:meta])* $fn:ident, $variant:ident, $ty:ty, $name:literal) => {
        $(#[$doc])*
        ///
        /// # Errors
        /// [`GgufErrorKind::MissingKey`] or [`GgufErrorKind::WrongType`].
        pub fn $fn(&self, key: &str) -> Result<$ty> {
            match self.require(key)? {
                Value::$variant(v) => Ok(v.clone()),
                other => Err(wrong(key, $name, other.ty())),
            }
        }
    };
}

/// Generates a typed array getter returning a slice.
macro_rules! array_getter {
    ($(#[$doc:meta])* $fn:ident, $variant:ident, $ty:ty, $name:literal) => {
        $(#[$doc])*
        ///
        /// # Errors
        /// [`GgufErrorKind::MissingKey`], or [`GgufErrorKind::WrongType`]
        /// if the value is not an array of that element type.
        pub fn $fn(&self, key: &str) -> Result<&[$ty]> {
            match self.require(key)? {
                Value::Array(Array::$variant(v)) => Ok(v),
                other => Err(wrong(key, $name, other.ty())),
            }
        }
    };
}

fn wrong(key: &str, expected: &'static str, got: ValueType) -> GgufError {
    GgufErrorKind::WrongType { key: key.to_string(), expected, got }.into()
}

impl Metadata {
    /// Adds an entry; returns `false` (and changes nothing) if the key is
    /// already present.
    pub(crate) fn insert(&mut self, key: String, value: Value) -> bool {
        if self.index.contains_key(&key) {
            return false;
        }
        self.index.insert(key.clone(), self.entries.len());
        self.entries.push((key, value));
        true
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The value under `key`, if any.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.index.get(key).map(|&i| &self.entries[i].1)
    }

    /// The value under `key`.
    ///
    /// # Errors
    /// [`GgufErrorKind::MissingKey`].
    pub fn require(&self, key: &str) -> Result<&Value> {
        self.get(key).ok_or_else(|| {
            GgufErrorKind::MissingKey { key: key.to_string() }.into()
        })
    }

    getter!(
        /// The `uint8` under `key`.
        get_u8, U8, u8, "uint8"
    );
    getter!(
        /// The `int8` under `key`.
        get_i8, I8, i8, "int8"
    );
    getter!(
        /// The `uint16` under `key`.
        get_u16, U16, u16, "uint16"
    );
    getter!(
        /// The `int16` under `key`.
        get_i16, I16, i16, "int16"
    );
    getter!(
        /// The `uint32` under `key`.
        get_u32, U32, u32, "uint32"
    );
    getter!(
        /// The `int32` under `key`.
        get_i32, I32, i32, "int32"
    );
    getter!(
        /// The `uint64` under `key`.
        get_u64, U64, u64, "uint64"
    );
    getter!(
        /// The `int64` under `key`.
        get_i64, I64, i64, "int64"
    );
    getter!(
        /// The `float32` under `key`.
        get_f32, F32, f32, "float32"
    );
    getter!(
        /// The `float64` under `key`.
        get_f64, F64, f64, "float64"
    );
    getter!(
        /// The `bool` under `key`.
        get_bool, Bool, bool, "bool"
    );

    /// The string under `key`.
    ///
    /// # Errors
    /// [`GgufErrorKind::MissingKey`] or [`GgufErrorKind::WrongType`].
    pub fn get_str(&self, key: &str) -> Result<&str> {
        match self.require(key)? {
            Value::String(s) => Ok(s),
            other => Err(wrong(key, "string", other.ty())),
        }
    }

    /// The array under `key`, whatever its element type.
    ///
    /// # Errors
    /// [`GgufErrorKind::MissingKey`] or [`GgufErrorKind::WrongType`].
    pub fn get_array(&self, key: &str) -> Result<&Array> {
        match self.require(key)? {
            Value::Array(a) => Ok(a),
            other => Err(wrong(key, "array", other.ty())),
        }
    }

    /// The integer under `key`, of any integer type, if it is
    /// non-negative (writers disagree on `uint32` vs `int32` for ids and
    /// counts).
    ///
    /// # Errors
    /// [`GgufErrorKind::MissingKey`], or [`GgufErrorKind::WrongType`] for
    /// non-integers and negative values.
    pub fn get_uint(&self, key: &str) -> Result<u64> {
        let v = self.require(key)?;
        v.as_uint().ok_or_else(|| wrong(key, "non-negative integer", v.ty()))
    }

    array_getter!(
        /// The array of strings under `key`.
        get_str_array, String, String, "array of string"
    );
    array_getter!(
        /// The array of `float32` under `key`.
        get_f32_array, F32, f32, "array of float32"
    );
    array_getter!(
        /// The array of `int32` under `key`.
        get_i32_array, I32, i32, "array of int32"
    );
    array_getter!(
        /// The array of `uint32` under `key`.
        get_u32_array, U32, u32, "array of uint32"
    );
}
