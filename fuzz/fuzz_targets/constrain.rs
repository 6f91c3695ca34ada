//! Constrained decoding specs (`slm_runtime::constrain`): arbitrary JSON schema, regex or Lark
//! text is compiled against a small byte-level BPE vocabulary, then a short walk through the
//! grammar picks allowed tokens. Compiling must give a `Constraint` or a typed error within the
//! engine's limits; a mask must only allow ids inside the vocabulary (and never be empty), the
//! masked logits must be exactly the allowed ids, and a finished constraint must accept its text.
//!
//! Input: byte 0 picks the spec kind (JSON schema, regex, Lark, any JSON object), then the spec
//! text (lossy UTF-8) up to the first 0 byte, then one byte per walk step choosing among the
//! allowed tokens.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use slm_runtime::{Constraint, ConstraintSpec, TokenEnv, Tokenizer};

/// Longest walk per input: each step is a grammar step (mask + accept).
const MAX_STEPS: usize = 24;

fn env() -> &'static TokenEnv {
    static E: OnceLock<TokenEnv> = OnceLock::new();
    E.get_or_init(|| {
        let tokenizer = Tokenizer::from_gguf_vocab(&common::tiny_vocab("smollm")).expect("test vocabulary");
        // Three logits past the vocabulary, like a model with padded embeddings: never allowed.
        let n_vocab = tokenizer.vocab_size() + 3;
        TokenEnv::new(Arc::new(tokenizer), n_vocab).expect("token env")
    })
}

fuzz_target!(|data: &[u8]| {
    let [kind, rest @ ..] = data else {
        return;
    };
    let (text, walk) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let text = String::from_utf8_lossy(text).into_owned();
    let spec = match kind % 4 {
        0 => match ConstraintSpec::json_schema_str(&text) {
            Ok(spec) => spec,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                return;
            }
        },
        1 => ConstraintSpec::Regex(text),
        2 => ConstraintSpec::Lark(text),
        _ => ConstraintSpec::JsonObject,
    };
    // Vocabulary-free validation: Ok or a typed error, never a panic.
    let _ = spec.validate();
    let env = env();
    let mut constraint = match Constraint::new(env, &spec) {
        Ok(c) => c,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let n = env.n_vocab();
    assert!(constraint.mask_logits(&mut vec![0.0; n + 1]).is_err(), "wrong logits length accepted");
    for &choice in walk.iter().take(MAX_STEPS) {
        if constraint.is_finished() {
            assert!(constraint.is_accepting(), "finished but not accepting");
            break;
        }
        let mut logits = vec![0.0f32; n];
        if constraint.mask_logits(&mut logits).is_err() {
            break; // a step error (engine fuel, dead end): typed, the request fails cleanly
        }
        let allowed: Vec<u32> = (0..n as u32).filter(|&i| logits[i as usize].is_finite()).collect();
        assert!(!allowed.is_empty(), "empty mask returned as Ok");
        let mask = constraint.allowed();
        if let Ok(mask) = mask {
            for i in 0..n as u32 {
                assert_eq!(mask.is_allowed(i), logits[i as usize].is_finite(), "mask and logits disagree at {i}");
            }
        }
        assert!(
            allowed.iter().all(|&i| (i as usize) < n - 3),
            "an id past the tokenizer's vocabulary is allowed"
        );
        let id = allowed[choice as usize % allowed.len()];
        if constraint.accept(id).is_err() {
            break;
        }
    }
});
