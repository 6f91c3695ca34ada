//! slm-runtime: everything between a model's logits and the user's text — tokenizer, chat
//! templates, sampling. No async, no network; builds for wasm32.
//!
//! ```text
//!  messages ──► ChatTemplate::render_prompt ──► Tokenizer::encode_protected ──► ids ──► model
//!               (text + content ranges)         (control tokens only outside user text)
//!  model logits ──► Sampler::sample ──► id ──► Sampler::accept
//!                                         └──► TokenDecoder::push ──► StopChecker::push ──► text
//! ```
#![deny(missing_docs)]

pub mod chat_template;
pub mod classify;
pub mod classify_head;
pub mod compare;
pub mod constrain;
pub mod embed;
pub mod complete;
pub mod error;
pub mod eval;
pub mod fit;
pub mod sampler;
pub mod session;
pub mod stop;
pub mod summarize;
pub mod tokenizer;

pub use chat_template::{ChatMessage, ChatTemplate, RenderedPrompt};
pub use classify::{Classification, ZeroShot};
pub use classify_head::ClassifierHead;
pub use compare::{compare, compare_many, CompareReport};
pub use constrain::{Constraint, ConstraintError, ConstraintSpec, TokenEnv};
pub use embed::{cosine, EmbedOptions, Embedder, Embeddings, EncoderTokenizer};
pub use complete::{complete, CompleteOptions, Completion, Suggestion};
pub use error::RuntimeError;
pub use eval::{perplexity, PerplexityOptions, PerplexityReport};
pub use sampler::{Sampler, SamplerConfig};
pub use session::{
    encode_chat, FinishReason, GenerateOptions, GenerationStats, Session, SessionOptions, StringSink, TokenSink,
};
pub use stop::{StopChecker, StopStatus};
pub use summarize::{split_to_fit, summarize, SummarizeOptions, SummaryReport};
pub use tokenizer::{GgufVocab, TokenDecoder, TokenKind, Tokenizer};
