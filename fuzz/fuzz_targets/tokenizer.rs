//! Tokenizer encode/decode on arbitrary bytes, with a small byte-level BPE vocabulary: encoding
//! any UTF-8 text must succeed (every byte has a token), decoding must give the text back, and
//! decoding arbitrary ids (out of range included) or streaming them must never panic.
//!
//! Input: byte 0 picks the pre-tokenizer, byte 1 the flags, the rest is the text (lossy UTF-8) and,
//! reinterpreted as little-endian u32s, ids to decode.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use slm_runtime::{TokenDecoder, Tokenizer};

const PRES: &[&str] = &[
    "smollm",
    "gpt2",
    "llama3",
    "qwen2",
    "default",
    "starcoder",
    "falcon",
    "dbrx",
    "llama-bpe",
];

fn tokenizers() -> &'static Vec<Tokenizer> {
    static T: OnceLock<Vec<Tokenizer>> = OnceLock::new();
    T.get_or_init(|| {
        PRES.iter()
            .filter_map(|pre| Tokenizer::from_gguf_vocab(&common::tiny_vocab(pre)).ok())
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let [pick, flags, rest @ ..] = data else {
        return;
    };
    let all = tokenizers();
    assert!(!all.is_empty(), "no pre-tokenizer accepted the tiny vocabulary");
    let tok = &all[usize::from(*pick) % all.len()];
    let text = String::from_utf8_lossy(rest);
    let parse_special = flags & 1 != 0;

    let ids = tok
        .encode(&text, parse_special)
        .expect("a byte-level vocabulary encodes any text");
    assert!(ids.iter().all(|&id| (id as usize) < tok.vocab_size()));
    if !parse_special {
        // Without special-token parsing every id is a normal token, and decoding is lossless.
        assert_eq!(tok.decode(&ids, false), text, "encode → decode changed the text");
    }
    let _ = tok.encode_prompt(&text, parse_special);
    let protected = [0..text.len() / 2, text.len() / 2..text.len()];
    let _ = tok.encode_protected(&text, &protected);

    // Streaming the ids gives the same text as decoding them at once.
    let mut dec = TokenDecoder::new(false);
    let mut streamed = String::new();
    for &id in &ids {
        streamed.extend(dec.push(tok, id));
    }
    streamed.extend(dec.flush());
    assert_eq!(streamed, tok.decode(&ids, false), "streamed decode differs");

    // Arbitrary ids, including ones outside the vocabulary.
    let raw: Vec<u32> = rest
        .chunks(4)
        .map(|c| c.iter().rev().fold(0u32, |a, &b| a << 8 | u32::from(b)))
        .collect();
    let _ = tok.decode(&raw, flags & 2 != 0);
    let mut dec = TokenDecoder::new(flags & 2 != 0);
    for &id in &raw {
        let _ = dec.push(tok, id);
        let _ = tok.token_to_piece(id);
        let _ = tok.token_kind(id);
    }
    let _ = dec.flush();
});
