//! Weight tensors and the loader that hands them to an architecture.
//!
//! A [`WeightTensor`] is a view of one tensor's bytes, either memory-mapped from the model file
//! (the normal case: loading is O(1) and pages come in on first use) or owned (weights produced
//! in memory, e.g. by a test or a conversion). [`TensorLoader`] hands out tensors by name with
//! shape and dtype checks and, at the end, refuses files that carry tensors nobody used.

use crate::error::ModelError;
use slm_format::{GgmlType, GgufFile, TensorInfo};
use slm_kernels::quant::dequantize_row;
use std::collections::HashSet;
use std::sync::Arc;

/// Where a tensor's bytes live.
#[derive(Clone, Debug)]
enum Storage {
    /// A tensor inside a (memory-mapped) GGUF file.
    File(Arc<GgufFile>, TensorInfo),
    /// Bytes held in memory.
    Owned(Arc<[u8]>),
}

/// One weight tensor: name, type, ggml-order dims and its bytes.
#[derive(Clone, Debug)]
pub struct WeightTensor {
    /// Name in GGUF convention (`blk.0.attn_q.weight`).
    pub name: String,
    /// Element type.
    pub dtype: GgmlType,
    /// Dims in ggml order: `dims[0]` is the contiguous row length.
    pub dims: Vec<u64>,
    storage: Storage,
}

impl WeightTensor {
    /// Wraps bytes held in memory. The length must match dims × dtype.
    pub fn owned(name: &str, dtype: GgmlType, dims: Vec<u64>, bytes: Vec<u8>) -> Result<Self, ModelError> {
        let expected = dtype.bytes_for(&dims).ok_or_else(|| {
            ModelError::InvalidArgument(format!("tensor '{name}': dims {dims:?} do not fit type {dtype}"))
        })?;
        if expected != bytes.len() as u64 {
            return Err(ModelError::InvalidArgument(format!(
                "tensor '{name}': {} bytes given, {expected} needed for {dims:?} {dtype}",
                bytes.len()
            )));
        }
        Ok(WeightTensor { name: name.to_string(), dtype, dims, storage: Storage::Owned(bytes.into()) })
    }

    /// The raw bytes (in `dtype` encoding).
    pub fn bytes(&self) -> &[u8] {
        match &self.storage {
            Storage::File(file, info) => file.tensor_data(info),
            Storage::Owned(bytes) => bytes,
        }
    }

    /// Size in bytes.
    pub fn n_bytes(&self) -> usize {
        self.bytes().len()
    }

    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// A linear layer `y = W x (+ b)`: `rows` outputs, `cols` inputs, `W` in any supported dtype.
#[derive(Clone, Debug)]
pub struct Linear {
    /// The weight, ggml dims `[cols, rows]`.
    pub weight: WeightTensor,
    /// Optional bias of length `rows`.
    pub bias: Option<Vec<f32>>,
    /// Output features.
    pub rows: usize,
    /// Input features.
    pub cols: usize,
}

impl Linear {
    /// A kernel view of the weight.
    pub fn matrix(&self) -> Result<slm_kernels::QMatrix<'_>, ModelError> {
        Ok(slm_kernels::QMatrix::new(self.weight.dtype, self.rows, self.cols, self.weight.bytes())?)
    }

    /// `out[t] = W x[t] + b` for `n` tokens.
    ///
    /// # Shapes
    /// `x: [n][cols]`, `out: [n][rows]`.
    pub fn forward(
        &self,
        pool: &slm_kernels::Pool,
        x: &[f32],
        n: usize,
        out: &mut [f32],
        scratch: &mut slm_kernels::Scratch,
    ) -> Result<(), ModelError> {
        let out = &mut out[..n * self.rows];
        slm_kernels::matmul(pool, &self.matrix()?, &x[..n * self.cols], n, out, scratch)?;
        if let Some(bias) = &self.bias {
            for row in out.chunks_exact_mut(self.rows) {
                slm_kernels::ops::add_inplace(row, bias);
            }
        }
        Ok(())
    }
}

/// Hands out the tensors of a GGUF file by name, checking shapes, and tracks which were used.
pub struct TensorLoader {
    file: Arc<GgufFile>,
    arch: String,
    used: HashSet<String>,
}

impl TensorLoader {
    /// Starts loading from `file`; `arch` names the architecture in error messages.
    pub fn new(file: Arc<GgufFile>, arch: &str) -> Self {
        TensorLoader { file, arch: arch.to_string(), used: HashSet::new() }
    }

    /// The file's metadata (for architecture keys the config does not carry, such as
    /// [`BLOCK_MAP_KEY`]).
    pub fn metadata(&self) -> &slm_format::Metadata {
        self.file.metadata()
    }

    /// Whether the file has a tensor of this name.
    pub fn contains(&self, name: &str) -> bool {
        self.file.tensor(name).is_some()
    }

    /// Takes a tensor, checking its ggml-order dims.
    pub fn tensor(&mut self, name: &str, dims: &[u64]) -> Result<WeightTensor, ModelError> {
        let info = self.file.tensor(name).ok_or_else(|| ModelError::MissingTensor {
            name: name.to_string(),
            arch: self.arch.clone(),
        })?;
        if info.dims != dims {
            return Err(ModelError::TensorShape {
                name: name.to_string(),
                expected: dims.to_vec(),
                found: info.dims.clone(),
            });
        }
        self.used.insert(name.to_string());
        Ok(WeightTensor {
            name: name.to_string(),
            dtype: info.dtype,
            dims: info.dims.clone(),
            storage: Storage::File(self.file.clone(), info.clone()),
        })
    }

    /// Takes a weight matrix with `rows` outputs and `cols` inputs (ggml dims `[cols, rows]`).
    pub fn linear(&mut self, name: &str, rows: usize, cols: usize) -> Result<Linear, ModelError> {
        let weight = self.tensor(name, &[cols as u64, rows as u64])?;
        if !supports_matmul(weight.dtype) {
            return Err(ModelError::TensorType { name: name.into(), dtype: weight.dtype, usage: "a matrix product" });
        }
        Ok(Linear { weight, bias: None, rows, cols })
    }

    /// Takes a 1-D tensor of `len` elements and decodes it to f32 (norm weights, biases).
    pub fn vector(&mut self, name: &str, len: usize) -> Result<Vec<f32>, ModelError> {
        let t = self.tensor(name, &[len as u64])?;
        if !matches!(t.dtype, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16) {
            return Err(ModelError::TensorType { name: name.into(), dtype: t.dtype, usage: "a vector" });
        }
        let mut out = vec![0.0f32; len];
        dequantize_row(t.dtype, t.bytes(), &mut out)?;
        Ok(out)
    }

    /// Ends loading: every tensor in the file must have been used.
    pub fn finish(self) -> Result<(), ModelError> {
        let unused: Vec<&TensorInfo> =
            self.file.tensors().iter().filter(|t| !self.used.contains(&t.name)).collect();
        match unused.first() {
            None => Ok(()),
            Some(first) => Err(ModelError::UnusedTensors { count: unused.len(), first: first.name.clone() }),
        }
    }
}

/// GGUF key of a model with blocks shared across layers (written by slm-train): an INT32 array
/// of `block_count` entries, entry `i` being the stored block (tensors `blk.{j}.*`) that layer
/// `i` runs. Files without it have one block per layer. llama.cpp does not read it.
pub const BLOCK_MAP_KEY: &str = "slm.block_map";

/// Checks a layer → stored-block map for `n_layer` layers: one entry per layer, and the stored
/// blocks `0..S` all used. Returns `S`.
pub fn validate_block_map(map: &[usize], n_layer: usize) -> Result<usize, ModelError> {
    let bad = |why: String| ModelError::InvalidConfig(format!("{BLOCK_MAP_KEY}: {why}"));
    if map.len() != n_layer || n_layer == 0 {
        return Err(bad(format!("{} entries for {n_layer} layers", map.len())));
    }
    let stored = map.iter().max().map_or(0, |m| m + 1);
    let mut used = vec![false; stored];
    for &j in map {
        if let Some(u) = used.get_mut(j) {
            *u = true;
        }
    }
    match used.iter().position(|u| !u) {
        Some(j) => Err(bad(format!("stored block {j} is run by no layer (map {map:?})"))),
        None => Ok(stored),
    }
}

/// The block map of a file ([`BLOCK_MAP_KEY`]), checked against `n_layer`; `None` when absent.
pub fn read_block_map(md: &slm_format::Metadata, n_layer: usize) -> Result<Option<Vec<usize>>, ModelError> {
    if !md.contains_key(BLOCK_MAP_KEY) {
        return Ok(None);
    }
    let raw = md.get_i32_array(BLOCK_MAP_KEY)?;
    let map = raw
        .iter()
        .map(|&j| usize::try_from(j))
        .collect::<Result<Vec<usize>, _>>()
        .map_err(|_| ModelError::InvalidConfig(format!("{BLOCK_MAP_KEY}: negative block index in {raw:?}")))?;
    validate_block_map(&map, n_layer)?;
    Ok(Some(map))
}

/// Weight types the matmul kernels accept.
pub fn supports_matmul(dtype: GgmlType) -> bool {
    slm_kernels::quant::SUPPORTED_TYPES.contains(&dtype)
}
