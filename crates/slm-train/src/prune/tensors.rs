//! A whole model as named f32 matrices: what pruning reads and edits. Any GGUF slm loads is
//! decoded to f32 once (quantized types included); the result is written back as F32 or F16
//! with the source's metadata, so names and keys stay those llama.cpp expects.

use super::error::PruneError;
use slm_format::{GgmlType, GgufFile, GgufWriter, Value};
use slm_kernels::quant::{dequantize_row, quantize_row};

/// `general.file_type` values (llama.cpp's `llama_ftype`) of the float outputs.
const FTYPE_F32: u32 = 0;
const FTYPE_F16: u32 = 1;

/// One tensor decoded to f32, row-major: `rows()` rows of `cols()` values.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// GGUF name, e.g. `blk.3.ffn_up.weight`.
    pub name: String,
    /// Dims in ggml order (`dims[0]` is the row length).
    pub dims: Vec<u64>,
    /// Values, `rows() * cols()` of them.
    pub data: Vec<f32>,
}

impl Tensor {
    /// Row length (`dims[0]`).
    pub fn cols(&self) -> usize {
        self.dims.first().copied().unwrap_or(1) as usize
    }

    /// Number of rows (product of the other dims).
    pub fn rows(&self) -> usize {
        self.data.len() / self.cols().max(1)
    }

    /// Entries that are not zero.
    pub fn nonzero(&self) -> u64 {
        self.data.iter().filter(|v| **v != 0.0).count() as u64
    }
}

/// Float type of the written tensors (1-D tensors such as norms always stay F32).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum FloatType {
    /// 32-bit floats (exact).
    F32,
    /// 16-bit floats (half the size; zeros stay exactly zero).
    F16,
}

impl FloatType {
    fn ggml(self) -> GgmlType {
        match self {
            FloatType::F32 => GgmlType::F32,
            FloatType::F16 => GgmlType::F16,
        }
    }
}

/// A model's metadata and every tensor in f32.
#[derive(Clone, Debug)]
pub struct TensorSet {
    /// `general.architecture`, the prefix of the hyper-parameter keys.
    pub arch: String,
    /// Metadata in file order (split keys dropped).
    pub metadata: Vec<(String, Value)>,
    /// Tensors in file order.
    pub tensors: Vec<Tensor>,
}

impl TensorSet {
    /// Decodes every tensor of `file` to f32.
    pub fn from_gguf(file: &GgufFile) -> Result<TensorSet, PruneError> {
        let arch = file.metadata().get_str("general.architecture")?.to_string();
        let metadata = file
            .metadata()
            .iter()
            .filter(|(k, _)| !k.starts_with("split."))
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let mut tensors = Vec::with_capacity(file.tensors().len());
        for info in file.tensors() {
            let cols = info.dims.first().copied().unwrap_or(1) as usize;
            let n = info.n_elements as usize;
            let row_bytes = info.dtype.row_bytes(cols as u64).ok_or_else(|| {
                PruneError::Tensors(format!(
                    "{}: rows of {cols} do not fit {}",
                    info.name, info.dtype
                ))
            })? as usize;
            let src = file.tensor_data(info);
            let mut data = vec![0f32; n];
            for (dst, row) in data
                .chunks_mut(cols.max(1))
                .zip(src.chunks(row_bytes.max(1)))
            {
                dequantize_row(info.dtype, row, dst)?;
            }
            tensors.push(Tensor {
                name: info.name.clone(),
                dims: info.dims.clone(),
                data,
            });
        }
        Ok(TensorSet {
            arch,
            metadata,
            tensors,
        })
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Result<&Tensor, PruneError> {
        self.tensors
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| PruneError::Tensors(format!("tensor {name} is missing")))
    }

    /// The tensor called `name`, mutable.
    pub fn get_mut(&mut self, name: &str) -> Result<&mut Tensor, PruneError> {
        self.tensors
            .iter_mut()
            .find(|t| t.name == name)
            .ok_or_else(|| PruneError::Tensors(format!("tensor {name} is missing")))
    }

    /// Sets (or adds) a metadata value.
    pub fn set_meta(&mut self, key: &str, value: Value) {
        match self.metadata.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => self.metadata.push((key.to_string(), value)),
        }
    }

    /// An unsigned hyper-parameter `{arch}.{suffix}`.
    pub fn hparam(&self, suffix: &str) -> Option<u64> {
        let key = format!("{}.{suffix}", self.arch);
        self.metadata
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.as_integer())
            .and_then(|v| u64::try_from(v).ok())
    }

    /// Parameter count and non-zero count over all tensors.
    pub fn counts(&self) -> (u64, u64) {
        self.tensors.iter().fold((0, 0), |(p, nz), t| {
            (p + t.data.len() as u64, nz + t.nonzero())
        })
    }

    /// Encodes the set as a GGUF (matrices in `dtype`, 1-D tensors in F32).
    pub fn to_writer(&self, dtype: FloatType) -> Result<GgufWriter, PruneError> {
        let mut w = GgufWriter::new();
        for (k, v) in &self.metadata {
            w.add(k.clone(), v.clone());
        }
        let ftype = match dtype {
            FloatType::F32 => FTYPE_F32,
            FloatType::F16 => FTYPE_F16,
        };
        w.add("general.file_type", Value::U32(ftype));
        for t in &self.tensors {
            let ty = if t.dims.len() <= 1 {
                GgmlType::F32
            } else {
                dtype.ggml()
            };
            let cols = t.cols().max(1);
            let row_bytes = ty.row_bytes(cols as u64).ok_or_else(|| {
                PruneError::Tensors(format!("{}: rows of {cols} do not fit {ty}", t.name))
            })? as usize;
            let mut bytes = vec![0u8; row_bytes * t.rows()];
            for (src, dst) in t.data.chunks(cols).zip(bytes.chunks_mut(row_bytes.max(1))) {
                quantize_row(ty, src, dst)?;
            }
            w.add_tensor(t.name.clone(), &t.dims, ty, bytes)?;
        }
        Ok(w)
    }
}
