//! Golden test: token ids from llama.cpp (tests/golden/tokenizer_smollm2.json, written by
//! reference/gen_tokenizer_golden.py) against our tokenizer built from the same GGUF file.
//!
//! Needs the model: `SLM_TEST_MODEL=/path/to/SmolLM2-135M-Instruct.Q4_1.gguf cargo test -p slm-runtime`.
//! Without it the comparison is skipped with a note (the fixture itself is still checked).

use std::path::PathBuf;

use serde::Deserialize;
use slm_runtime::{TokenDecoder, Tokenizer};

#[derive(Deserialize)]
struct Golden {
    generator: String,
    model_file: String,
    n_vocab: usize,
    bos: u32,
    eos: u32,
    add_bos: bool,
    eog: Vec<u32>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    text: String,
    parse_special: bool,
    ids: Vec<u32>,
    detok: String,
}

fn golden() -> Golden {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/tokenizer_smollm2.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn model_tokenizer(model_file: &str) -> Option<Tokenizer> {
    let Some(path) = std::env::var_os("SLM_TEST_MODEL") else {
        assert!(std::env::var_os("SLM_REQUIRE_MODEL").is_none(), "SLM_REQUIRE_MODEL is set but SLM_TEST_MODEL is not");
        eprintln!("note: SLM_TEST_MODEL is not set; skipping the llama.cpp tokenizer comparison (point it to {model_file})");
        return None;
    };
    let path = PathBuf::from(path);
    assert!(
        path.file_name().is_some_and(|n| n == model_file),
        "SLM_TEST_MODEL={} but the golden file was made from {model_file}",
        path.display()
    );
    let gguf = slm_format::GgufFile::open(&path).unwrap();
    Some(Tokenizer::from_gguf(gguf.metadata()).unwrap())
}

#[test]
fn fixture_is_well_formed() {
    let g = golden();
    assert!(g.generator.contains("llama-cpp-python"), "{}", g.generator);
    assert!(g.cases.len() >= 40, "only {} cases", g.cases.len());
    let mut names: Vec<&str> = g.cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), g.cases.len(), "duplicate case names");
    assert!(g.cases.iter().any(|c| c.parse_special) && g.cases.iter().any(|c| !c.parse_special));
}

#[test]
fn token_ids_match_llama_cpp() {
    let g = golden();
    let Some(tok) = model_tokenizer(&g.model_file) else { return };
    assert_eq!(tok.vocab_size(), g.n_vocab);
    assert_eq!(tok.bos_id(), Some(g.bos));
    assert_eq!(tok.eos_id(), Some(g.eos));
    assert_eq!(tok.add_bos(), g.add_bos);
    assert_eq!(tok.eos_ids(), g.eog.as_slice(), "end-of-generation ids differ from llama_vocab_is_eog");
    assert_eq!(
        tok.chat_template(),
        Some(include_str!("fixtures/smollm2_chat_template.jinja")),
        "the fixture must be the model's tokenizer.chat_template"
    );

    let mut failures = Vec::new();
    for case in &g.cases {
        let ids = tok.encode(&case.text, case.parse_special).unwrap();
        if ids != case.ids {
            failures.push(format!("{} (parse_special={}):\n  ours      {:?}\n  llama.cpp {:?}", case.name, case.parse_special, ids, case.ids));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), g.cases.len(), failures.join("\n"));
}

#[test]
fn decoding_matches_llama_cpp_and_round_trips() {
    let g = golden();
    let Some(tok) = model_tokenizer(&g.model_file) else { return };
    for case in &g.cases {
        let text = tok.decode(&case.ids, false);
        assert_eq!(text, case.detok, "{}: decode differs from llama_detokenize", case.name);
        assert_eq!(text, case.text, "{}: decode(encode(text)) != text", case.name);
        if case.parse_special {
            continue;
        }
        // Streaming gives the same text, and never a replacement character mid-stream.
        let mut d = TokenDecoder::new(false);
        let mut streamed = String::new();
        for &id in &case.ids {
            if let Some(s) = d.push(&tok, id) {
                streamed.push_str(&s);
            }
        }
        assert_eq!(d.flush(), None, "{}", case.name);
        assert_eq!(streamed, case.text, "{}: streamed text differs", case.name);
    }
}
