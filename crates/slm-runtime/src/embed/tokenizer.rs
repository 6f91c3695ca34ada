//! The WordPiece tokenizer of a BERT-family encoder, as sentence-transformers applies it:
//! `[CLS] pieces [SEP]`, truncated to the model's sequence limit, never padded (the encoder packs
//! sequences instead).
//!
//! From GGUF: the original `tokenizer.json` when the file carries it (`tokenizer.huggingface.json`,
//! written by slm's converter), otherwise llama.cpp's `bert` vocabulary (phantom-space spelling)
//! rebuilt into an uncased BERT tokenizer, which is how llama.cpp itself tokenizes such files.

use serde_json::{json, Value};
use slm_format::Metadata;
use tokenizers::{PaddingParams, TruncationParams, TruncationStrategy};

use crate::error::RuntimeError;

/// Largest `tokenizer.huggingface.json` accepted (real WordPiece ones are about 0.7 MB).
const MAX_JSON_BYTES: usize = 64 << 20;

/// GGUF token type of control tokens.
const CONTROL: i32 = 3;

/// A WordPiece tokenizer producing encoder inputs.
#[derive(Clone)]
pub struct EncoderTokenizer {
    inner: tokenizers::Tokenizer,
    max_len: usize,
}

impl std::fmt::Debug for EncoderTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncoderTokenizer").field("max_len", &self.max_len).finish_non_exhaustive()
    }
}

impl EncoderTokenizer {
    /// Builds the tokenizer from a `bert` GGUF file's metadata; sequences are cut to `max_len`
    /// tokens (special tokens included).
    pub fn from_gguf(md: &Metadata, max_len: usize) -> Result<EncoderTokenizer, RuntimeError> {
        let inner = match md.get_str_opt("tokenizer.huggingface.json")? {
            Some(json) => from_json(json.as_bytes())?,
            None => from_bert_vocab(md)?,
        };
        EncoderTokenizer::with_limit(inner, max_len)
    }

    /// Builds the tokenizer from `tokenizer.json` bytes.
    pub fn from_json_bytes(json: &[u8], max_len: usize) -> Result<EncoderTokenizer, RuntimeError> {
        EncoderTokenizer::with_limit(from_json(json)?, max_len)
    }

    fn with_limit(mut inner: tokenizers::Tokenizer, max_len: usize) -> Result<EncoderTokenizer, RuntimeError> {
        if max_len < 2 {
            return Err(RuntimeError::InvalidRequest(format!("sequence limit {max_len} leaves no room for text")));
        }
        let trunc =
            TruncationParams { max_length: max_len, strategy: TruncationStrategy::LongestFirst, ..Default::default() };
        inner.with_truncation(Some(trunc)).map_err(|e| RuntimeError::tokenizers("setting truncation", e))?;
        inner.with_padding(None::<PaddingParams>);
        Ok(EncoderTokenizer { inner, max_len })
    }

    /// Longest sequence produced.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Token ids of `text` with `[CLS]`/`[SEP]`, truncated to [`EncoderTokenizer::max_len`].
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, RuntimeError> {
        let enc = self.inner.encode(text, true).map_err(|e| RuntimeError::tokenizers("encoding", e))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The id of a vocabulary entry (e.g. `[CLS]`).
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}

fn from_json(json: &[u8]) -> Result<tokenizers::Tokenizer, RuntimeError> {
    if json.len() > MAX_JSON_BYTES {
        return Err(RuntimeError::vocab(
            "tokenizer.json",
            format!("{} bytes is over the {MAX_JSON_BYTES} limit", json.len()),
        ));
    }
    // Parse fully first: the tokenizers crate panics on some malformed JSON (see tokenizer/hf.rs).
    let value: Value = serde_json::from_slice(json)
        .map_err(|e| RuntimeError::Json { path: "tokenizer.json".into(), reason: e.to_string() })?;
    crate::tokenizer::json_check::check_post_processor(&value)
        .map_err(|reason| RuntimeError::vocab("tokenizer.json", reason))?;
    let kind = value.pointer("/model/type").and_then(Value::as_str).unwrap_or("");
    if kind != "WordPiece" {
        return Err(RuntimeError::UnsupportedTokenizerModel {
            model: kind.to_string(),
            supported: "WordPiece (BERT encoders)",
        });
    }
    tokenizers::Tokenizer::from_bytes(json).map_err(|e| RuntimeError::tokenizers("loading tokenizer.json", e))
}

/// llama.cpp's spelling back to WordPiece: `▁word` → `word`, `piece` → `##piece`, control tokens as is.
fn from_bert_vocab(md: &Metadata) -> Result<tokenizers::Tokenizer, RuntimeError> {
    let model = md.get_str("tokenizer.ggml.model")?;
    if model != "bert" {
        return Err(RuntimeError::UnsupportedTokenizerModel { model: model.into(), supported: "bert (WordPiece)" });
    }
    let tokens = md.get_str_array("tokenizer.ggml.tokens")?;
    let types = md.get_i32_array("tokenizer.ggml.token_type").unwrap_or_default();
    let mut vocab = serde_json::Map::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        let id = u32::try_from(i).map_err(|_| RuntimeError::vocab("tokenizer.ggml.tokens", "too many tokens"))?;
        let word = if types.get(i) == Some(&CONTROL) {
            t.clone()
        } else if let Some(w) = t.strip_prefix('\u{2581}') {
            w.to_string()
        } else {
            format!("##{t}")
        };
        vocab.entry(word).or_insert(json!(id));
    }
    let name_of = |key: &str, default: &str| -> Result<(String, u32), RuntimeError> {
        let id = md.get_u32_opt(&format!("tokenizer.ggml.{key}_token_id"))?;
        let id =
            id.or_else(|| vocab.get(default).and_then(Value::as_u64).and_then(|v| u32::try_from(v).ok())).ok_or_else(
                || RuntimeError::vocab("tokenizer.ggml.tokens", format!("no {default} token and no {key}_token_id")),
            )?;
        let text = tokens.get(id as usize).cloned().ok_or_else(|| {
            RuntimeError::vocab(format!("tokenizer.ggml.{key}_token_id"), format!("id {id} is outside the vocabulary"))
        })?;
        Ok((text, id))
    };
    let unk = name_of("unknown", "[UNK]")?;
    let cls = name_of("cls", "[CLS]")?;
    let sep = name_of("seperator", "[SEP]")?;
    let added: Vec<Value> = tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| types.get(*i) == Some(&CONTROL))
        .map(|(i, t)| {
            json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": true})
        })
        .collect();
    // The JSON form of an uncased BERT tokenizer (what `BertTokenizerFast` saves).
    let spec = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "BertProcessing", "sep": [sep.0, sep.1], "cls": [cls.0, cls.1]},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": unk.0, "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab},
    });
    let bytes = serde_json::to_vec(&spec).map_err(|e| RuntimeError::tokenizers("building the WordPiece model", e))?;
    from_json(&bytes)
}
