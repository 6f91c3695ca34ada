//! slm-server: an OpenAI-compatible HTTP server for slm models (axum + tokio).
//!
//! ```text
//!  HTTP ──► routes (auth, body limit, validation: params) ──► Engine::encode_* (tokens, context check)
//!        ──► Queue (bounded; 503 + Retry-After when full) ──► worker thread (slots: KV cache + prefix reuse; batched decode)
//!        ──► Event channel ──► respond (one JSON body, or SSE chunks ending in `data: [DONE]`)
//! ```
//!
//! # Endpoints
//! `POST /v1/chat/completions`, `POST /v1/completions` (JSON, or SSE with `stream: true`),
//! `POST /v1/embeddings` (with an encoder installed: `slm serve --embedding-model`, see
//! [`embeddings`]), `GET /v1/models[/{id}]`, `GET /health` (503 until the model is installed), `GET /metrics`
//! (Prometheus text), `GET /` (the chat page, `src/web/index.html`). With an API key set, the
//! `/v1/*` routes need `Authorization: Bearer <key>`; `/`, `/health` and `/metrics` do not.
//!
//! # Request fields
//! `messages` (roles system/developer/user/assistant; text or text parts) or `prompt` (text or
//! token ids, one per request); `max_tokens`/`max_completion_tokens` (default: the rest of the
//! context), `temperature` 0..=2, `top_p`/`min_p` 0..=1, `top_k`, `seed`, `stop` (up to 4),
//! `presence_penalty`/`frequency_penalty` -2..=2 (over the sampler's 64-token window),
//! `logprobs`/`top_logprobs` (chat, up to 20) or `logprobs` (completions, up to 5),
//! `stream_options.include_usage`, `n` = 1, and llama.cpp's `ignore_eos`. Unset sampling fields
//! take slm's defaults (llama.cpp's: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05).
//! Refused with a 400 rather than ignored: `n` > 1, `tools`, `echo`, `suffix`, `best_of` > 1.
//! A prompt that does not fit the context (with `max_tokens`) is a 400
//! `context_length_exceeded`, never truncated.
//!
//! # Structured output (`response_format`)
//! `{"type": "json_object"}` (any JSON object), `{"type": "json_schema", "json_schema": {"name",
//! "schema", "strict"}}` (JSON valid under the schema; always enforced), llama.cpp's
//! `{"type": "json_object", "schema": {..}}`, or `{"type": "text"}`. Constrained decoding
//! (`slm_runtime::constrain`, on the `llguidance` grammar engine): before each token is sampled,
//! every token the grammar does not allow gets probability zero, so the answer parses; end of text
//! is allowed only where the JSON is complete, and generation stops as soon as it is
//! (`finish_reason: "stop"`). Layout is compact (`", "` / `": "`, no free whitespace). If
//! `max_tokens` runs out first the JSON is cut and `finish_reason` is `"length"`, as with OpenAI.
//! A schema that is invalid, unsupported, larger than 64 KiB or nested deeper than 32 levels is a
//! 400 naming the field (`response_format.json_schema.schema`). Log-probabilities are those of
//! the masked distribution.
//!
//! # Concurrency
//! One worker thread owns the model's slots (contexts, `slm serve --slots N`) and generates up to
//! one request per slot at once with continuous batching: every turn it admits queued requests
//! into free slots, feeds one prompt chunk of each request still reading its prompt, and runs one
//! decode step for all the others together, so the weights are read once per step for all of
//! them; each request's tokens are exactly those it would get alone. Further requests wait in
//! the bounded queue. A client that disconnects cancels its generation before the next forward
//! step. Shutdown stops accepting, finishes the requests in
//! flight, then stops the worker. The binary glue is `slm serve` in slm-cli.
#![deny(missing_docs)]

pub mod connections;
pub mod embeddings;
pub mod engine;
pub mod error;
pub mod generate;
pub mod listener;
pub mod metrics;
pub mod params;
pub mod respond;
pub mod routes;
pub mod server;
pub mod types;
pub mod web_static;
pub mod worker;

pub use embeddings::EmbeddingService;
pub use engine::{Engine, EngineOptions};
pub use error::{ApiError, ServerError};
pub use params::RequestLimits;
pub use server::{Server, ServerConfig};
