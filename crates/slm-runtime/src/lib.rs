//! slm-runtime: everything between a model's logits and the user's text — tokenizer, chat
//! templates, sampling. No async, no network; builds for wasm32.
//!
//! ```text
//!  messages ──► ChatTemplate::render ──► Tokenizer::encode(parse_special) ──► ids ──► model
//!  model logits ──► Sampler::sample ──► id ──► TokenDecoder::push ──► StopChecker ──► text
//! ```
#![deny(missing_docs)]

pub mod error;
pub mod tokenizer;

pub use error::RuntimeError;
pub use tokenizer::{GgufVocab, TokenDecoder, TokenKind, Tokenizer};
