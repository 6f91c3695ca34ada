//! slm-train: CPU training of small Llama-family models with the same conventions as the
//! inference engine (`slm-model`).
//!
//! ```text
//!  text ─► data (tokenize, pack with EOS, split) ─► batches ─┐
//!  ModelConfig ─► TrainModel (flat f32 params) ──────────────┼─► forward ─► loss ─► backward
//!                                                            └─► AdamW (+ schedule, clipping)
//!  checkpoints (atomic GGUF: params + Adam moments + state) · export to GGUF for slm-model
//! ```
//!
//! Parameters, gradients and optimizer moments are flat `Vec<f32>`s sharing one
//! [`layout::ParamLayout`] whose tensor names are GGUF's; the backward pass is explicit per op
//! (llm.c style) and checked against finite differences, against slm-model's forward pass and
//! against PyTorch (`reference/train_golden.py`).
//!
//! Entry points: [`Trainer`] (one optimizer step at a time, checkpoints, export) and [`run()`]
//! (a whole run with validation and checkpoint cadence, for front ends); [`config_file`],
//! [`job`], [`metrics`], [`plot`] and [`bpe`] (tokenizer training) serve `slm train` and
//! `slm tokenizer train`. Training is
//! deterministic for a seed and a thread count (rayon's pool).
//!
//! ```
//! use slm_model::{Arch, ModelConfig};
//! use slm_train::{AdamWConfig, Schedule, TrainConfig, Trainer};
//!
//! let model = ModelConfig {
//!     arch: Arch::Llama, n_vocab: 16, d_model: 16, n_layer: 1, n_head: 2, n_kv_head: 1,
//!     head_dim: 8, d_ff: 32, n_ctx_train: 32, rms_eps: 1e-5, rope_theta: 10_000.0,
//!     tied_output: true,
//! };
//! let train = TrainConfig {
//!     seq_len: 8, batch_size: 2, grad_accum: 1, seed: 1,
//!     optim: AdamWConfig::with_lr(1e-2),
//!     schedule: Schedule::Cosine { warmup: 2, total: 20, min_ratio: 0.1 },
//!     clip_grad_norm: Some(1.0),
//! };
//! // Token ids would come from data::pack_documents(&tokenizer, &docs).
//! let tokens: Vec<u32> = (0..200u32).map(|i| i % 7).collect();
//! let mut trainer = Trainer::new(model, train, tokens)?;
//! let first = trainer.step()?.loss;
//! for _ in 1..20 {
//!     trainer.step()?;
//! }
//! assert!(trainer.step()?.loss < first);
//! # Ok::<(), slm_train::TrainError>(())
//! ```

#![warn(missing_docs)]

pub mod attention;
pub mod bpe;
pub mod checkpoint;
pub mod classifier;
pub mod config_file;
pub mod data;
pub mod distill;
pub mod error;
pub mod export;
pub mod init;
pub mod job;
pub mod labelled;
pub mod layout;
pub mod lora;
pub mod matmul;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod optim;
pub mod plot;
pub mod prune;
pub mod rng;
pub mod run;
pub mod schedule;
pub mod sft_data;
pub mod trainer;
pub mod weights;

pub use error::TrainError;
pub use export::{export_gguf, export_gguf_bytes, import_gguf};
pub use init::init_params;
pub use layout::{ModelSpec, ParamKind, ParamLayout};
pub use model::{TrainModel, Workspace};
pub use optim::{AdamW, AdamWConfig};
pub use rng::Rng;
pub use run::{run, EvalStats, RunConfig, RunObserver, RunSummary, Validation};
pub use schedule::Schedule;
pub use trainer::{StepStats, TrainConfig, Trainer};
