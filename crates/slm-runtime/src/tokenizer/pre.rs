//! Pre-tokenizers of byte-level BPE vocabularies, keyed by the GGUF `tokenizer.ggml.pre` value.
//!
//! Mirrors llama.cpp (`llm_tokenizer_bpe` in `src/llama-vocab.cpp`): each type is a list of
//! regexes applied in sequence, every regex splitting the pieces left by the previous one into
//! matches and the gaps between them (Hugging Face `Split` with `Isolated` behaviour), followed by
//! the byte-level mapping. llama.cpp runs the GPT-2 and Llama-3 regexes through hand-written
//! matchers that behave as the full Hugging Face patterns (including the final `|\s+`), so the
//! full patterns are used here.

use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::SplitDelimiterBehavior;

use crate::error::RuntimeError;

/// GPT-2's pattern (what the `ByteLevel` pre-tokenizer of Hugging Face uses with `use_regex`).
const GPT2: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// Llama 3's pattern, with the case-insensitive group spelled out as llama.cpp does (an inline
/// `(?i:…)` would also match non-ASCII case variants such as `ſ` that llama.cpp does not).
const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Qwen 2's pattern: Llama 3's with single digits.
const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// One family of pre-tokenizers: regexes in order plus BPE options that come with them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PreTokenizerSpec {
    /// Canonical name of the family (for messages).
    pub name: &'static str,
    /// Split regexes, applied in sequence.
    pub regexes: &'static [&'static str],
    /// Whether a whole pre-token found in the vocabulary is emitted without merging (Llama 3).
    pub ignore_merges: bool,
    /// Whether llama.cpp adds BOS by default for this family (overridden by
    /// `tokenizer.ggml.add_bos_token`).
    pub add_bos_default: bool,
}

const SPEC_DEFAULT: PreTokenizerSpec = PreTokenizerSpec {
    name: "default",
    regexes: &[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"],
    ignore_merges: false,
    add_bos_default: false,
};
const SPEC_GPT2: PreTokenizerSpec =
    PreTokenizerSpec { name: "gpt-2", regexes: &[GPT2], ignore_merges: false, add_bos_default: false };
const SPEC_STARCODER: PreTokenizerSpec = PreTokenizerSpec {
    name: "starcoder",
    regexes: &[r"\p{N}", GPT2],
    ignore_merges: false,
    add_bos_default: false,
};
const SPEC_FALCON: PreTokenizerSpec = PreTokenizerSpec {
    name: "falcon",
    regexes: &[r"[\p{P}\$\+<=>\^~\|`]+", GPT2, r"[0-9][0-9][0-9]"],
    ignore_merges: false,
    add_bos_default: false,
};
const SPEC_LLAMA3: PreTokenizerSpec =
    PreTokenizerSpec { name: "llama3", regexes: &[LLAMA3], ignore_merges: true, add_bos_default: true };
const SPEC_DBRX: PreTokenizerSpec =
    PreTokenizerSpec { name: "dbrx", regexes: &[LLAMA3], ignore_merges: false, add_bos_default: false };
const SPEC_QWEN2: PreTokenizerSpec =
    PreTokenizerSpec { name: "qwen2", regexes: &[QWEN2], ignore_merges: false, add_bos_default: false };

/// `tokenizer.ggml.pre` values and their family (names as written by llama.cpp's converter).
const TABLE: &[(&str, PreTokenizerSpec)] = &[
    ("default", SPEC_DEFAULT),
    ("gpt-2", SPEC_GPT2),
    ("gpt2", SPEC_GPT2),
    ("phi-2", SPEC_GPT2),
    ("roberta-bpe", SPEC_GPT2),
    ("mpt", SPEC_GPT2),
    ("olmo", SPEC_GPT2),
    ("jais", SPEC_GPT2),
    ("starcoder", SPEC_STARCODER),
    ("smollm", SPEC_STARCODER),
    ("refact", SPEC_STARCODER),
    ("command-r", SPEC_STARCODER),
    ("codeshell", SPEC_STARCODER),
    ("exaone", SPEC_STARCODER),
    ("minerva-7b", SPEC_STARCODER),
    ("falcon", SPEC_FALCON),
    ("llama3", SPEC_LLAMA3),
    ("llama-v3", SPEC_LLAMA3),
    ("llama-bpe", SPEC_LLAMA3),
    ("falcon3", SPEC_LLAMA3),
    ("dbrx", SPEC_DBRX),
    ("smaug-bpe", SPEC_DBRX),
    ("qwen2", SPEC_QWEN2),
    ("stablelm2", SPEC_QWEN2),
    ("megrez", SPEC_QWEN2),
];

/// Comma-separated list of the supported `tokenizer.ggml.pre` values.
pub(crate) fn supported_names() -> String {
    TABLE.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// Looks up the pre-tokenizer for a `tokenizer.ggml.pre` value; a missing value means
/// "default", as in llama.cpp (which warns that quality will suffer).
pub(crate) fn lookup(pre: Option<&str>) -> Result<PreTokenizerSpec, RuntimeError> {
    let name = pre.unwrap_or("default");
    TABLE
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, spec)| *spec)
        .ok_or_else(|| RuntimeError::UnsupportedPreTokenizer { pre: name.to_string(), supported: supported_names() })
}

/// Builds the Hugging Face pre-tokenizer for `spec`: the regex splits, then the byte-level map
/// (without its own regex and without a prefix space).
pub(crate) fn build(spec: &PreTokenizerSpec) -> Result<PreTokenizerWrapper, RuntimeError> {
    let mut steps: Vec<PreTokenizerWrapper> = Vec::with_capacity(spec.regexes.len() + 1);
    for re in spec.regexes {
        let split = Split::new(SplitPattern::Regex((*re).to_string()), SplitDelimiterBehavior::Isolated, false)
            .map_err(|e| RuntimeError::tokenizers(format!("compiling pre-tokenizer regex {re:?}"), e))?;
        steps.push(split.into());
    }
    steps.push(ByteLevel::new(false, true, false).into());
    Ok(Sequence::new(steps).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_resolve() {
        assert_eq!(lookup(Some("smollm")).unwrap().name, "starcoder");
        assert_eq!(lookup(Some("llama-bpe")).unwrap().name, "llama3");
        assert!(lookup(Some("llama-bpe")).unwrap().ignore_merges);
        assert_eq!(lookup(None).unwrap().name, "default");
    }

    #[test]
    fn unknown_name_lists_supported() {
        let err = lookup(Some("klingon")).unwrap_err().to_string();
        assert!(err.contains("klingon"), "{err}");
        assert!(err.contains("smollm") && err.contains("qwen2"), "{err}");
    }

    #[test]
    fn every_spec_compiles() {
        for (name, spec) in TABLE {
            assert!(build(spec).is_ok(), "{name}");
        }
    }
}
