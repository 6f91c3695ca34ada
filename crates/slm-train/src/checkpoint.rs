//! Checkpoints: everything needed to continue training bit for bit, in one GGUF file written
//! atomically (a crash while saving leaves the previous checkpoint intact).
//!
//! Contents: the model hyper-parameters (`llama.*` keys, as in an exported model, and
//! `slm.block_map` when blocks are shared), the parameters under their own names (each shared
//! block once), the Adam moments as `adam_m.<name>` / `adam_v.<name>`, and
//! `slm.train.state`, a JSON [`CheckpointState`] with the training config, step, RNG state, data
//! position and a fingerprint of the training tokens. Reading goes through slm-format's
//! bounds-checked GGUF reader.

use crate::data::{fingerprint, DataPosition};
use crate::error::TrainError;
use crate::export::{add_block_map, add_config_metadata, add_tensors, read_tensors};
use crate::layout::{BlockMap, ModelSpec};
use crate::model::TrainModel;
use crate::rng::Rng;
use crate::trainer::{TrainConfig, Trainer};
use serde::{Deserialize, Serialize};
use slm_format::{GgufFile, GgufWriter};
use std::path::Path;

/// Metadata key holding the JSON [`CheckpointState`].
pub const STATE_KEY: &str = "slm.train.state";
/// Version of the checkpoint layout.
pub const FORMAT_VERSION: u32 = 1;

/// The non-tensor part of a checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointState {
    /// [`FORMAT_VERSION`] of the writer.
    pub format: u32,
    /// Model hyper-parameters.
    pub model: ModelSpec,
    /// Stored block of each layer when blocks are shared (absent: one block per layer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_map: Option<BlockMap>,
    /// Training settings.
    pub train: TrainConfig,
    /// Optimizer steps completed.
    pub step: u64,
    /// AdamW's update count (bias correction).
    pub adam_t: u64,
    /// The trainer's RNG state.
    pub rng: u64,
    /// Where the data stream was.
    pub data: DataPosition,
    /// Length of the training token stream.
    pub data_tokens: usize,
    /// FNV-1a fingerprint of the training tokens.
    pub data_fingerprint: u64,
}

fn bad(path: &Path, reason: impl Into<String>) -> TrainError {
    TrainError::Checkpoint {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

impl Trainer {
    /// The checkpoint state of this trainer.
    pub fn checkpoint_state(&self) -> CheckpointState {
        CheckpointState {
            format: FORMAT_VERSION,
            model: ModelSpec::from_config(self.model.config()),
            block_map: Some(self.model.layout().block_map.clone()).filter(|m| !m.is_identity()),
            train: self.cfg.clone(),
            step: self.step,
            adam_t: self.opt.t,
            rng: self.rng.state(),
            data: self.data.position(),
            data_tokens: self.data.tokens().len(),
            data_fingerprint: fingerprint(self.data.tokens()),
        }
    }

    /// The bytes of a checkpoint of the current state.
    pub fn checkpoint_bytes(&self) -> Result<Vec<u8>, TrainError> {
        let state = serde_json::to_string(&self.checkpoint_state()).map_err(|e| {
            TrainError::InvalidArgument(format!("cannot serialise the training state: {e}"))
        })?;
        let mut w = GgufWriter::new();
        add_config_metadata(&mut w, self.model.config(), "slm-train checkpoint")?;
        add_block_map(&mut w, self.model.layout())?;
        w.add_string(STATE_KEY, state);
        let layout = self.model.layout();
        add_tensors(&mut w, layout, &self.params, "")?;
        add_tensors(&mut w, layout, &self.opt.m, "adam_m.")?;
        add_tensors(&mut w, layout, &self.opt.v, "adam_v.")?;
        Ok(w.to_bytes()?)
    }

    /// Writes a checkpoint to `path` atomically (temp file, fsync, rename).
    pub fn save_checkpoint(&self, path: &Path) -> Result<(), TrainError> {
        let bytes = self.checkpoint_bytes()?;
        slm_format::atomic::write_bytes_atomic(path, &bytes).map_err(|source| TrainError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Continues the run saved in `path` on the same training tokens: the next step computes
    /// exactly what the uninterrupted run would have (same thread count).
    pub fn resume(path: &Path, train_tokens: Vec<u32>) -> Result<Trainer, TrainError> {
        let file = GgufFile::open(path)?;
        let json = file.metadata().get_str_opt(STATE_KEY)?.ok_or_else(|| {
            bad(
                path,
                format!("no '{STATE_KEY}' key: this is not an slm-train checkpoint"),
            )
        })?;
        let state: CheckpointState = serde_json::from_str(json)
            .map_err(|e| bad(path, format!("unreadable training state: {e}")))?;
        if state.format != FORMAT_VERSION {
            return Err(bad(
                path,
                format!(
                    "format {} (this build reads {FORMAT_VERSION})",
                    state.format
                ),
            ));
        }
        if state.data_tokens != train_tokens.len()
            || state.data_fingerprint != fingerprint(&train_tokens)
        {
            return Err(bad(
                path,
                format!(
                    "it was trained on other data ({} tokens, fingerprint {:016x}; given {} tokens, {:016x})",
                    state.data_tokens,
                    state.data_fingerprint,
                    train_tokens.len(),
                    fingerprint(&train_tokens)
                ),
            ));
        }
        let cfg = state.model.resolve()?;
        let model = match state.block_map.clone() {
            Some(map) => TrainModel::with_sharing(cfg, map)?,
            None => TrainModel::new(cfg)?,
        };
        let layout = model.layout().clone();
        let params = read_tensors(&file, &layout, "")?;
        let m = read_tensors(&file, &layout, "adam_m.")?;
        let v = read_tensors(&file, &layout, "adam_v.")?;
        let mut t = Trainer::with_params(model, state.train.clone(), params, train_tokens)?;
        t.opt.m = m;
        t.opt.v = v;
        t.opt.t = state.adam_t;
        t.step = state.step;
        t.rng = Rng::new(state.rng);
        t.data
            .seek(state.data)
            .map_err(|e| bad(path, e.to_string()))?;
        Ok(t)
    }
}
