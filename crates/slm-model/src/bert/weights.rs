//! The tensors of a BERT-family encoder, by llama.cpp's GGUF names.

use std::sync::Arc;

use slm_format::GgufFile;

use super::config::{BertConfig, BERT_ARCH};
use crate::error::ModelError;
use crate::weights::{Linear, TensorLoader, WeightTensor};

/// A LayerNorm's gain and bias, `[d]` each.
#[derive(Clone, Debug)]
pub struct Norm {
    /// Gain.
    pub weight: Vec<f32>,
    /// Bias.
    pub bias: Vec<f32>,
}

/// One post-LayerNorm transformer block.
#[derive(Clone, Debug)]
pub struct BertLayer {
    /// Query projection (with bias), `[d] → [d]`.
    pub q: Linear,
    /// Key projection (with bias).
    pub k: Linear,
    /// Value projection (with bias).
    pub v: Linear,
    /// Attention output projection (with bias).
    pub o: Linear,
    /// LayerNorm after the attention residual.
    pub attn_norm: Norm,
    /// FFN up projection `[d] → [d_ff]`; its bias is applied with the GELU.
    pub up: Linear,
    /// Bias of `up`, `[d_ff]`.
    pub up_bias: Vec<f32>,
    /// FFN down projection `[d_ff] → [d]` (with bias).
    pub down: Linear,
    /// LayerNorm after the FFN residual.
    pub out_norm: Norm,
}

/// All weights of the encoder.
#[derive(Clone, Debug)]
pub struct BertWeights {
    /// Word embeddings, ggml dims `[d, n_vocab]` (any dtype).
    pub token_embd: WeightTensor,
    /// Absolute position embeddings, `[d, n_positions]`.
    pub position_embd: WeightTensor,
    /// Token-type (segment) embeddings, `[d, n_token_types]`; absent in some conversions.
    pub token_types: Option<WeightTensor>,
    /// LayerNorm over the summed embeddings.
    pub embd_norm: Norm,
    /// The blocks.
    pub layers: Vec<BertLayer>,
}

impl BertWeights {
    /// Loads every tensor, checking names, shapes and types; refuses files with unused tensors.
    pub fn load(file: Arc<GgufFile>, cfg: &BertConfig) -> Result<BertWeights, ModelError> {
        let mut ld = TensorLoader::new(file, BERT_ARCH);
        let (d, ff) = (cfg.d_model, cfg.d_ff);
        let table = |ld: &mut TensorLoader, name: &str, rows: usize| -> Result<WeightTensor, ModelError> {
            let t = ld.tensor(name, &[d as u64, rows as u64])?;
            if !crate::weights::supports_matmul(t.dtype) {
                return Err(ModelError::TensorType { name: name.into(), dtype: t.dtype, usage: "an embedding table" });
            }
            Ok(t)
        };
        let token_embd = table(&mut ld, "token_embd.weight", cfg.n_vocab)?;
        let position_embd = table(&mut ld, "position_embd.weight", cfg.n_positions)?;
        let token_types =
            if cfg.n_token_types > 0 { Some(table(&mut ld, "token_types.weight", cfg.n_token_types)?) } else { None };
        let norm = |ld: &mut TensorLoader, prefix: &str| -> Result<Norm, ModelError> {
            Ok(Norm {
                weight: ld.vector(&format!("{prefix}.weight"), d)?,
                bias: ld.vector(&format!("{prefix}.bias"), d)?,
            })
        };
        let embd_norm = norm(&mut ld, "token_embd_norm")?;
        let biased = |ld: &mut TensorLoader, prefix: &str, rows: usize, cols: usize| -> Result<Linear, ModelError> {
            let mut lin = ld.linear(&format!("{prefix}.weight"), rows, cols)?;
            lin.bias = Some(ld.vector(&format!("{prefix}.bias"), rows)?);
            Ok(lin)
        };
        let mut layers = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let p = |s: &str| format!("blk.{i}.{s}");
            let up = ld.linear(&p("ffn_up.weight"), ff, d)?;
            let up_bias = ld.vector(&p("ffn_up.bias"), ff)?;
            layers.push(BertLayer {
                q: biased(&mut ld, &p("attn_q"), d, d)?,
                k: biased(&mut ld, &p("attn_k"), d, d)?,
                v: biased(&mut ld, &p("attn_v"), d, d)?,
                o: biased(&mut ld, &p("attn_output"), d, d)?,
                attn_norm: norm(&mut ld, &p("attn_output_norm"))?,
                up,
                up_bias,
                down: biased(&mut ld, &p("ffn_down"), d, ff)?,
                out_norm: norm(&mut ld, &p("layer_output_norm"))?,
            });
        }
        ld.finish()?;
        Ok(BertWeights { token_embd, position_embd, token_types, embd_norm, layers })
    }
}
