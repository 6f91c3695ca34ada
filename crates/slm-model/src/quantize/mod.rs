//! Model conversion: re-encode a GGUF model's tensors in another type (`slm quantize`).
//!
//! ```text
//!  GgufFile ──► policy::choose_types (preset mix, overrides, row-length fallbacks)
//!           ──► run::quantize_gguf: per tensor, rows ─dequantize_row─► f32 ─quantize_row(_weighted)─► bytes
//!           ──► GgufWriter (source metadata + general.file_type) ──► atomic write
//! ```
//!
//! The choice of types follows llama.cpp's `llama-quantize` rule for rule, and the encoders are
//! ggml's, so for the same source and preset the tensor data is byte-identical to
//! llama-quantize's (tested against its output in `tests/quantize_golden.rs`).

mod error;
mod ftype;
pub mod imatrix;
mod policy;
mod run;

pub use error::QuantizeError;
pub use ftype::FileType;
pub use imatrix::{ImatrixCollector, ImportanceMatrix};
pub use policy::{
    allows_quantization, parse_tensor_type, PolicyModel, PolicyOptions, TensorTypeOverride, WRITABLE_TYPES,
};
pub use run::{plan, quantize_file, quantize_gguf, QuantizeOptions, QuantizeReport, TensorReport};
