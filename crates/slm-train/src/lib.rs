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
//! (llm.c style) and checked against finite differences and against slm-model's forward pass.

#![warn(missing_docs)]

pub mod attention;
pub mod checkpoint;
pub mod data;
pub mod error;
pub mod export;
pub mod init;
pub mod layout;
pub mod matmul;
pub mod model;
pub mod ops;
pub mod optim;
pub mod rng;
pub mod run;
pub mod schedule;
pub mod trainer;

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
