//! slm-format: the file formats slm reads and writes — GGUF (native container) and safetensors
//! (interchange) — plus the schemas of Hugging Face `config.json`. No compute lives here.
//!
//! Everything read from a file is untrusted: every count, length, offset and shape is checked
//! against the file size with checked arithmetic before anything is allocated or read.

pub mod dtype;

pub use dtype::{GgmlType, QK_K};
