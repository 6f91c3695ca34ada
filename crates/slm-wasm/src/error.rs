//! [`WasmError`]: everything that can go wrong behind the JavaScript API, as one typed error whose
//! message becomes the text of the JavaScript exception.

use slm_format::GgufError;
use slm_model::ModelError;
use slm_runtime::RuntimeError;

/// An error of the browser engine. Its `Display` text is what the page shows.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    /// The downloaded bytes do not fit the size announced for them.
    #[error("the model download sent {received} bytes but announced {expected}; the file is truncated or the server lied about its size — download it again")]
    SizeMismatch {
        /// Bytes received.
        received: u64,
        /// Bytes announced (Content-Length).
        expected: u64,
    },
    /// The model does not fit the memory a browser tab may give WebAssembly.
    #[error("the model needs {needed} bytes but this tab can give WebAssembly at most {limit}; pick a smaller (more quantized) model")]
    TooLarge {
        /// Bytes needed.
        needed: u64,
        /// Bytes available.
        limit: u64,
    },
    /// Memory could not be reserved for the download.
    #[error("could not reserve {bytes} bytes of memory for the model: the browser refused ({reason}); close other tabs or pick a smaller model")]
    OutOfMemory {
        /// Bytes asked for.
        bytes: u64,
        /// What the allocator said.
        reason: String,
    },
    /// The bytes are not a usable GGUF file.
    #[error("not a valid GGUF model file: {0}")]
    Gguf(#[from] GgufError),
    /// The GGUF file is valid but its model is not supported or inconsistent.
    #[error("cannot load the model: {0}")]
    Model(#[from] ModelError),
    /// Tokenizer, chat template or sampler settings failed.
    #[error("{0}")]
    Runtime(#[from] RuntimeError),
    /// A JSON argument from JavaScript was malformed.
    #[error("bad {what} argument: {reason}")]
    BadArgument {
        /// Which argument.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// `step` was called without a generation in progress.
    #[error("no generation in progress: call chat() or complete() first")]
    NotGenerating,
}
