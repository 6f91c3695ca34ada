//! Tokenizer ⇄ GGUF metadata: Hugging Face `tokenizer.json` (+ `tokenizer_config.json`) to the
//! `tokenizer.ggml.*` keys llama.cpp and slm_runtime read, and back.
//!
//! Byte-level BPE only (`tokenizer.ggml.model = "gpt2"`), as llama.cpp's `convert_hf_to_gguf.py`
//! writes it: tokens by id (holes filled with `[PADi]`), token types (added special → control 3,
//! other added → user-defined 4, else normal 1), merges as `"left right"`, the pre-tokenizer
//! family, special ids from `tokenizer_config.json` (falling back to `config.json`), `add_bos`
//! and the chat template. The way back rebuilds an equivalent `tokenizer.json`.

use std::path::Path;

use serde_json::{json, Map, Value};
use slm_format::{GgufWriter, Metadata};

use super::HfError;

/// GGUF token type codes.
const NORMAL: i32 = 1;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;

/// GPT-2's split pattern (the `ByteLevel` pre-tokenizer's own regex).
const GPT2_RE: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
/// Llama 3's split pattern as its `tokenizer.json` spells it.
const LLAMA3_RE: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen 2's split pattern.
const QWEN2_RE: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The tokenizer files of an HF model directory, parsed as JSON.
#[derive(Clone, Debug)]
pub struct HfTokenizerFiles {
    /// `tokenizer.json`.
    pub tokenizer: Value,
    /// `tokenizer_config.json`, when present.
    pub config: Option<Value>,
    /// `chat_template.jinja`, when present (takes precedence over the config's template).
    pub chat_template: Option<String>,
}

impl HfTokenizerFiles {
    /// Reads the tokenizer files of `dir`; `None` when there is no `tokenizer.json`.
    pub fn read_dir(dir: &Path) -> Result<Option<HfTokenizerFiles>, HfError> {
        let path = dir.join("tokenizer.json");
        if !path.is_file() {
            return Ok(None);
        }
        let tokenizer = slm_format::hf_config::read_json_limited(&path, 64 << 20)?;
        let cfg_path = dir.join("tokenizer_config.json");
        let config = if cfg_path.is_file() { Some(slm_format::hf_config::read_json(&cfg_path)?) } else { None };
        let jinja = dir.join("chat_template.jinja");
        let chat_template = if jinja.is_file() {
            Some(std::fs::read_to_string(&jinja).map_err(|e| HfError::io(&jinja, e))?)
        } else {
            None
        };
        Ok(Some(HfTokenizerFiles { tokenizer, config, chat_template }))
    }
}

/// Special ids from `config.json`, used when `tokenizer_config.json` does not name them.
#[derive(Clone, Copy, Debug, Default)]
pub struct FallbackIds {
    /// `bos_token_id`.
    pub bos: Option<u32>,
    /// `eos_token_id` (first).
    pub eos: Option<u32>,
    /// `pad_token_id`.
    pub pad: Option<u32>,
}

fn tok_err(msg: impl Into<String>) -> HfError {
    HfError::Tokenizer(msg.into())
}

/// Writes the `tokenizer.*` keys for `files` into `w`. `n_vocab` is the embedding's row count
/// (the token list is padded to it, as llama.cpp does).
pub fn hf_tokenizer_to_gguf(
    files: &HfTokenizerFiles,
    n_vocab: usize,
    fallback: FallbackIds,
    w: &mut GgufWriter,
) -> Result<(), HfError> {
    let tok = &files.tokenizer;
    let model = tok.get("model").ok_or_else(|| tok_err("tokenizer.json has no \"model\""))?;
    let kind = model.get("type").and_then(Value::as_str).unwrap_or("");
    if kind != "BPE" {
        return Err(HfError::Unsupported(format!(
            "tokenizer model \"{kind}\": only byte-level BPE tokenizers (GGUF model gpt2) are imported so far"
        )));
    }
    let vocab = model.get("vocab").and_then(Value::as_object).ok_or_else(|| tok_err("model.vocab is not an object"))?;
    let mut entries: Vec<(u32, String, i32)> = Vec::with_capacity(vocab.len());
    for (text, id) in vocab {
        let id = id.as_u64().and_then(|i| u32::try_from(i).ok()).ok_or_else(|| tok_err(format!("id of {text:?} is not a u32")))?;
        entries.push((id, text.clone(), NORMAL));
    }
    for added in tok.get("added_tokens").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]) {
        let id = added.get("id").and_then(Value::as_u64).and_then(|i| u32::try_from(i).ok());
        let content = added.get("content").and_then(Value::as_str);
        let (Some(id), Some(content)) = (id, content) else {
            return Err(tok_err("an added_tokens entry lacks a u32 \"id\" or a string \"content\""));
        };
        let special = added.get("special").and_then(Value::as_bool).unwrap_or(false);
        entries.push((id, content.to_string(), if special { CONTROL } else { USER_DEFINED }));
    }
    let max_id = entries.iter().map(|e| e.0 as usize).max().unwrap_or(0);
    if max_id >= n_vocab.max(1 << 22) {
        return Err(tok_err(format!("token id {max_id} is implausibly large")));
    }
    let n = n_vocab.max(max_id + 1);
    let mut tokens: Vec<Option<String>> = vec![None; n];
    let mut types = vec![USER_DEFINED; n];
    for (id, text, ty) in entries {
        let slot = id as usize;
        // An added token overrides the vocabulary entry with the same id (it comes later).
        if let (Some(t), Some(k)) = (tokens.get_mut(slot), types.get_mut(slot)) {
            *t = Some(text);
            *k = ty;
        }
    }
    let tokens: Vec<String> =
        tokens.into_iter().enumerate().map(|(i, t)| t.unwrap_or_else(|| format!("[PAD{i}]"))).collect();
    let merges = read_merges(model)?;
    let pre = detect_pre(tok.get("pre_tokenizer").unwrap_or(&Value::Null))?;

    let cfg = files.config.as_ref();
    let lookup = |key: &str| -> Option<u32> {
        let text = special_text(cfg?, key)?;
        tokens.iter().position(|t| *t == text).and_then(|i| u32::try_from(i).ok())
    };
    w.add_string("tokenizer.ggml.model", "gpt2");
    w.add_string("tokenizer.ggml.pre", pre);
    w.add_str_array("tokenizer.ggml.tokens", &tokens);
    w.add_i32_array("tokenizer.ggml.token_type", &types);
    w.add_str_array("tokenizer.ggml.merges", &merges);
    let ids = [
        ("bos", lookup("bos_token").or(fallback.bos)),
        ("eos", lookup("eos_token").or(fallback.eos)),
        ("unknown", lookup("unk_token")),
        ("padding", lookup("pad_token").or(fallback.pad)),
    ];
    for (name, id) in ids {
        if let Some(id) = id {
            w.add_u32(format!("tokenizer.ggml.{name}_token_id"), id);
        }
    }
    let add_bos = cfg.and_then(|c| c.get("add_bos_token")).and_then(Value::as_bool).or_else(|| template_adds_bos(tok));
    if let Some(add_bos) = add_bos {
        w.add_bool("tokenizer.ggml.add_bos_token", add_bos);
    }
    if let Some(add_eos) = cfg.and_then(|c| c.get("add_eos_token")).and_then(Value::as_bool) {
        w.add_bool("tokenizer.ggml.add_eos_token", add_eos);
    }
    if let Some(t) = files.chat_template.clone().or_else(|| cfg.and_then(chat_template_of)) {
        w.add_string("tokenizer.chat_template", t);
    }
    Ok(())
}

/// Whether a `TemplateProcessing` post-processor puts a special token before the text (how
/// Llama 3 adds BOS without an `add_bos_token` flag); `None` for other post-processors.
fn template_adds_bos(tok: &Value) -> Option<bool> {
    let post = tok.get("post_processor")?;
    let template = |p: &Value| -> Option<bool> {
        if p.get("type")?.as_str()? != "TemplateProcessing" {
            return None;
        }
        Some(p.get("single")?.as_array()?.first()?.get("SpecialToken").is_some())
    };
    match post.get("type")?.as_str()? {
        "Sequence" => post.get("processors")?.as_array()?.iter().find_map(template),
        _ => template(post),
    }
}

fn read_merges(model: &Value) -> Result<Vec<String>, HfError> {
    let list = model.get("merges").and_then(Value::as_array).ok_or_else(|| tok_err("model.merges is not an array"))?;
    list.iter()
        .map(|m| match m {
            Value::String(s) => Ok(s.clone()),
            Value::Array(pair) => match pair.as_slice() {
                [Value::String(a), Value::String(b)] => Ok(format!("{a} {b}")),
                _ => Err(tok_err("a merge is not a pair of strings")),
            },
            _ => Err(tok_err("a merge is neither \"a b\" nor [\"a\", \"b\"]")),
        })
        .collect()
}

/// The text of `bos_token` etc. in `tokenizer_config.json` (a string or `{"content": ..}`).
fn special_text(cfg: &Value, key: &str) -> Option<String> {
    match cfg.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

fn chat_template_of(cfg: &Value) -> Option<String> {
    match cfg.get("chat_template")? {
        Value::String(s) => Some(s.clone()),
        // A list of named templates: take "default".
        Value::Array(list) => list
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
            .and_then(|t| t.get("template"))
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

/// Maps the structure of a byte-level pre-tokenizer onto a llama.cpp `tokenizer.ggml.pre` name.
fn detect_pre(pre: &Value) -> Result<&'static str, HfError> {
    let ty = |v: &Value| v.get("type").and_then(Value::as_str).unwrap_or("").to_string();
    let byte_level_regex = |v: &Value| ty(v) == "ByteLevel" && v.get("use_regex").and_then(Value::as_bool).unwrap_or(true);
    let split_re = |v: &Value| -> Option<String> {
        (ty(v) == "Split").then(|| v.get("pattern")?.get("Regex")?.as_str().map(str::to_string)).flatten()
    };
    if byte_level_regex(pre) {
        return Ok("gpt2");
    }
    if ty(pre) == "Sequence" {
        let steps = pre.get("pretokenizers").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        match steps {
            // \p{N} then GPT-2: llama.cpp's "smollm" (same regexes as starcoder).
            [digits, bl]
                if ty(digits) == "Digits"
                    && byte_level_regex(bl)
                    && digits.get("individual_digits").and_then(Value::as_bool) == Some(true) =>
            {
                return Ok("smollm")
            }
            [split, bl] if ty(bl) == "ByteLevel" && !byte_level_regex(bl) => match split_re(split).as_deref() {
                Some(LLAMA3_RE) => return Ok("llama-bpe"),
                Some(QWEN2_RE) => return Ok("qwen2"),
                Some(GPT2_RE) => return Ok("gpt2"),
                _ => {}
            },
            _ => {}
        }
    }
    Err(HfError::Unsupported(format!(
        "pre-tokenizer {pre}: only GPT-2, SmolLM/StarCoder, Llama 3 and Qwen 2 byte-level pre-tokenizers are recognised"
    )))
}

/// The HF pre-tokenizer for a `tokenizer.ggml.pre` name.
fn pre_tokenizer_json(pre: &str) -> Result<Value, HfError> {
    let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
    let split = |re: &str| json!({"type": "Split", "pattern": {"Regex": re}, "behavior": "Isolated", "invert": false});
    Ok(match pre {
        "gpt2" | "gpt-2" => byte_level(true),
        "smollm" | "starcoder" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level(true)]}),
        "llama-bpe" | "llama3" | "llama-v3" => json!({"type": "Sequence", "pretokenizers": [split(LLAMA3_RE), byte_level(false)]}),
        "qwen2" => json!({"type": "Sequence", "pretokenizers": [split(QWEN2_RE), byte_level(false)]}),
        other => {
            return Err(HfError::Unsupported(format!(
                "GGUF pre-tokenizer \"{other}\" has no tokenizer.json equivalent here (known: gpt2, smollm, starcoder, llama-bpe, qwen2)"
            )))
        }
    })
}

/// `tokenizer.json` and `tokenizer_config.json` for the GGUF tokenizer keys in `meta`.
/// `n_ctx` becomes `model_max_length`.
pub fn gguf_tokenizer_to_hf(meta: &Metadata, n_ctx: usize) -> Result<(Value, Value), HfError> {
    let model = meta.get_str("tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(HfError::Unsupported(format!(
            "GGUF tokenizer model \"{model}\": only byte-level BPE (gpt2) is exported so far"
        )));
    }
    let tokens = meta.get_str_array("tokenizer.ggml.tokens")?;
    let types = if meta.contains_key("tokenizer.ggml.token_type") {
        meta.get_i32_array("tokenizer.ggml.token_type")?
    } else {
        vec![NORMAL; tokens.len()]
    };
    if types.len() != tokens.len() {
        return Err(tok_err(format!("{} token types for {} tokens", types.len(), tokens.len())));
    }
    let merges = meta.get_str_array("tokenizer.ggml.merges")?;
    let pre = meta.get_str_opt("tokenizer.ggml.pre")?.unwrap_or("gpt2");

    let mut vocab = Map::new();
    let mut added = Vec::new();
    for (id, (text, ty)) in tokens.iter().zip(&types).enumerate() {
        vocab.insert(text.clone(), json!(id));
        if *ty == CONTROL || *ty == USER_DEFINED {
            added.push(json!({"id": id, "content": text, "single_word": false, "lstrip": false, "rstrip": false,
                "normalized": *ty != CONTROL, "special": *ty == CONTROL}));
        }
    }
    let merges_json: Vec<Value> = merges
        .iter()
        .map(|m| m.split_once(' ').map(|(a, b)| json!([a, b])).ok_or_else(|| tok_err(format!("merge {m:?} has no space"))))
        .collect::<Result<_, _>>()?;

    let text_of = |key: &str| -> Result<Option<&String>, HfError> {
        Ok(meta.get_u32_opt(key)?.and_then(|id| tokens.get(id as usize)))
    };
    let bos = text_of("tokenizer.ggml.bos_token_id")?;
    let add_bos = meta.get_bool_opt("tokenizer.ggml.add_bos_token")?.unwrap_or(false);
    let post_processor = match (add_bos, bos) {
        (true, Some(b)) => {
            let id = meta.get_u32("tokenizer.ggml.bos_token_id")?;
            json!({"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": b, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": b, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                         {"SpecialToken": {"id": b, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {b.as_str(): {"id": b, "ids": [id], "tokens": [b]}}})
        }
        _ => json!({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true}),
    };
    let tokenizer = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer_json(pre)?,
        "post_processor": post_processor,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
            "ignore_merges": matches!(pre, "llama-bpe" | "llama3" | "llama-v3"),
            "vocab": vocab, "merges": merges_json},
    });

    let mut config = Map::new();
    config.insert("tokenizer_class".into(), json!("PreTrainedTokenizerFast"));
    config.insert("add_bos_token".into(), json!(add_bos));
    config.insert("add_eos_token".into(), json!(meta.get_bool_opt("tokenizer.ggml.add_eos_token")?.unwrap_or(false)));
    config.insert("clean_up_tokenization_spaces".into(), json!(false));
    config.insert("model_max_length".into(), json!(n_ctx));
    for (field, key) in [
        ("bos_token", "tokenizer.ggml.bos_token_id"),
        ("eos_token", "tokenizer.ggml.eos_token_id"),
        ("unk_token", "tokenizer.ggml.unknown_token_id"),
        ("pad_token", "tokenizer.ggml.padding_token_id"),
    ] {
        if let Some(t) = text_of(key)? {
            config.insert(field.into(), json!(t));
        }
    }
    if let Some(t) = meta.get_str_opt("tokenizer.chat_template")? {
        config.insert("chat_template".into(), json!(t));
    }
    Ok((tokenizer, Value::Object(config)))
}
