//! The model crate's error type.

use slm_format::{GgmlType, GgufError};
use slm_kernels::KernelError;

/// Everything that can go wrong while loading or running a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The model file could not be read or parsed.
    #[error(transparent)]
    Format(#[from] GgufError),
    /// A compute kernel rejected its inputs (a shape or dtype the loader should have caught).
    #[error(transparent)]
    Kernel(#[from] KernelError),
    /// `general.architecture` names an architecture slm cannot run.
    #[error("unsupported architecture '{found}' (supported: {supported}); convert the model to one of these or open an issue")]
    UnsupportedArchitecture {
        /// The architecture the file declares.
        found: String,
        /// Comma-separated list of supported names.
        supported: String,
    },
    /// A hyper-parameter is missing, zero or inconsistent with another.
    #[error("invalid model config: {0}")]
    InvalidConfig(String),
    /// A tensor the architecture needs is absent.
    #[error("tensor '{name}' is missing from the model file; the file is incomplete or not a {arch} model")]
    MissingTensor {
        /// Tensor name (GGUF naming).
        name: String,
        /// Architecture being loaded.
        arch: String,
    },
    /// A tensor has the wrong shape.
    #[error("tensor '{name}' has shape {found:?}, expected {expected:?}")]
    TensorShape {
        /// Tensor name.
        name: String,
        /// Expected dims (ggml order).
        expected: Vec<u64>,
        /// Dims found in the file.
        found: Vec<u64>,
    },
    /// A tensor is stored in a type this operation cannot use.
    #[error("tensor '{name}' has type {dtype}, which is not supported for {usage}")]
    TensorType {
        /// Tensor name.
        name: String,
        /// Its type.
        dtype: GgmlType,
        /// What it was needed for.
        usage: &'static str,
    },
    /// The file has tensors the architecture does not use (a sign of a wrong or unsupported variant).
    #[error("the model file has {count} tensors this architecture does not use (first: '{first}'); the variant is not supported")]
    UnusedTensors {
        /// How many were not used.
        count: usize,
        /// The first unused name.
        first: String,
    },
    /// The context window would overflow.
    #[error("context is full: {n_past} tokens already in the context + {n_new} new > context size {n_ctx}; start a new context or raise --ctx")]
    ContextFull {
        /// Tokens already processed.
        n_past: usize,
        /// Tokens being added.
        n_new: usize,
        /// Capacity.
        n_ctx: usize,
    },
    /// A token id outside the vocabulary.
    #[error("token id {id} is out of range for a vocabulary of {n_vocab}")]
    TokenOutOfRange {
        /// The id.
        id: u32,
        /// Vocabulary size.
        n_vocab: usize,
    },
    /// A request for zero tokens, a zero context, etc.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}
