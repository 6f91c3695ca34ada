//! [`RuntimeError`]: the one error type of `slm-runtime` (tokenizer, chat templates, sampling).
//!
//! Every variant names what was wrong (the key, token, file or template) and, where a user can act,
//! what to do next.

use std::path::PathBuf;

/// Everything that can go wrong in the runtime crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// A tokenizer model type this crate cannot run (e.g. SentencePiece `llama`, WordPiece `bert`).
    #[error("tokenizer model '{model}' is not supported yet (supported: {supported}); convert the model with a byte-level BPE tokenizer or use its tokenizer.json")]
    UnsupportedTokenizerModel {
        /// The value of `tokenizer.ggml.model` (or the HF model type).
        model: String,
        /// Comma-separated list of supported models.
        supported: &'static str,
    },

    /// A `tokenizer.ggml.pre` value without a known pre-tokenizer.
    #[error("pre-tokenizer '{pre}' (tokenizer.ggml.pre) is not supported; supported: {supported}. Use the model's tokenizer.json instead, or report the model so its pre-tokenizer can be added")]
    UnsupportedPreTokenizer {
        /// The value found in the file.
        pre: String,
        /// Comma-separated list of supported values.
        supported: String,
    },

    /// Tokenizer data that is malformed or inconsistent (lengths, ids out of range, bad merges).
    #[error("invalid tokenizer data in '{field}': {reason}")]
    InvalidVocab {
        /// The metadata key or JSON field involved.
        field: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A required metadata key is missing.
    #[error("tokenizer metadata key '{key}' is missing; the model file has no usable tokenizer (pass a tokenizer.json instead)")]
    MissingKey {
        /// The missing key.
        key: String,
    },

    /// Reading tokenizer metadata from a GGUF file failed (wrong value type, out of range).
    #[error("reading tokenizer metadata from GGUF: {0}")]
    Gguf(#[from] slm_format::GgufError),

    /// The Hugging Face `tokenizers` crate reported an error (loading tokenizer.json or encoding).
    #[error("tokenizer error ({context}): {message}")]
    Tokenizers {
        /// What was being done.
        context: String,
        /// The message from the `tokenizers` crate.
        message: String,
    },

    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// A JSON file (tokenizer_config.json, ...) is not valid JSON or has unexpected types.
    #[error("invalid JSON in {path}: {reason}")]
    Json {
        /// The file (or a description of the buffer).
        path: String,
        /// What is wrong.
        reason: String,
    },

    /// A token id outside the vocabulary was passed in.
    #[error("token id {id} is out of range: the vocabulary has {vocab_size} tokens")]
    TokenOutOfRange {
        /// The offending id.
        id: u32,
        /// The vocabulary size.
        vocab_size: usize,
    },

    /// A chat template failed to compile (syntax error, too large).
    #[error("chat template is invalid: {reason}")]
    TemplateInvalid {
        /// What is wrong, with line information where minijinja gives it.
        reason: String,
    },

    /// A chat template failed while rendering (runtime error, `raise_exception`, fuel exhausted).
    #[error("chat template failed to render: {reason}")]
    TemplateRender {
        /// What went wrong.
        reason: String,
    },

    /// An invalid sampler setting.
    #[error("invalid sampler setting {field} = {value}: {reason}")]
    InvalidSamplerConfig {
        /// The field name.
        field: &'static str,
        /// The value given.
        value: String,
        /// The allowed range.
        reason: &'static str,
    },

    /// The model failed to load or run.
    #[error(transparent)]
    Model(#[from] slm_model::ModelError),

    /// Converting a Hugging Face model directory failed.
    #[error(transparent)]
    Convert(#[from] slm_model::hf::HfError),

    /// A request that cannot be served as given (empty prompt, prompt longer than the context...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl RuntimeError {
    /// Wraps an error from the `tokenizers` crate with what was being done.
    pub(crate) fn tokenizers(context: impl Into<String>, err: impl std::fmt::Display) -> Self {
        RuntimeError::Tokenizers { context: context.into(), message: err.to_string() }
    }

    /// An [`RuntimeError::InvalidVocab`] for `field`.
    pub(crate) fn vocab(field: impl Into<String>, reason: impl Into<String>) -> Self {
        RuntimeError::InvalidVocab { field: field.into(), reason: reason.into() }
    }
}
