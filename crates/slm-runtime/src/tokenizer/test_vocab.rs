//! A tiny hand-made byte-level BPE vocabulary for tests that must run without a model file.
//!
//! Ids: 0 `<|endoftext|>`, 1 `<|im_start|>`, 2 `<|im_end|>` (control), 3 `<tool>` (user-defined),
//! 4..260 the 256 byte characters in byte order, then the merged tokens of [`MERGES`].

use super::bytes::byte_to_char;
use super::GgufVocab;

/// Merges in priority order; each result is appended to the vocabulary.
pub(crate) const MERGES: &[(&str, &str)] = &[
    ("Ġ", "t"),
    ("h", "e"),
    ("Ġt", "he"),
    ("l", "l"),
    ("he", "ll"),
    ("hell", "o"),
    ("1", "2"),
    ("Ġ", "Ġ"),
    ("'", "s"),
];

/// Id of the byte-level character for byte `b`.
pub(crate) fn byte_id(b: u8) -> u32 {
    4 + u32::from(b)
}

/// Id of a merged token by its text.
pub(crate) fn merged_id(text: &str) -> u32 {
    let pos = MERGES.iter().position(|(a, b)| format!("{a}{b}") == text).expect("merged token");
    260 + pos as u32
}

/// The vocabulary with the given `tokenizer.ggml.pre`.
pub(crate) fn tiny_vocab(pre: &str) -> GgufVocab {
    let mut tokens: Vec<String> = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool>"].iter().map(|s| s.to_string()).collect();
    let mut types = vec![3, 3, 3, 4];
    for b in 0..=255u8 {
        tokens.push(byte_to_char(b).to_string());
        types.push(1);
    }
    for (a, b) in MERGES {
        tokens.push(format!("{a}{b}"));
        types.push(1);
    }
    GgufVocab {
        model: "gpt2".into(),
        pre: Some(pre.into()),
        tokens,
        token_types: Some(types),
        merges: MERGES.iter().map(|(a, b)| format!("{a} {b}")).collect(),
        bos: Some(1),
        eos: Some(2),
        unk: Some(0),
        pad: Some(2),
        add_bos: Some(false),
        chat_template: Some("{{ messages[0]['content'] }}".into()),
        ..GgufVocab::default()
    }
}
