//! Training a byte-level BPE tokenizer (GPT-2 / SmolLM2 style) on text, and turning a
//! `tokenizer.json` into the GGUF `tokenizer.ggml.*` metadata that training packs data with and
//! that the exported model embeds.
//!
//! The trained tokenizer splits digits individually and then applies GPT-2's byte-level regex
//! (llama.cpp's pre-tokenizer `smollm`), so slm_runtime's GGUF tokenizer encodes exactly what
//! the `tokenizers` crate does. Special tokens take the first ids, in the order given.

use crate::error::TrainError;
use serde_json::{json, Value};
use slm_format::{GgufWriter, Metadata};
use slm_model::hf::{hf_tokenizer_to_gguf, FallbackIds, HfTokenizerFiles};
use std::path::Path;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{AddedToken, DecoderWrapper, TokenizerBuilder};

/// The special tokens of a new tokenizer unless told otherwise (SmolLM2's first three).
pub const DEFAULT_SPECIAL_TOKENS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// ChatML, used as the chat template when `<|im_start|>` and `<|im_end|>` are special tokens.
const CHATML_TEMPLATE: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// Smallest vocabulary accepted: the 256 byte symbols plus a few merges.
pub const MIN_VOCAB: usize = 260;
/// Largest vocabulary accepted (far above anything a CPU-trained model uses).
pub const MAX_VOCAB: usize = 1 << 20;

/// Settings of [`train_bpe`].
#[derive(Clone, Debug, PartialEq)]
pub struct BpeOptions {
    /// Target vocabulary size, special tokens included.
    pub vocab_size: usize,
    /// Pairs seen fewer times than this are never merged.
    pub min_frequency: u64,
    /// Special tokens (ids `0..n` in this order); the first is the end-of-text token that
    /// separates documents.
    pub special_tokens: Vec<String>,
}

impl BpeOptions {
    /// `vocab_size` with the default special tokens and minimum frequency 2.
    pub fn new(vocab_size: usize) -> BpeOptions {
        BpeOptions {
            vocab_size,
            min_frequency: 2,
            special_tokens: DEFAULT_SPECIAL_TOKENS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// A trained tokenizer: `tokenizer.json` and the matching `tokenizer_config.json`.
#[derive(Clone, Debug)]
pub struct TrainedTokenizer {
    /// The Hugging Face `tokenizer.json`.
    pub tokenizer: Value,
    /// `tokenizer_config.json`: BOS/EOS (the first special token), no BOS added, ChatML template
    /// when its tokens exist.
    pub config: Value,
    /// Vocabulary size reached (may be below the target on little text).
    pub vocab_size: usize,
}

fn tok_err(e: impl std::fmt::Display) -> TrainError {
    TrainError::Data(format!("tokenizer: {e}"))
}

/// Trains a byte-level BPE tokenizer on `docs`.
pub fn train_bpe<S: AsRef<str> + Send + Sync>(
    docs: &[S],
    opts: &BpeOptions,
) -> Result<TrainedTokenizer, TrainError> {
    if !(MIN_VOCAB..=MAX_VOCAB).contains(&opts.vocab_size) {
        return Err(TrainError::Setting(format!(
            "vocabulary size {} must be between {MIN_VOCAB} (256 bytes + a few merges) and {MAX_VOCAB}",
            opts.vocab_size
        )));
    }
    let Some(eot) = opts.special_tokens.first().cloned() else {
        return Err(TrainError::Setting(
            "at least one special token (the end-of-text token) is needed".into(),
        ));
    };
    if opts.special_tokens.iter().any(|s| s.is_empty()) {
        return Err(TrainError::Setting(
            "special tokens must not be empty".into(),
        ));
    }
    let mut trainer = BpeTrainerBuilder::new()
        .vocab_size(opts.vocab_size)
        .min_frequency(opts.min_frequency)
        .show_progress(false)
        .special_tokens(
            opts.special_tokens
                .iter()
                .map(|s| AddedToken::from(s.clone(), true))
                .collect(),
        )
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let pre: PreTokenizerWrapper = Sequence::new(vec![
        Digits::new(true).into(),
        ByteLevel::new(false, true, true).into(),
    ])
    .into();
    let mut tokenizer = TokenizerBuilder::<
        BPE,
        NormalizerWrapper,
        PreTokenizerWrapper,
        PostProcessorWrapper,
        DecoderWrapper,
    >::new()
    .with_model(BPE::default())
    .with_normalizer(None)
    .with_pre_tokenizer(Some(pre))
    .with_post_processor(Some(ByteLevel::new(false, true, true).into()))
    .with_decoder(Some(ByteLevelDecoder::default().into()))
    .build()
    .map_err(tok_err)?;
    tokenizer
        .train(&mut trainer, docs.iter().map(|d| d.as_ref()))
        .map_err(tok_err)?;
    let vocab_size = tokenizer.get_vocab_size(true);
    let text = tokenizer.to_string(false).map_err(tok_err)?;
    let tokenizer: Value = serde_json::from_str(&text).map_err(tok_err)?;
    let has = |t: &str| opts.special_tokens.iter().any(|s| s == t);
    let mut config = json!({
        "bos_token": eot,
        "eos_token": eot,
        "add_bos_token": false,
        "add_eos_token": false,
    });
    if has("<|im_start|>") && has("<|im_end|>") {
        config["chat_template"] = Value::String(CHATML_TEMPLATE.into());
    }
    Ok(TrainedTokenizer {
        tokenizer,
        config,
        vocab_size,
    })
}

/// The `tokenizer_config.json` that belongs next to `tokenizer_json` (same folder).
pub fn config_path(tokenizer_json: &Path) -> std::path::PathBuf {
    tokenizer_json.with_file_name("tokenizer_config.json")
}

/// Writes `tok` as `path` (tokenizer.json) plus `tokenizer_config.json` beside it, atomically.
pub fn save(tok: &TrainedTokenizer, path: &Path) -> Result<(), TrainError> {
    let write = |p: &Path, v: &Value| -> Result<(), TrainError> {
        let bytes = serde_json::to_vec_pretty(v).map_err(tok_err)?;
        slm_format::atomic::write_bytes_atomic(p, &bytes).map_err(|source| TrainError::Io {
            path: p.display().to_string(),
            source,
        })
    };
    write(path, &tok.tokenizer)?;
    write(&config_path(path), &tok.config)
}

/// The GGUF tokenizer metadata of a `tokenizer.json` (and its `tokenizer_config.json` when one
/// sits beside it; otherwise the end-of-text token `<|endoftext|>` is both BOS and EOS).
pub fn metadata_from_file(path: &Path) -> Result<Metadata, TrainError> {
    let read = |p: &Path| -> Result<Value, TrainError> {
        let bytes = std::fs::read(p).map_err(|source| TrainError::Io {
            path: p.display().to_string(),
            source,
        })?;
        serde_json::from_slice(&bytes)
            .map_err(|e| TrainError::Data(format!("{} is not valid JSON: {e}", p.display())))
    };
    let tokenizer = read(path)?;
    let cfg_path = config_path(path);
    let config = if cfg_path.is_file() {
        read(&cfg_path)?
    } else {
        json!({"bos_token": DEFAULT_SPECIAL_TOKENS[0], "eos_token": DEFAULT_SPECIAL_TOKENS[0], "add_bos_token": false})
    };
    tokenizer_metadata(&tokenizer, Some(&config))
}

/// The GGUF tokenizer metadata (`tokenizer.ggml.*`, model `gpt2`) of a byte-level BPE
/// `tokenizer.json` and optional `tokenizer_config.json`.
pub fn tokenizer_metadata(
    tokenizer: &Value,
    config: Option<&Value>,
) -> Result<Metadata, TrainError> {
    let files = HfTokenizerFiles {
        tokenizer: tokenizer.clone(),
        config: config.cloned(),
        chat_template: None,
    };
    let mut w = GgufWriter::new();
    hf_tokenizer_to_gguf(&files, 0, FallbackIds::default(), &mut w).map_err(tok_err)?;
    Ok(w.metadata().clone())
}

/// Sorted `(key, value)` text of `md`, to compare metadata regardless of key order.
#[cfg(test)]
pub(crate) fn canonical(md: &Metadata) -> Vec<String> {
    let mut v: Vec<String> = md.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "The quick brown fox jumps over the lazy dog. It was 1999 and 42 apples \
        fell. Über café naïve — \"quoted\" text, tabs\tand\nnewlines.\n\nThe fox's den; the dog's bone!";

    fn docs() -> Vec<String> {
        (0..30)
            .map(|i| format!("{TEXT} line {i}: the fox and the dog again.\n"))
            .collect()
    }

    #[test]
    fn trained_tokenizer_round_trips_through_gguf_metadata() {
        let tok = train_bpe(&docs(), &BpeOptions::new(300)).unwrap();
        assert!(
            tok.vocab_size > 256 + 3 && tok.vocab_size <= 300,
            "{}",
            tok.vocab_size
        );
        let md = tokenizer_metadata(&tok.tokenizer, Some(&tok.config)).unwrap();
        assert_eq!(md.get_str("tokenizer.ggml.model").unwrap(), "gpt2");
        assert_eq!(md.get_str("tokenizer.ggml.pre").unwrap(), "smollm");
        assert_eq!(md.get_u32("tokenizer.ggml.eos_token_id").unwrap(), 0);
        assert_eq!(md.get_u32("tokenizer.ggml.bos_token_id").unwrap(), 0);
        let ours = slm_runtime::Tokenizer::from_gguf(&md).unwrap();
        assert_eq!(ours.vocab_size(), tok.vocab_size);
        let hf =
            tokenizers::Tokenizer::from_bytes(serde_json::to_vec(&tok.tokenizer).unwrap()).unwrap();
        let probes = [
            TEXT,
            "unseen words: zebra quixotic 31415926 ###",
            "  leading spaces and trailing  ",
            "emoji 🦀 and CJK 漢字",
        ];
        for p in probes {
            let a = ours.encode(p, false).unwrap();
            let b = hf.encode(p, false).unwrap().get_ids().to_vec();
            assert_eq!(a, b, "encodings differ for {p:?}");
            assert_eq!(ours.decode(&a, false), p, "decode is lossless");
        }
        // Merges were learned: the text compresses below one token per byte.
        let n = ours.encode(TEXT, false).unwrap().len();
        assert!(
            n < TEXT.len() * 3 / 4,
            "{n} tokens for {} bytes",
            TEXT.len()
        );
    }

    #[test]
    fn an_exported_model_carries_the_tokenizer() {
        let tok = train_bpe(&docs(), &BpeOptions::new(300)).unwrap();
        let md = tokenizer_metadata(&tok.tokenizer, Some(&tok.config)).unwrap();
        let cfg = slm_model::ModelConfig {
            arch: slm_model::Arch::Llama,
            n_vocab: tok.vocab_size,
            d_model: 8,
            n_layer: 1,
            n_head: 2,
            n_kv_head: 1,
            head_dim: 4,
            d_ff: 16,
            n_ctx_train: 16,
            rms_eps: 1e-5,
            rope_theta: 10_000.0,
            tied_output: true,
        };
        let layout = crate::ParamLayout::new(&cfg).unwrap();
        let params = crate::init_params(&layout, 1);
        let bytes = crate::export_gguf_bytes(&cfg, &layout, &params, Some(&md)).unwrap();
        let file = std::sync::Arc::new(slm_format::GgufFile::from_bytes(bytes).unwrap());
        let keys = [
            "model",
            "pre",
            "tokens",
            "token_type",
            "merges",
            "bos_token_id",
            "eos_token_id",
        ];
        for k in keys {
            assert!(
                file.metadata().contains_key(&format!("tokenizer.ggml.{k}")),
                "{k}"
            );
        }
        let loaded = slm_runtime::Tokenizer::from_gguf(file.metadata()).unwrap();
        let hf =
            tokenizers::Tokenizer::from_bytes(serde_json::to_vec(&tok.tokenizer).unwrap()).unwrap();
        let text = "<|im_start|>user\nThe lazy fox, 2024!<|im_end|>";
        assert_eq!(
            loaded.encode(text, true).unwrap(),
            hf.encode(text, false).unwrap().get_ids()
        );
        slm_model::Model::from_gguf(file).unwrap();
    }

    #[test]
    fn special_tokens_take_the_first_ids_and_encode_whole() {
        let mut opts = BpeOptions::new(280);
        opts.special_tokens = vec!["<eot>".into(), "<sep>".into()];
        let tok = train_bpe(&docs(), &opts).unwrap();
        let md = tokenizer_metadata(&tok.tokenizer, Some(&tok.config)).unwrap();
        let ours = slm_runtime::Tokenizer::from_gguf(&md).unwrap();
        assert_eq!(ours.token_id("<eot>"), Some(0));
        assert_eq!(ours.token_id("<sep>"), Some(1));
        assert_eq!(ours.eos_id(), Some(0));
        assert!(md.get_str_opt("tokenizer.chat_template").unwrap().is_none());
    }

    #[test]
    fn bad_settings_are_rejected() {
        assert!(train_bpe(&docs(), &BpeOptions::new(10)).is_err());
        let mut opts = BpeOptions::new(300);
        opts.special_tokens.clear();
        assert!(train_bpe(&docs(), &opts).is_err());
    }

    #[test]
    fn saved_files_load_back_as_the_same_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let tok = train_bpe(&docs(), &BpeOptions::new(300)).unwrap();
        let path = dir.path().join("tokenizer.json");
        save(&tok, &path).unwrap();
        let a = metadata_from_file(&path).unwrap();
        let b = tokenizer_metadata(&tok.tokenizer, Some(&tok.config)).unwrap();
        assert_eq!(crate::bpe::canonical(&a), crate::bpe::canonical(&b));
        assert!(a.get_str_opt("tokenizer.chat_template").unwrap().is_some());
    }
}
