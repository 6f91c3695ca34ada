//! A whole training run for front ends (`slm train`): steps, periodic validation and atomic
//! checkpoints, the final export, and progress pushed to an observer.
//!
//! Files in the output folder: `checkpoint.gguf` (replaced atomically every `checkpoint_every`
//! steps and at the end, so killing the process loses at most that many steps) and `model.gguf`
//! (the final F32 model, loadable by `slm run`). Resuming is [`Trainer::resume`] on the
//! checkpoint followed by [`run`] again: steps already done are skipped.
//!
//! Stopping cleanly (Ctrl-C in `slm train`): an observer callback returns `false`; the run then
//! writes the checkpoint of the step just finished (whatever `checkpoint_every` says) and returns
//! with [`RunSummary::stopped`] set and no model exported.

use crate::error::TrainError;
use crate::trainer::{StepStats, Trainer};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Loop settings of a run (saved next to the model config by front ends).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Optimizer steps of the whole run.
    pub steps: u64,
    /// Validate every this many steps (0: only at the end).
    #[serde(default)]
    pub eval_every: u64,
    /// Windows of the validation split used per evaluation.
    #[serde(default = "default_eval_windows")]
    pub eval_windows: usize,
    /// Write a checkpoint every this many steps (0: only at the end).
    #[serde(default)]
    pub checkpoint_every: u64,
}

fn default_eval_windows() -> usize {
    64
}

/// The validation data of a run.
#[derive(Clone, Copy, Debug)]
pub struct Validation<'a> {
    /// Validation token stream.
    pub tokens: &'a [u32],
    /// Bytes of text per token of `tokens` on average ([`crate::data::text_bytes`] / len), for
    /// bits per byte; `None` reports no bits per byte.
    pub bytes_per_token: Option<f64>,
}

/// One validation result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvalStats {
    /// Step after which it was measured.
    pub step: u64,
    /// Mean loss, nats per token.
    pub loss: f64,
    /// Bits per byte of text, when the byte count is known.
    pub bits_per_byte: Option<f64>,
}

/// Receives progress; returning `false` from a callback stops the run after a checkpoint.
pub trait RunObserver {
    /// After every optimizer step.
    fn on_step(&mut self, stats: &StepStats) -> bool;
    /// After every validation.
    fn on_eval(&mut self, _stats: &EvalStats) -> bool {
        true
    }
    /// After a checkpoint was written.
    fn on_checkpoint(&mut self, _step: u64, _path: &Path) {}
}

/// What a run did.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    /// Steps completed in total (including those before a resume).
    pub steps: u64,
    /// Whether the observer stopped the run early.
    pub stopped: bool,
    /// Every validation result of this invocation.
    pub evals: Vec<EvalStats>,
    /// The final model file (`None` when stopped early).
    pub model: Option<PathBuf>,
}

/// Runs `trainer` up to `cfg.steps`, validating, checkpointing into `out_dir` and finally
/// exporting `out_dir/model.gguf` (with the tokenizer metadata of `tokenizer_source`).
pub fn run(
    trainer: &mut Trainer,
    cfg: &RunConfig,
    val: Option<Validation>,
    out_dir: &Path,
    tokenizer_source: Option<&slm_format::Metadata>,
    observer: &mut dyn RunObserver,
) -> Result<RunSummary, TrainError> {
    std::fs::create_dir_all(out_dir).map_err(|source| TrainError::Io {
        path: out_dir.display().to_string(),
        source,
    })?;
    let ckpt = out_dir.join("checkpoint.gguf");
    let mut evals = Vec::new();
    let every = |n: u64, step: u64| n > 0 && step.is_multiple_of(n);
    let mut stopped = false;
    while trainer.step_count() < cfg.steps {
        let stats = trainer.step()?;
        let mut go_on = observer.on_step(&stats);
        let step = stats.step;
        let last = step == cfg.steps;
        if let Some(v) = val {
            if every(cfg.eval_every, step) || last {
                let e = evaluate(trainer, v, cfg.eval_windows)?;
                evals.push(e);
                go_on &= observer.on_eval(&e);
            }
        }
        if every(cfg.checkpoint_every, step) || last || !go_on {
            trainer.save_checkpoint(&ckpt)?;
            observer.on_checkpoint(step, &ckpt);
        }
        if !go_on {
            stopped = true;
            break;
        }
    }
    let model = if stopped {
        None
    } else {
        let path = out_dir.join("model.gguf");
        trainer.export_gguf(&path, tokenizer_source)?;
        Some(path)
    };
    Ok(RunSummary {
        steps: trainer.step_count(),
        stopped,
        evals,
        model,
    })
}

fn evaluate(
    trainer: &mut Trainer,
    val: Validation,
    windows: usize,
) -> Result<EvalStats, TrainError> {
    let loss = trainer.evaluate(val.tokens, windows.max(1))?;
    // bits per byte = nats per token / (bytes per token · ln 2)
    let bits_per_byte = val
        .bytes_per_token
        .filter(|&b| b > 0.0)
        .map(|b| loss / (b * std::f64::consts::LN_2));
    Ok(EvalStats {
        step: trainer.step_count(),
        loss,
        bits_per_byte,
    })
}
