//! The step-wise engine of the browser build, on the host with the real SmolLM2-135M-Instruct
//! model: loaded from bytes, its greedy answers equal the native `Session::generate` ones, prefix
//! reuse, stop strings, cancel, and errors for bad input.
//!
//! Needs `SLM_TEST_MODEL`; without it each test prints a note and passes, unless
//! `SLM_REQUIRE_MODEL=1` makes it fail.

mod common;

use slm_runtime::{ChatMessage, FinishReason};
use slm_wasm::{Engine, GenerateSettings, ModelBytes, WasmError};

fn load(path: &std::path::Path) -> Engine {
    let bytes = std::fs::read(path).unwrap();
    // Through the chunked receiver, as in the browser.
    let mut m = ModelBytes::new(Some(bytes.len() as u64)).unwrap();
    for chunk in bytes.chunks(65_536 + 17) {
        m.push(chunk).unwrap();
    }
    Engine::from_gguf_bytes(m.finish().unwrap(), 1024).unwrap()
}

#[test]
fn greedy_answers_match_the_native_session() {
    let Some(path) = common::model_path() else {
        return;
    };
    let mut engine = load(&path);
    for question in [
        "What is the capital of France?",
        "Write a haiku about the sea.",
    ] {
        let native = common::native_greedy(&path, question, 40);
        let ids = engine
            .encode_chat(&[ChatMessage::new("user", question)])
            .unwrap();
        engine.start(&ids, &common::greedy(40)).unwrap();
        let (text, sampled, finish) = common::run_to_end(&mut engine);
        assert!(!text.is_empty(), "{question}: an answer");
        assert_eq!(
            text, native,
            "{question}: same greedy text as the native session"
        );
        assert!(
            sampled.len() <= 40
                && (finish == FinishReason::MaxTokens || finish == FinishReason::EndOfText)
        );
    }
}

#[test]
fn follow_up_reuses_the_prefix_and_cancel_keeps_the_context_usable() {
    let Some(path) = common::model_path() else {
        return;
    };
    let mut engine = load(&path);
    let mut messages = vec![ChatMessage::new("user", "Name three colours.")];
    let ids = engine.encode_chat(&messages).unwrap();
    assert_eq!(
        engine.start(&ids, &common::greedy(12)).unwrap(),
        0,
        "nothing to reuse at first"
    );
    let (answer, _, _) = common::run_to_end(&mut engine);
    messages.push(ChatMessage::new("assistant", answer));
    messages.push(ChatMessage::new("user", "And three animals?"));
    let ids2 = engine.encode_chat(&messages).unwrap();
    let reused = engine.start(&ids2, &common::greedy(50)).unwrap();
    assert!(
        reused >= ids.len(),
        "the first prompt ({} tokens) is reused, got {reused}",
        ids.len()
    );
    engine.step().unwrap();
    engine.cancel();
    assert!(matches!(engine.step(), Err(WasmError::NotGenerating)));
    // A cancelled answer leaves a context that still answers correctly.
    let native = common::native_greedy(&path, "What is 2+2?", 10);
    engine.reset();
    let ids3 = engine
        .encode_chat(&[ChatMessage::new("user", "What is 2+2?")])
        .unwrap();
    engine.start(&ids3, &common::greedy(10)).unwrap();
    assert_eq!(common::run_to_end(&mut engine).0, native);
}

#[test]
fn stop_strings_end_the_answer_without_the_string() {
    let Some(path) = common::model_path() else {
        return;
    };
    let mut engine = load(&path);
    let q = "What is the capital of France?";
    let full = common::native_greedy(&path, q, 40);
    // Stop at the second word of the native answer.
    let word = full.split_whitespace().nth(1).unwrap().to_string();
    let ids = engine.encode_chat(&[ChatMessage::new("user", q)]).unwrap();
    let settings = GenerateSettings {
        stop: vec![word.clone()],
        ..common::greedy(40)
    };
    engine.start(&ids, &settings).unwrap();
    let (text, _, finish) = common::run_to_end(&mut engine);
    assert_eq!(finish, FinishReason::StopString);
    assert!(
        !text.contains(&word) && full.starts_with(&text),
        "{text:?} vs {full:?}"
    );
}

#[test]
fn ignore_eos_runs_to_max_tokens() {
    let Some(path) = common::model_path() else {
        return;
    };
    let mut engine = load(&path);
    let ids = engine
        .encode_chat(&[ChatMessage::new("user", "What is 2+2?")])
        .unwrap();
    engine.start(&ids, &common::greedy(200)).unwrap();
    let (_, natural, finish) = common::run_to_end(&mut engine);
    assert_eq!(
        finish,
        FinishReason::EndOfText,
        "this short answer ends by itself"
    );
    let n = natural.len() + 5;
    engine
        .start(
            &ids,
            &GenerateSettings {
                ignore_eos: true,
                ..common::greedy(n)
            },
        )
        .unwrap();
    let (_, sampled, finish) = common::run_to_end(&mut engine);
    assert_eq!(
        (finish, sampled.len()),
        (FinishReason::MaxTokens, n),
        "ignore_eos generates past the end"
    );
    assert_eq!(
        sampled.get(..natural.len()),
        Some(natural.as_slice()),
        "same tokens up to the end-of-text"
    );
}

#[test]
fn bad_input_gives_clear_errors() {
    let Some(path) = common::model_path() else {
        return;
    };
    let bytes = std::fs::read(&path).unwrap();
    let truncated = bytes.get(..bytes.len() / 2).unwrap().to_vec();
    let e = Engine::from_gguf_bytes(truncated, 512)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("GGUF"), "{e}");
    let e = Engine::from_gguf_bytes(b"not a model".to_vec(), 512)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("GGUF"), "{e}");
    let mut engine = Engine::from_gguf_bytes(bytes, 64).unwrap();
    assert_eq!(engine.n_ctx(), 64);
    let long = engine.encode_raw(&"word ".repeat(100)).unwrap();
    let e = engine
        .start(&long, &GenerateSettings::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("context holds 64"), "{e}");
    let e = engine
        .start(&[], &GenerateSettings::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("empty"), "{e}");
    let bad = GenerateSettings {
        top_p: 7.0,
        ..GenerateSettings::default()
    };
    assert!(
        engine.start(&[1, 2], &bad).is_err(),
        "bad sampler settings are refused"
    );
}
