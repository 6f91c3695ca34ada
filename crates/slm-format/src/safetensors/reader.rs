//! [`SafetensorsFile`]: one memory-mapped `.safetensors` file, validated at open.
//!
//! Layout: an 8-byte little-endian header length `N`, `N` bytes of JSON
//! (`{"__metadata__": {..}, "name": {"dtype", "shape", "data_offsets": [begin, end]}, ..}`), then
//! the data section; offsets are relative to its start. Checked at open: the header length
//! against [`MAX_HEADER_LEN`] and the file size, every entry's dtype, shape (checked product) and
//! byte count, every range against the data section, and that no two ranges overlap.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::Path;

use serde_json::Value;

use super::error::SafetensorsError;

/// Largest header accepted (the `safetensors` crate uses the same 100 MB limit).
pub const MAX_HEADER_LEN: u64 = 100 * 1024 * 1024;
/// Most tensors accepted in one file.
pub const MAX_TENSORS: usize = 1 << 20;
/// Most dimensions accepted per tensor.
pub const MAX_DIMS: usize = 8;

/// Element types of safetensors files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// `BOOL` (1 byte).
    Bool,
    /// `U8`.
    U8,
    /// `I8`.
    I8,
    /// `I16`.
    I16,
    /// `I32`.
    I32,
    /// `I64`.
    I64,
    /// `F8_E4M3`.
    F8E4M3,
    /// `F8_E5M2`.
    F8E5M2,
    /// `F16` (IEEE half).
    F16,
    /// `BF16` (bfloat16).
    BF16,
    /// `F32`.
    F32,
    /// `F64`.
    F64,
}

const DTYPES: &[(&str, Dtype, u64)] = &[
    ("BOOL", Dtype::Bool, 1),
    ("U8", Dtype::U8, 1),
    ("I8", Dtype::I8, 1),
    ("I16", Dtype::I16, 2),
    ("I32", Dtype::I32, 4),
    ("I64", Dtype::I64, 8),
    ("F8_E4M3", Dtype::F8E4M3, 1),
    ("F8_E5M2", Dtype::F8E5M2, 1),
    ("F16", Dtype::F16, 2),
    ("BF16", Dtype::BF16, 2),
    ("F32", Dtype::F32, 4),
    ("F64", Dtype::F64, 8),
];

impl Dtype {
    /// Parses the header spelling (`"F32"`, `"BF16"`, ...).
    pub fn from_name(name: &str) -> Option<Dtype> {
        DTYPES
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, d, _)| *d)
    }

    /// The header spelling.
    pub fn name(self) -> &'static str {
        DTYPES
            .iter()
            .find(|(_, d, _)| *d == self)
            .map_or("?", |(n, _, _)| *n)
    }

    /// Bytes per element.
    pub fn size(self) -> u64 {
        DTYPES
            .iter()
            .find(|(_, d, _)| *d == self)
            .map_or(1, |(_, _, s)| *s)
    }
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One tensor entry, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorEntry {
    /// Tensor name (Hugging Face naming, e.g. `model.layers.0.self_attn.q_proj.weight`).
    pub name: String,
    /// Element type.
    pub dtype: Dtype,
    /// Shape, row-major (PyTorch order: the last dimension is contiguous).
    pub shape: Vec<u64>,
    /// Start of the data, relative to the data section.
    pub begin: u64,
    /// End of the data (exclusive).
    pub end: u64,
}

impl TensorEntry {
    /// Number of elements (product of the shape; 1 for a scalar).
    pub fn n_elements(&self) -> u64 {
        self.shape.iter().product()
    }
}

enum Bytes {
    Mmap(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mmap(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// A validated safetensors file that owns its bytes (memory map or vector).
pub struct SafetensorsFile {
    bytes: Bytes,
    data_start: usize,
    tensors: Vec<TensorEntry>,
    index: HashMap<String, usize>,
    metadata: BTreeMap<String, String>,
}

impl std::fmt::Debug for SafetensorsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafetensorsFile")
            .field("file_size", &self.bytes.as_slice().len())
            .field("tensors", &self.tensors.len())
            .field("metadata", &self.metadata)
            .finish()
    }
}

impl SafetensorsFile {
    /// Memory-maps `path` read-only and validates it. The file must not be modified while the
    /// returned value is alive (the usual memory-map contract).
    pub fn open(path: &Path) -> Result<SafetensorsFile, SafetensorsError> {
        let file = File::open(path).map_err(|e| SafetensorsError::io(path, e))?;
        let len = file
            .metadata()
            .map_err(|e| SafetensorsError::io(path, e))?
            .len();
        let bytes = if len == 0 {
            Bytes::Owned(Vec::new())
        } else {
            // SAFETY: read-only map, never handed out mutably; concurrent truncation by another
            // process is the documented memory-map contract (as for GGUF files).
            match unsafe { memmap2::Mmap::map(&file) } {
                Ok(m) => Bytes::Mmap(m),
                Err(_) => {
                    Bytes::Owned(std::fs::read(path).map_err(|e| SafetensorsError::io(path, e))?)
                }
            }
        };
        Self::from_storage(bytes)
    }

    /// Parses and validates a file held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<SafetensorsFile, SafetensorsError> {
        Self::from_storage(Bytes::Owned(bytes))
    }

    fn from_storage(bytes: Bytes) -> Result<SafetensorsFile, SafetensorsError> {
        let (data_start, tensors, metadata) = parse(bytes.as_slice())?;
        let index = tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Ok(SafetensorsFile {
            bytes,
            data_start,
            tensors,
            index,
            metadata,
        })
    }

    /// All tensors, in header order.
    pub fn tensors(&self) -> &[TensorEntry] {
        &self.tensors
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorEntry> {
        self.index.get(name).and_then(|&i| self.tensors.get(i))
    }

    /// The `__metadata__` string map (empty when absent).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// The raw little-endian bytes of `t` (an entry of this file; validated at open).
    pub fn tensor_data(&self, t: &TensorEntry) -> &[u8] {
        let all = self.bytes.as_slice();
        // Ranges were checked against the data section at open; `get` keeps this total anyway.
        let start = self.data_start.saturating_add(t.begin as usize);
        let end = self.data_start.saturating_add(t.end as usize);
        all.get(start..end).unwrap_or(&[])
    }

    /// The tensor's values as f32 (F32, F16 and BF16 only).
    pub fn tensor_f32(&self, t: &TensorEntry) -> Result<Vec<f32>, SafetensorsError> {
        to_f32(&t.name, t.dtype, self.tensor_data(t))
    }
}

/// Decodes little-endian F32/F16/BF16 bytes.
pub fn to_f32(name: &str, dtype: Dtype, data: &[u8]) -> Result<Vec<f32>, SafetensorsError> {
    Ok(match dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        other => {
            return Err(SafetensorsError::NotFloat {
                tensor: name.to_string(),
                dtype: other.name(),
            })
        }
    })
}

type Parsed = (usize, Vec<TensorEntry>, BTreeMap<String, String>);

fn parse(bytes: &[u8]) -> Result<Parsed, SafetensorsError> {
    let file_size = bytes.len() as u64;
    let len_bytes: [u8; 8] = match bytes.get(..8).and_then(|b| b.try_into().ok()) {
        Some(b) => b,
        None => return Err(SafetensorsError::TooShort { len: file_size }),
    };
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > MAX_HEADER_LEN {
        return Err(SafetensorsError::HeaderTooLarge {
            len: header_len,
            max: MAX_HEADER_LEN,
        });
    }
    let data_start = 8 + header_len as usize;
    let header = bytes
        .get(8..data_start)
        .ok_or(SafetensorsError::HeaderPastEof {
            len: header_len,
            file_size,
        })?;
    let data_size = file_size - data_start as u64;
    // Keys must be unique: serde_json's maps would silently keep the last of two entries.
    let super::json::UniqueObject(map) =
        serde_json::from_slice(header).map_err(|e| SafetensorsError::BadHeader {
            reason: format!("not a JSON object with unique keys: {e}"),
        })?;
    if map.len() > MAX_TENSORS {
        return Err(SafetensorsError::TooManyTensors {
            count: map.len(),
            max: MAX_TENSORS,
        });
    }
    let mut metadata = BTreeMap::new();
    let mut tensors = Vec::with_capacity(map.len());
    for (name, entry) in map {
        if name == "__metadata__" {
            metadata = parse_metadata(entry)?;
            continue;
        }
        tensors.push(parse_entry(name, entry, data_size)?);
    }
    check_overlap(&tensors)?;
    Ok((data_start, tensors, metadata))
}

fn parse_metadata(v: Value) -> Result<BTreeMap<String, String>, SafetensorsError> {
    let Value::Object(m) = v else {
        return Err(SafetensorsError::BadHeader {
            reason: "__metadata__ is not an object".into(),
        });
    };
    m.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            other => Err(SafetensorsError::BadHeader {
                reason: format!("__metadata__ value of `{k}` is {other}, expected a string"),
            }),
        })
        .collect()
}

fn parse_entry(
    name: String,
    entry: Value,
    data_size: u64,
) -> Result<TensorEntry, SafetensorsError> {
    let bad = |reason: &str| SafetensorsError::BadEntry {
        tensor: name.clone(),
        reason: reason.to_string(),
    };
    let obj = entry
        .as_object()
        .ok_or_else(|| bad("the entry is not an object"))?;
    let dtype_name = obj
        .get("dtype")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("\"dtype\" is missing or not a string"))?;
    let dtype = Dtype::from_name(dtype_name).ok_or_else(|| SafetensorsError::UnknownDtype {
        tensor: name.clone(),
        dtype: dtype_name.to_string(),
    })?;
    let shape_json = obj
        .get("shape")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("\"shape\" is missing or not an array"))?;
    if shape_json.len() > MAX_DIMS {
        return Err(bad(&format!(
            "{} dimensions, more than the limit of {MAX_DIMS}",
            shape_json.len()
        )));
    }
    let shape: Vec<u64> = shape_json
        .iter()
        .map(|d| {
            d.as_u64()
                .ok_or_else(|| bad("a shape entry is not a non-negative integer"))
        })
        .collect::<Result<_, _>>()?;
    let offsets = obj
        .get("data_offsets")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("\"data_offsets\" is missing or not an array"))?;
    let (begin, end) = match offsets.as_slice() {
        [b, e] => (
            b.as_u64()
                .ok_or_else(|| bad("data_offsets[0] is not a non-negative integer"))?,
            e.as_u64()
                .ok_or_else(|| bad("data_offsets[1] is not a non-negative integer"))?,
        ),
        _ => {
            return Err(bad(
                "\"data_offsets\" must have exactly two entries [begin, end]",
            ))
        }
    };
    if begin > end || end > data_size {
        return Err(SafetensorsError::OutOfBounds {
            tensor: name,
            begin,
            end,
            data_size,
        });
    }
    let expected = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .and_then(|n| n.checked_mul(dtype.size()))
        .ok_or_else(|| SafetensorsError::ShapeOverflow {
            tensor: name.clone(),
            shape: shape.clone(),
        })?;
    if expected != end - begin {
        return Err(SafetensorsError::ByteCountMismatch {
            tensor: name,
            dtype: dtype.name(),
            shape,
            expected,
            found: end - begin,
        });
    }
    Ok(TensorEntry {
        name,
        dtype,
        shape,
        begin,
        end,
    })
}

fn check_overlap(tensors: &[TensorEntry]) -> Result<(), SafetensorsError> {
    let mut order: Vec<&TensorEntry> = tensors.iter().filter(|t| t.end > t.begin).collect();
    order.sort_by_key(|t| (t.begin, t.end));
    for pair in order.windows(2) {
        if let [a, b] = pair {
            if b.begin < a.end {
                return Err(SafetensorsError::Overlap {
                    first: a.name.clone(),
                    first_end: a.end,
                    second: b.name.clone(),
                    second_start: b.begin,
                });
            }
        }
    }
    Ok(())
}
