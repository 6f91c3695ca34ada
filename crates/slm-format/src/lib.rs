//! slm-format: the file formats slm reads and writes — GGUF (native container) and safetensors
//! (interchange) — plus the schemas of Hugging Face `config.json`. No compute lives here.
//!
//! Everything read from a file is untrusted: every count, length, offset and shape is checked
//! against the file size with checked arithmetic before anything is allocated or read.
//!
//! Modules: [`dtype`] (ggml tensor types), [`gguf`] (reader/writer), [`safetensors`] (reader,
//! writer, shard index), [`hf_config`] (serde mirrors of Hugging Face configs), [`atomic`]
//! (crash-safe file replacement shared by every crate that writes files).

#![deny(missing_docs)]

pub mod atomic;
// The variant names of GgmlType are the ggml type names themselves.
#[allow(missing_docs)]
pub mod dtype;
pub mod gguf;
pub mod hf_config;
pub mod safetensors;

pub use dtype::{GgmlType, QK_K};
pub use gguf::{Array, GgufError, GgufFile, GgufWriter, Metadata, Residency, TensorInfo, Value};
