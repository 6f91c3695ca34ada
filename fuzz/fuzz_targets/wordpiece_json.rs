//! WordPiece `tokenizer.json` loading for encoders: arbitrary bytes through
//! `EncoderTokenizer::from_json_bytes` must give `Ok` or a typed `Err`. An accepted tokenizer
//! must encode fixed texts within its sequence limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slm_runtime::embed::EncoderTokenizer;

fuzz_target!(|data: &[u8]| {
    let Ok(tok) = EncoderTokenizer::from_json_bytes(data, 16) else {
        return;
    };
    for text in ["Hello world! [SEP] unaffable", "\u{0}é\u{10FFFF}\r\n\t 中文 ##", ""] {
        if let Ok(ids) = tok.encode(text) {
            assert!(ids.len() <= 16, "{} ids over the limit of 16", ids.len());
        }
    }
    let _ = (tok.token_id("[CLS]"), tok.token_id(""));
});
