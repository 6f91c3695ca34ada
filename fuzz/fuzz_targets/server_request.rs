//! Server request bodies: arbitrary bytes deserialized as a chat-completions and a completions
//! request (`slm_server::types`) and validated (`slm_server::params`) must give `Ok` or an
//! `ApiError`, never panic. Whatever validation accepts must lie inside the documented bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slm_server::params::{self, GenParams, MAX_TOKENS_LIMIT, MAX_TOP_LOGPROBS};
use slm_server::types::{ChatCompletionRequest, CompletionRequest};
use slm_server::RequestLimits;

fn check(p: &GenParams, limits: &RequestLimits) {
    assert!(
        p.max_tokens.is_none_or(|m| m as u64 <= MAX_TOKENS_LIMIT),
        "max_tokens {:?}",
        p.max_tokens
    );
    assert!(p.stop.len() <= limits.max_stop);
    assert!(p.stop.iter().all(|s| s.len() <= limits.max_stop_bytes));
    assert!(p.logprobs.is_none_or(|k| k as u64 <= MAX_TOP_LOGPROBS));
}

fuzz_target!(|data: &[u8]| {
    let limits = RequestLimits::default();
    if let Ok(req) = serde_json::from_slice::<ChatCompletionRequest>(data) {
        if let Ok((p, messages)) = params::chat(&req, &limits) {
            check(&p, &limits);
            assert!(messages.len() <= limits.max_messages);
        }
    }
    if let Ok(req) = serde_json::from_slice::<CompletionRequest>(data) {
        if let Ok(p) = params::completion(&req, &limits) {
            check(&p, &limits);
        }
    }
});
