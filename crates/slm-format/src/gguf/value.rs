//! GGUF metadata values: the 13 wire types, scalar [`Value`]s and typed [`Array`]s.
//!
//! `Display` is compact, for listings such as `slm show`: long strings are cut and arrays of more
//! than a few items are summarised as `[STRING; 49152 items]`. The alternate form (`{:#}`) prints
//! everything.

use std::fmt;

/// The wire type ids of GGUF metadata values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ValueType {
    /// `u8`
    U8 = 0,
    /// `i8`
    I8 = 1,
    /// `u16`
    U16 = 2,
    /// `i16`
    I16 = 3,
    /// `u32`
    U32 = 4,
    /// `i32`
    I32 = 5,
    /// `f32`
    F32 = 6,
    /// one byte, 0 or 1
    Bool = 7,
    /// `u64` length + UTF-8 bytes
    String = 8,
    /// element type + `u64` count + elements
    Array = 9,
    /// `u64`
    U64 = 10,
    /// `i64`
    I64 = 11,
    /// `f64`
    F64 = 12,
}

impl ValueType {
    /// Looks up a wire id; `None` for ids outside 0..=12.
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

    /// The wire id.
    pub fn id(self) -> u32 {
        self as u32
    }

    /// The name gguf-py uses (`UINT32`, `STRING`, ...).
    pub fn name(self) -> &'static str {
        use ValueType::*;
        match self {
            U8 => "UINT8",
            I8 => "INT8",
            U16 => "UINT16",
            I16 => "INT16",
            U32 => "UINT32",
            I32 => "INT32",
            F32 => "FLOAT32",
            Bool => "BOOL",
            String => "STRING",
            Array => "ARRAY",
            U64 => "UINT64",
            I64 => "INT64",
            F64 => "FLOAT64",
        }
    }

    /// The smallest number of bytes one value of this type occupies on disk. Used to check a
    /// declared array count against the bytes left before allocating.
    pub(crate) fn min_encoded_size(self) -> u64 {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 => 8,
            String => 8,    // the length prefix of an empty string
            Array => 4 + 8, // element type + count of an empty array
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
    /// `UINT8`
    U8(u8),
    /// `INT8`
    I8(i8),
    /// `UINT16`
    U16(u16),
    /// `INT16`
    I16(i16),
    /// `UINT32`
    U32(u32),
    /// `INT32`
    I32(i32),
    /// `FLOAT32`
    F32(f32),
    /// `BOOL`
    Bool(bool),
    /// `STRING` (UTF-8)
    String(String),
    /// `ARRAY`
    Array(Array),
    /// `UINT64`
    U64(u64),
    /// `INT64`
    I64(i64),
    /// `FLOAT64`
    F64(f64),
}

/// A typed metadata array. Nested arrays may each have their own element type.
#[derive(Clone, Debug, PartialEq)]
pub enum Array {
    /// `UINT8` elements
    U8(Vec<u8>),
    /// `INT8` elements
    I8(Vec<i8>),
    /// `UINT16` elements
    U16(Vec<u16>),
    /// `INT16` elements
    I16(Vec<i16>),
    /// `UINT32` elements
    U32(Vec<u32>),
    /// `INT32` elements
    I32(Vec<i32>),
    /// `FLOAT32` elements
    F32(Vec<f32>),
    /// `BOOL` elements
    Bool(Vec<bool>),
    /// `STRING` elements
    String(Vec<String>),
    /// `ARRAY` elements (arrays of arrays)
    Array(Vec<Array>),
    /// `UINT64` elements
    U64(Vec<u64>),
    /// `INT64` elements
    I64(Vec<i64>),
    /// `FLOAT64` elements
    F64(Vec<f64>),
}

impl Value {
    /// The wire type of this value.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::Array(_) => ValueType::Array,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
        }
    }

    /// The gguf-py name of the type (`UINT32`, `STRING`, `ARRAY`, ...).
    pub fn type_name(&self) -> &'static str {
        self.value_type().name()
    }

    /// A precise type description for error messages: `ARRAY[STRING]` for arrays.
    pub fn type_description(&self) -> String {
        match self {
            Value::Array(a) => a.type_description(),
            other => other.type_name().to_string(),
        }
    }

    /// The value as an `i128` if it is an integer of any width (never for bools or floats).
    pub fn as_integer(&self) -> Option<i128> {
        Some(match *self {
            Value::U8(v) => v.into(),
            Value::I8(v) => v.into(),
            Value::U16(v) => v.into(),
            Value::I16(v) => v.into(),
            Value::U32(v) => v.into(),
            Value::I32(v) => v.into(),
            Value::U64(v) => v.into(),
            Value::I64(v) => v.into(),
            _ => return None,
        })
    }
}

impl Array {
    /// The wire type of the elements.
    pub fn elem_type(&self) -> ValueType {
        match self {
            Array::U8(_) => ValueType::U8,
            Array::I8(_) => ValueType::I8,
            Array::U16(_) => ValueType::U16,
            Array::I16(_) => ValueType::I16,
            Array::U32(_) => ValueType::U32,
            Array::I32(_) => ValueType::I32,
            Array::F32(_) => ValueType::F32,
            Array::Bool(_) => ValueType::Bool,
            Array::String(_) => ValueType::String,
            Array::Array(_) => ValueType::Array,
            Array::U64(_) => ValueType::U64,
            Array::I64(_) => ValueType::I64,
            Array::F64(_) => ValueType::F64,
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
            Array::F32(v) => v.len(),
            Array::Bool(v) => v.len(),
            Array::String(v) => v.len(),
            Array::Array(v) => v.len(),
            Array::U64(v) => v.len(),
            Array::I64(v) => v.len(),
            Array::F64(v) => v.len(),
        }
    }

    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `ARRAY[<element type>]`, for error messages.
    pub fn type_description(&self) -> String {
        format!("ARRAY[{}]", self.elem_type().name())
    }

    /// The elements as `i128`s if this is an integer array (any width).
    pub fn integers(&self) -> Option<Vec<i128>> {
        fn conv<T: Copy + Into<i128>>(v: &[T]) -> Vec<i128> {
            v.iter().map(|&x| x.into()).collect()
        }
        Some(match self {
            Array::U8(v) => conv(v),
            Array::I8(v) => conv(v),
            Array::U16(v) => conv(v),
            Array::I16(v) => conv(v),
            Array::U32(v) => conv(v),
            Array::I32(v) => conv(v),
            Array::U64(v) => conv(v),
            Array::I64(v) => conv(v),
            _ => return None,
        })
    }

    /// Element `i` as a [`Value`] (clones strings and nested arrays); `None` past the end.
    pub fn get(&self, i: usize) -> Option<Value> {
        Some(match self {
            Array::U8(v) => Value::U8(*v.get(i)?),
            Array::I8(v) => Value::I8(*v.get(i)?),
            Array::U16(v) => Value::U16(*v.get(i)?),
            Array::I16(v) => Value::I16(*v.get(i)?),
            Array::U32(v) => Value::U32(*v.get(i)?),
            Array::I32(v) => Value::I32(*v.get(i)?),
            Array::F32(v) => Value::F32(*v.get(i)?),
            Array::Bool(v) => Value::Bool(*v.get(i)?),
            Array::String(v) => Value::String(v.get(i)?.clone()),
            Array::Array(v) => Value::Array(v.get(i)?.clone()),
            Array::U64(v) => Value::U64(*v.get(i)?),
            Array::I64(v) => Value::I64(*v.get(i)?),
            Array::F64(v) => Value::F64(*v.get(i)?),
        })
    }
}

/// Strings longer than this many characters are cut in the compact display.
const DISPLAY_MAX_STRING_CHARS: usize = 60;
/// Arrays with more elements than this are summarised in the compact display.
const DISPLAY_MAX_ARRAY_ITEMS: usize = 8;

fn fmt_str(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    if f.alternate() || s.chars().count() <= DISPLAY_MAX_STRING_CHARS {
        return write!(f, "{s:?}");
    }
    let cut: String = s.chars().take(DISPLAY_MAX_STRING_CHARS).collect();
    write!(f, "{cut:?}… ({} bytes)", s.len())
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::U8(v) => write!(f, "{v}"),
            Value::I8(v) => write!(f, "{v}"),
            Value::U16(v) => write!(f, "{v}"),
            Value::I16(v) => write!(f, "{v}"),
            Value::U32(v) => write!(f, "{v}"),
            Value::I32(v) => write!(f, "{v}"),
            Value::F32(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::String(s) => fmt_str(f, s),
            Value::Array(a) => fmt::Display::fmt(a, f),
            Value::U64(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
        }
    }
}

impl fmt::Display for Array {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.len();
        if !f.alternate() && n > DISPLAY_MAX_ARRAY_ITEMS {
            return write!(f, "[{}; {n} items]", self.elem_type().name());
        }
        f.write_str("[")?;
        for i in 0..n {
            if i > 0 {
                f.write_str(", ")?;
            }
            match self.get(i) {
                Some(v) => fmt::Display::fmt(&v, f)?,
                None => break,
            }
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_ids_round_trip() {
        for id in 0..=12 {
            let t = ValueType::from_id(id).unwrap();
            assert_eq!(t.id(), id);
        }
        assert_eq!(ValueType::from_id(13), None);
        assert_eq!(ValueType::from_id(u32::MAX), None);
    }

    #[test]
    fn display_is_compact_and_alternate_is_full() {
        let tokens = Value::Array(Array::String(vec!["a".to_string(); 49152]));
        assert_eq!(tokens.to_string(), "[STRING; 49152 items]");
        assert_eq!(Value::Array(Array::I32(vec![1, -2])).to_string(), "[1, -2]");
        let nested = Value::Array(Array::Array(vec![
            Array::U8(vec![1]),
            Array::Bool(vec![true]),
        ]));
        assert_eq!(nested.to_string(), "[[1], [true]]");
        assert_eq!(
            Value::String("hi \"x\"".into()).to_string(),
            "\"hi \\\"x\\\"\""
        );
        let long = Value::String("é".repeat(100));
        let short = long.to_string();
        assert!(short.ends_with("… (200 bytes)"), "{short}");
        assert_eq!(format!("{long:#}").chars().count(), 102);
        assert_eq!(
            format!("{:#}", Value::Array(Array::U8(vec![0; 9])))
                .matches(", ")
                .count(),
            8
        );
    }

    #[test]
    fn type_names_and_integers() {
        assert_eq!(Value::U32(1).type_name(), "UINT32");
        assert_eq!(
            Value::Array(Array::F32(vec![])).type_description(),
            "ARRAY[FLOAT32]"
        );
        assert_eq!(Value::I64(-5).as_integer(), Some(-5));
        assert_eq!(Value::F32(1.0).as_integer(), None);
        assert_eq!(
            Array::U64(vec![u64::MAX]).integers(),
            Some(vec![u64::MAX as i128])
        );
        assert_eq!(Array::String(vec![]).integers(), None);
    }
}
