//! Map-reduce summaries on the real model: the splitter keeps every character and respects the
//! budget; a text longer than the window is summarized in several chunks; bad requests are refused.

use slm_kernels::Pool;
use slm_model::Model;
use slm_runtime::{
    split_to_fit, summarize, ChatTemplate, GenerateOptions, SamplerConfig, Session, SessionOptions, StringSink,
    SummarizeOptions, Tokenizer,
};
use std::path::PathBuf;
use std::sync::Arc;

fn model_path() -> Option<PathBuf> {
    match std::env::var_os("SLM_TEST_MODEL") {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var_os("SLM_REQUIRE_MODEL").is_some() => {
            panic!("SLM_REQUIRE_MODEL set without SLM_TEST_MODEL")
        }
        None => {
            eprintln!("note: SLM_TEST_MODEL not set; skipping");
            None
        }
    }
}

const APACHE: &str = "/usr/share/common-licenses/Apache-2.0";

fn setup(n_ctx: usize) -> Option<(Session, ChatTemplate)> {
    let path = model_path()?;
    let model = Arc::new(Model::load(&path).unwrap());
    let tokenizer = Arc::new(Tokenizer::from_gguf(model.gguf().metadata()).unwrap());
    let template = ChatTemplate::for_tokenizer(&tokenizer).unwrap();
    let pool = Arc::new(Pool::new(2).unwrap());
    Some((Session::new(model, tokenizer, pool, SessionOptions { n_ctx, n_batch: 256 }).unwrap(), template))
}

fn greedy(max_tokens: usize, sentences: usize) -> SummarizeOptions {
    let sampler = SamplerConfig { temperature: 0.0, ..SamplerConfig::default() };
    SummarizeOptions { sentences, max_tokens, generate: GenerateOptions { max_tokens, sampler, stop: Vec::new() } }
}

#[test]
fn splitting_keeps_every_character_within_the_budget() {
    let Some((session, _)) = setup(512) else { return };
    let text = std::fs::read_to_string(APACHE).unwrap();
    let t = session.tokenizer();
    for budget in [50, 200, 1000] {
        let pieces = split_to_fit(t, &text, budget).unwrap();
        assert_eq!(pieces.concat(), text, "budget {budget}: pieces concatenate to the text");
        for p in &pieces {
            assert!(t.encode(p, false).unwrap().len() <= budget, "budget {budget}: a piece is too long");
        }
    }
    let one_word = "x".repeat(3000);
    let pieces = split_to_fit(t, &one_word, 100).unwrap();
    assert_eq!(pieces.concat(), one_word);
    assert!(pieces.len() > 1);
}

#[test]
fn a_long_text_is_summarized_in_several_chunks() {
    let Some((mut session, template)) = setup(1024) else { return };
    let text = std::fs::read_to_string(APACHE).unwrap();
    let mut sink = StringSink::default();
    let mut rounds = Vec::new();
    let r =
        summarize(&mut session, &template, &text, &greedy(80, 2), &mut sink, &mut |round, n| rounds.push((round, n)))
            .unwrap();
    assert!(r.n_input_tokens > 2000, "{}", r.n_input_tokens);
    assert!(r.n_chunks >= 3 && r.rounds >= 2, "{r:?}");
    assert_eq!(rounds.last().map(|x| x.1), Some(1), "the last round is one chunk: {rounds:?}");
    assert_eq!(sink.text.trim(), r.summary, "the final summary is what was streamed");
    let words = r.summary.split_whitespace().count();
    assert!((5..=120).contains(&words), "summary of {words} words: {}", r.summary);
    eprintln!("summary ({} chunks, {} rounds, {:.1} s): {}", r.n_chunks, r.rounds, r.secs, r.summary);
}

#[test]
fn bad_requests_are_refused() {
    let Some((mut session, template)) = setup(256) else { return };
    let mut sink = StringSink::default();
    let mut ignore = |_: usize, _: usize| {};
    assert!(summarize(&mut session, &template, "  ", &greedy(40, 2), &mut sink, &mut ignore).is_err());
    assert!(summarize(&mut session, &template, "Some text.", &greedy(40, 0), &mut sink, &mut ignore).is_err());
    let err = summarize(&mut session, &template, "Some text.", &greedy(250, 2), &mut sink, &mut ignore).unwrap_err();
    assert!(err.to_string().contains("context"), "{err}");
}
