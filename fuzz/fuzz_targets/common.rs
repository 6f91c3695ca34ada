//! Helpers shared by several targets (included with `#[path]`, not a crate).
#![allow(dead_code)]

use slm_runtime::GgufVocab;

/// The 256 byte-level BPE characters (GPT-2's `bytes_to_unicode`), in byte order.
pub fn byte_chars() -> Vec<char> {
    let printable = |b: u32| (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
    let mut extra = 0u32;
    (0u32..256)
        .map(|b| {
            if printable(b) {
                char::from_u32(b).unwrap_or('?')
            } else {
                extra += 1;
                char::from_u32(255 + extra).unwrap_or('?')
            }
        })
        .collect()
}

/// A small byte-level BPE vocabulary (like the runtime's test vocabulary): 4 special tokens, the
/// 256 byte characters, then a few merges. Every byte string is encodable with it.
pub fn tiny_vocab(pre: &str) -> GgufVocab {
    let merges = [
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
    let mut tokens: Vec<String> = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool>"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut types = vec![3, 3, 3, 4];
    for c in byte_chars() {
        tokens.push(c.to_string());
        types.push(1);
    }
    for (a, b) in merges {
        tokens.push(format!("{a}{b}"));
        types.push(1);
    }
    GgufVocab {
        model: "gpt2".into(),
        pre: Some(pre.into()),
        tokens,
        token_types: Some(types),
        merges: merges.iter().map(|(a, b)| format!("{a} {b}")).collect(),
        bos: Some(1),
        eos: Some(2),
        unk: Some(0),
        pad: Some(2),
        add_bos: Some(false),
        chat_template: Some("{{ messages[0]['content'] }}".into()),
        ..GgufVocab::default()
    }
}
