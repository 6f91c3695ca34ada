//! Hugging Face `tokenizer.json` loading: arbitrary bytes through `Tokenizer::from_hf_bytes` must
//! give `Ok` or a typed `Err`. An accepted tokenizer must encode and decode a fixed text and
//! arbitrary ids without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slm_runtime::Tokenizer;

fuzz_target!(|data: &[u8]| {
    let Ok(tok) = Tokenizer::from_hf_bytes(data, None) else {
        return;
    };
    for text in ["Hello world! <|im_end|> 123 ", "\u{0}é\u{10FFFF}\r\n\t", ""] {
        for special in [false, true] {
            if let Ok(ids) = tok.encode(text, special) {
                let _ = tok.decode(&ids, false);
                let _ = tok.decode(&ids, true);
            }
        }
    }
    for id in [0, 1, tok.vocab_size() as u32, u32::MAX] {
        let _ = (tok.token_to_piece(id), tok.token_kind(id), tok.is_eog(id));
    }
});
