//! LoRA fine-tuning on CPU: a frozen base model (kept in its file's dtype, quantized or not:
//! QLoRA-style) plus trainable low-rank adapters `W' = W + (alpha/r)·B·A` on chosen projections.
//!
//! ```text
//!  base.gguf ─► FrozenBase (mmap; norms/embedding in f32) ─┐
//!  LoraAdapter::init (A random, B = 0) ─► AdapterLayout ────┼─► LoraWeights ─► TrainModel::forward_backward_with
//!  SftExample (sft_data: chat / prompt+completion / text) ──┘      (gradients of A and B only) ─► AdamW
//! ```
//!
//! The result is a `slm_model::lora::LoraAdapter`, saved as a llama.cpp GGUF adapter or a PEFT
//! directory and applied at run time (`--lora`) or merged (`slm lora merge`).

mod adapter;
mod base;
mod trainer;

pub use adapter::{AdapterLayout, LoraWeights, PairSlot};
pub use base::FrozenBase;
pub use trainer::{LoraTrainer, SftConfig, SftStepStats};
