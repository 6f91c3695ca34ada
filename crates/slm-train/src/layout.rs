//! Where every parameter tensor lives in the one flat `Vec<f32>` that holds a model's weights.
//!
//! Parameters, gradients and both Adam moments share this layout, so the optimizer, gradient
//! clipping and checkpoints work on plain slices. Tensor names and row/column order are GGUF's
//! (`blk.{i}.attn_q.weight` is `[rows = H*Dh][cols = D]`, row-major), so export is a copy.

use crate::error::TrainError;
use serde::{Deserialize, Serialize};
use slm_model::{Arch, ModelConfig};

/// What a parameter tensor is, for weight-decay masks and initialisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParamKind {
    /// The token embedding `[V][D]` (also the output head when tied).
    Embedding,
    /// An RMSNorm gain `[D]`.
    Norm,
    /// A projection matrix `[out][in]`.
    Matrix,
}

/// One named tensor inside the flat parameter vector.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSpec {
    /// GGUF tensor name.
    pub name: String,
    /// First element in the flat vector.
    pub offset: usize,
    /// Rows (1 for vectors).
    pub rows: usize,
    /// Columns (the contiguous dimension).
    pub cols: usize,
    /// What the tensor is.
    pub kind: ParamKind,
    /// Whether the tensor is a residual-branch output projection (`attn_output`, `ffn_down`),
    /// initialised smaller so the residual stream does not grow with depth.
    pub residual_out: bool,
}

impl TensorSpec {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.rows * self.cols
    }

    /// Whether the tensor has no elements (never true for a valid layout).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element range in the flat vector.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// Offsets of one block's tensors in the flat vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockOffsets {
    /// `[D]`
    pub attn_norm: usize,
    /// `[H*Dh][D]`
    pub wq: usize,
    /// `[G*Dh][D]`
    pub wk: usize,
    /// `[G*Dh][D]`
    pub wv: usize,
    /// `[D][H*Dh]`
    pub wo: usize,
    /// `[D]`
    pub ffn_norm: usize,
    /// `[F][D]`
    pub w_gate: usize,
    /// `[F][D]`
    pub w_up: usize,
    /// `[D][F]`
    pub w_down: usize,
}

/// The layout of all parameters of a Llama-family model.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamLayout {
    /// Every tensor, in file order.
    pub tensors: Vec<TensorSpec>,
    /// Offset of `token_embd.weight` `[V][D]`.
    pub token_embd: usize,
    /// Per-block offsets.
    pub blocks: Vec<BlockOffsets>,
    /// Offset of `output_norm.weight` `[D]`.
    pub output_norm: usize,
    /// Offset of `output.weight` `[V][D]`, or `None` when the output reuses the embedding.
    pub output: Option<usize>,
    len: usize,
}

impl ParamLayout {
    /// The layout for `cfg`, which must be a valid `llama`-architecture config.
    pub fn new(cfg: &ModelConfig) -> Result<ParamLayout, TrainError> {
        check_trainable(cfg)?;
        let (d, q, kv, f, v) = (
            cfg.d_model,
            cfg.q_dim(),
            cfg.kv_dim(),
            cfg.d_ff,
            cfg.n_vocab,
        );
        let mut b = Builder {
            tensors: Vec::new(),
            len: 0,
        };
        let token_embd = b.add(
            "token_embd.weight".into(),
            v,
            d,
            ParamKind::Embedding,
            false,
        );
        let mut blocks = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let n = |s: &str| format!("blk.{i}.{s}");
            blocks.push(BlockOffsets {
                attn_norm: b.add(n("attn_norm.weight"), 1, d, ParamKind::Norm, false),
                wq: b.add(n("attn_q.weight"), q, d, ParamKind::Matrix, false),
                wk: b.add(n("attn_k.weight"), kv, d, ParamKind::Matrix, false),
                wv: b.add(n("attn_v.weight"), kv, d, ParamKind::Matrix, false),
                wo: b.add(n("attn_output.weight"), d, q, ParamKind::Matrix, true),
                ffn_norm: b.add(n("ffn_norm.weight"), 1, d, ParamKind::Norm, false),
                w_gate: b.add(n("ffn_gate.weight"), f, d, ParamKind::Matrix, false),
                w_up: b.add(n("ffn_up.weight"), f, d, ParamKind::Matrix, false),
                w_down: b.add(n("ffn_down.weight"), d, f, ParamKind::Matrix, true),
            });
        }
        let output_norm = b.add("output_norm.weight".into(), 1, d, ParamKind::Norm, false);
        let output = if cfg.tied_output {
            None
        } else {
            Some(b.add("output.weight".into(), v, d, ParamKind::Matrix, false))
        };
        Ok(ParamLayout {
            tensors: b.tensors,
            token_embd,
            blocks,
            output_norm,
            output,
            len: b.len,
        })
    }

    /// Total number of parameters (length of the flat vector).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the layout is empty (never true for a valid config).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Offset of the output head `[V][D]`: `output.weight`, or the embedding when tied.
    pub fn output_head(&self) -> usize {
        self.output.unwrap_or(self.token_embd)
    }

    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorSpec> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

struct Builder {
    tensors: Vec<TensorSpec>,
    len: usize,
}

impl Builder {
    fn add(
        &mut self,
        name: String,
        rows: usize,
        cols: usize,
        kind: ParamKind,
        residual_out: bool,
    ) -> usize {
        let offset = self.len;
        self.len += rows * cols;
        self.tensors.push(TensorSpec {
            name,
            offset,
            rows,
            cols,
            kind,
            residual_out,
        });
        offset
    }
}

/// Checks that `cfg` is valid and a variant this trainer implements.
pub fn check_trainable(cfg: &ModelConfig) -> Result<(), TrainError> {
    cfg.validate()?;
    if cfg.arch != Arch::Llama {
        return Err(TrainError::Config(format!(
            "architecture '{}' is not trainable yet (only 'llama': adjacent-pair RoPE, no Q/K/V biases)",
            cfg.arch.gguf_name()
        )));
    }
    // Activations are `[tokens][width]` vectors; keep the largest well inside memory.
    let params = cfg.n_params();
    if params > 4_000_000_000 {
        return Err(TrainError::Config(format!(
            "{params} parameters is far beyond what CPU training can handle"
        )));
    }
    Ok(())
}

/// Serializable mirror of [`ModelConfig`] (the model section of a training config or checkpoint).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// GGUF architecture name (only `llama` is trainable).
    #[serde(default = "default_arch")]
    pub arch: String,
    /// Vocabulary size.
    pub n_vocab: usize,
    /// Residual width.
    pub d_model: usize,
    /// Blocks.
    pub n_layer: usize,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads (defaults to `n_head`).
    #[serde(default)]
    pub n_kv_head: Option<usize>,
    /// Head width (defaults to `d_model / n_head`).
    #[serde(default)]
    pub head_dim: Option<usize>,
    /// Feed-forward width.
    pub d_ff: usize,
    /// Context length written to the exported model.
    pub n_ctx_train: usize,
    /// RMSNorm epsilon.
    #[serde(default = "default_eps")]
    pub rms_eps: f32,
    /// RoPE base.
    #[serde(default = "default_theta")]
    pub rope_theta: f32,
    /// Output head tied to the embedding.
    #[serde(default = "default_tied")]
    pub tied_output: bool,
}

fn default_arch() -> String {
    "llama".into()
}
fn default_eps() -> f32 {
    1e-5
}
fn default_theta() -> f32 {
    10_000.0
}
fn default_tied() -> bool {
    true
}

impl ModelSpec {
    /// Resolves defaults and validates into a [`ModelConfig`].
    pub fn resolve(&self) -> Result<ModelConfig, TrainError> {
        let arch = Arch::from_gguf_name(&self.arch)?;
        if self.n_head == 0 {
            return Err(TrainError::Config("n_head is 0".into()));
        }
        let cfg = ModelConfig {
            arch,
            n_vocab: self.n_vocab,
            d_model: self.d_model,
            n_layer: self.n_layer,
            n_head: self.n_head,
            n_kv_head: self.n_kv_head.unwrap_or(self.n_head),
            head_dim: self.head_dim.unwrap_or(self.d_model / self.n_head),
            d_ff: self.d_ff,
            n_ctx_train: self.n_ctx_train,
            rms_eps: self.rms_eps,
            rope_theta: self.rope_theta,
            tied_output: self.tied_output,
        };
        check_trainable(&cfg)?;
        Ok(cfg)
    }

    /// The spec of a resolved config (every field explicit).
    pub fn from_config(cfg: &ModelConfig) -> ModelSpec {
        ModelSpec {
            arch: cfg.arch.gguf_name().into(),
            n_vocab: cfg.n_vocab,
            d_model: cfg.d_model,
            n_layer: cfg.n_layer,
            n_head: cfg.n_head,
            n_kv_head: Some(cfg.n_kv_head),
            head_dim: Some(cfg.head_dim),
            d_ff: cfg.d_ff,
            n_ctx_train: cfg.n_ctx_train,
            rms_eps: cfg.rms_eps,
            rope_theta: cfg.rope_theta,
            tied_output: cfg.tied_output,
        }
    }
}
