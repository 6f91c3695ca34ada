//! BERT-family encoders (BERT, MiniLM, DistilBERT-style post-LayerNorm blocks): token vectors
//! and pooled sentence embeddings.
//!
//! ```text
//! dimensions: T tokens in the batch (all sequences packed), L tokens of one sequence,
//!             d hidden width, H heads of hd = d / H, ff FFN width
//!
//! ids ─► word[id] + position[p] + type[0] ─► LayerNorm ─► x [T][d]
//! per block: q,k,v = x·Wq,k,v + b            [T][d] each
//!            ctx   = softmax(q·kᵀ/√hd)·v     per sequence and head, bidirectional
//!            x     = LN(x + ctx·Wo + bo)
//!            x     = LN(x + gelu(x·Wup + bup)·Wdown + bdown)
//! pooling: mean over the sequence's tokens, or its first ([CLS]) token; then L2 norm.
//! ```
//!
//! Files: GGUF arch `bert` with llama.cpp's tensor names (so llama.cpp's BERT files load here and
//! slm's load there); the Hugging Face layout converts to it (`crate::hf::build_bert_gguf`).

mod config;
mod forward;
mod weights;

pub use config::{BertConfig, Pooling, BERT_ARCH, KEY_ACTIVATION, KEY_MAX_SEQ_LEN, KEY_NORMALIZE};
pub use forward::{l2_normalize, EncoderState};
pub use weights::{BertLayer, BertWeights, Norm};

use std::sync::Arc;

use slm_format::GgufFile;
use slm_kernels::Pool;

use crate::error::ModelError;

/// A loaded encoder: configuration plus (memory-mapped) weights.
#[derive(Clone, Debug)]
pub struct BertModel {
    config: BertConfig,
    weights: BertWeights,
}

impl BertModel {
    /// Loads a `bert` GGUF file.
    pub fn load(file: Arc<GgufFile>) -> Result<BertModel, ModelError> {
        let config = BertConfig::from_gguf(&file)?;
        let weights = BertWeights::load(file, &config)?;
        Ok(BertModel { config, weights })
    }

    /// The configuration.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// The weights.
    pub fn weights(&self) -> &BertWeights {
        &self.weights
    }

    /// Runs the encoder over a batch of token sequences; the final hidden states of sequence
    /// `i` are then `state.sequence(i, d)`.
    ///
    /// # Errors
    /// `InvalidArgument` for an empty sequence or one longer than the position table,
    /// `TokenOutOfRange` for an id outside the vocabulary.
    pub fn encode(&self, pool: &Pool, seqs: &[&[u32]], state: &mut EncoderState) -> Result<(), ModelError> {
        forward::encode(&self.config, &self.weights, pool, seqs, state)
    }

    /// One sentence vector per sequence: [`BertModel::encode`], then `pooling` over each
    /// sequence's tokens and, when `normalize`, L2 normalisation.
    ///
    /// # Errors
    /// As [`BertModel::encode`].
    pub fn embed(
        &self,
        pool: &Pool,
        seqs: &[&[u32]],
        pooling: Pooling,
        normalize: bool,
        state: &mut EncoderState,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        self.encode(pool, seqs, state)?;
        Ok(forward::pool_sequences(state, self.config.d_model, pooling, normalize))
    }
}

#[cfg(test)]
mod tests;
