//! slm-wasm: slm in the browser. A wasm-bindgen facade over the same runtime the native binary
//! uses (GGUF reader, kernels, Llama forward pass, tokenizer, chat template, sampler), built for
//! `wasm32-unknown-unknown` with SIMD128 by `scripts/build_wasm.sh`, plus the static web page in
//! `web/` that runs it in a Web Worker.
//!
//! ```text
//!  fetch stream ──► ModelBytes::push (chunks copied straight into one buffer)
//!               ──► SlmEngine::load ──► chat(messages) ──► step(n, on_token) … ──► "end"
//! ```
//!
//! The engine logic ([`engine`], [`loader`]) is plain Rust and tested on the host; [`api`] is the
//! thin JavaScript surface.
#![deny(missing_docs)]

pub mod api;
pub mod engine;
pub mod error;
pub mod loader;

pub use engine::{Engine, GenerateSettings, Step};
pub use error::WasmError;
pub use loader::ModelBytes;
