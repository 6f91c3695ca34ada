//! slm-model: the transformer architectures slm runs and trains, their weights, the KV cache
//! and the forward pass.
//!
//! ```text
//!  GgufFile ──► ModelConfig::from_gguf ──► LlamaWeights::load (TensorLoader: names, shapes, types)
//!                                                   │
//!  tokens ──► Model::forward(Context{KvCache, ForwardState}) ──► logits
//! ```
//!
//! Weights stay memory-mapped; every linear layer is a [`weights::Linear`] whose weight may be
//! any dtype the kernels support, so quantized and full-precision models share one code path.

#![warn(missing_docs)]

pub mod arch;
pub mod bert;
pub mod config;
pub mod error;
pub mod hf;
pub mod kv_cache;
pub mod lora;
pub mod model;
pub mod observe;
pub mod quantize;
pub mod random_init;
pub mod weights;

pub use arch::Arch;
pub use config::ModelConfig;
pub use error::ModelError;
pub use model::{Context, ContextBytes, DecodeBatch, Logits, Model};
pub use observe::{ActivationObserver, Site};
