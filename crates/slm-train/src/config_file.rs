//! The TOML file of `slm train --config`: model shape, optimizer, schedule and loop settings,
//! checked and turned into the library's [`ModelConfig`], [`TrainConfig`] and [`RunConfig`].
//!
//! ```toml
//! [model]            # omitted when fine-tuning (--init): the model's own shape is used
//! d_model = 128
//! n_layer = 4
//! n_head = 4
//! n_kv_head = 2      # default: n_head
//! d_ff = 384         # default: 8/3 · d_model rounded up to a multiple of 32
//! context = 256      # training context (n_ctx_train)
//! sharing = "none"   # or "all", "groups:G", "repeat:K", "cycle:S" (blocks shared across layers)
//!
//! [train]
//! steps = 1000
//! batch_size = 8
//! seq_len = 256      # default: context
//! grad_accum = 1
//! seed = 0
//! eval_every = 100
//! checkpoint_every = 100
//!
//! [optim]
//! lr = 3e-3
//!
//! [schedule]
//! kind = "cosine"    # or "wsd" (with decay_fraction) or "constant"
//! warmup = 50
//!
//! [export]
//! unshared = false   # with sharing: also write model.unshared.gguf for llama.cpp
//! ```
//!
//! The vocabulary size always comes from the tokenizer.

use crate::error::TrainError;
use crate::layout::BlockMap;
use crate::optim::AdamWConfig;
use crate::run::RunConfig;
use crate::schedule::Schedule;
use crate::trainer::TrainConfig;
use serde::Deserialize;
use slm_model::{Arch, ModelConfig};
use std::path::Path;

/// The whole file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Model shape (required when training from scratch).
    #[serde(default)]
    pub model: Option<ModelSection>,
    /// Loop and batch settings.
    pub train: TrainSection,
    /// AdamW settings.
    pub optim: AdamWConfig,
    /// Learning-rate schedule.
    #[serde(default)]
    pub schedule: ScheduleSection,
    /// Extra files written at the end of the run.
    #[serde(default)]
    pub export: ExportSection,
}

/// `[export]`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportSection {
    /// With shared blocks, also write `model.unshared.gguf`: every layer its own copy of its
    /// block, no `slm.block_map`, so llama.cpp loads it (at the unshared model's size).
    #[serde(default)]
    pub unshared: bool,
}

/// `[model]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Embedding width.
    pub d_model: usize,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads (grouped-query attention); default `n_head`.
    pub n_kv_head: Option<usize>,
    /// Feed-forward width; default 8/3 · `d_model` rounded up to a multiple of 32.
    pub d_ff: Option<usize>,
    /// Training context in tokens.
    pub context: usize,
    /// RoPE base frequency.
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f32,
    /// RMSNorm epsilon.
    #[serde(default = "default_rms_eps")]
    pub rms_eps: f32,
    /// Share the output head with the token embedding.
    #[serde(default = "yes")]
    pub tied_output: bool,
    /// Blocks shared across layers: `"none"` (default), `"all"`, `"groups:G"`, `"repeat:K"` or
    /// `"cycle:S"` (see [`BlockMap`]).
    #[serde(default)]
    pub sharing: Option<String>,
    /// An explicit layer → stored-block map instead of `sharing`.
    #[serde(default)]
    pub block_map: Option<Vec<usize>>,
}

fn default_rope_theta() -> f32 {
    10_000.0
}
fn default_rms_eps() -> f32 {
    1e-5
}
fn yes() -> bool {
    true
}

/// `[train]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    /// Optimizer steps of the run.
    pub steps: u64,
    /// Sequences per micro-batch.
    pub batch_size: usize,
    /// Tokens per sequence; default: the model context.
    pub seq_len: Option<usize>,
    /// Micro-batches per optimizer step.
    #[serde(default = "one")]
    pub grad_accum: usize,
    /// Seed of initialisation and data order.
    #[serde(default)]
    pub seed: u64,
    /// Global gradient-norm clip (0 turns clipping off).
    #[serde(default = "default_clip")]
    pub clip_grad_norm: f32,
    /// Fraction of the tokens held out for validation.
    #[serde(default = "default_val_fraction")]
    pub val_fraction: f64,
    /// Validate every this many steps (0: only at the end).
    #[serde(default)]
    pub eval_every: u64,
    /// Validation windows per evaluation.
    #[serde(default = "default_eval_windows")]
    pub eval_windows: usize,
    /// Checkpoint every this many steps (0: only at the end).
    #[serde(default)]
    pub checkpoint_every: u64,
}

fn one() -> usize {
    1
}
fn default_clip() -> f32 {
    1.0
}
fn default_val_fraction() -> f64 {
    0.05
}
fn default_eval_windows() -> usize {
    32
}

/// `[schedule]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSection {
    /// `"cosine"`, `"wsd"` or `"constant"`.
    #[serde(default = "default_kind")]
    pub kind: String,
    /// Linear warmup steps.
    #[serde(default)]
    pub warmup: u64,
    /// Final learning rate as a fraction of the base one (cosine, wsd).
    #[serde(default = "default_min_ratio")]
    pub min_ratio: f32,
    /// Fraction of the run spent decaying (wsd).
    #[serde(default = "default_decay_fraction")]
    pub decay_fraction: f64,
}

impl Default for ScheduleSection {
    fn default() -> ScheduleSection {
        ScheduleSection {
            kind: default_kind(),
            warmup: 0,
            min_ratio: default_min_ratio(),
            decay_fraction: default_decay_fraction(),
        }
    }
}

fn default_kind() -> String {
    "cosine".into()
}
fn default_min_ratio() -> f32 {
    0.1
}
fn default_decay_fraction() -> f64 {
    0.2
}

fn bad(msg: String) -> TrainError {
    TrainError::Config(msg)
}

impl ConfigFile {
    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<ConfigFile, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|source| TrainError::Io {
            path: path.display().to_string(),
            source,
        })?;
        ConfigFile::parse(&text).map_err(|e| bad(format!("{}: {e}", path.display())))
    }

    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<ConfigFile, TrainError> {
        toml::from_str(text).map_err(|e| bad(e.to_string()))
    }

    /// The model shape for a tokenizer of `n_vocab` tokens.
    pub fn model_config(&self, n_vocab: usize) -> Result<ModelConfig, TrainError> {
        let m = self.model.as_ref().ok_or_else(|| {
            bad("the config has no [model] section; add one to train from scratch, or pass --init MODEL.gguf to fine-tune".into())
        })?;
        if m.n_layer == 0 || m.d_model == 0 || m.n_head == 0 || m.context == 0 {
            return Err(bad(format!(
                "d_model ({}), n_layer ({}), n_head ({}) and context ({}) must all be at least 1",
                m.d_model, m.n_layer, m.n_head, m.context
            )));
        }
        if !m.d_model.is_multiple_of(m.n_head) {
            return Err(bad(format!(
                "n_head {} does not divide d_model {}; pick a head count that divides it",
                m.n_head, m.d_model
            )));
        }
        let head_dim = m.d_model / m.n_head;
        if !head_dim.is_multiple_of(2) {
            return Err(bad(format!(
                "the head size d_model / n_head = {head_dim} must be even for rotary embeddings"
            )));
        }
        let n_kv_head = m.n_kv_head.unwrap_or(m.n_head);
        if n_kv_head == 0 || !m.n_head.is_multiple_of(n_kv_head) {
            return Err(bad(format!(
                "n_kv_head {n_kv_head} must be at least 1 and divide n_head {}",
                m.n_head
            )));
        }
        let d_ff = m.d_ff.unwrap_or((m.d_model * 8 / 3).div_ceil(32) * 32);
        if d_ff == 0 {
            return Err(bad("d_ff must be at least 1".into()));
        }
        Ok(ModelConfig {
            arch: Arch::Llama,
            n_vocab,
            d_model: m.d_model,
            n_layer: m.n_layer,
            n_head: m.n_head,
            n_kv_head,
            head_dim,
            d_ff,
            n_ctx_train: m.context,
            rms_eps: m.rms_eps,
            rope_theta: m.rope_theta,
            tied_output: m.tied_output,
        })
    }

    /// The layer → stored-block map of `[model]` (`sharing` or `block_map`); the identity map
    /// (no sharing) when neither is given or there is no `[model]` section.
    pub fn block_map(&self, n_layer: usize) -> Result<BlockMap, TrainError> {
        let Some(m) = self.model.as_ref() else {
            return Ok(BlockMap::identity(n_layer));
        };
        match (&m.sharing, &m.block_map) {
            (Some(_), Some(_)) => Err(bad(
                "[model] has both sharing and block_map; keep one".into()
            )),
            (Some(spec), None) => BlockMap::parse(spec, n_layer),
            (None, Some(map)) => {
                if map.len() != n_layer {
                    return Err(bad(format!(
                        "block_map has {} entries for n_layer = {n_layer}; give one stored-block index per layer",
                        map.len()
                    )));
                }
                BlockMap::new(map.clone())
            }
            (None, None) => Ok(BlockMap::identity(n_layer)),
        }
    }

    /// Training settings for a run of `steps` steps on a model with context `n_ctx`.
    pub fn train_config(&self, steps: u64, n_ctx: usize) -> Result<TrainConfig, TrainError> {
        let t = &self.train;
        let s = &self.schedule;
        if steps == 0 {
            return Err(TrainError::Setting("steps must be at least 1".into()));
        }
        let schedule = match s.kind.as_str() {
            "constant" => Schedule::Constant { warmup: s.warmup },
            "cosine" => Schedule::Cosine {
                warmup: s.warmup,
                total: steps,
                min_ratio: s.min_ratio,
            },
            "wsd" => {
                if !(0.0..=1.0).contains(&s.decay_fraction) {
                    return Err(TrainError::Setting(format!(
                        "decay_fraction {} must be in [0, 1]",
                        s.decay_fraction
                    )));
                }
                let decay = ((steps as f64 * s.decay_fraction).round() as u64)
                    .min(steps.saturating_sub(s.warmup));
                Schedule::Wsd {
                    warmup: s.warmup,
                    total: steps,
                    decay,
                    min_ratio: s.min_ratio,
                }
            }
            other => {
                return Err(TrainError::Setting(format!(
                    "schedule kind \"{other}\" is unknown; use \"cosine\", \"wsd\" or \"constant\""
                )))
            }
        };
        let cfg = TrainConfig {
            seq_len: t.seq_len.unwrap_or(n_ctx),
            batch_size: t.batch_size,
            grad_accum: t.grad_accum,
            seed: t.seed,
            optim: self.optim.clone(),
            schedule,
            clip_grad_norm: (t.clip_grad_norm > 0.0).then_some(t.clip_grad_norm),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Loop settings for `steps` steps.
    pub fn run_config(&self, steps: u64) -> RunConfig {
        RunConfig {
            steps,
            eval_every: self.train.eval_every,
            eval_windows: self.train.eval_windows.max(1),
            checkpoint_every: self.train.checkpoint_every,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [model]
        d_model = 64
        n_layer = 2
        n_head = 4
        n_kv_head = 2
        context = 64
        [train]
        steps = 100
        batch_size = 4
        eval_every = 10
        [optim]
        lr = 1e-3
        weight_decay = 0.1
        [schedule]
        kind = "wsd"
        warmup = 10
    "#;

    #[test]
    fn a_full_config_resolves() {
        let c = ConfigFile::parse(GOOD).unwrap();
        let m = c.model_config(500).unwrap();
        assert_eq!(
            (m.n_vocab, m.head_dim, m.n_kv_head, m.d_ff),
            (500, 16, 2, 192)
        );
        let t = c.train_config(100, m.n_ctx_train).unwrap();
        assert_eq!(t.seq_len, 64);
        assert_eq!(
            t.schedule,
            Schedule::Wsd {
                warmup: 10,
                total: 100,
                decay: 20,
                min_ratio: 0.1
            }
        );
        assert_eq!(c.run_config(100).eval_every, 10);
    }

    #[test]
    fn sharing_specs_become_block_maps() {
        let with = |line: &str| {
            ConfigFile::parse(&GOOD.replace("n_layer = 2", &format!("n_layer = 4\n{line}")))
                .and_then(|c| c.block_map(4))
        };
        assert_eq!(with("").unwrap(), BlockMap::identity(4));
        assert_eq!(
            with("sharing = \"repeat:2\"").unwrap().layers(),
            [0, 0, 1, 1]
        );
        assert_eq!(
            with("sharing = \"cycle:2\"").unwrap().layers(),
            [0, 1, 0, 1]
        );
        assert_eq!(with("sharing = \"all\"").unwrap().layers(), [0, 0, 0, 0]);
        assert_eq!(
            with("block_map = [0, 1, 1, 0]").unwrap().layers(),
            [0, 1, 1, 0]
        );
        let e = with("sharing = \"repeat:3\"").unwrap_err().to_string();
        assert!(e.contains("dividing n_layer"), "{e}");
        let e = with("block_map = [0, 2, 2, 0]").unwrap_err().to_string();
        assert!(e.contains("stored block 1 is run by no layer"), "{e}");
        let e = with("block_map = [0, 0]").unwrap_err().to_string();
        assert!(e.contains("2 entries for n_layer = 4"), "{e}");
        let e = with("sharing = \"all\"\nblock_map = [0, 0, 0, 0]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("both"), "{e}");
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        let err = |s: &str| ConfigFile::parse(s).and_then(|c| c.model_config(300).map(|_| ()));
        let e = err(&GOOD.replace("n_layer = 2", "n_layer = 0"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("n_layer (0)"), "{e}");
        let e = err(&GOOD.replace("n_head = 4", "n_head = 3"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not divide d_model"), "{e}");
        let e = err(&GOOD.replace("n_kv_head = 2", "n_kv_head = 3"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("n_kv_head 3"), "{e}");
        let e = err(&GOOD.replace("batch_size", "batch_sise"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("batch_sise"), "{e}");
        let c = ConfigFile::parse(&GOOD.replace("\"wsd\"", "\"linear\"")).unwrap();
        assert!(c
            .train_config(100, 64)
            .unwrap_err()
            .to_string()
            .contains("linear"));
    }
}
