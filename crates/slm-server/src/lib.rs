//! slm-server: an OpenAI-compatible HTTP server for slm models (axum + tokio).
//!
//! ```text
//!  HTTP ──► routes (auth, body limit, validation: params) ──► Engine::encode_* (tokens, context check)
//!        ──► Queue (bounded; 503 + Retry-After when full) ──► worker thread (Slot: KV cache + prefix reuse)
//!        ──► Event channel ──► respond (one JSON body, or SSE chunks ending in `data: [DONE]`)
//! ```
//!
//! One worker owns the model context and serves one request at a time; a client that
//! disconnects cancels its generation before the next forward step. Errors use the OpenAI error
//! JSON shape so official clients raise their typed exceptions. The binary glue is
//! `slm serve` in slm-cli.
#![deny(missing_docs)]

pub mod engine;
pub mod error;
pub mod generate;
pub mod metrics;
pub mod params;
pub mod respond;
pub mod routes;
pub mod server;
pub mod types;
pub mod worker;

pub use engine::{Engine, EngineOptions};
pub use error::{ApiError, ServerError};
pub use params::RequestLimits;
pub use server::{Server, ServerConfig};
