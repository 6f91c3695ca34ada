//! [`GgufWriter`]: builds GGUF v3 files from metadata and raw tensor bytes.
//!
//! Layout matches llama.cpp and gguf-py: header, metadata, tensor infos, zero padding to the
//! alignment, then each tensor's bytes padded to the alignment. Inputs are validated up front
//! (shapes, byte lengths, names, alignment, the reader's limits) so every file written here is
//! one our own reader accepts, and nothing partial is written on a validation error.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use super::error::GgufError;
use super::limits::{Limits, DEFAULT_ALIGNMENT, MAX_KEY_LEN, MAX_WRITER_TENSOR_NAME_LEN};
use super::metadata::Metadata;
use super::reader::{align_up, tensor_size, validate_alignment, ALIGNMENT_KEY, GGUF_MAGIC};
use super::value::{Array, Value};
use crate::dtype::GgmlType;

/// The GGUF version the writer emits.
pub const WRITER_VERSION: u32 = 3;

/// A tensor waiting to be written.
#[derive(Clone, Debug)]
struct PendingTensor {
    name: String,
    dims: Vec<u64>,
    dtype: GgmlType,
    data: Vec<u8>,
}

/// Builds a GGUF v3 file. Metadata setters replace an earlier value of the same key in place.
///
/// `general.alignment` (a `UINT32`) is honoured if set; otherwise data is aligned to 32 bytes and
/// the key is not written.
#[derive(Clone, Debug, Default)]
pub struct GgufWriter {
    metadata: Metadata,
    tensors: Vec<PendingTensor>,
    names: HashSet<String>,
}

fn io_err(path: &Path, e: std::io::Error) -> GgufError {
    GgufError::io(path, e)
}

impl GgufWriter {
    /// An empty writer.
    pub fn new() -> GgufWriter {
        GgufWriter::default()
    }

    /// The metadata set so far.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Number of tensors added so far.
    pub fn tensor_count(&self) -> usize {
        self.tensors.len()
    }

    /// Sets `key` to any value.
    pub fn add(&mut self, key: impl Into<String>, value: Value) -> &mut Self {
        self.metadata.set(key, value);
        self
    }

    /// Sets a `UINT8`.
    pub fn add_u8(&mut self, key: impl Into<String>, v: u8) -> &mut Self {
        self.add(key, Value::U8(v))
    }

    /// Sets an `INT8`.
    pub fn add_i8(&mut self, key: impl Into<String>, v: i8) -> &mut Self {
        self.add(key, Value::I8(v))
    }

    /// Sets a `UINT16`.
    pub fn add_u16(&mut self, key: impl Into<String>, v: u16) -> &mut Self {
        self.add(key, Value::U16(v))
    }

    /// Sets an `INT16`.
    pub fn add_i16(&mut self, key: impl Into<String>, v: i16) -> &mut Self {
        self.add(key, Value::I16(v))
    }

    /// Sets a `UINT32`.
    pub fn add_u32(&mut self, key: impl Into<String>, v: u32) -> &mut Self {
        self.add(key, Value::U32(v))
    }

    /// Sets an `INT32`.
    pub fn add_i32(&mut self, key: impl Into<String>, v: i32) -> &mut Self {
        self.add(key, Value::I32(v))
    }

    /// Sets a `UINT64`.
    pub fn add_u64(&mut self, key: impl Into<String>, v: u64) -> &mut Self {
        self.add(key, Value::U64(v))
    }

    /// Sets an `INT64`.
    pub fn add_i64(&mut self, key: impl Into<String>, v: i64) -> &mut Self {
        self.add(key, Value::I64(v))
    }

    /// Sets a `FLOAT32`.
    pub fn add_f32(&mut self, key: impl Into<String>, v: f32) -> &mut Self {
        self.add(key, Value::F32(v))
    }

    /// Sets a `FLOAT64`.
    pub fn add_f64(&mut self, key: impl Into<String>, v: f64) -> &mut Self {
        self.add(key, Value::F64(v))
    }

    /// Sets a `BOOL`.
    pub fn add_bool(&mut self, key: impl Into<String>, v: bool) -> &mut Self {
        self.add(key, Value::Bool(v))
    }

    /// Sets a `STRING`.
    pub fn add_string(&mut self, key: impl Into<String>, v: impl Into<String>) -> &mut Self {
        self.add(key, Value::String(v.into()))
    }

    /// Sets an `ARRAY[STRING]`.
    pub fn add_str_array<S: AsRef<str>>(&mut self, key: impl Into<String>, v: &[S]) -> &mut Self {
        self.add_array(
            key,
            Array::String(v.iter().map(|s| s.as_ref().to_string()).collect()),
        )
    }

    /// Sets an `ARRAY[FLOAT32]`.
    pub fn add_f32_array(&mut self, key: impl Into<String>, v: &[f32]) -> &mut Self {
        self.add_array(key, Array::F32(v.to_vec()))
    }

    /// Sets an `ARRAY[INT32]`.
    pub fn add_i32_array(&mut self, key: impl Into<String>, v: &[i32]) -> &mut Self {
        self.add_array(key, Array::I32(v.to_vec()))
    }

    /// Sets any array.
    pub fn add_array(&mut self, key: impl Into<String>, v: Array) -> &mut Self {
        self.add(key, Value::Array(v))
    }

    /// Sets `general.alignment` (validated when writing).
    pub fn set_alignment(&mut self, alignment: u32) -> &mut Self {
        self.add_u32(ALIGNMENT_KEY, alignment)
    }

    /// Adds a tensor whose `data` is already encoded in `dtype`. `dims` are in ggml order
    /// (`dims[0]` = row length). Fails on a bad shape, a wrong byte length, an empty, duplicate
    /// or too long (≥ 64 bytes, llama.cpp's limit) name.
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        dtype: GgmlType,
        data: impl Into<Vec<u8>>,
    ) -> Result<&mut Self, GgufError> {
        let name = name.into();
        if name.is_empty() {
            return Err(GgufError::EmptyName {
                what: "tensor name",
                offset: 0,
            });
        }
        if name.len() > MAX_WRITER_TENSOR_NAME_LEN {
            let len = name.len();
            return Err(GgufError::NameTooLong {
                name,
                len,
                max: MAX_WRITER_TENSOR_NAME_LEN,
            });
        }
        if self.names.contains(&name) {
            return Err(GgufError::DuplicateTensor { name });
        }
        let (_, n_bytes) = tensor_size(&name, dims, dtype)?;
        let data = data.into();
        if data.len() as u64 != n_bytes {
            return Err(GgufError::TensorSizeMismatch {
                tensor: name,
                dims: dims.to_vec(),
                dtype,
                expected: n_bytes,
                found: data.len() as u64,
            });
        }
        self.names.insert(name.clone());
        self.tensors.push(PendingTensor {
            name,
            dims: dims.to_vec(),
            dtype,
            data,
        });
        Ok(self)
    }

    /// Adds an `F32` tensor from values.
    pub fn add_tensor_f32(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        values: &[f32],
    ) -> Result<&mut Self, GgufError> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.add_tensor(name, dims, GgmlType::F32, bytes)
    }

    /// The alignment the file will use: `general.alignment` if set and valid, else 32.
    pub fn alignment(&self) -> Result<u64, GgufError> {
        match self.metadata.get(ALIGNMENT_KEY) {
            None => Ok(DEFAULT_ALIGNMENT),
            Some(Value::U32(a)) => validate_alignment(u64::from(*a)),
            Some(other) => Err(GgufError::WrongType {
                key: ALIGNMENT_KEY.to_string(),
                expected: "UINT32".to_string(),
                found: other.type_description(),
            }),
        }
    }

    /// Checks everything the reader will check, so a written file always reads back.
    fn validate(&self) -> Result<u64, GgufError> {
        let limits = Limits::default();
        let alignment = self.alignment()?;
        if self.metadata.len() as u64 > limits.max_metadata_entries {
            return Err(too_many(
                "metadata entries",
                self.metadata.len(),
                limits.max_metadata_entries,
            ));
        }
        if self.tensors.len() as u64 > limits.max_tensors {
            return Err(too_many("tensors", self.tensors.len(), limits.max_tensors));
        }
        for (key, value) in self.metadata.iter() {
            if key.is_empty() {
                return Err(GgufError::EmptyName {
                    what: "metadata key",
                    offset: 0,
                });
            }
            if key.len() as u64 > MAX_KEY_LEN {
                return Err(GgufError::StringTooLong {
                    what: "metadata key",
                    offset: 0,
                    context: format!(
                        "metadata key `{}…`",
                        key.chars().take(40).collect::<String>()
                    ),
                    len: key.len() as u64,
                    max: MAX_KEY_LEN,
                });
            }
            validate_value(key, value, &limits)?;
        }
        Ok(alignment)
    }

    /// Writes the file to `out`. Validation happens before the first byte is written.
    pub fn write_to(&self, out: &mut dyn Write) -> Result<(), GgufError> {
        let alignment = self.validate()?;
        let stream = Path::new("<output stream>");
        self.write_unchecked(out, alignment)
            .map_err(|e| io_err(stream, e))
    }

    /// The file as bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, GgufError> {
        let mut out = Vec::new();
        self.write_to(&mut out)?;
        Ok(out)
    }

    /// Writes the file to `path` atomically (temp file in the same directory, fsync, rename), so
    /// a crash never leaves a half-written model under the final name.
    pub fn write_file(&self, path: &Path) -> Result<(), GgufError> {
        let alignment = self.validate()?;
        crate::atomic::write_atomic(path, |w| self.write_unchecked(w, alignment))
            .map_err(|e| io_err(path, e))
    }

    fn write_unchecked(&self, out: &mut dyn Write, alignment: u64) -> std::io::Result<()> {
        let mut header = Vec::new();
        header.extend_from_slice(&GGUF_MAGIC);
        header.extend_from_slice(&WRITER_VERSION.to_le_bytes());
        header.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        header.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in self.metadata.iter() {
            put_str(&mut header, key);
            header.extend_from_slice(&value.value_type().id().to_le_bytes());
            put_value(&mut header, value);
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            put_str(&mut header, &t.name);
            header.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                header.extend_from_slice(&d.to_le_bytes());
            }
            header.extend_from_slice(&t.dtype.id().to_le_bytes());
            header.extend_from_slice(&offset.to_le_bytes());
            offset = padded_end(offset, t.data.len() as u64, alignment)?;
        }
        let header_len = header.len() as u64;
        pad(&mut header, header_len, alignment)?;
        out.write_all(&header)?;
        let zeros = vec![0u8; alignment as usize];
        for t in &self.tensors {
            out.write_all(&t.data)?;
            let len = t.data.len() as u64;
            let padding = padded_end(0, len, alignment)? - len;
            out.write_all(zeros.get(..padding as usize).unwrap_or(&[]))?;
        }
        out.flush()
    }
}

fn too_many(what: &'static str, count: usize, max: u64) -> GgufError {
    GgufError::TooMany {
        what,
        offset: 0,
        context: "the writer".to_string(),
        count: count as u64,
        max,
    }
}

fn overflow_io() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        "GGUF layout size overflows u64",
    )
}

/// `offset + len` rounded up to the alignment.
fn padded_end(offset: u64, len: u64, alignment: u64) -> std::io::Result<u64> {
    offset
        .checked_add(len)
        .and_then(|e| align_up(e, alignment))
        .ok_or_else(overflow_io)
}

fn pad(buf: &mut Vec<u8>, len: u64, alignment: u64) -> std::io::Result<()> {
    let target = padded_end(len, 0, alignment)?;
    buf.resize(target as usize, 0);
    Ok(())
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn put_value(buf: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => buf.push(*x),
        Value::I8(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::U16(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => buf.push(u8::from(*x)),
        Value::String(s) => put_str(buf, s),
        Value::Array(a) => put_array(buf, a),
        Value::U64(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => buf.extend_from_slice(&x.to_le_bytes()),
    }
}

fn put_array(buf: &mut Vec<u8>, a: &Array) {
    buf.extend_from_slice(&a.elem_type().id().to_le_bytes());
    buf.extend_from_slice(&(a.len() as u64).to_le_bytes());
    fn each<T: Copy, const N: usize>(buf: &mut Vec<u8>, v: &[T], f: impl Fn(T) -> [u8; N]) {
        for &x in v {
            buf.extend_from_slice(&f(x));
        }
    }
    match a {
        Array::U8(v) => buf.extend_from_slice(v),
        Array::I8(v) => each(buf, v, i8::to_le_bytes),
        Array::U16(v) => each(buf, v, u16::to_le_bytes),
        Array::I16(v) => each(buf, v, i16::to_le_bytes),
        Array::U32(v) => each(buf, v, u32::to_le_bytes),
        Array::I32(v) => each(buf, v, i32::to_le_bytes),
        Array::F32(v) => each(buf, v, f32::to_le_bytes),
        Array::Bool(v) => each(buf, v, |b| [u8::from(b)]),
        Array::String(v) => v.iter().for_each(|s| put_str(buf, s)),
        Array::Array(v) => v.iter().for_each(|inner| put_array(buf, inner)),
        Array::U64(v) => each(buf, v, u64::to_le_bytes),
        Array::I64(v) => each(buf, v, i64::to_le_bytes),
        Array::F64(v) => each(buf, v, f64::to_le_bytes),
    }
}

/// Checks a value against the reader's limits (string length, array length, nesting depth).
fn validate_value(key: &str, v: &Value, limits: &Limits) -> Result<(), GgufError> {
    match v {
        Value::String(s) => check_string(key, s, limits),
        Value::Array(a) => validate_array(key, a, limits, 1),
        _ => Ok(()),
    }
}

fn check_string(key: &str, s: &str, limits: &Limits) -> Result<(), GgufError> {
    if s.len() as u64 > limits.max_string_len {
        return Err(GgufError::StringTooLong {
            what: "string value",
            offset: 0,
            context: format!("metadata key `{key}`"),
            len: s.len() as u64,
            max: limits.max_string_len,
        });
    }
    Ok(())
}

fn validate_array(key: &str, a: &Array, limits: &Limits, depth: u32) -> Result<(), GgufError> {
    let context = || format!("metadata key `{key}`");
    if depth > limits.max_array_depth {
        return Err(GgufError::ArrayTooDeep {
            offset: 0,
            context: context(),
            max: limits.max_array_depth,
        });
    }
    if a.len() as u64 > limits.max_array_len {
        return Err(GgufError::TooMany {
            what: "array elements",
            offset: 0,
            context: context(),
            count: a.len() as u64,
            max: limits.max_array_len,
        });
    }
    match a {
        Array::String(v) => v.iter().try_for_each(|s| check_string(key, s, limits)),
        Array::Array(v) => v
            .iter()
            .try_for_each(|inner| validate_array(key, inner, limits, depth + 1)),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
