//! Tokenizer loading from GGUF metadata: a fuzzed GGUF file through `Tokenizer::from_gguf` must give
//! `Ok` or a typed `Err` (bad ids, mismatched token types, malformed merges, ...). An accepted
//! tokenizer must encode and decode a fixed text without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slm_format::GgufFile;
use slm_runtime::{ChatTemplate, Tokenizer};

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::from_bytes(data.to_vec()) else {
        return;
    };
    let Ok(tok) = Tokenizer::from_gguf(file.metadata()) else {
        return;
    };
    for text in ["Hello world! <|im_end|> 123 ", "\u{0}é\u{10FFFF}\r\n\t", ""] {
        for special in [false, true] {
            if let Ok(ids) = tok.encode(text, special) {
                assert!(
                    ids.iter().all(|&id| (id as usize) < tok.vocab_size()),
                    "id out of the vocabulary"
                );
                let _ = tok.decode(&ids, false);
                let _ = tok.decode(&ids, true);
            }
        }
    }
    for id in [0, 1, tok.vocab_size() as u32, u32::MAX] {
        let _ = (
            tok.token_to_piece(id),
            tok.token_kind(id),
            tok.is_eog(id),
            tok.token_str(id),
        );
    }
    if let Ok(t) = ChatTemplate::for_tokenizer(&tok) {
        let _ = t.render(&[slm_runtime::ChatMessage::new("user", "hi")], true);
    }
});
