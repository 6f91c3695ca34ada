//! Hugging Face layout ⇄ GGUF: `config.json` + `model.safetensors` (or shards) + `tokenizer.json`
//! on one side, one GGUF file on the other, for the Llama architecture (SmolLM, Llama, Mistral-style)
//! and Qwen2 (Q/K/V biases, NeoX RoPE, so no Q/K permutation); BERT encoders import (`bert.rs`).
//!
//! ```text
//!  import: config.json ─► LlamaConfig ─► llama.* keys        export: GGUF ─► ModelConfig ─► config.json
//!          safetensors ─► names (names.rs) + Q/K permutation        tensors ─► dequantize ─► inverse permutation ─► safetensors
//!          tokenizer.json ─► tokenizer.ggml.* (tokenizer.rs)        tokenizer.ggml.* ─► tokenizer.json + tokenizer_config.json
//! ```
//!
//! Naming, permutation and metadata follow llama.cpp's `convert_hf_to_gguf.py`, so files made
//! here load in llama.cpp and files from llama.cpp export to what transformers loads.

mod bert;
mod export;
mod import;
mod names;
mod tokenizer;

pub use bert::bert_hf_to_gguf_name;
pub use export::{export_hf, ExportOptions, ExportSummary, DEFAULT_MAX_SHARD_BYTES};
pub use import::{build_gguf, import_hf, ImportOptions, ImportSummary};
pub use names::{gguf_to_hf_name, hf_to_gguf_name, permute_qk, unpermute_qk};
pub use tokenizer::{gguf_tokenizer_to_hf, hf_tokenizer_to_gguf, FallbackIds, HfTokenizerFiles};

use std::path::PathBuf;

use slm_format::hf_config::HfConfigError;
use slm_format::safetensors::SafetensorsError;
use slm_format::GgufError;

/// Errors of HF ⇄ GGUF conversion.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HfError {
    /// Reading or writing a safetensors file failed.
    #[error(transparent)]
    Safetensors(#[from] SafetensorsError),
    /// Reading `config.json` failed.
    #[error(transparent)]
    Config(#[from] HfConfigError),
    /// Reading or writing the GGUF file failed.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// The model itself is inconsistent (from the model crate's checks).
    #[error(transparent)]
    Model(#[from] crate::ModelError),
    /// A file of the HF directory could not be read or written.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The model uses something the converter does not handle.
    #[error("cannot convert: {0}")]
    Unsupported(String),
    /// A tensor is missing, extra, or has the wrong shape.
    #[error("tensor `{name}`: {reason}")]
    Tensor {
        /// The tensor (name in the source format).
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// `tokenizer.json` / `tokenizer_config.json` or the GGUF tokenizer keys are unusable.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
}

impl HfError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> HfError {
        HfError::Io { path: path.to_path_buf(), source }
    }

    pub(crate) fn tensor(name: &str, reason: impl Into<String>) -> HfError {
        HfError::Tensor { name: name.to_string(), reason: reason.into() }
    }
}

/// Floating-point storage types a conversion can write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatType {
    /// 32-bit IEEE.
    F32,
    /// 16-bit IEEE.
    F16,
    /// bfloat16.
    BF16,
}

impl FloatType {
    /// Parses `f32`, `f16`, `bf16` (case-insensitive).
    pub fn parse(s: &str) -> Option<FloatType> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" => Some(FloatType::F32),
            "f16" | "float16" => Some(FloatType::F16),
            "bf16" | "bfloat16" => Some(FloatType::BF16),
            _ => None,
        }
    }

    /// The ggml type.
    pub fn ggml(self) -> slm_format::GgmlType {
        match self {
            FloatType::F32 => slm_format::GgmlType::F32,
            FloatType::F16 => slm_format::GgmlType::F16,
            FloatType::BF16 => slm_format::GgmlType::BF16,
        }
    }

    /// The safetensors dtype.
    pub fn safetensors(self) -> slm_format::safetensors::Dtype {
        use slm_format::safetensors::Dtype;
        match self {
            FloatType::F32 => Dtype::F32,
            FloatType::F16 => Dtype::F16,
            FloatType::BF16 => Dtype::BF16,
        }
    }

    /// transformers' `torch_dtype` spelling.
    pub fn torch_name(self) -> &'static str {
        match self {
            FloatType::F32 => "float32",
            FloatType::F16 => "float16",
            FloatType::BF16 => "bfloat16",
        }
    }

    /// llama.cpp's `general.file_type` (LLAMA_FTYPE_ALL_F32 = 0, MOSTLY_F16 = 1, MOSTLY_BF16 = 32).
    pub fn file_type(self) -> u32 {
        match self {
            FloatType::F32 => 0,
            FloatType::F16 => 1,
            FloatType::BF16 => 32,
        }
    }
}

/// One step of a conversion, for progress output: `done` of `total` tensors, the current name.
#[derive(Clone, Copy, Debug)]
pub struct Progress<'a> {
    /// Tensors finished.
    pub done: usize,
    /// Tensors in all.
    pub total: usize,
    /// The tensor being converted.
    pub name: &'a str,
}

/// f32 printed the shortest way and read back as f64, so `1e-5f32` becomes `1e-5` (not
/// `9.99999974e-6`) in JSON and converts back to the same f32.
pub(crate) fn f32_to_json_f64(v: f32) -> f64 {
    format!("{v}").parse().unwrap_or(v as f64)
}

#[cfg(test)]
mod tests;
