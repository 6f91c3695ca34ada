//! Serde mirrors of Hugging Face `config.json` (Llama family, BERT family) and
//! `generation_config.json`: the on-disk layer only. Conversions resolve them into validated
//! model configs elsewhere (`slm_model::hf`).
//!
//! Unknown keys are kept in `extra` so a read-modify-write does not lose them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest `config.json` read (real ones are a few kilobytes).
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// Errors reading a Hugging Face JSON config.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HfConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not the JSON this schema expects.
    #[error("{path} is not a valid config: {reason}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What serde reported (names the field).
        reason: String,
    },
    /// A `model_type` slm cannot convert.
    #[error("{path}: model_type \"{model_type}\" is not supported (supported: llama (SmolLM, Llama), mistral, qwen2; bert)")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// The model type found.
        model_type: String,
    },
}

/// One token id or several (`eos_token_id` is a list in some configs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    /// A single id.
    One(u32),
    /// Several ids; the first is the primary one.
    Many(Vec<u32>),
}

impl TokenIds {
    /// The first id.
    pub fn first(&self) -> Option<u32> {
        match self {
            TokenIds::One(id) => Some(*id),
            TokenIds::Many(v) => v.first().copied(),
        }
    }
}

fn default_rope_theta() -> f64 {
    10_000.0
}

/// `config.json` of `LlamaForCausalLM` (Llama 1-3, SmolLM/SmolLM2, Mistral-style configs) and of
/// `Qwen2ForCausalLM`, whose schema is the same.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// E.g. `["LlamaForCausalLM"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<String>>,
    /// `"llama"`, `"mistral"` or `"qwen2"`.
    pub model_type: String,
    /// Residual width.
    pub hidden_size: u64,
    /// FFN width.
    pub intermediate_size: u64,
    /// Blocks.
    pub num_hidden_layers: u64,
    /// Query heads.
    pub num_attention_heads: u64,
    /// KV heads (defaults to `num_attention_heads`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_key_value_heads: Option<u64>,
    /// Head width (defaults to `hidden_size / num_attention_heads`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<u64>,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base.
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    /// RoPE scaling (unsupported unless null).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<Value>,
    /// Training context.
    pub max_position_embeddings: u64,
    /// Vocabulary size.
    pub vocab_size: u64,
    /// Whether `lm_head` reuses the embedding (transformers' default is `true` for the base class,
    /// `false` for Llama; absent means the Llama default).
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// BOS id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bos_token_id: Option<u32>,
    /// EOS id(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eos_token_id: Option<TokenIds>,
    /// Padding id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_token_id: Option<u32>,
    /// `"float32"`, `"float16"`, `"bfloat16"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torch_dtype: Option<String>,
    /// `"silu"` for SwiGLU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden_act: Option<String>,
    /// Biases on Q/K/V/O (unsupported when true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_bias: Option<bool>,
    /// Biases in the MLP (unsupported when true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlp_bias: Option<bool>,
    /// Every other key, kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `config.json` of `BertModel` (e.g. sentence-transformers/all-MiniLM-L6-v2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    /// E.g. `["BertModel"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<String>>,
    /// `"bert"`.
    pub model_type: String,
    /// Vocabulary size.
    pub vocab_size: u64,
    /// Residual width.
    pub hidden_size: u64,
    /// Blocks.
    pub num_hidden_layers: u64,
    /// Heads.
    pub num_attention_heads: u64,
    /// FFN width.
    pub intermediate_size: u64,
    /// `"gelu"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden_act: Option<String>,
    /// Position table length.
    pub max_position_embeddings: u64,
    /// Segment (token type) vocabulary.
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: u64,
    /// LayerNorm epsilon.
    #[serde(default = "default_ln_eps")]
    pub layer_norm_eps: f64,
    /// Padding id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_token_id: Option<u32>,
    /// `"absolute"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_embedding_type: Option<String>,
    /// Every other key, kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

fn default_type_vocab() -> u64 {
    2
}

fn default_ln_eps() -> f64 {
    1e-12
}

/// `generation_config.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GenerationConfig {
    /// BOS id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bos_token_id: Option<u32>,
    /// EOS id(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eos_token_id: Option<TokenIds>,
    /// Padding id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_token_id: Option<u32>,
    /// Every other key, kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A parsed `config.json` of a supported family.
#[derive(Clone, Debug, PartialEq)]
pub enum HfConfig {
    /// Llama family.
    Llama(LlamaConfig),
    /// BERT family.
    Bert(BertConfig),
}

/// Model types read as [`LlamaConfig`].
const LLAMA_TYPES: &[&str] = &["llama", "mistral", "qwen2"];

impl HfConfig {
    /// Reads `path` and picks the schema from `model_type`.
    pub fn read(path: &Path) -> Result<HfConfig, HfConfigError> {
        let value = read_json(path)?;
        Self::from_value(value, path)
    }

    /// Parses an already loaded JSON value (`path` is used in messages only).
    pub fn from_value(value: Value, path: &Path) -> Result<HfConfig, HfConfigError> {
        let json_err = |e: serde_json::Error| HfConfigError::Json {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let model_type = value
            .get("model_type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if LLAMA_TYPES.contains(&model_type.as_str()) {
            Ok(HfConfig::Llama(
                serde_json::from_value(value).map_err(json_err)?,
            ))
        } else if model_type == "bert" {
            Ok(HfConfig::Bert(
                serde_json::from_value(value).map_err(json_err)?,
            ))
        } else {
            Err(HfConfigError::Unsupported {
                path: path.to_path_buf(),
                model_type,
            })
        }
    }
}

/// Reads a JSON config file of at most a few megabytes.
pub fn read_json(path: &Path) -> Result<Value, HfConfigError> {
    read_json_limited(path, MAX_CONFIG_BYTES)
}

/// Reads a JSON file of at most `max_bytes` (e.g. a `tokenizer.json` of several megabytes).
pub fn read_json_limited(path: &Path, max_bytes: u64) -> Result<Value, HfConfigError> {
    let io = |source| HfConfigError::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > max_bytes {
        return Err(HfConfigError::Json {
            path: path.to_path_buf(),
            reason: format!("{len} bytes, more than the limit of {max_bytes}"),
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    serde_json::from_slice(&bytes).map_err(|e| HfConfigError::Json {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOLLM2: &str = r#"{"architectures":["LlamaForCausalLM"],"attention_bias":false,"attention_dropout":0.0,
      "bos_token_id":1,"eos_token_id":2,"hidden_act":"silu","hidden_size":576,"initializer_range":0.041666666666666664,
      "intermediate_size":1536,"is_llama_config":true,"max_position_embeddings":8192,"mlp_bias":false,"model_type":"llama",
      "num_attention_heads":9,"num_hidden_layers":30,"num_key_value_heads":3,"pad_token_id":2,"pretraining_tp":1,
      "rms_norm_eps":1e-05,"rope_interleaved":false,"rope_scaling":null,"rope_theta":100000,"tie_word_embeddings":true,
      "torch_dtype":"bfloat16","transformers_version":"4.42.3","use_cache":true,"vocab_size":49152}"#;

    #[test]
    fn smollm2_config_parses_and_keeps_unknown_keys() {
        let v: Value = serde_json::from_str(SMOLLM2).unwrap();
        let HfConfig::Llama(c) = HfConfig::from_value(v.clone(), Path::new("config.json")).unwrap()
        else {
            panic!("not llama")
        };
        assert_eq!(
            (c.hidden_size, c.intermediate_size, c.num_hidden_layers),
            (576, 1536, 30)
        );
        assert_eq!((c.num_attention_heads, c.num_key_value_heads), (9, Some(3)));
        assert_eq!(
            (c.rope_theta, c.rms_norm_eps, c.vocab_size),
            (100_000.0, 1e-5, 49152)
        );
        assert!(c.tie_word_embeddings);
        assert_eq!(c.eos_token_id.as_ref().and_then(TokenIds::first), Some(2));
        assert_eq!(c.extra.get("is_llama_config"), Some(&Value::Bool(true)));
        // Writing back keeps every key with its value.
        let back = serde_json::to_value(&c).unwrap();
        for (k, val) in v.as_object().unwrap() {
            match (val, back.get(k)) {
                (Value::Null, _) => {}
                // 100000 may come back as 100000.0: compare numbers by value.
                (Value::Number(a), Some(Value::Number(b))) => {
                    assert_eq!(a.as_f64(), b.as_f64(), "{k}")
                }
                (a, b) => assert_eq!(Some(a), b, "{k}"),
            }
        }
    }

    #[test]
    fn eos_list_and_unknown_type_and_missing_field() {
        let v = serde_json::json!({"model_type":"llama","hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,
            "num_attention_heads":2,"rms_norm_eps":1e-6,"max_position_embeddings":16,"vocab_size":4,"eos_token_id":[7,8]});
        let HfConfig::Llama(c) = HfConfig::from_value(v, Path::new("c")).unwrap() else {
            panic!()
        };
        assert_eq!(c.eos_token_id, Some(TokenIds::Many(vec![7, 8])));
        assert_eq!(c.rope_theta, 10_000.0);
        let err =
            HfConfig::from_value(serde_json::json!({"model_type":"gpt_neox"}), Path::new("c"))
                .unwrap_err();
        assert!(err.to_string().contains("gpt_neox"), "{err}");
        let err = HfConfig::from_value(serde_json::json!({"model_type":"llama"}), Path::new("c"))
            .unwrap_err();
        assert!(err.to_string().contains("hidden_size"), "{err}");
    }

    #[test]
    fn bert_config_parses() {
        let v = serde_json::json!({"architectures":["BertModel"],"attention_probs_dropout_prob":0.1,"hidden_act":"gelu",
            "hidden_size":384,"intermediate_size":1536,"layer_norm_eps":1e-12,"max_position_embeddings":512,
            "model_type":"bert","num_attention_heads":12,"num_hidden_layers":6,"pad_token_id":0,"type_vocab_size":2,
            "vocab_size":30522});
        let HfConfig::Bert(c) = HfConfig::from_value(v, Path::new("c")).unwrap() else {
            panic!()
        };
        assert_eq!(
            (c.hidden_size, c.num_hidden_layers, c.vocab_size),
            (384, 6, 30522)
        );
    }
}
