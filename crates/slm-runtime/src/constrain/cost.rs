//! What masking costs per generated token on the real model (`SLM_TEST_MODEL`), next to the
//! forward pass it rides on: greedy generation under a JSON schema, both timed on every step.
//! Run by hand: `cargo test --release -p slm-runtime --lib constrain::cost -- --ignored --nocapture`.

use super::*;
use crate::{encode_chat, ChatMessage, ChatTemplate, Sampler, SamplerConfig, Tokenizer};
use serde_json::json;
use slm_model::{Logits, Model};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn stats(name: &str, mut v: Vec<Duration>) -> Duration {
    v.sort();
    let mean = v.iter().sum::<Duration>() / v.len().max(1) as u32;
    let at = |q: f64| {
        v.get(((v.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    eprintln!(
        "{name:>14}: n={:4} mean {:>9.1?} median {:>9.1?} p90 {:>9.1?} max {:>9.1?}",
        v.len(),
        mean,
        at(0.5),
        at(0.9),
        at(1.0)
    );
    mean
}

#[test]
#[ignore = "timing; run by hand with SLM_TEST_MODEL"]
fn mask_cost_per_token_real_model() {
    let Some(path) = std::env::var_os("SLM_TEST_MODEL") else {
        eprintln!("note: SLM_TEST_MODEL not set; skipping");
        return;
    };
    let model = Model::load(std::path::Path::new(&path)).unwrap();
    let tokenizer = Arc::new(Tokenizer::from_gguf(model.gguf().metadata()).unwrap());
    let template = ChatTemplate::for_tokenizer(&tokenizer).unwrap();
    let pool = slm_kernels::Pool::new(2).unwrap();
    let t0 = Instant::now();
    let env = TokenEnv::new(tokenizer.clone(), model.config().n_vocab).unwrap();
    eprintln!("TokenEnv::new ({} tokens): {:?}", env.n_vocab(), t0.elapsed());
    let specs = [
        (
            "json_schema",
            ConstraintSpec::JsonSchema(json!({"type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
                           "hobbies": {"type": "array", "items": {"type": "string"}}},
            "required": ["name", "age", "hobbies"], "additionalProperties": false})),
        ),
        ("json_object", ConstraintSpec::JsonObject),
    ];
    let prompts = [
        "Invent a person. Answer in JSON.",
        "Describe a city as JSON.",
        "Give me a JSON record of a book.",
    ];
    let (mut masks, mut forwards, mut compiles) = (Vec::new(), Vec::new(), Vec::new());
    for (name, spec) in &specs {
        for p in prompts {
            let t = Instant::now();
            let mut c = Constraint::new(&env, spec).unwrap();
            compiles.push(t.elapsed());
            let ids = encode_chat(&tokenizer, &template, &[ChatMessage::new("user", p)], true).unwrap();
            let mut ctx = model.new_context(1024, 256).unwrap();
            let mut logits = model.forward(&mut ctx, &pool, &ids, Logits::Last).unwrap().to_vec();
            let mut sampler = Sampler::new(SamplerConfig::greedy()).unwrap();
            let mut out = Vec::new();
            for _ in 0..300 {
                let t = Instant::now();
                c.mask_logits(&mut logits).unwrap();
                masks.push(t.elapsed());
                let id = sampler.sample(&logits);
                c.accept(id).unwrap();
                if tokenizer.is_eog(id) || c.is_finished() {
                    out.extend_from_slice(tokenizer.token_to_piece(id));
                    break;
                }
                out.extend_from_slice(tokenizer.token_to_piece(id));
                let t = Instant::now();
                logits.copy_from_slice(model.forward(&mut ctx, &pool, &[id], Logits::Last).unwrap());
                forwards.push(t.elapsed());
            }
            let text = String::from_utf8_lossy(&out);
            eprintln!("{name} {p:?} -> {text}");
            if c.is_finished() {
                serde_json::from_str::<serde_json::Value>(text.trim_end_matches(|ch: char| !ch.is_ascii_graphic()))
                    .unwrap_or_else(|e| panic!("{text:?}: {e}"));
            }
        }
    }
    stats("compile", compiles);
    let m = stats("mask_logits", masks);
    let f = stats("forward (1 tok)", forwards);
    eprintln!("mask / forward = {:.3}", m.as_secs_f64() / f.as_secs_f64().max(1e-12));
}
