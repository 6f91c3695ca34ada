//! Shared by the real-model tests: the model path, and greedy answers from the native path
//! (`slm_runtime::Session`, what `slm run --temp 0` does) and from the step-wise [`Engine`].

#![allow(dead_code)]

use slm_kernels::Pool;
use slm_model::Model;
use slm_runtime::{
    encode_chat, ChatMessage, ChatTemplate, GenerateOptions, SamplerConfig, Session,
    SessionOptions, StringSink, Tokenizer,
};
use slm_wasm::{Engine, GenerateSettings};
use std::path::PathBuf;
use std::sync::Arc;

/// `SLM_TEST_MODEL`, or `None` (with a note) when unset and not required.
pub fn model_path() -> Option<PathBuf> {
    match std::env::var_os("SLM_TEST_MODEL") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            assert!(
                std::env::var_os("SLM_REQUIRE_MODEL").is_none(),
                "SLM_REQUIRE_MODEL is set but SLM_TEST_MODEL is not"
            );
            eprintln!("note: SLM_TEST_MODEL not set; skipping");
            None
        }
    }
}

/// The native greedy answer to one user message: `max_tokens` tokens, one thread.
pub fn native_greedy(path: &std::path::Path, user: &str, max_tokens: usize) -> String {
    let model = Arc::new(Model::load(path).unwrap());
    let tokenizer = Arc::new(Tokenizer::from_gguf(model.gguf().metadata()).unwrap());
    let template = ChatTemplate::for_tokenizer(&tokenizer).unwrap();
    let ids = encode_chat(
        &tokenizer,
        &template,
        &[ChatMessage::new("user", user)],
        true,
    )
    .unwrap();
    let pool = Arc::new(Pool::new(1).unwrap());
    let mut session = Session::new(
        model,
        tokenizer,
        pool,
        SessionOptions {
            n_ctx: 1024,
            n_batch: 64,
        },
    )
    .unwrap();
    let opts = GenerateOptions {
        max_tokens,
        sampler: SamplerConfig::greedy(),
        stop: Vec::new(),
    };
    let mut sink = StringSink::default();
    session.generate(&ids, &opts, &mut sink).unwrap();
    sink.text
}

/// Greedy settings for `max_tokens` tokens.
pub fn greedy(max_tokens: usize) -> GenerateSettings {
    GenerateSettings {
        max_tokens,
        temperature: 0.0,
        ..GenerateSettings::default()
    }
}

/// Runs `engine` to the end of the answer; returns (text, sampled ids, finish reason).
pub fn run_to_end(engine: &mut Engine) -> (String, Vec<u32>, slm_runtime::FinishReason) {
    let (mut text, mut ids) = (String::new(), Vec::new());
    loop {
        let step = engine.step().unwrap();
        text.push_str(&step.text);
        ids.extend(step.token);
        if let Some(f) = step.finish {
            return (text, ids, f);
        }
    }
}
