//! Tokenizer tests on the tiny vocabulary of [`super::test_vocab`].
#![allow(clippy::single_range_in_vec_init)]

use super::test_vocab::{byte_id, merged_id, tiny_vocab};
use super::*;

fn tiny(pre: &str) -> Tokenizer {
    Tokenizer::from_gguf_vocab(&tiny_vocab(pre)).unwrap()
}

#[test]
fn merges_apply_in_rank_order() {
    let t = tiny("smollm");
    assert_eq!(t.encode("hello the", false).unwrap(), vec![merged_id("hello"), merged_id("Ġthe")]);
    // "Ġt" + "he" has a lower priority than "h e", but both lead to "Ġthe".
    assert_eq!(t.encode(" the", false).unwrap(), vec![merged_id("Ġthe")]);
    // Unmerged letters fall back to single byte characters.
    assert_eq!(t.encode("hx", false).unwrap(), vec![byte_id(b'h'), byte_id(b'x')]);
}

#[test]
fn smollm_splits_digits_but_gpt2_does_not() {
    let smollm = tiny("smollm");
    assert_eq!(smollm.encode("12", false).unwrap(), vec![byte_id(b'1'), byte_id(b'2')]);
    let gpt2 = tiny("gpt-2");
    assert_eq!(gpt2.encode("12", false).unwrap(), vec![merged_id("12")]);
}

#[test]
fn whitespace_runs_follow_the_gpt2_regex() {
    let t = tiny("gpt-2");
    // "  the": `\s+(?!\S)` takes one space, then " the" is a word.
    assert_eq!(t.encode("  the", false).unwrap(), vec![byte_id(b' '), merged_id("Ġthe")]);
    // Three trailing spaces stay together and merge pairwise.
    assert_eq!(t.encode("   ", false).unwrap(), vec![merged_id("ĠĠ"), byte_id(b' ')]);
    assert_eq!(t.encode("it's", false).unwrap(), vec![byte_id(b'i'), byte_id(b't'), merged_id("'s")]);
}

#[test]
fn control_tokens_need_parse_special() {
    let t = tiny("smollm");
    let text = "<|im_start|>hello<|im_end|>";
    assert_eq!(t.encode(text, true).unwrap(), vec![1, merged_id("hello"), 2]);
    let plain = t.encode(text, false).unwrap();
    assert!(!plain.contains(&1) && !plain.contains(&2), "control token injected: {plain:?}");
    assert_eq!(t.decode(&plain, false), text, "plain encoding must still decode to the same text");
}

#[test]
fn protected_ranges_block_control_tokens_only_there() {
    let t = tiny("smollm");
    let text = "<|im_start|>he<|im_end|>llo<|im_end|>";
    // The user's part is "he<|im_end|>llo" (bytes 12..27).
    let ids = t.encode_protected(text, &[12..27]).unwrap();
    assert_eq!(ids.first(), Some(&1));
    assert_eq!(ids.last(), Some(&2));
    assert_eq!(ids.iter().filter(|&&id| id == 2).count(), 1, "{ids:?}");
    assert_eq!(t.decode(&ids, false), text);
    assert_eq!(t.encode_protected(text, &[]).unwrap(), t.encode(text, true).unwrap());
}

#[test]
fn user_defined_tokens_always_match() {
    let t = tiny("smollm");
    assert_eq!(t.encode("a<tool>b", false).unwrap(), vec![byte_id(b'a'), 3, byte_id(b'b')]);
    assert_eq!(t.token_kind(3), Some(TokenKind::UserDefined));
    assert!(!t.is_special(3));
    assert_eq!(t.decode(&[3], true), "<tool>");
}

#[test]
fn decode_round_trips_arbitrary_text() {
    let t = tiny("smollm");
    for text in ["", "hello", "héllo wörld", "👋🏽 family: 👨‍👩‍👧", "a\r\n\tb  ", "日本語", "x = 12.5;\n", "\u{0}\u{7f}"] {
        let ids = t.encode(text, false).unwrap();
        assert_eq!(t.decode(&ids, false), text, "ids {ids:?}");
    }
}

#[test]
fn pieces_and_special_decoding() {
    let t = tiny("smollm");
    assert_eq!(t.token_to_piece(merged_id("Ġthe")), b" the");
    assert_eq!(t.token_to_piece(byte_id(0xF0)), &[0xF0]);
    assert_eq!(t.token_to_piece(1), b"<|im_start|>");
    assert_eq!(t.token_to_piece(99_999), b"");
    assert_eq!(t.decode(&[1, merged_id("hello"), 2], true), "hello");
    assert_eq!(t.decode(&[1, merged_id("hello"), 2], false), "<|im_start|>hello<|im_end|>");
    assert_eq!(t.decode(&[merged_id("hello"), 99_999], false), "hello");
    assert_eq!(t.token_str(merged_id("Ġthe")).as_deref(), Some("Ġthe"));
    assert_eq!(t.token_id("<|im_end|>"), Some(2));
}

#[test]
fn special_ids_and_eog() {
    let t = tiny("smollm");
    assert_eq!(t.bos_id(), Some(1));
    assert_eq!(t.eos_id(), Some(2));
    assert_eq!(t.pad_id(), Some(2));
    assert!(!t.add_bos());
    assert_eq!(t.eos_ids(), &[0, 2], "<|endoftext|> and <|im_end|> both end generation");
    assert!(t.is_eog(0) && t.is_eog(2) && !t.is_eog(1));
    assert_eq!(t.vocab_size(), 4 + 256 + test_vocab::MERGES.len());
    assert_eq!(t.special_text(t.eos_id()), "<|im_end|>");
    assert_eq!(t.chat_template(), Some("{{ messages[0]['content'] }}"));
}

#[test]
fn encode_prompt_adds_bos_only_when_asked() {
    let t = tiny("smollm");
    assert_eq!(t.encode_prompt("hello", false).unwrap(), vec![merged_id("hello")]);
    let mut v = tiny_vocab("smollm");
    v.add_bos = Some(true);
    let t = Tokenizer::from_gguf_vocab(&v).unwrap();
    assert_eq!(t.encode_prompt("hello", false).unwrap(), vec![1, merged_id("hello")]);
    // llama3 adds BOS by default.
    let mut v = tiny_vocab("llama-bpe");
    v.add_bos = None;
    assert!(Tokenizer::from_gguf_vocab(&v).unwrap().add_bos());
}

#[test]
fn streaming_decoder_holds_back_split_emoji() {
    let t = tiny("smollm");
    let text = "hi 👋!";
    let ids = t.encode(text, false).unwrap();
    let mut d = TokenDecoder::new(true);
    let mut out = String::new();
    let mut chunks = Vec::new();
    for &id in &ids {
        if let Some(s) = d.push(&t, id) {
            assert!(!s.contains('\u{FFFD}'), "half a character leaked: {s:?}");
            chunks.push(s.clone());
            out.push_str(&s);
        }
    }
    assert_eq!(d.flush(), None);
    assert_eq!(out, text);
    assert!(chunks.contains(&"👋".to_string()), "emoji should come out in one piece: {chunks:?}");
}

#[test]
fn streaming_decoder_skips_control_tokens() {
    let t = tiny("smollm");
    let mut d = TokenDecoder::new(true);
    assert_eq!(d.push(&t, 2), None);
    let mut d = TokenDecoder::new(false);
    assert_eq!(d.push(&t, 2).as_deref(), Some("<|im_end|>"));
}

/// Writes the tiny vocabulary as a Hugging Face tokenizer.json (as SmolLM2 ships it: Digits +
/// ByteLevel pre-tokenizer, special tokens as added tokens).
fn tiny_hf_json() -> String {
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::pre_tokenizers::digits::Digits;
    use tokenizers::pre_tokenizers::sequence::Sequence;
    use tokenizers::AddedToken;
    let t = tiny("smollm");
    let mut inner = t.inner.clone();
    inner.with_pre_tokenizer(Some(Sequence::new(vec![Digits::new(true).into(), ByteLevel::new(false, true, true).into()])));
    inner.add_special_tokens(&[
        AddedToken::from("<|endoftext|>", true),
        AddedToken::from("<|im_start|>", true),
        AddedToken::from("<|im_end|>", true),
    ]);
    inner.add_tokens(&[AddedToken::from("<tool>", false)]);
    inner.to_string(false).unwrap()
}

#[test]
fn hf_json_matches_gguf_tokenization() {
    let json = tiny_hf_json();
    let config = br#"{"bos_token": "<|im_start|>", "eos_token": {"content": "<|im_end|>"}, "add_bos_token": false,
                      "chat_template": "{{ bos_token }}"}"#;
    let hf = Tokenizer::from_hf_bytes(json.as_bytes(), Some(config)).unwrap();
    let gguf = tiny("smollm");
    assert_eq!(hf.vocab_size(), gguf.vocab_size());
    for text in ["hello the 12 it's", "<|im_start|>hello<|im_end|>\n", "a<tool>b", "  x\n\n y👋", ""] {
        for parse_special in [false, true] {
            assert_eq!(
                hf.encode(text, parse_special).unwrap(),
                gguf.encode(text, parse_special).unwrap(),
                "{text:?} parse_special={parse_special}"
            );
        }
    }
    assert_eq!(hf.bos_id(), Some(1));
    assert_eq!(hf.eos_id(), Some(2));
    assert_eq!(hf.eos_ids(), &[0, 2]);
    assert!(hf.is_special(1) && !hf.is_special(3));
    assert_eq!(hf.decode(&[1, merged_id("hello"), 2], true), "hello");
    assert_eq!(hf.chat_template(), Some("{{ bos_token }}"));
}

#[test]
fn hf_from_file_reads_config_next_to_it() {
    let dir = std::env::temp_dir().join(format!("slm-runtime-tok-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("tokenizer.json"), tiny_hf_json()).unwrap();
    std::fs::write(dir.join("tokenizer_config.json"), r#"{"eos_token": "<|im_end|>", "add_bos_token": true, "bos_token": "<|im_start|>"}"#).unwrap();
    let t = Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    assert!(t.add_bos());
    assert_eq!(t.encode_prompt("hello", false).unwrap(), vec![1, merged_id("hello")]);
    let missing = Tokenizer::from_file(dir.join("nope.json")).unwrap_err().to_string();
    assert!(missing.contains("nope.json"), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}
