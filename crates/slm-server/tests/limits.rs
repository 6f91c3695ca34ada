//! Boundary tests of the server's request limits (issue 11, docs/RELIABILITY.md "Limits as code"):
//! each limit accepted exactly at its value and refused one above with an `invalid_request_error`
//! that names the field. Requests go through the same path as HTTP bodies: JSON →
//! `slm_server::types` → `slm_server::params`.

use serde_json::{json, Value};
use slm_server::params::{self, MAX_COMPLETION_LOGPROBS, MAX_TOKENS_LIMIT, MAX_TOP_LOGPROBS};
use slm_server::types::{ChatCompletionRequest, CompletionRequest};
use slm_server::{ApiError, RequestLimits};

fn chat(body: Value) -> Result<(), ApiError> {
    let req: ChatCompletionRequest = serde_json::from_value(body).expect("a well-formed chat request");
    params::chat(&req, &RequestLimits::default()).map(|_| ())
}

fn completion(body: Value) -> Result<(), ApiError> {
    let req: CompletionRequest = serde_json::from_value(body).expect("a well-formed completion request");
    params::completion(&req, &RequestLimits::default()).map(|_| ())
}

fn hi() -> Value {
    json!([{"role": "user", "content": "hi"}])
}

/// Asserts a 400 naming `field`, with a message that says the limit.
#[track_caller]
fn refused(result: Result<(), ApiError>, field: &str, limit: impl ToString) {
    match result {
        Err(ApiError::InvalidRequest { message, param, .. }) => {
            assert_eq!(param.as_deref(), Some(field), "{message}");
            assert!(message.contains(&limit.to_string()), "{field}: the message does not say the limit: {message}");
        }
        other => panic!("{field}: expected an invalid-request error, got {other:?}"),
    }
}

#[test]
fn top_logprobs_limit() {
    let at = json!({"messages": hi(), "logprobs": true, "top_logprobs": MAX_TOP_LOGPROBS});
    chat(at).expect("top_logprobs = 20 is accepted");
    let above = json!({"messages": hi(), "logprobs": true, "top_logprobs": MAX_TOP_LOGPROBS + 1});
    refused(chat(above), "top_logprobs", MAX_TOP_LOGPROBS);
}

#[test]
fn legacy_logprobs_limit() {
    completion(json!({"prompt": "hi", "logprobs": MAX_COMPLETION_LOGPROBS})).expect("logprobs = 5 is accepted");
    refused(completion(json!({"prompt": "hi", "logprobs": MAX_COMPLETION_LOGPROBS + 1})), "logprobs", MAX_COMPLETION_LOGPROBS);
}

#[test]
fn max_tokens_limit() {
    chat(json!({"messages": hi(), "max_tokens": MAX_TOKENS_LIMIT})).expect("max_tokens = 2^20 is accepted");
    refused(chat(json!({"messages": hi(), "max_tokens": MAX_TOKENS_LIMIT + 1})), "max_tokens", MAX_TOKENS_LIMIT);
    chat(json!({"messages": hi(), "max_completion_tokens": MAX_TOKENS_LIMIT})).expect("max_completion_tokens = 2^20");
    refused(
        chat(json!({"messages": hi(), "max_completion_tokens": MAX_TOKENS_LIMIT + 1})),
        "max_completion_tokens",
        MAX_TOKENS_LIMIT,
    );
    completion(json!({"prompt": "hi", "max_tokens": MAX_TOKENS_LIMIT})).expect("completion max_tokens = 2^20");
    refused(completion(json!({"prompt": "hi", "max_tokens": MAX_TOKENS_LIMIT + 1})), "max_tokens", MAX_TOKENS_LIMIT);
}

#[test]
fn message_count_limit() {
    let limits = RequestLimits::default();
    let messages = |n: usize| Value::Array(vec![json!({"role": "user", "content": "hi"}); n]);
    chat(json!({"messages": messages(limits.max_messages)})).expect("max_messages messages are accepted");
    refused(chat(json!({"messages": messages(limits.max_messages + 1)})), "messages", limits.max_messages);
}

#[test]
fn stop_string_limits() {
    let limits = RequestLimits::default();
    let stops = |n: usize| Value::Array((0..n).map(|i| json!(format!("stop{i}"))).collect());
    chat(json!({"messages": hi(), "stop": stops(limits.max_stop)})).expect("max_stop stop strings are accepted");
    refused(chat(json!({"messages": hi(), "stop": stops(limits.max_stop + 1)})), "stop", limits.max_stop);
    let long = |n: usize| json!("s".repeat(n));
    chat(json!({"messages": hi(), "stop": long(limits.max_stop_bytes)})).expect("a stop string of max_stop_bytes");
    refused(chat(json!({"messages": hi(), "stop": long(limits.max_stop_bytes + 1)})), "stop", limits.max_stop_bytes);
    // The completions endpoint shares the checks.
    refused(completion(json!({"prompt": "hi", "stop": stops(limits.max_stop + 1)})), "stop", limits.max_stop);
}

/// A tiny random model and a byte-level vocabulary (every byte a token), enough to build an
/// `Engine`.
fn tiny_engine_parts() -> (
    std::sync::Arc<slm_model::Model>,
    std::sync::Arc<slm_runtime::Tokenizer>,
    std::sync::Arc<slm_kernels::Pool>,
) {
    use slm_model::random_init::random_llama_gguf;
    let cfg = slm_model::ModelConfig {
        arch: slm_model::Arch::Llama,
        n_vocab: 260,
        d_model: 32,
        n_layer: 1,
        n_head: 2,
        n_kv_head: 1,
        head_dim: 16,
        d_ff: 64,
        n_ctx_train: 64,
        rms_eps: 1e-5,
        rope_theta: 10000.0,
        tied_output: true,
    };
    let bytes = random_llama_gguf(&cfg, slm_format::GgmlType::F32, 3).expect("a random model");
    let path = std::env::temp_dir().join(format!("slm-server-limits-{}.gguf", std::process::id()));
    std::fs::write(&path, bytes).expect("write the model");
    let model = slm_model::Model::load(&path).expect("load the model");
    let _ = std::fs::remove_file(&path);
    // GPT-2's byte characters: printable Latin-1 as is, the rest shifted past U+0100.
    let mut extra = 0;
    let mut tokens: Vec<String> = ["<s>", "</s>", "<unk>", "<pad>"].iter().map(|s| s.to_string()).collect();
    for b in 0u32..256 {
        let printable = (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
        let c = if printable {
            b
        } else {
            extra += 1;
            255 + extra
        };
        tokens.push(char::from_u32(c).expect("a valid char").to_string());
    }
    let vocab = slm_runtime::GgufVocab {
        model: "gpt2".into(),
        pre: Some("smollm".into()),
        tokens,
        bos: Some(0),
        eos: Some(1),
        ..slm_runtime::GgufVocab::default()
    };
    let tokenizer = slm_runtime::Tokenizer::from_gguf_vocab(&vocab).expect("a byte-level tokenizer");
    let pool = slm_kernels::Pool::new(1).expect("a one-thread pool");
    (std::sync::Arc::new(model), std::sync::Arc::new(tokenizer), std::sync::Arc::new(pool))
}

#[test]
fn parallel_slot_limit() {
    use slm_server::engine::MAX_SLOTS;
    use slm_server::{Engine, EngineOptions};
    let (model, tokenizer, pool) = tiny_engine_parts();
    let engine = |n_slots: usize| {
        let template = slm_runtime::ChatTemplate::chatml("<s>", "</s>").expect("ChatML compiles");
        let opts = EngineOptions { model_id: "tiny".into(), n_ctx: 32, n_batch: 8, n_slots };
        Engine::new(model.clone(), tokenizer.clone(), template, pool.clone(), opts)
    };
    engine(MAX_SLOTS).expect("MAX_SLOTS slots are accepted");
    let err = engine(MAX_SLOTS + 1).expect_err("MAX_SLOTS + 1 slots are refused");
    assert!(err.to_string().contains(&format!("use 1 to {MAX_SLOTS}")), "{err}");
    assert!(engine(0).is_err(), "0 slots are refused");
}
