//! Building a [`Tokenizer`] from the `tokenizer.ggml.*` metadata of a GGUF file.
//!
//! [`GgufVocab`] is the plain data the constructor needs, so the tokenizer does not depend on how
//! the metadata was read. Semantics follow llama.cpp's `llama_vocab::impl::load`.

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use slm_format::Metadata;
use tokenizers::models::bpe::{Vocab, BPE};

use super::special::SpecialToken;
use super::{bytes, pre, Parts, SpecialIds, TokenKind, Tokenizer};
use crate::error::RuntimeError;

/// GGUF tokenizer metadata, one field per `tokenizer.ggml.*` key.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GgufVocab {
    /// `tokenizer.ggml.model`: `"gpt2"` (byte-level BPE) is supported.
    pub model: String,
    /// `tokenizer.ggml.pre`: the pre-tokenizer family (`"smollm"`, `"llama-bpe"`, `"qwen2"`, ...).
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`: the vocabulary, index = id, in byte-level form for normal tokens.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.token_type`: one [`TokenKind`] code per token (all normal when absent).
    pub token_types: Option<Vec<i32>>,
    /// `tokenizer.ggml.merges`: `"left right"` pairs, highest priority first.
    pub merges: Vec<String>,
    /// `tokenizer.ggml.bos_token_id`.
    pub bos: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`.
    pub eos: Option<u32>,
    /// `tokenizer.ggml.eot_token_id`.
    pub eot: Option<u32>,
    /// `tokenizer.ggml.eom_token_id`.
    pub eom: Option<u32>,
    /// `tokenizer.ggml.unknown_token_id`.
    pub unk: Option<u32>,
    /// `tokenizer.ggml.padding_token_id`.
    pub pad: Option<u32>,
    /// `tokenizer.ggml.add_bos_token` (default depends on the pre-tokenizer, as in llama.cpp).
    pub add_bos: Option<bool>,
    /// `tokenizer.chat_template`.
    pub chat_template: Option<String>,
}

impl GgufVocab {
    /// Reads the `tokenizer.*` keys of a GGUF file. `tokenizer.ggml.model` and
    /// `tokenizer.ggml.tokens` are required, `tokenizer.ggml.merges` too for `gpt2`; a present key
    /// of the wrong type is an error.
    pub fn from_metadata(meta: &Metadata) -> Result<GgufVocab, RuntimeError> {
        let require = |key: &str| {
            if meta.contains_key(key) {
                Ok(())
            } else {
                Err(RuntimeError::MissingKey { key: key.to_string() })
            }
        };
        require(KEY_MODEL)?;
        require(KEY_TOKENS)?;
        let model = meta.get_str(KEY_MODEL)?.to_string();
        let merges = if meta.contains_key(KEY_MERGES) {
            meta.get_str_array(KEY_MERGES)?.to_vec()
        } else if model == "gpt2" {
            return Err(RuntimeError::MissingKey { key: KEY_MERGES.to_string() });
        } else {
            Vec::new()
        };
        let token_types =
            if meta.contains_key(KEY_TOKEN_TYPE) { Some(meta.get_i32_array(KEY_TOKEN_TYPE)?) } else { None };
        Ok(GgufVocab {
            model,
            pre: meta.get_str_opt("tokenizer.ggml.pre")?.map(str::to_string),
            tokens: meta.get_str_array(KEY_TOKENS)?.to_vec(),
            token_types,
            merges,
            bos: meta.get_u32_opt("tokenizer.ggml.bos_token_id")?,
            eos: meta.get_u32_opt("tokenizer.ggml.eos_token_id")?,
            eot: meta.get_u32_opt("tokenizer.ggml.eot_token_id")?,
            eom: meta.get_u32_opt("tokenizer.ggml.eom_token_id")?,
            unk: meta.get_u32_opt("tokenizer.ggml.unknown_token_id")?,
            pad: meta.get_u32_opt("tokenizer.ggml.padding_token_id")?,
            add_bos: meta.get_bool_opt("tokenizer.ggml.add_bos_token")?,
            chat_template: meta.get_str_opt("tokenizer.chat_template")?.map(str::to_string),
        })
    }
}

const KEY_MODEL: &str = "tokenizer.ggml.model";
const KEY_TOKENS: &str = "tokenizer.ggml.tokens";
const KEY_TOKEN_TYPE: &str = "tokenizer.ggml.token_type";
const KEY_MERGES: &str = "tokenizer.ggml.merges";

/// Tokenizer models this crate can build, for messages.
const SUPPORTED_MODELS: &str = "gpt2 (byte-level BPE)";

pub(super) fn build(vocab: &GgufVocab) -> Result<Tokenizer, RuntimeError> {
    match vocab.model.as_str() {
        "gpt2" => {}
        "llama" | "bert" | "t5" | "rwkv" | "plamo2" => {
            return Err(RuntimeError::UnsupportedTokenizerModel {
                model: vocab.model.clone(),
                supported: SUPPORTED_MODELS,
            })
        }
        other => {
            return Err(RuntimeError::UnsupportedTokenizerModel { model: other.to_string(), supported: SUPPORTED_MODELS })
        }
    }
    let spec = pre::lookup(vocab.pre.as_deref())?;

    let n = vocab.tokens.len();
    if n == 0 {
        return Err(RuntimeError::vocab("tokenizer.ggml.tokens", "the vocabulary is empty"));
    }
    if u32::try_from(n).is_err() {
        return Err(RuntimeError::vocab("tokenizer.ggml.tokens", format!("{n} tokens do not fit 32-bit ids")));
    }
    let kinds: Vec<TokenKind> = match &vocab.token_types {
        Some(types) if types.len() != n => {
            return Err(RuntimeError::vocab(
                "tokenizer.ggml.token_type",
                format!("has {} entries but tokenizer.ggml.tokens has {n}", types.len()),
            ))
        }
        Some(types) => types.iter().map(|&t| TokenKind::from_gguf_code(t)).collect(),
        None => vec![TokenKind::Normal; n],
    };

    // llama.cpp renames empty entries so every id keeps a distinct, unmatchable text.
    let texts: Vec<String> = vocab
        .tokens
        .iter()
        .enumerate()
        .map(|(i, t)| if t.is_empty() { format!("[EMPTY_{i}]") } else { t.clone() })
        .collect();
    let mut token_to_id = Vocab::with_capacity(n);
    for (id, text) in (0u32..).zip(texts.iter()) {
        if let Some(first) = token_to_id.insert(text.clone(), id) {
            return Err(RuntimeError::vocab(
                "tokenizer.ggml.tokens",
                format!("token {text:?} appears twice (ids {first} and {id})"),
            ));
        }
    }

    let merges = parse_merges(&vocab.merges, |t| token_to_id.contains_key(t));
    let bpe = BPE::builder()
        .vocab_and_merges(token_to_id, merges)
        .ignore_merges(spec.ignore_merges)
        .build()
        .map_err(|e| RuntimeError::tokenizers("building the BPE model from tokenizer.ggml.tokens/merges", e))?;
    let mut inner = tokenizers::Tokenizer::new(bpe);
    inner.with_pre_tokenizer(Some(pre::build(&spec)?));
    inner.with_decoder(Some(ByteLevelDecoder::new(false, true, false)));

    let check = |key: &str, id: Option<u32>| -> Result<Option<u32>, RuntimeError> {
        match id {
            Some(id) if id as usize >= n => Err(RuntimeError::vocab(key, format!("id {id} is not below the vocabulary size {n}"))),
            other => Ok(other),
        }
    };
    let ids = SpecialIds {
        bos: check("tokenizer.ggml.bos_token_id", vocab.bos)?,
        eos: check("tokenizer.ggml.eos_token_id", vocab.eos)?,
        eot: check("tokenizer.ggml.eot_token_id", vocab.eot)?,
        eom: check("tokenizer.ggml.eom_token_id", vocab.eom)?,
        unk: check("tokenizer.ggml.unknown_token_id", vocab.unk)?,
        pad: check("tokenizer.ggml.padding_token_id", vocab.pad)?,
    };
    let add_bos = vocab.add_bos.unwrap_or(spec.add_bos_default);
    if add_bos && ids.bos.is_none() {
        return Err(RuntimeError::vocab(
            "tokenizer.ggml.add_bos_token",
            "is true, but tokenizer.ggml.bos_token_id is not set",
        ));
    }

    let mut pieces = Vec::with_capacity(n);
    let mut specials = Vec::new();
    for ((id, text), kind) in (0u32..).zip(texts.iter()).zip(kinds.iter()) {
        let piece = match kind {
            TokenKind::Normal => {
                let mut out = Vec::with_capacity(text.len());
                bytes::decode_byte_level(text, &mut out);
                out
            }
            TokenKind::Control | TokenKind::Unknown | TokenKind::UserDefined => text.as_bytes().to_vec(),
            // llama.cpp's BPE detokenizer emits nothing for these.
            TokenKind::Unused | TokenKind::Byte | TokenKind::Undefined => Vec::new(),
        };
        pieces.push(piece);
        if matches!(kind, TokenKind::Control | TokenKind::Unknown | TokenKind::UserDefined) {
            specials.push(SpecialToken {
                content: text.clone(),
                id,
                always: *kind == TokenKind::UserDefined,
                lstrip: false,
                rstrip: false,
            });
        }
    }

    Tokenizer::assemble(Parts {
        inner,
        kinds,
        pieces,
        texts: texts.into_iter().map(Some).collect(),
        specials,
        ids,
        add_bos,
        strip_leading_space: false,
        chat_template: vocab.chat_template.clone(),
        source: format!("gguf gpt2 (pre: {})", vocab.pre.as_deref().unwrap_or("default")),
    })
}

/// Parses `"left right"` merges into pairs. As in llama.cpp the split is at the first space
/// after the first character; the earliest rank wins for duplicate pairs. Merges the `tokenizers`
/// BPE cannot represent (a part or the result missing from the vocabulary, no space) can never
/// produce a vocabulary token and are dropped.
fn parse_merges(merges: &[String], in_vocab: impl Fn(&str) -> bool) -> Vec<(String, String)> {
    let mut seen = std::collections::HashSet::with_capacity(merges.len());
    let mut out = Vec::with_capacity(merges.len());
    for merge in merges {
        let Some(first_len) = merge.chars().next().map(char::len_utf8) else { continue };
        let Some(space) = merge.get(first_len..).and_then(|rest| rest.find(' ')).map(|p| p + first_len) else {
            continue;
        };
        let (Some(left), Some(right)) = (merge.get(..space), merge.get(space + 1..)) else { continue };
        if right.is_empty() || !in_vocab(left) || !in_vocab(right) {
            continue;
        }
        if !in_vocab(&format!("{left}{right}")) {
            continue;
        }
        if seen.insert((left, right)) {
            out.push((left.to_string(), right.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_are_parsed_deduplicated_and_filtered() {
        let vocab = ["a", "b", "ab", "Ġ", "Ġa"];
        let merges: Vec<String> = ["a b", "Ġ a", "a b", "b a", "nospace", "", "x y"].iter().map(|s| s.to_string()).collect();
        let parsed = parse_merges(&merges, |t| vocab.contains(&t));
        assert_eq!(parsed, vec![("a".into(), "b".into()), ("Ġ".into(), "a".into())]);
    }

    #[test]
    fn sentencepiece_is_rejected_clearly() {
        let v = GgufVocab { model: "llama".into(), tokens: vec!["a".into()], ..Default::default() };
        let err = Tokenizer::from_gguf_vocab(&v).unwrap_err().to_string();
        assert!(err.contains("'llama'") && err.contains("not supported"), "{err}");
    }

    #[test]
    fn unknown_pre_is_rejected_with_list() {
        let v = GgufVocab { model: "gpt2".into(), pre: Some("martian".into()), tokens: vec!["a".into()], ..Default::default() };
        let err = Tokenizer::from_gguf_vocab(&v).unwrap_err().to_string();
        assert!(err.contains("martian") && err.contains("smollm"), "{err}");
    }

    #[test]
    fn inconsistent_metadata_is_rejected() {
        let base = GgufVocab { model: "gpt2".into(), tokens: vec!["a".into(), "b".into()], ..Default::default() };
        let v = GgufVocab { token_types: Some(vec![1]), ..base.clone() };
        assert!(Tokenizer::from_gguf_vocab(&v).unwrap_err().to_string().contains("token_type"));
        let v = GgufVocab { eos: Some(2), ..base.clone() };
        assert!(Tokenizer::from_gguf_vocab(&v).unwrap_err().to_string().contains("eos_token_id"));
        let v = GgufVocab { tokens: vec!["a".into(), "a".into()], ..base.clone() };
        assert!(Tokenizer::from_gguf_vocab(&v).unwrap_err().to_string().contains("twice"));
        let v = GgufVocab { add_bos: Some(true), ..base };
        assert!(Tokenizer::from_gguf_vocab(&v).unwrap_err().to_string().contains("add_bos_token"));
    }
}
