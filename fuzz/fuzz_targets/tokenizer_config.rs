//! `tokenizer_config.json` loading: a fixed, valid byte-level BPE `tokenizer.json` with fuzzed
//! `tokenizer_config.json` bytes through `Tokenizer::from_hf_bytes` must give `Ok` or a typed
//! `Err`. An accepted tokenizer's special ids lie inside the vocabulary, it encodes and decodes a
//! fixed text, and its chat template (if any) renders or errs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slm_runtime::{ChatMessage, ChatTemplate, Tokenizer};

/// The committed BPE seed of the `tokenizer_json` target.
const TOKENIZER_JSON: &[u8] = include_bytes!("../corpus/tokenizer_json/seed-bpe");

fuzz_target!(|data: &[u8]| {
    let Ok(tok) = Tokenizer::from_hf_bytes(TOKENIZER_JSON, Some(data)) else {
        return;
    };
    let n = tok.vocab_size() as u32;
    for id in [tok.bos_id(), tok.eos_id()].into_iter().flatten() {
        assert!(id < n, "special id {id} outside a vocabulary of {n}");
    }
    if let Ok(ids) = tok.encode("Hello world! <|im_end|>", true) {
        assert!(ids.iter().all(|&i| i < n));
        let _ = tok.decode(&ids, false);
    }
    if let Some(Ok(t)) = tok.chat_template().map(|src| ChatTemplate::new(src, "<s>", "</s>")) {
        let _ = t.render(&[ChatMessage::new("user", "hi")], true);
    }
});
