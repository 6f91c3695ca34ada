//! slm-runtime: everything between a model's logits and the user's text — tokenizer, chat
//! templates, sampling. No async, no network; builds for wasm32.
//!
//! ```text
//!  messages ──► ChatTemplate::render ──► Tokenizer::encode(parse_special) ──► ids ──► model
//!  model logits ──► Sampler::sample ──► id ──► TokenDecoder::push ──► StopChecker ──► text
//! ```
#![deny(missing_docs)]

pub mod chat_template;
pub mod error;
pub mod tokenizer;

pub use chat_template::{ChatMessage, ChatTemplate, RenderedPrompt};
pub use error::RuntimeError;
pub use tokenizer::{GgufVocab, TokenDecoder, TokenKind, Tokenizer};
