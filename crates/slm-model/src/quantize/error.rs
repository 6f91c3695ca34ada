//! Errors of model conversion.

use slm_format::{GgmlType, GgufError};
use slm_kernels::KernelError;
use std::path::PathBuf;

/// Everything that can stop a quantization.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuantizeError {
    /// Reading the input or writing the output failed.
    #[error(transparent)]
    Format(#[from] GgufError),
    /// A row could not be decoded or encoded.
    #[error(transparent)]
    Kernel(#[from] KernelError),
    /// The tensor is already quantized and re-encoding was not allowed.
    #[error("tensor '{tensor}' is already quantized ({dtype}); re-quantizing loses quality twice — start from an F32/F16/BF16 model, or pass --allow-requantize")]
    RequantizeDisabled {
        /// Tensor name.
        tensor: String,
        /// Its current type.
        dtype: GgmlType,
    },
    /// The chosen type cannot hold a tensor of this shape.
    #[error("tensor '{tensor}' with dims {dims:?} cannot be stored as {dtype}")]
    Shape {
        /// Tensor name.
        tensor: String,
        /// Its dims.
        dims: Vec<u64>,
        /// The type that did not fit.
        dtype: GgmlType,
    },
    /// Input and output are the same file.
    #[error("the output {0} is the input file; write to another path")]
    SameFile(PathBuf),
    /// The importance matrix is malformed or does not match the model.
    #[error("importance matrix: {0}")]
    Imatrix(String),
    /// A worker thread panicked (a bug: please report it).
    #[error("a quantization worker thread panicked; this is a bug in slm")]
    WorkerPanicked,
}
