//! The training loop: micro-batches with gradient accumulation, clipping, AdamW under a
//! learning-rate schedule, evaluation, checkpoints and export.
//!
//! Everything is deterministic for a given seed and thread count: initialisation and data order
//! come from SplitMix64, and every reduction runs in a fixed order.

use crate::data::{eval_windows, fingerprint, Batcher, DataPosition};
use crate::distill::{DistillConfig, SoftTargets, TeacherCache};
use crate::error::TrainError;
use crate::init::init_params;
use crate::model::{TrainModel, Workspace};
use crate::optim::{clip_grad_norm, grad_norm, AdamW, AdamWConfig};
use crate::rng::Rng;
use crate::schedule::Schedule;
use serde::{Deserialize, Serialize};
use slm_model::ModelConfig;
use std::sync::Arc;

/// Largest memory estimate ([`TrainModel::memory_estimate`]) a trainer accepts: far above any
/// CPU training job, it turns a typo in a config into an error instead of an allocation abort.
pub const MAX_TRAIN_BYTES: u64 = 256 << 30;

/// Training settings (saved in every checkpoint).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Tokens per sequence `T`.
    pub seq_len: usize,
    /// Sequences per micro-batch `B`.
    pub batch_size: usize,
    /// Micro-batches whose gradients are summed into one optimizer step.
    #[serde(default = "one")]
    pub grad_accum: usize,
    /// Seed of the initialisation and of the data order.
    #[serde(default)]
    pub seed: u64,
    /// Optimizer settings.
    pub optim: AdamWConfig,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Clip the global gradient norm to this value (`None`: no clipping).
    #[serde(default)]
    pub clip_grad_norm: Option<f32>,
}

fn one() -> usize {
    1
}

impl TrainConfig {
    /// Checks every setting.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.seq_len == 0 || self.batch_size == 0 || self.grad_accum == 0 {
            return Err(TrainError::Setting(format!(
                "seq_len {}, batch_size {} and grad_accum {} must all be at least 1",
                self.seq_len, self.batch_size, self.grad_accum
            )));
        }
        if let Some(c) = self.clip_grad_norm {
            if !(c.is_finite() && c > 0.0) {
                return Err(TrainError::Setting(format!(
                    "clip_grad_norm {c} must be positive"
                )));
            }
        }
        self.optim.validate()?;
        self.schedule.validate()
    }

    /// Tokens consumed per optimizer step.
    pub fn tokens_per_step(&self) -> usize {
        self.seq_len * self.batch_size * self.grad_accum
    }
}

/// What one optimizer step did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// The step just completed (1-based count of updates).
    pub step: u64,
    /// Mean cross-entropy (nats/token) over the step's tokens, before the update.
    pub loss: f64,
    /// Learning rate used.
    pub lr: f32,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Tokens processed.
    pub tokens: usize,
}

/// A model being trained: parameters, optimizer, data and progress.
#[derive(Debug)]
pub struct Trainer {
    pub(crate) model: TrainModel,
    pub(crate) cfg: TrainConfig,
    pub(crate) params: Vec<f32>,
    pub(crate) grads: Vec<f32>,
    pub(crate) opt: AdamW,
    pub(crate) data: Batcher,
    pub(crate) step: u64,
    pub(crate) rng: Rng,
    pub(crate) ws: Workspace,
    /// When set, [`step`](Self::step) distils from this teacher (see [`crate::distill`]).
    pub(crate) teacher: Option<(Arc<TeacherCache>, DistillConfig)>,
}

impl Trainer {
    /// A model of shape `model_cfg` initialised from `train_cfg.seed` (see [`init_params`]),
    /// training on the packed token stream `train_tokens`.
    pub fn new(
        model_cfg: ModelConfig,
        train_cfg: TrainConfig,
        train_tokens: Vec<u32>,
    ) -> Result<Trainer, TrainError> {
        Trainer::from_scratch(TrainModel::new(model_cfg)?, train_cfg, train_tokens)
    }

    /// Like [`Trainer::new`] for any model shape, e.g. one with shared blocks
    /// ([`TrainModel::with_sharing`]).
    pub fn from_scratch(
        model: TrainModel,
        train_cfg: TrainConfig,
        train_tokens: Vec<u32>,
    ) -> Result<Trainer, TrainError> {
        let params = init_params(model.layout(), train_cfg.seed);
        Trainer::with_params(model, train_cfg, params, train_tokens)
    }

    /// Training that starts from given parameters (fine-tuning an imported model).
    pub fn with_params(
        model: TrainModel,
        cfg: TrainConfig,
        params: Vec<f32>,
        train_tokens: Vec<u32>,
    ) -> Result<Trainer, TrainError> {
        cfg.validate()?;
        let n = model.layout().len();
        if params.len() != n {
            return Err(TrainError::InvalidArgument(format!(
                "{} parameters for a model of {n}",
                params.len()
            )));
        }
        if cfg.seq_len > model.config().n_ctx_train {
            return Err(TrainError::Setting(format!(
                "seq_len {} exceeds the model context {}",
                cfg.seq_len,
                model.config().n_ctx_train
            )));
        }
        let need = model.memory_estimate(cfg.batch_size, cfg.seq_len);
        if need > MAX_TRAIN_BYTES {
            return Err(TrainError::Setting(format!(
                "this model and micro-batch need about {} GiB; lower batch_size or seq_len (use grad_accum for larger batches)",
                need >> 30
            )));
        }
        let v = model.config().n_vocab;
        if let Some(&id) = train_tokens.iter().find(|&&id| id as usize >= v) {
            return Err(TrainError::Data(format!(
                "token id {id} is outside the model vocabulary of {v}; use the model's tokenizer"
            )));
        }
        let data = Batcher::new(train_tokens, cfg.seq_len, cfg.batch_size, cfg.seed)?;
        // The loop's own stream (independent of init and data order), reserved for stochastic
        // parts such as dropout or sampling; saved and restored with checkpoints.
        let rng = Rng::new(cfg.seed ^ 0x5EED_0F7A_41C3_u64);
        Ok(Trainer {
            opt: AdamW::new(cfg.optim.clone(), n),
            grads: vec![0.0; n],
            model,
            cfg,
            params,
            data,
            step: 0,
            rng,
            ws: Workspace::new(),
            teacher: None,
        })
    }

    /// Fine-tuning: starts from the weights of a GGUF model (any dtype slm-model loads, dequantized
    /// to f32) with that model's configuration and block sharing.
    pub fn from_gguf(
        file: &slm_format::GgufFile,
        cfg: TrainConfig,
        train_tokens: Vec<u32>,
    ) -> Result<Trainer, TrainError> {
        let (model, params) = crate::export::import_gguf_model(file)?;
        Trainer::with_params(model, cfg, params, train_tokens)
    }

    /// One optimizer step: `grad_accum` micro-batches, clipping, AdamW update; with a teacher
    /// ([`set_teacher`](Self::set_teacher)) the loss is the distillation mix (and so is the
    /// returned loss).
    pub fn step(&mut self) -> Result<StepStats, TrainError> {
        let accum = self.cfg.grad_accum;
        let n_tokens = self.cfg.seq_len * self.cfg.batch_size;
        let scale = 1.0 / (n_tokens * accum) as f32;
        self.grads.fill(0.0);
        let mut loss_sum = 0.0f64;
        for _ in 0..accum {
            let windows = self.data.next_windows();
            let (inputs, targets) = self.data.gather(&windows);
            let (params, grads, seq_len, ws) = (
                &self.params,
                &mut self.grads,
                self.cfg.seq_len,
                &mut self.ws,
            );
            loss_sum += match &self.teacher {
                None => self
                    .model
                    .forward_backward(params, grads, &inputs, &targets, seq_len, scale, ws)?,
                Some((cache, cfg)) => {
                    let (ids, probs) = cache.rows(&windows);
                    let soft = SoftTargets {
                        k: cache.k,
                        ids: &ids,
                        probs: &probs,
                        cfg: *cfg,
                    };
                    self.model.forward_backward_soft(
                        params, grads, &inputs, &targets, &soft, seq_len, scale, ws,
                    )?
                }
            };
        }
        self.finish_step(loss_sum / (n_tokens * accum) as f64, n_tokens * accum)
    }

    /// The end of an optimizer step whose gradients are in `self.grads`: checks, clipping,
    /// AdamW update (shared by plain training and distillation).
    pub(crate) fn finish_step(
        &mut self,
        loss: f64,
        tokens: usize,
    ) -> Result<StepStats, TrainError> {
        if !loss.is_finite() {
            return Err(TrainError::NonFinite {
                what: "loss",
                step: self.step,
            });
        }
        let norm = match self.cfg.clip_grad_norm {
            Some(max) => clip_grad_norm(&mut self.grads, max),
            None => grad_norm(&self.grads),
        };
        if !norm.is_finite() {
            return Err(TrainError::NonFinite {
                what: "gradient norm",
                step: self.step,
            });
        }
        let lr = self.cfg.optim.lr * self.cfg.schedule.factor(self.step);
        self.opt
            .step(self.model.layout(), &mut self.params, &self.grads, lr)?;
        self.step += 1;
        Ok(StepStats {
            step: self.step,
            loss,
            lr,
            grad_norm: norm,
            tokens,
        })
    }

    /// Mean loss (nats/token) over up to `max_windows` consecutive windows of `tokens`,
    /// evaluated `batch_size` windows at a time.
    pub fn evaluate(&mut self, tokens: &[u32], max_windows: usize) -> Result<f64, TrainError> {
        let t = self.cfg.seq_len;
        let (inputs, targets) = eval_windows(tokens, t, max_windows);
        if inputs.is_empty() {
            return Err(TrainError::Data(format!(
                "{} validation tokens are fewer than one window of {}",
                tokens.len(),
                t + 1
            )));
        }
        let chunk = t * self.cfg.batch_size;
        let mut sum = 0.0;
        for (x, y) in inputs.chunks(chunk).zip(targets.chunks(chunk)) {
            sum += self.model.eval_loss(&self.params, x, y, t, &mut self.ws)? * y.len() as f64;
        }
        Ok(sum / targets.len() as f64)
    }

    /// Optimizer steps completed.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// The current parameters (flat, in [`TrainModel::layout`] order).
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// The model shape.
    pub fn model(&self) -> &TrainModel {
        &self.model
    }

    /// The training settings.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// Where the data stream is.
    pub fn data_position(&self) -> DataPosition {
        self.data.position()
    }

    /// Fingerprint of the training tokens (checked on resume).
    pub fn data_fingerprint(&self) -> u64 {
        fingerprint(self.data.tokens())
    }

    /// Writes the current model as an F32 GGUF that `slm_model::Model` (and `slm run`) loads,
    /// with the tokenizer metadata of `tokenizer_source` when given.
    pub fn export_gguf(
        &self,
        path: &std::path::Path,
        tokenizer_source: Option<&slm_format::Metadata>,
    ) -> Result<(), TrainError> {
        crate::export::export_gguf(
            path,
            self.model.config(),
            self.model.layout(),
            &self.params,
            tokenizer_source,
        )
    }

    /// Like [`Trainer::export_gguf`] with every shared block copied into each layer that runs
    /// it (see [`crate::export::unshare`]): a larger file that llama.cpp loads.
    pub fn export_gguf_unshared(
        &self,
        path: &std::path::Path,
        tokenizer_source: Option<&slm_format::Metadata>,
    ) -> Result<(), TrainError> {
        let cfg = self.model.config();
        let (layout, params) = crate::export::unshare(cfg, self.model.layout(), &self.params)?;
        crate::export::export_gguf(path, cfg, &layout, &params, tokenizer_source)
    }
}
