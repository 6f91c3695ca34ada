//! The frozen base model of adapter training (QLoRA-style).
//!
//! Projection matrices stay in the file's own dtype (memory-mapped: Q4_0, Q8_0, F16, ...) and
//! are dequantized one matrix at a time when a product needs them, so training memory is the
//! file plus one matrix of f32, not the whole model in f32. Norm gains, the embedding and an
//! untied output head are dequantized once (the embedding is read by row and the head runs
//! over the whole vocabulary on every step).

use crate::error::TrainError;
use crate::export::locate_tensors;
use crate::layout::BlockMap;
use crate::model::TrainModel;
use rayon::prelude::*;
use slm_format::{GgufFile, TensorInfo};
use slm_model::ModelConfig;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A frozen model: its shape, its small tensors in f32 and its projections as stored.
pub struct FrozenBase {
    file: Arc<GgufFile>,
    model: TrainModel,
    /// Layout offset → f32 values of a non-projection tensor.
    small: HashMap<usize, Vec<f32>>,
    /// Layout offset → the projection's tensor in the file.
    mats: HashMap<usize, TensorInfo>,
}

impl std::fmt::Debug for FrozenBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrozenBase")
            .field("config", self.model.config())
            .field("small_tensors", &self.small.len())
            .field("matrices", &self.mats.len())
            .finish()
    }
}

impl FrozenBase {
    /// Opens a Llama-family GGUF model (any dtype slm-model runs; shared blocks stay shared).
    /// Every tensor's presence and shape is checked before anything is dequantized.
    pub fn open(file: Arc<GgufFile>) -> Result<FrozenBase, TrainError> {
        let cfg = ModelConfig::from_gguf(&file)?;
        let model = match BlockMap::from_gguf(file.metadata(), cfg.n_layer)? {
            Some(map) => TrainModel::with_sharing(cfg, map)?,
            None => TrainModel::new(cfg)?,
        };
        let layout = model.layout();
        let projections: HashSet<usize> = layout
            .blocks
            .iter()
            .flat_map(|b| [b.wq, b.wk, b.wv, b.wo, b.w_gate, b.w_up, b.w_down])
            .collect();
        let found: Vec<TensorInfo> = locate_tensors(&file, layout, "")?
            .into_iter()
            .cloned()
            .collect();
        for (t, info) in layout.tensors.iter().zip(&found) {
            // Fails early (typed) on a dtype the kernels cannot read.
            slm_kernels::QMatrix::new(info.dtype, t.rows, t.cols, file.tensor_data(info))?;
        }
        let mut small = HashMap::new();
        let mut mats = HashMap::new();
        for (t, info) in layout.tensors.iter().zip(found) {
            if projections.contains(&t.offset) {
                mats.insert(t.offset, info);
            } else {
                let mut values = vec![0.0f32; t.len()];
                dequantize_into(&file, &info, t.rows, t.cols, &mut values)?;
                small.insert(t.offset, values);
            }
        }
        Ok(FrozenBase {
            file,
            model,
            small,
            mats,
        })
    }

    /// The model's shape and layout (offsets name the tensors).
    pub fn model(&self) -> &TrainModel {
        &self.model
    }

    /// The f32 values of a non-projection tensor at layout `offset`.
    ///
    /// # Panics
    /// When `offset` is not a non-projection tensor of this model's layout (a bug in the caller:
    /// offsets come from the same layout).
    pub fn small(&self, offset: usize, len: usize) -> &[f32] {
        let values = &self.small[&offset];
        &values[..len]
    }

    /// Dequantizes the projection at layout `offset` (`[rows][cols]`) into `out`.
    pub fn dequantize(
        &self,
        offset: usize,
        rows: usize,
        cols: usize,
        out: &mut [f32],
    ) -> Result<(), TrainError> {
        let info = self.mats.get(&offset).ok_or_else(|| {
            TrainError::InvalidArgument(format!("no projection at layout offset {offset}"))
        })?;
        dequantize_into(&self.file, info, rows, cols, out)
    }

    /// Bytes of f32 this base holds beyond the (memory-mapped) file.
    pub fn resident_f32_bytes(&self) -> u64 {
        self.small.values().map(|v| v.len() as u64 * 4).sum()
    }

    /// Bytes of the file's projection tensors (read through the memory map).
    pub fn projection_bytes(&self) -> u64 {
        self.mats
            .values()
            .map(|i| self.file.tensor_data(i).len() as u64)
            .sum()
    }

    /// The underlying file (its metadata carries the tokenizer and chat template).
    pub fn file(&self) -> &Arc<GgufFile> {
        &self.file
    }
}

fn dequantize_into(
    file: &GgufFile,
    info: &TensorInfo,
    rows: usize,
    cols: usize,
    out: &mut [f32],
) -> Result<(), TrainError> {
    let m = slm_kernels::QMatrix::new(info.dtype, rows, cols, file.tensor_data(info))?;
    out[..rows * cols]
        .par_chunks_exact_mut(cols)
        .enumerate()
        .try_for_each(|(i, row)| m.dequantize_row(i, row))?;
    Ok(())
}
