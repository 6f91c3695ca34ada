//! The pruning module's error type.

use slm_format::GgufError;
use slm_kernels::KernelError;
use slm_model::quantize::QuantizeError;
use slm_model::ModelError;
use slm_runtime::RuntimeError;

/// Everything that can go wrong while scoring, pruning, writing or evaluating a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PruneError {
    /// The requested pruning does not fit the model or is out of range.
    #[error("invalid pruning request: {0}")]
    Request(String),
    /// The model file lacks a tensor or a tensor has an unexpected shape.
    #[error("model tensors: {0}; pass a Llama-family GGUF model that `slm run` loads")]
    Tensors(String),
    /// Wanda or structured pruning needs activations that the calibration did not record.
    #[error("no calibration statistics for {0}; give calibration text (--calib FILE) long enough for one chunk")]
    MissingStats(String),
    /// Reading or writing a GGUF file failed.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// Loading or running a model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Decoding or encoding tensor rows failed.
    #[error(transparent)]
    Kernel(#[from] KernelError),
    /// Re-quantizing the pruned model failed.
    #[error(transparent)]
    Quantize(#[from] QuantizeError),
    /// Evaluating the pruned model failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}
