//! The resolved, validated model configuration, read once from GGUF metadata.
//!
//! GGUF stores hyper-parameters under architecture-prefixed keys (`llama.block_count`, ...).
//! [`ModelConfig::from_gguf`] reads them, fills defaults the way llama.cpp does, and checks
//! consistency, so the forward pass never has to validate anything again.

use crate::arch::Arch;
use crate::error::ModelError;
use slm_format::{GgufFile, Metadata};

/// Largest context the engine accepts (positions are `u32` in places and caches must stay sane).
pub const MAX_CONTEXT: usize = 1 << 20;

/// Hyper-parameters of a decoder-only transformer of the Llama family.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// Which architecture variant (tensor names, rope style, biases).
    pub arch: Arch,
    /// Vocabulary size (rows of the embedding matrix).
    pub n_vocab: usize,
    /// Residual stream width (`d_model`).
    pub d_model: usize,
    /// Number of transformer blocks.
    pub n_layer: usize,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads (grouped-query attention when smaller than `n_head`).
    pub n_kv_head: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Hidden width of the SwiGLU feed-forward block.
    pub d_ff: usize,
    /// Context length the model was trained with.
    pub n_ctx_train: usize,
    /// RMSNorm epsilon.
    pub rms_eps: f32,
    /// RoPE base frequency θ.
    pub rope_theta: f32,
    /// Whether the output projection reuses the token embedding.
    pub tied_output: bool,
}

impl ModelConfig {
    /// Width of the K (or V) projection: `n_kv_head * head_dim`.
    pub fn kv_dim(&self) -> usize {
        self.n_kv_head * self.head_dim
    }

    /// Width of the Q projection: `n_head * head_dim`.
    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }

    /// Reads and validates the configuration of a GGUF model.
    pub fn from_gguf(file: &GgufFile) -> Result<ModelConfig, ModelError> {
        let md = file.metadata();
        let arch_name = md.get_str("general.architecture")?;
        let arch = Arch::from_gguf_name(arch_name)?;
        let key = |suffix: &str| format!("{arch_name}.{suffix}");

        let d_model = usize_of(md, &key("embedding_length"))?;
        let n_layer = usize_of(md, &key("block_count"))?;
        let n_head = usize_of(md, &key("attention.head_count"))?;
        let n_kv_head = match md.get_u64_opt(&key("attention.head_count_kv"))? {
            Some(v) => to_usize(v, "attention.head_count_kv")?,
            None => n_head,
        };
        let d_ff = usize_of(md, &key("feed_forward_length"))?;
        let n_ctx_train = usize_of(md, &key("context_length"))?;
        let rms_eps = md.get_f32(&key("attention.layer_norm_rms_epsilon"))?;
        let rope_theta = md.get_f32_opt(&key("rope.freq_base"))?.unwrap_or(10_000.0);
        if n_head == 0 {
            return Err(ModelError::InvalidConfig("attention.head_count is 0".into()));
        }
        let head_dim = match md.get_u64_opt(&key("attention.key_length"))? {
            Some(v) => to_usize(v, "attention.key_length")?,
            None => d_model / n_head,
        };
        let n_rot = match md.get_u64_opt(&key("rope.dimension_count"))? {
            Some(v) => to_usize(v, "rope.dimension_count")?,
            None => head_dim,
        };
        let embd = file
            .tensor("token_embd.weight")
            .ok_or_else(|| ModelError::MissingTensor {
                name: "token_embd.weight".into(),
                arch: arch_name.into(),
            })?;
        let n_vocab = match embd.dims.as_slice() {
            [_, rows] => to_usize(*rows, "token_embd rows")?,
            dims => {
                return Err(ModelError::TensorShape {
                    name: "token_embd.weight".into(),
                    expected: vec![d_model as u64, 0],
                    found: dims.to_vec(),
                })
            }
        };
        let tied_output = file.tensor("output.weight").is_none();

        let cfg = ModelConfig {
            arch,
            n_vocab,
            d_model,
            n_layer,
            n_head,
            n_kv_head,
            head_dim,
            d_ff,
            n_ctx_train,
            rms_eps,
            rope_theta,
            tied_output,
        };
        cfg.validate()?;
        if n_rot != head_dim {
            return Err(ModelError::InvalidConfig(format!(
                "partial rotary embeddings (rope.dimension_count {n_rot} != head dim {head_dim}) are not supported yet"
            )));
        }
        if let Some(scaling) = md.get_str_opt(&key("rope.scaling.type"))? {
            if scaling != "none" {
                return Err(ModelError::InvalidConfig(format!(
                    "RoPE scaling '{scaling}' is not supported yet"
                )));
            }
        }
        Ok(cfg)
    }

    /// Checks the invariants the forward pass relies on.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |msg: String| Err(ModelError::InvalidConfig(msg));
        let nonzero = [
            ("n_vocab", self.n_vocab),
            ("d_model", self.d_model),
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
            ("n_kv_head", self.n_kv_head),
            ("head_dim", self.head_dim),
            ("d_ff", self.d_ff),
        ];
        for (name, value) in nonzero {
            if value == 0 {
                return bad(format!("{name} is 0"));
            }
        }
        // Generous sanity bounds: far above any small model, far below sizes that would overflow.
        if self.d_model > 65_536 || self.d_ff > 262_144 || self.n_layer > 1_024 || self.n_vocab > 4_194_304 {
            return bad(format!(
                "implausible dimensions (d_model {}, d_ff {}, n_layer {}, n_vocab {})",
                self.d_model, self.d_ff, self.n_layer, self.n_vocab
            ));
        }
        if self.n_head > 1_024 || self.head_dim > 1_024 {
            return bad(format!("implausible head layout ({} heads of {})", self.n_head, self.head_dim));
        }
        if !self.n_head.is_multiple_of(self.n_kv_head) {
            return bad(format!(
                "n_head {} is not a multiple of n_kv_head {}",
                self.n_head, self.n_kv_head
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return bad(format!("head_dim {} is odd; RoPE needs pairs", self.head_dim));
        }
        if !(self.rms_eps > 0.0 && self.rms_eps < 1.0) {
            return bad(format!("rms epsilon {} is outside (0, 1)", self.rms_eps));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 1.0) {
            return bad(format!("rope θ {} must be finite and > 1", self.rope_theta));
        }
        Ok(())
    }

    /// Number of parameters, counting a tied output head once.
    pub fn n_params(&self) -> u64 {
        let d = self.d_model as u64;
        let per_layer = 2 * d // two norms
            + d * self.q_dim() as u64
            + 2 * d * self.kv_dim() as u64
            + self.q_dim() as u64 * d
            + 3 * d * self.d_ff as u64;
        let embd = self.n_vocab as u64 * d;
        let head = if self.tied_output { 0 } else { embd };
        embd + head + d + self.n_layer as u64 * per_layer
    }
}

fn usize_of(md: &Metadata, key: &str) -> Result<usize, ModelError> {
    to_usize(md.get_u64(key)?, key)
}

fn to_usize(v: u64, what: &str) -> Result<usize, ModelError> {
    usize::try_from(v).map_err(|_| ModelError::InvalidConfig(format!("{what} = {v} does not fit in memory")))
}
