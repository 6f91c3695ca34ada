//! Building a [`Tokenizer`] from a Hugging Face `tokenizer.json` (+ `tokenizer_config.json`).
//!
//! Added tokens marked `special` behave like GGUF control tokens (split off only with special
//! parsing, hidden by `skip_special`); other added tokens behave like user-defined ones. Piece
//! bytes are derived from the decoder: byte-level decoders map characters back to bytes,
//! SentencePiece-style ones (`Metaspace`, `Replace ▁`, `ByteFallback`) turn `▁` into a space and
//! `<0xXX>` into the byte.

use std::path::Path;

use serde_json::Value;

use super::special::SpecialToken;
use super::{bytes, Parts, SpecialIds, TokenKind, Tokenizer};
use crate::error::RuntimeError;

/// How a vocabulary string turns into bytes, decided from the tokenizer's decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PieceStyle {
    /// GPT-2 byte-level alphabet.
    ByteLevel,
    /// `▁` stands for a space; `<0xXX>` for a byte when `byte_fallback` is set.
    SentencePiece { byte_fallback: bool },
    /// The string is the text.
    Raw,
}

/// Loads `path` and the optional `tokenizer_config.json` / `chat_template.jinja` next to it.
pub(super) fn from_file(path: &Path) -> Result<Tokenizer, RuntimeError> {
    let json = read(path)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let config_path = dir.join("tokenizer_config.json");
    let config = if config_path.is_file() { Some(read(&config_path)?) } else { None };
    let jinja_path = dir.join("chat_template.jinja");
    let jinja = if jinja_path.is_file() {
        let raw = read(&jinja_path)?;
        Some(String::from_utf8(raw).map_err(|e| RuntimeError::Json {
            path: jinja_path.display().to_string(),
            reason: format!("not UTF-8: {e}"),
        })?)
    } else {
        None
    };
    from_bytes(&json, config.as_deref(), jinja, &path.display().to_string())
}

fn read(path: &Path) -> Result<Vec<u8>, RuntimeError> {
    std::fs::read(path).map_err(|source| RuntimeError::Io { path: path.to_path_buf(), source })
}

/// Builds the tokenizer. `name` is used in messages.
pub(super) fn from_bytes(
    json: &[u8],
    config: Option<&[u8]>,
    chat_template_file: Option<String>,
    name: &str,
) -> Result<Tokenizer, RuntimeError> {
    // Reject malformed JSON before `tokenizers` sees it: tokenizers 0.22 panics
    // (`.expect("Helper")` in decoders/mod.rs) on a syntax error or a bad string escape inside the
    // "decoder" object. A full parse (not `IgnoredAny`, which skips strings unchecked) catches both.
    // Found by fuzz/fuzz_targets/tokenizer_json.rs; test: tests/fuzz_regressions.rs.
    let value = serde_json::from_slice::<Value>(json)
        .map_err(|e| RuntimeError::Json { path: name.to_string(), reason: e.to_string() })?;
    // ... and it panics while encoding with a post-processor template that names a missing special
    // token (fuzz/fuzz_targets/wordpiece_json.rs).
    super::json_check::check_post_processor(&value).map_err(|reason| RuntimeError::vocab(name, reason))?;
    let mut inner = tokenizers::Tokenizer::from_bytes(json).map_err(|e| RuntimeError::tokenizers(format!("loading {name}"), e))?;
    // Special tokens are split off by our partitioner, only when the caller asks for it.
    inner.set_encode_special_tokens(true);
    let config: Value = match config {
        Some(bytes) => serde_json::from_slice(bytes)
            .map_err(|e| RuntimeError::Json { path: "tokenizer_config.json".into(), reason: e.to_string() })?,
        None => Value::Null,
    };

    let decoder_json = match inner.get_decoder() {
        Some(d) => serde_json::to_value(d).unwrap_or(Value::Null),
        None => Value::Null,
    };
    let (style, strip_leading_space) = piece_style(&decoder_json);

    let vocab = inner.get_vocab(true);
    let n = vocab.values().copied().max().map_or(0, |m| m as usize + 1);
    if n == 0 {
        return Err(RuntimeError::vocab(name, "the vocabulary is empty"));
    }
    // The tables below have one row per id up to the largest: a tiny file with an id of 4e9 would
    // make them allocate ~100 GB. Real vocabularies are dense (holes, if any, are few), so refuse
    // ids far beyond the token count. Found by fuzz/fuzz_targets/tokenizer_json.rs; test:
    // tests/fuzz_regressions.rs.
    if n > vocab.len().saturating_mul(2).saturating_add(1024) {
        return Err(RuntimeError::vocab(
            name,
            format!("the largest token id is {} but there are only {} tokens; the ids are not dense", n - 1, vocab.len()),
        ));
    }
    let added = inner.get_added_tokens_decoder();

    let mut kinds = Vec::with_capacity(n);
    let mut pieces = Vec::with_capacity(n);
    let mut texts = Vec::with_capacity(n);
    let mut specials = Vec::new();
    for id in 0..n as u32 {
        let text = inner.id_to_token(id);
        let (kind, piece) = match (&text, added.get(&id)) {
            (None, _) => (TokenKind::Undefined, Vec::new()),
            (Some(t), Some(tok)) => {
                if tok.special {
                    specials.push(SpecialToken {
                        content: tok.content.clone(),
                        id,
                        always: false,
                        lstrip: tok.lstrip,
                        rstrip: tok.rstrip,
                    });
                    (TokenKind::Control, t.as_bytes().to_vec())
                } else {
                    (TokenKind::UserDefined, t.as_bytes().to_vec())
                }
            }
            (Some(t), None) => piece_of(t, style),
        };
        kinds.push(kind);
        pieces.push(piece);
        texts.push(text);
    }

    let token = |key: &str| -> Option<u32> { special_token_text(&config, key).and_then(|t| inner.token_to_id(&t)) };
    let ids = SpecialIds {
        bos: token("bos_token"),
        eos: token("eos_token"),
        eot: None,
        eom: None,
        unk: token("unk_token"),
        pad: token("pad_token"),
    };
    let add_bos = match config.get("add_bos_token").and_then(Value::as_bool) {
        Some(v) => v,
        // No explicit flag: see whether the post-processor puts BOS in front of an empty text.
        None => match (ids.bos, inner.encode_fast("", true)) {
            (Some(bos), Ok(enc)) => enc.get_ids().first() == Some(&bos),
            _ => false,
        },
    };
    let chat_template = chat_template_file.or_else(|| chat_template_from_config(&config));

    Tokenizer::assemble(Parts {
        inner,
        kinds,
        pieces,
        texts,
        specials,
        ids,
        add_bos: add_bos && ids.bos.is_some(),
        strip_leading_space,
        chat_template,
        source: name.to_string(),
    })
}

/// Kind and bytes of a non-added vocabulary entry.
fn piece_of(text: &str, style: PieceStyle) -> (TokenKind, Vec<u8>) {
    match style {
        PieceStyle::ByteLevel => {
            let mut out = Vec::with_capacity(text.len());
            bytes::decode_byte_level(text, &mut out);
            (TokenKind::Normal, out)
        }
        PieceStyle::SentencePiece { byte_fallback } => {
            if byte_fallback {
                if let Some(b) = parse_byte_token(text) {
                    return (TokenKind::Byte, vec![b]);
                }
            }
            (TokenKind::Normal, text.replace('\u{2581}', " ").into_bytes())
        }
        PieceStyle::Raw => (TokenKind::Normal, text.as_bytes().to_vec()),
    }
}

/// `<0xAB>` → `0xAB`.
fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// Decides the piece style from the serialized decoder, and whether a leading space is dropped.
fn piece_style(decoder: &Value) -> (PieceStyle, bool) {
    let mut types = Vec::new();
    collect_decoders(decoder, &mut types);
    let has = |t: &str| types.iter().any(|d| d.get("type").and_then(Value::as_str) == Some(t));
    if has("ByteLevel") {
        return (PieceStyle::ByteLevel, false);
    }
    let replaces_meta = types.iter().any(|d| {
        d.get("type").and_then(Value::as_str) == Some("Replace")
            && d.get("pattern").and_then(|p| p.get("String")).and_then(Value::as_str) == Some("\u{2581}")
    });
    if has("Metaspace") || replaces_meta {
        let strip = types.iter().any(|d| match d.get("type").and_then(Value::as_str) {
            Some("Strip") => d.get("start").and_then(Value::as_u64).unwrap_or(0) > 0,
            Some("Metaspace") => {
                let scheme = d.get("prepend_scheme").and_then(Value::as_str);
                let legacy = d.get("add_prefix_space").and_then(Value::as_bool);
                matches!(scheme, Some("always") | Some("first")) || legacy == Some(true)
            }
            _ => false,
        });
        return (PieceStyle::SentencePiece { byte_fallback: has("ByteFallback") }, strip);
    }
    (PieceStyle::Raw, false)
}

/// Flattens `Sequence` decoders.
fn collect_decoders<'a>(decoder: &'a Value, out: &mut Vec<&'a Value>) {
    if let Some(list) = decoder.get("decoders").and_then(Value::as_array) {
        for d in list {
            collect_decoders(d, out);
        }
    } else if decoder.is_object() {
        out.push(decoder);
    }
}

/// `bos_token` etc. are either a string or an object with `content`.
fn special_token_text(config: &Value, key: &str) -> Option<String> {
    match config.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// `chat_template` is a string, or a list of `{name, template}` (the one named "default" wins).
fn chat_template_from_config(config: &Value) -> Option<String> {
    match config.get("chat_template")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(list) => {
            let named = |name: &str| {
                list.iter().find(|t| t.get("name").and_then(Value::as_str) == Some(name))
            };
            named("default")
                .or_else(|| list.first())
                .and_then(|t| t.get("template"))
                .and_then(Value::as_str)
                .map(str::to_string)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decoder_styles() {
        assert_eq!(piece_style(&json!({"type": "ByteLevel"})), (PieceStyle::ByteLevel, false));
        let llama2 = json!({"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}
        ]});
        assert_eq!(piece_style(&llama2), (PieceStyle::SentencePiece { byte_fallback: true }, true));
        assert_eq!(piece_style(&Value::Null), (PieceStyle::Raw, false));
    }

    #[test]
    fn byte_tokens() {
        assert_eq!(parse_byte_token("<0x0A>"), Some(10));
        assert_eq!(parse_byte_token("<0xZZ>"), None);
        assert_eq!(parse_byte_token("<0x0A"), None);
        assert_eq!(piece_of("\u{2581}hi", PieceStyle::SentencePiece { byte_fallback: true }).1, b" hi");
    }

    #[test]
    fn config_fields() {
        let c = json!({"bos_token": {"content": "<s>"}, "eos_token": "</s>",
                       "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]});
        assert_eq!(special_token_text(&c, "bos_token").as_deref(), Some("<s>"));
        assert_eq!(special_token_text(&c, "eos_token").as_deref(), Some("</s>"));
        assert_eq!(special_token_text(&c, "pad_token"), None);
        assert_eq!(chat_template_from_config(&c).as_deref(), Some("D"));
    }
}
