//! [`Metadata`]: the insertion-ordered key → [`Value`] map of a GGUF file, with typed getters.
//!
//! Getters are strict about types but forgiving about integer widths: `get_u32` accepts a
//! `UINT64` or `INT32` whose value fits, because converters disagree on widths (gguf-py writes
//! some counts as `UINT32`, others as `INT32`), while a string where a number belongs is an error.

use std::collections::HashMap;

use super::error::GgufError;
use super::value::{Array, Value};

/// Insertion-ordered metadata. Keys are unique.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    entries: Vec<(String, Value)>,
    index: HashMap<String, usize>,
}

fn wrong_type(key: &str, expected: &str, found: &Value) -> GgufError {
    GgufError::WrongType {
        key: key.to_string(),
        expected: expected.to_string(),
        found: found.type_description(),
    }
}

fn out_of_range(key: &str, value: impl ToString, target: &'static str) -> GgufError {
    GgufError::ValueOutOfRange {
        key: key.to_string(),
        value: value.to_string(),
        target,
    }
}

impl Metadata {
    /// An empty map.
    pub fn new() -> Metadata {
        Metadata::default()
    }

    /// Appends `key`; fails with [`GgufError::DuplicateKey`] (offset 0) if it is already present.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) -> Result<(), GgufError> {
        let key = key.into();
        if self.index.contains_key(&key) {
            return Err(GgufError::DuplicateKey { key, offset: 0 });
        }
        self.index.insert(key.clone(), self.entries.len());
        self.entries.push((key, value));
        Ok(())
    }

    /// Sets `key`: replaces the value in place if present, appends otherwise.
    pub fn set(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        match self.index.get(&key).and_then(|&i| self.entries.get_mut(i)) {
            Some(slot) => slot.1 = value,
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, value));
            }
        }
    }

    /// Removes `key`, keeping the order of the others; returns its value if it was present.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.index.remove(key)?;
        if i >= self.entries.len() {
            return None;
        }
        let (_, v) = self.entries.remove(i);
        for slot in self.index.values_mut() {
            if *slot > i {
                *slot -= 1;
            }
        }
        Some(v)
    }

    /// True if `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.index
            .get(key)
            .and_then(|&i| self.entries.get(i))
            .map(|(_, v)| v)
    }

    /// All entries in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn require(&self, key: &str) -> Result<&Value, GgufError> {
        self.get(key).ok_or_else(|| GgufError::MissingKey {
            key: key.to_string(),
        })
    }

    fn integer(&self, key: &str, expected: &str) -> Result<i128, GgufError> {
        let v = self.require(key)?;
        v.as_integer().ok_or_else(|| wrong_type(key, expected, v))
    }

    /// Any integer type whose value fits in `u64`.
    pub fn get_u64(&self, key: &str) -> Result<u64, GgufError> {
        let v = self.integer(key, "an unsigned integer")?;
        u64::try_from(v).map_err(|_| out_of_range(key, v, "u64"))
    }

    /// Any integer type whose value fits in `u32`.
    pub fn get_u32(&self, key: &str) -> Result<u32, GgufError> {
        let v = self.integer(key, "an unsigned integer")?;
        u32::try_from(v).map_err(|_| out_of_range(key, v, "u32"))
    }

    /// Any integer type whose value fits in `i64`.
    pub fn get_i64(&self, key: &str) -> Result<i64, GgufError> {
        let v = self.integer(key, "an integer")?;
        i64::try_from(v).map_err(|_| out_of_range(key, v, "i64"))
    }

    /// A `FLOAT32`, or a `FLOAT64` that is within `f32` range.
    pub fn get_f32(&self, key: &str) -> Result<f32, GgufError> {
        match *self.require(key)? {
            Value::F32(x) => Ok(x),
            Value::F64(x) => {
                let y = x as f32;
                if x.is_finite() && !y.is_finite() {
                    return Err(out_of_range(key, x, "f32"));
                }
                Ok(y)
            }
            ref other => Err(wrong_type(key, "FLOAT32 or FLOAT64", other)),
        }
    }

    /// A `BOOL`.
    pub fn get_bool(&self, key: &str) -> Result<bool, GgufError> {
        match *self.require(key)? {
            Value::Bool(b) => Ok(b),
            ref other => Err(wrong_type(key, "BOOL", other)),
        }
    }

    /// A `STRING`.
    pub fn get_str(&self, key: &str) -> Result<&str, GgufError> {
        match self.require(key)? {
            Value::String(s) => Ok(s),
            other => Err(wrong_type(key, "STRING", other)),
        }
    }

    /// Any `ARRAY`.
    pub fn get_array(&self, key: &str) -> Result<&Array, GgufError> {
        match self.require(key)? {
            Value::Array(a) => Ok(a),
            other => Err(wrong_type(key, "ARRAY", other)),
        }
    }

    /// An `ARRAY[STRING]`.
    pub fn get_str_array(&self, key: &str) -> Result<&[String], GgufError> {
        match self.require(key)? {
            Value::Array(Array::String(v)) => Ok(v),
            other => Err(wrong_type(key, "ARRAY[STRING]", other)),
        }
    }

    /// An `ARRAY[FLOAT32]` (or `ARRAY[FLOAT64]` whose values fit in `f32`).
    pub fn get_f32_array(&self, key: &str) -> Result<Vec<f32>, GgufError> {
        match self.require(key)? {
            Value::Array(Array::F32(v)) => Ok(v.clone()),
            Value::Array(Array::F64(v)) => v
                .iter()
                .enumerate()
                .map(|(i, &x)| {
                    let y = x as f32;
                    if x.is_finite() && !y.is_finite() {
                        return Err(out_of_range(&format!("{key}[{i}]"), x, "f32"));
                    }
                    Ok(y)
                })
                .collect(),
            other => Err(wrong_type(key, "ARRAY[FLOAT32]", other)),
        }
    }

    /// An array of any integer type whose elements all fit in `i32`.
    pub fn get_i32_array(&self, key: &str) -> Result<Vec<i32>, GgufError> {
        let v = self.require(key)?;
        if let Value::Array(Array::I32(xs)) = v {
            return Ok(xs.clone());
        }
        let ints = match v {
            Value::Array(a) => a.integers(),
            _ => None,
        };
        let ints = ints.ok_or_else(|| wrong_type(key, "ARRAY of integers", v))?;
        ints.into_iter()
            .enumerate()
            .map(|(i, x)| {
                i32::try_from(x).map_err(|_| out_of_range(&format!("{key}[{i}]"), x, "i32"))
            })
            .collect()
    }

    /// Like [`Metadata::get_u32`], but `Ok(None)` when the key is absent.
    pub fn get_u32_opt(&self, key: &str) -> Result<Option<u32>, GgufError> {
        self.opt(key, Self::get_u32)
    }

    /// Like [`Metadata::get_u64`], but `Ok(None)` when the key is absent.
    pub fn get_u64_opt(&self, key: &str) -> Result<Option<u64>, GgufError> {
        self.opt(key, Self::get_u64)
    }

    /// Like [`Metadata::get_i64`], but `Ok(None)` when the key is absent.
    pub fn get_i64_opt(&self, key: &str) -> Result<Option<i64>, GgufError> {
        self.opt(key, Self::get_i64)
    }

    /// Like [`Metadata::get_f32`], but `Ok(None)` when the key is absent.
    pub fn get_f32_opt(&self, key: &str) -> Result<Option<f32>, GgufError> {
        self.opt(key, Self::get_f32)
    }

    /// Like [`Metadata::get_bool`], but `Ok(None)` when the key is absent.
    pub fn get_bool_opt(&self, key: &str) -> Result<Option<bool>, GgufError> {
        self.opt(key, Self::get_bool)
    }

    /// Like [`Metadata::get_str`], but `Ok(None)` when the key is absent.
    pub fn get_str_opt(&self, key: &str) -> Result<Option<&str>, GgufError> {
        if !self.contains_key(key) {
            return Ok(None);
        }
        self.get_str(key).map(Some)
    }

    fn opt<'a, T>(
        &'a self,
        key: &str,
        get: impl FnOnce(&'a Self, &str) -> Result<T, GgufError>,
    ) -> Result<Option<T>, GgufError> {
        if !self.contains_key(key) {
            return Ok(None);
        }
        get(self, key).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Metadata {
        let mut m = Metadata::new();
        m.insert("u8", Value::U8(7)).unwrap();
        m.insert("neg", Value::I32(-1)).unwrap();
        m.insert("big", Value::U64(u64::MAX)).unwrap();
        m.insert("f64", Value::F64(1e300)).unwrap();
        m.insert("f64ok", Value::F64(0.5)).unwrap();
        m.insert("name", Value::String("llama".into())).unwrap();
        m.insert("flag", Value::Bool(true)).unwrap();
        m.insert(
            "toks",
            Value::Array(Array::String(vec!["a".into(), "b".into()])),
        )
        .unwrap();
        m.insert("types", Value::Array(Array::U8(vec![1, 2, 3])))
            .unwrap();
        m.insert("bigs", Value::Array(Array::U64(vec![1, u64::MAX])))
            .unwrap();
        m.insert("scores", Value::Array(Array::F32(vec![0.5, -1.0])))
            .unwrap();
        m
    }

    #[test]
    fn integer_getters_accept_any_width_that_fits() {
        let m = sample();
        assert_eq!(m.get_u32("u8").unwrap(), 7);
        assert_eq!(m.get_u64("u8").unwrap(), 7);
        assert_eq!(m.get_i64("neg").unwrap(), -1);
        assert!(matches!(
            m.get_u32("neg"),
            Err(GgufError::ValueOutOfRange { .. })
        ));
        assert!(matches!(
            m.get_u64("neg"),
            Err(GgufError::ValueOutOfRange { .. })
        ));
        assert_eq!(m.get_u64("big").unwrap(), u64::MAX);
        assert!(matches!(
            m.get_u32("big"),
            Err(GgufError::ValueOutOfRange { .. })
        ));
        assert!(matches!(
            m.get_i64("big"),
            Err(GgufError::ValueOutOfRange { .. })
        ));
        match m.get_u32("name") {
            Err(GgufError::WrongType { key, found, .. }) => {
                assert_eq!((key.as_str(), found.as_str()), ("name", "STRING"))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            m.get_u32("flag"),
            Err(GgufError::WrongType { .. })
        ));
    }

    #[test]
    fn other_getters() {
        let m = sample();
        assert!(matches!(
            m.get_f32("f64"),
            Err(GgufError::ValueOutOfRange { .. })
        ));
        assert_eq!(m.get_f32("f64ok").unwrap(), 0.5);
        assert!(matches!(m.get_f32("u8"), Err(GgufError::WrongType { .. })));
        assert_eq!(m.get_str("name").unwrap(), "llama");
        assert!(m.get_bool("flag").unwrap());
        assert_eq!(m.get_str_array("toks").unwrap(), ["a", "b"]);
        match m.get_str_array("types") {
            Err(GgufError::WrongType { found, .. }) => assert_eq!(found, "ARRAY[UINT8]"),
            other => panic!("{other:?}"),
        }
        assert_eq!(m.get_i32_array("types").unwrap(), [1, 2, 3]);
        match m.get_i32_array("bigs") {
            Err(GgufError::ValueOutOfRange { key, .. }) => assert_eq!(key, "bigs[1]"),
            other => panic!("{other:?}"),
        }
        assert_eq!(m.get_f32_array("scores").unwrap(), [0.5, -1.0]);
        assert!(matches!(
            m.get_f32_array("toks"),
            Err(GgufError::WrongType { .. })
        ));
    }

    #[test]
    fn missing_and_optional() {
        let m = sample();
        assert!(matches!(m.get_u32("nope"), Err(GgufError::MissingKey { key }) if key == "nope"));
        assert_eq!(m.get_u32_opt("nope").unwrap(), None);
        assert_eq!(m.get_str_opt("nope").unwrap(), None);
        assert_eq!(m.get_str_opt("name").unwrap(), Some("llama"));
        assert!(
            m.get_u32_opt("name").is_err(),
            "wrong type is an error even for _opt"
        );
        assert_eq!(m.get_bool_opt("flag").unwrap(), Some(true));
        assert_eq!(m.get_f32_opt("f64ok").unwrap(), Some(0.5));
        assert_eq!(m.get_u64_opt("big").unwrap(), Some(u64::MAX));
    }

    #[test]
    fn order_duplicates_set_remove() {
        let mut m = sample();
        assert!(matches!(
            m.insert("u8", Value::U8(1)),
            Err(GgufError::DuplicateKey { .. })
        ));
        m.set("u8", Value::U8(9));
        assert_eq!(m.iter().next().unwrap(), ("u8", &Value::U8(9)));
        assert_eq!(m.remove("neg"), Some(Value::I32(-1)));
        assert_eq!(m.get("big"), Some(&Value::U64(u64::MAX)));
        let keys: Vec<_> = m.iter().map(|(k, _)| k).collect();
        assert_eq!(keys[..3], ["u8", "big", "f64"]);
        assert_eq!(m.len(), 10);
    }
}
