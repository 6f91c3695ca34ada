//! [`SafetensorsWriter`]: builds a `.safetensors` file from named tensors.
//!
//! Tensors are written in the order they were added, contiguously; the JSON header is padded
//! with spaces to a multiple of 8 bytes (as the reference implementation does) so every tensor
//! starts 8-byte aligned when the data are. Files are written atomically.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::Path;

use serde_json::{json, Map, Value};

use super::error::SafetensorsError;
use super::reader::Dtype;

#[derive(Clone, Debug)]
struct Pending {
    name: String,
    dtype: Dtype,
    shape: Vec<u64>,
    data: Vec<u8>,
}

/// Collects tensors and `__metadata__` entries, then writes one safetensors file.
#[derive(Clone, Debug, Default)]
pub struct SafetensorsWriter {
    metadata: BTreeMap<String, String>,
    tensors: Vec<Pending>,
    names: HashSet<String>,
}

impl SafetensorsWriter {
    /// An empty writer.
    pub fn new() -> SafetensorsWriter {
        SafetensorsWriter::default()
    }

    /// Sets a `__metadata__` entry (e.g. `format = pt`, which transformers expects).
    pub fn add_metadata(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Adds a tensor of raw little-endian bytes; checks the byte count against shape × dtype.
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        dtype: Dtype,
        shape: &[u64],
        data: Vec<u8>,
    ) -> Result<&mut Self, SafetensorsError> {
        let name = name.into();
        let bad = |reason: String| SafetensorsError::Write {
            tensor: name.clone(),
            reason,
        };
        if name.is_empty() || name == "__metadata__" {
            return Err(bad("the name is empty or reserved".into()));
        }
        if self.names.contains(&name) {
            return Err(bad("a tensor of that name was already added".into()));
        }
        let expected = shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .and_then(|n| n.checked_mul(dtype.size()))
            .ok_or_else(|| bad(format!("shape {shape:?} overflows")))?;
        if expected != data.len() as u64 {
            return Err(bad(format!(
                "{dtype} shape {shape:?} needs {expected} bytes, got {}",
                data.len()
            )));
        }
        self.names.insert(name.clone());
        self.tensors.push(Pending {
            name,
            dtype,
            shape: shape.to_vec(),
            data,
        });
        Ok(self)
    }

    /// Adds f32 values converted to `dtype` (F32, F16 or BF16; round to nearest even).
    pub fn add_f32(
        &mut self,
        name: impl Into<String>,
        dtype: Dtype,
        shape: &[u64],
        values: &[f32],
    ) -> Result<&mut Self, SafetensorsError> {
        let name = name.into();
        let data = from_f32(&name, dtype, values)?;
        self.add_tensor(name, dtype, shape, data)
    }

    /// Number of tensors added.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether no tensor was added.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Total bytes of tensor data.
    pub fn data_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.data.len() as u64).sum()
    }

    fn header(&self) -> Vec<u8> {
        let mut map = Map::new();
        if !self.metadata.is_empty() {
            map.insert("__metadata__".into(), json!(self.metadata));
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            let end = offset + t.data.len() as u64;
            map.insert(
                t.name.clone(),
                json!({ "dtype": t.dtype.name(), "shape": t.shape, "data_offsets": [offset, end] }),
            );
            offset = end;
        }
        let mut header = Value::Object(map).to_string().into_bytes();
        while !header.len().is_multiple_of(8) {
            header.push(b' ');
        }
        header
    }

    /// Writes the whole file to `out`.
    pub fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let header = self.header();
        out.write_all(&(header.len() as u64).to_le_bytes())?;
        out.write_all(&header)?;
        for t in &self.tensors {
            out.write_all(&t.data)?;
        }
        Ok(())
    }

    /// The whole file in memory.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = self.write_to(&mut v);
        v
    }

    /// Writes the file atomically (temp file + fsync + rename).
    pub fn write_file(&self, path: &Path) -> Result<(), SafetensorsError> {
        crate::atomic::write_atomic(path, |w| self.write_to(w))
            .map_err(|e| SafetensorsError::io(path, e))
    }
}

/// Encodes f32 values as little-endian F32, F16 or BF16 bytes.
pub fn from_f32(name: &str, dtype: Dtype, values: &[f32]) -> Result<Vec<u8>, SafetensorsError> {
    Ok(match dtype {
        Dtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Dtype::F16 => values
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect(),
        Dtype::BF16 => values
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect(),
        other => {
            return Err(SafetensorsError::NotFloat {
                tensor: name.to_string(),
                dtype: other.name(),
            })
        }
    })
}

/// A tensor whose bytes [`write_streaming`] asks for when it reaches it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    /// Tensor name.
    pub name: String,
    /// Element type.
    pub dtype: Dtype,
    /// Shape (row-major).
    pub shape: Vec<u64>,
}

impl TensorSpec {
    /// Bytes of data: shape product × dtype size (`None` on overflow).
    pub fn n_bytes(&self) -> Option<u64> {
        self.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).and_then(|n| n.checked_mul(self.dtype.size()))
    }
}

/// Writes a safetensors file atomically, producing one tensor's bytes at a time with
/// `fill(index)` (so a multi-gigabyte model never sits in memory whole). The header is built
/// from `specs` up front; a `fill` result of the wrong length is an error.
pub fn write_streaming<E: From<SafetensorsError>>(
    path: &Path,
    metadata: &BTreeMap<String, String>,
    specs: &[TensorSpec],
    mut fill: impl FnMut(usize) -> Result<Vec<u8>, E>,
) -> Result<(), E> {
    let mut map = Map::new();
    if !metadata.is_empty() {
        map.insert("__metadata__".into(), json!(metadata));
    }
    let mut names = HashSet::new();
    let mut offset = 0u64;
    for s in specs {
        let bad = |reason: &str| SafetensorsError::Write { tensor: s.name.clone(), reason: reason.to_string() };
        if s.name.is_empty() || s.name == "__metadata__" || !names.insert(s.name.as_str()) {
            return Err(bad("the name is empty, reserved or a duplicate").into());
        }
        let end = s.n_bytes().and_then(|n| offset.checked_add(n)).ok_or_else(|| bad("the shape overflows"))?;
        map.insert(s.name.clone(), json!({ "dtype": s.dtype.name(), "shape": s.shape, "data_offsets": [offset, end] }));
        offset = end;
    }
    let mut header = Value::Object(map).to_string().into_bytes();
    while !header.len().is_multiple_of(8) {
        header.push(b' ');
    }
    // The closure below speaks io::Error; the caller's own error is carried out beside it.
    let mut failure: Option<E> = None;
    let result = crate::atomic::write_atomic(path, |w| {
        w.write_all(&(header.len() as u64).to_le_bytes())?;
        w.write_all(&header)?;
        for (i, s) in specs.iter().enumerate() {
            let data = match fill(i) {
                Ok(d) => d,
                Err(e) => {
                    failure = Some(e);
                    return Err(std::io::Error::other("tensor data could not be produced"));
                }
            };
            if Some(data.len() as u64) != s.n_bytes() {
                let reason = format!("fill produced {} bytes, the shape needs {:?}", data.len(), s.n_bytes());
                failure = Some(SafetensorsError::Write { tensor: s.name.clone(), reason }.into());
                return Err(std::io::Error::other("wrong tensor size"));
            }
            w.write_all(&data)?;
        }
        Ok(())
    });
    match (failure, result) {
        (Some(e), _) => Err(e),
        (None, Err(e)) => Err(SafetensorsError::io(path, e).into()),
        (None, Ok(())) => Ok(()),
    }
}
