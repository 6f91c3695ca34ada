//! The validated configuration of a BERT-family encoder, read from GGUF `bert.*` keys.
//!
//! The keys are llama.cpp's (`convert_hf_to_gguf.py` writes them for `BertModel`), plus three of
//! slm's own that llama.cpp ignores: the GELU variant, the sentence-transformers sequence limit
//! and whether embeddings are L2-normalised.

use slm_format::{GgufFile, Metadata};
use slm_kernels::ops::Gelu;

use crate::error::ModelError;

/// GGUF architecture name of BERT-family encoders.
pub const BERT_ARCH: &str = "bert";
/// slm's key: `"gelu"` (exact, erf) or `"gelu_tanh"`. Absent means exact, as HF's `BertModel`.
pub const KEY_ACTIVATION: &str = "bert.feed_forward_activation";
/// slm's key: the sequence length the model is used with (sentence-transformers' `max_seq_length`).
pub const KEY_MAX_SEQ_LEN: &str = "bert.embedding.max_seq_length";
/// slm's key: whether sentence embeddings are L2-normalised (a `Normalize` module).
pub const KEY_NORMALIZE: &str = "bert.embedding.normalize";

/// How token vectors become one sentence vector (llama.cpp's `pooling_type` numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// Mean of all token vectors of the sequence (`pooling_type` 1).
    Mean,
    /// The first token's (`[CLS]`) vector (`pooling_type` 2).
    Cls,
}

impl Pooling {
    /// llama.cpp's number for this pooling.
    pub fn gguf_code(self) -> u32 {
        match self {
            Pooling::Mean => 1,
            Pooling::Cls => 2,
        }
    }

    /// From llama.cpp's number; `None` for types slm does not compute (none, last, rank).
    pub fn from_gguf_code(code: u32) -> Option<Pooling> {
        match code {
            1 => Some(Pooling::Mean),
            2 => Some(Pooling::Cls),
            _ => None,
        }
    }

    /// Parses `mean` / `cls`.
    pub fn parse(s: &str) -> Option<Pooling> {
        match s {
            "mean" => Some(Pooling::Mean),
            "cls" => Some(Pooling::Cls),
            _ => None,
        }
    }

    /// `mean` / `cls`.
    pub fn name(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
        }
    }
}

/// Hyper-parameters of a BERT-family encoder.
#[derive(Clone, Debug, PartialEq)]
pub struct BertConfig {
    /// Vocabulary size.
    pub n_vocab: usize,
    /// Hidden width.
    pub d_model: usize,
    /// Blocks.
    pub n_layer: usize,
    /// Attention heads.
    pub n_head: usize,
    /// FFN width.
    pub d_ff: usize,
    /// Rows of the absolute position table (longest input).
    pub n_positions: usize,
    /// Rows of the token-type (segment) table.
    pub n_token_types: usize,
    /// LayerNorm epsilon.
    pub eps: f32,
    /// FFN activation.
    pub gelu: Gelu,
    /// Sentence pooling.
    pub pooling: Pooling,
    /// L2-normalise sentence vectors.
    pub normalize: bool,
    /// Longest input the model is used with (≤ `n_positions`); longer inputs are truncated.
    pub max_seq_len: usize,
}

impl BertConfig {
    /// Width of one head.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_head
    }

    /// Reads and validates the configuration of a `bert` GGUF file.
    pub fn from_gguf(file: &GgufFile) -> Result<BertConfig, ModelError> {
        let md = file.metadata();
        let arch = md.get_str("general.architecture")?;
        if arch != BERT_ARCH {
            return Err(ModelError::UnsupportedArchitecture { found: arch.into(), supported: BERT_ARCH.into() });
        }
        let n = |key: &str| usize_of(md, &format!("bert.{key}"));
        if md.get_bool_opt("bert.attention.causal")? == Some(true) {
            return Err(ModelError::InvalidConfig(
                "bert.attention.causal is true; BERT attention is bidirectional".into(),
            ));
        }
        let pooling = match md.get_u32_opt("bert.pooling_type")? {
            None => Pooling::Mean,
            Some(code) => Pooling::from_gguf_code(code).ok_or_else(|| {
                ModelError::InvalidConfig(format!("bert.pooling_type {code} is not supported (1 = mean, 2 = cls)"))
            })?,
        };
        let gelu = match md.get_str_opt(KEY_ACTIVATION)? {
            None | Some("gelu") => Gelu::Erf,
            Some("gelu_tanh") => Gelu::Tanh,
            Some(other) => {
                return Err(ModelError::InvalidConfig(format!(
                    "{KEY_ACTIVATION} \"{other}\" is not supported (gelu, gelu_tanh)"
                )))
            }
        };
        let rows_of = |name: &str| -> Result<usize, ModelError> {
            let t =
                file.tensor(name).ok_or_else(|| ModelError::MissingTensor { name: name.into(), arch: arch.into() })?;
            match t.dims.as_slice() {
                [_, rows] => to_usize(*rows, name),
                dims => Err(ModelError::TensorShape { name: name.into(), expected: vec![0, 0], found: dims.to_vec() }),
            }
        };
        let n_positions = n("context_length")?;
        let max_seq_len = match md.get_u64_opt(KEY_MAX_SEQ_LEN)? {
            Some(v) => to_usize(v, KEY_MAX_SEQ_LEN)?.min(n_positions),
            None => n_positions,
        };
        let cfg = BertConfig {
            n_vocab: rows_of("token_embd.weight")?,
            d_model: n("embedding_length")?,
            n_layer: n("block_count")?,
            n_head: n("attention.head_count")?,
            d_ff: n("feed_forward_length")?,
            n_positions,
            n_token_types: if file.tensor("token_types.weight").is_some() { rows_of("token_types.weight")? } else { 0 },
            eps: md.get_f32("bert.attention.layer_norm_epsilon")?,
            gelu,
            pooling,
            normalize: md.get_bool_opt(KEY_NORMALIZE)?.unwrap_or(true),
            max_seq_len,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the invariants the forward pass relies on.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |msg: String| Err(ModelError::InvalidConfig(msg));
        for (name, value) in [
            ("n_vocab", self.n_vocab),
            ("d_model", self.d_model),
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
            ("d_ff", self.d_ff),
            ("n_positions", self.n_positions),
            ("max_seq_len", self.max_seq_len),
        ] {
            if value == 0 {
                return bad(format!("{name} is 0"));
            }
        }
        if self.d_model > 16_384 || self.d_ff > 65_536 || self.n_layer > 256 || self.n_vocab > 4_194_304 {
            return bad(format!(
                "implausible dimensions (d_model {}, d_ff {}, n_layer {}, n_vocab {})",
                self.d_model, self.d_ff, self.n_layer, self.n_vocab
            ));
        }
        if self.n_positions > 65_536 || self.n_token_types > 1_024 {
            return bad(format!(
                "implausible tables ({} positions, {} token types)",
                self.n_positions, self.n_token_types
            ));
        }
        if !self.d_model.is_multiple_of(self.n_head) {
            return bad(format!("d_model {} is not a multiple of the {} heads", self.d_model, self.n_head));
        }
        if !(self.eps > 0.0 && self.eps < 1.0) {
            return bad(format!("LayerNorm epsilon {} is outside (0, 1)", self.eps));
        }
        Ok(())
    }

    /// Number of parameters (embedding tables, blocks; no pooler).
    pub fn n_params(&self) -> u64 {
        let (d, ff) = (self.d_model as u64, self.d_ff as u64);
        let tables = (self.n_vocab + self.n_positions + self.n_token_types) as u64 * d + 2 * d;
        let per_layer = 4 * (d * d + d) + 2 * d * ff + ff + d + 4 * d;
        tables + self.n_layer as u64 * per_layer
    }
}

fn usize_of(md: &Metadata, key: &str) -> Result<usize, ModelError> {
    to_usize(md.get_u64(key)?, key)
}

fn to_usize(v: u64, what: &str) -> Result<usize, ModelError> {
    usize::try_from(v).map_err(|_| ModelError::InvalidConfig(format!("{what} = {v} does not fit in memory")))
}
