//! The training crate's error type.

use slm_format::GgufError;
use slm_model::ModelError;

/// Everything that can go wrong while building, training, checkpointing or exporting a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// The model configuration is invalid or uses a variant the trainer does not support.
    #[error("invalid model config for training: {0}")]
    Config(String),
    /// A training setting (batch, sequence length, learning rate, ...) is out of range.
    #[error("invalid training setting: {0}")]
    Setting(String),
    /// An argument does not fit the model (wrong buffer length, token id out of range, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The data set is too small or unusable for the requested batches.
    #[error("data: {0}")]
    Data(String),
    /// A checkpoint file is unreadable, from another model, or inconsistent.
    #[error("checkpoint '{path}': {reason}; delete it or pass a checkpoint written by this model")]
    Checkpoint {
        /// The checkpoint file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The loss or a gradient became NaN/infinite (learning rate too high, or bad data).
    #[error(
        "non-finite {what} at step {step}; lower the learning rate or enable gradient clipping"
    )]
    NonFinite {
        /// `"loss"` or `"gradient norm"`.
        what: &'static str,
        /// Optimizer step at which it happened.
        step: u64,
    },
    /// Reading or writing a GGUF file failed.
    #[error(transparent)]
    Format(#[from] GgufError),
    /// slm-model rejected a configuration or file.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A kernel (dequantization) rejected its input.
    #[error(transparent)]
    Kernel(#[from] slm_kernels::KernelError),
    /// The tokenizer failed.
    #[error(transparent)]
    Runtime(#[from] slm_runtime::RuntimeError),
    /// A LoRA adapter is invalid or does not fit the model.
    #[error(transparent)]
    Lora(#[from] slm_model::lora::LoraError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}
