//! The error type of LoRA adapters: loading, saving, checking against a base model, applying
//! and merging.

use slm_format::safetensors::SafetensorsError;
use slm_format::{GgmlType, GgufError};
use std::path::PathBuf;

/// Everything that can go wrong with a LoRA adapter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoraError {
    /// The GGUF adapter file could not be read, parsed or written.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// The PEFT safetensors file could not be read, parsed or written.
    #[error(transparent)]
    Safetensors(#[from] SafetensorsError),
    /// A file of a PEFT adapter directory could not be read or written.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `adapter_config.json` is missing a field, has a wrong type or an unsupported option.
    #[error("PEFT adapter config {path}: {reason}")]
    PeftConfig {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The GGUF file is not a LoRA adapter (a model, or another adapter kind).
    #[error("{what} is '{found}', expected '{expected}': this file is not a LoRA adapter (pass the adapter, not the base model; convert PEFT adapters with `slm lora convert`)")]
    NotAnAdapter {
        /// The metadata key checked.
        what: &'static str,
        /// The value found ("" when absent).
        found: String,
        /// The value a LoRA adapter has.
        expected: &'static str,
    },
    /// The adapter was made for another architecture than the base model.
    #[error("the adapter is for architecture '{adapter}' but the model is '{model}'; use the adapter's base model")]
    ArchMismatch {
        /// The adapter's `general.architecture`.
        adapter: String,
        /// The model's.
        model: String,
    },
    /// A tensor name that is not a LoRA A/B matrix of a supported projection.
    #[error("tensor '{name}' is not a LoRA matrix slm can apply ({reason}); only the q,k,v,o,gate,up,down projections of the blocks are supported")]
    UnknownTensor {
        /// The tensor name.
        name: String,
        /// Why it was not recognised.
        reason: String,
    },
    /// A projection has only one of its A and B matrices.
    #[error("LoRA pair '{name}' has no {missing} matrix; the adapter file is incomplete")]
    MissingHalf {
        /// The projection (`blk.3.attn_q.weight`).
        name: String,
        /// `"lora_a"` or `"lora_b"`.
        missing: &'static str,
    },
    /// The same projection appears twice.
    #[error("LoRA pair '{name}' appears twice in the adapter")]
    Duplicate {
        /// The projection.
        name: String,
    },
    /// A matrix has a shape that does not fit its partner or the base model.
    #[error("LoRA tensor '{name}' has shape {found:?}, expected {expected:?}{hint}")]
    Shape {
        /// The tensor.
        name: String,
        /// Expected dims (the convention of the file: ggml order for GGUF, row-major for PEFT).
        expected: Vec<u64>,
        /// Dims found.
        found: Vec<u64>,
        /// Extra advice (e.g. "; is this adapter for another base model?").
        hint: &'static str,
    },
    /// A tensor type the adapter reader does not decode.
    #[error("LoRA tensor '{name}' has type {dtype}; adapters must be F32, F16 or BF16")]
    TensorType {
        /// The tensor.
        name: String,
        /// Its type.
        dtype: GgmlType,
    },
    /// A layer index beyond the base model.
    #[error(
        "the adapter adapts layer {layer} but the model has {n_layer} layers; is this adapter for another base model?"
    )]
    LayerOutOfRange {
        /// The layer.
        layer: usize,
        /// Layers of the model.
        n_layer: usize,
    },
    /// A value (alpha, a matrix element, a scale, a rank) is not usable.
    #[error("invalid LoRA adapter: {0}")]
    Invalid(String),
    /// A `q,k,v` target list names an unknown projection.
    #[error("unknown LoRA target '{0}'; use a comma-separated list of q,k,v,o,gate,up,down (or all)")]
    UnknownTarget(String),
    /// Re-quantizing a merged model failed.
    #[error(transparent)]
    Quantize(#[from] crate::quantize::QuantizeError),
    /// The base model could not be read or run.
    #[error(transparent)]
    Model(#[from] crate::ModelError),
}

impl LoraError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> LoraError {
        LoraError::Io { path: path.to_path_buf(), source }
    }
}
