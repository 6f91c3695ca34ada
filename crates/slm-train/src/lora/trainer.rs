//! The adapter training loop: examples → padded micro-batches → loss on the trained tokens →
//! gradients of the adapter only → AdamW.

use super::adapter::{AdapterLayout, LoraWeights};
use super::base::FrozenBase;
use crate::error::TrainError;
use crate::model::Workspace;
use crate::ops::IGNORE_TARGET;
use crate::optim::{clip_grad_norm, AdamW, AdamWConfig};
use crate::rng::Rng;
use crate::schedule::Schedule;
use crate::sft_data::SftExample;
use slm_model::lora::LoraAdapter;

/// Settings of an adapter training run.
#[derive(Clone, Debug, PartialEq)]
pub struct SftConfig {
    /// Examples per optimizer step.
    pub batch_size: usize,
    /// Most tokens (padded) per forward/backward; a step runs as many micro-batches as needed.
    /// Bounds the activation memory.
    pub micro_batch_tokens: usize,
    /// Shuffle seed.
    pub seed: u64,
    /// Optimizer settings (LoRA usually has no weight decay).
    pub optim: AdamWConfig,
    /// Learning-rate schedule over optimizer steps.
    pub schedule: Schedule,
    /// Clip the global gradient norm to this value.
    pub clip_grad_norm: Option<f32>,
}

/// What one optimizer step did.
#[derive(Clone, Debug, PartialEq)]
pub struct SftStepStats {
    /// Steps completed (1-based).
    pub step: u64,
    /// Mean cross-entropy over the step's trained tokens (nats/token), before the update.
    pub loss: f64,
    /// Learning rate used.
    pub lr: f32,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Tokens run through the model (without padding).
    pub tokens: usize,
    /// Trained tokens.
    pub trained: usize,
    /// Passes over the training examples completed so far.
    pub epoch: u64,
}

/// Adapter training on a frozen base.
#[derive(Debug)]
pub struct LoraTrainer {
    base: FrozenBase,
    layout: AdapterLayout,
    values: Vec<f32>,
    grads: Vec<f32>,
    opt: AdamW,
    cfg: SftConfig,
    examples: Vec<SftExample>,
    order: Vec<usize>,
    cursor: usize,
    epoch: u64,
    rng: Rng,
    step: u64,
    ws: Workspace,
}

/// Padding to a multiple of this many positions keeps the workspace shapes (and reallocations)
/// few; padded positions are never trained and, being after the real tokens of a causal model,
/// never change them.
const PAD_MULTIPLE: usize = 16;

impl LoraTrainer {
    /// A trainer for `adapter` (typically `LoraAdapter::init`) on `base`.
    pub fn new(
        base: FrozenBase,
        adapter: &LoraAdapter,
        cfg: SftConfig,
        examples: Vec<SftExample>,
    ) -> Result<LoraTrainer, TrainError> {
        cfg.optim.validate()?;
        cfg.schedule.validate()?;
        if cfg.batch_size == 0 || cfg.micro_batch_tokens == 0 {
            return Err(TrainError::Setting(
                "batch size and micro-batch tokens must be positive".into(),
            ));
        }
        adapter.check_against(base.model().config())?;
        if examples.is_empty() {
            return Err(TrainError::Data("no training examples".into()));
        }
        let n_ctx = base.model().config().n_ctx_train;
        if let Some(long) = examples.iter().find(|e| e.tokens.len() > n_ctx) {
            return Err(TrainError::Data(format!(
                "an example has {} tokens, more than the model's context {n_ctx}",
                long.tokens.len()
            )));
        }
        let (layout, values) = AdapterLayout::from_adapter(adapter);
        let n = layout.len();
        let mut rng = Rng::new(cfg.seed);
        let mut order: Vec<usize> = (0..examples.len()).collect();
        rng.shuffle(&mut order);
        Ok(LoraTrainer {
            base,
            layout,
            values,
            grads: vec![0.0; n],
            opt: AdamW::new(cfg.optim.clone(), n),
            cfg,
            examples,
            order,
            cursor: 0,
            epoch: 0,
            rng,
            step: 0,
            ws: Workspace::new(),
        })
    }

    /// The next `batch_size` example indices (reshuffled at each epoch).
    fn next_batch(&mut self) -> Vec<usize> {
        let mut batch = Vec::with_capacity(self.cfg.batch_size);
        while batch.len() < self.cfg.batch_size {
            if self.cursor == self.order.len() {
                self.cursor = 0;
                self.epoch += 1;
                self.rng.shuffle(&mut self.order);
            }
            batch.push(self.order[self.cursor]);
            self.cursor += 1;
        }
        batch
    }

    /// One optimizer step over the next batch.
    pub fn step(&mut self) -> Result<SftStepStats, TrainError> {
        let batch = self.next_batch();
        let trained: usize = batch.iter().map(|&i| self.examples[i].n_trained()).sum();
        let tokens: usize = batch.iter().map(|&i| self.examples[i].tokens.len()).sum();
        let scale = 1.0 / trained.max(1) as f32;
        self.grads.fill(0.0);
        let mut loss = 0.0;
        for micro in micro_batches(&self.examples, &batch, self.cfg.micro_batch_tokens) {
            let n_ctx = self.base.model().config().n_ctx_train;
            let (toks, tgts, t) = pad(&self.examples, &micro, n_ctx);
            let w = LoraWeights {
                base: &self.base,
                layout: &self.layout,
                values: &self.values,
            };
            let model = self.base.model();
            loss += model.forward_backward_with(
                &w,
                &mut self.grads,
                &toks,
                &tgts,
                t,
                scale,
                &mut self.ws,
            )?;
        }
        let loss = loss / trained.max(1) as f64;
        if !loss.is_finite() {
            return Err(TrainError::NonFinite {
                what: "loss",
                step: self.step,
            });
        }
        let grad_norm = match self.cfg.clip_grad_norm {
            Some(max) => clip_grad_norm(&mut self.grads, max),
            None => crate::optim::grad_norm(&self.grads),
        };
        if !grad_norm.is_finite() {
            return Err(TrainError::NonFinite {
                what: "gradient norm",
                step: self.step,
            });
        }
        let lr = self.cfg.optim.lr * self.cfg.schedule.factor(self.step);
        // LoRA factors carry no norms or embeddings: one group, decayed as configured.
        let groups = [(0..self.values.len(), self.cfg.optim.weight_decay > 0.0)];
        self.opt
            .step_groups(&groups, &mut self.values, &self.grads, lr)?;
        self.step += 1;
        Ok(SftStepStats {
            step: self.step,
            loss,
            lr,
            grad_norm,
            tokens,
            trained,
            epoch: self.epoch,
        })
    }

    /// Mean loss (nats per trained token) of the current adapter on `examples`.
    pub fn evaluate(&mut self, examples: &[SftExample]) -> Result<f64, TrainError> {
        let all: Vec<usize> = (0..examples.len()).collect();
        let (mut sum, mut count) = (0.0f64, 0usize);
        for micro in micro_batches(examples, &all, self.cfg.micro_batch_tokens) {
            let n_ctx = self.base.model().config().n_ctx_train;
            let (toks, tgts, t) = pad(examples, &micro, n_ctx);
            let w = LoraWeights {
                base: &self.base,
                layout: &self.layout,
                values: &self.values,
            };
            let n = tgts.iter().filter(|&&x| x != IGNORE_TARGET).count();
            let mean = self
                .base
                .model()
                .eval_loss_with(&w, &toks, &tgts, t, &mut self.ws)?;
            sum += mean * n as f64;
            count += n;
        }
        Ok(if count == 0 { 0.0 } else { sum / count as f64 })
    }

    /// The adapter with its current values.
    pub fn adapter(&self) -> Result<LoraAdapter, TrainError> {
        self.layout.to_adapter(&self.values)
    }

    /// Trainable parameters.
    pub fn n_trainable(&self) -> usize {
        self.values.len()
    }

    /// Optimizer steps done.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// The frozen base.
    pub fn base(&self) -> &FrozenBase {
        &self.base
    }
}

/// Splits `batch` (example indices) into micro-batches whose padded size stays within
/// `max_tokens` (an example longer than that runs alone). Examples are grouped by length so
/// padding is small.
fn micro_batches(examples: &[SftExample], batch: &[usize], max_tokens: usize) -> Vec<Vec<usize>> {
    let mut sorted = batch.to_vec();
    sorted.sort_by_key(|&i| examples[i].tokens.len());
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for i in sorted {
        let t = padded_len(examples[i].tokens.len());
        // Sorted ascending, so the newcomer sets the padded length.
        if !current.is_empty() && (current.len() + 1) * t > max_tokens {
            out.push(std::mem::take(&mut current));
        }
        current.push(i);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn padded_len(len: usize) -> usize {
    len.div_ceil(PAD_MULTIPLE) * PAD_MULTIPLE
}

/// Tokens and targets of `micro` padded to one length `t ≤ n_ctx` (pad token 0, target ignored).
fn pad(examples: &[SftExample], micro: &[usize], n_ctx: usize) -> (Vec<u32>, Vec<u32>, usize) {
    let longest = micro
        .iter()
        .map(|&i| examples[i].tokens.len())
        .max()
        .unwrap_or(1);
    let t = padded_len(longest).min(n_ctx).max(longest);
    let mut toks = Vec::with_capacity(micro.len() * t);
    let mut tgts = Vec::with_capacity(micro.len() * t);
    for &i in micro {
        let e = &examples[i];
        toks.extend_from_slice(&e.tokens);
        tgts.extend_from_slice(&e.targets);
        toks.resize(toks.len() + t - e.tokens.len(), 0);
        tgts.resize(tgts.len() + t - e.targets.len(), IGNORE_TARGET);
    }
    (toks, tgts, t)
}
