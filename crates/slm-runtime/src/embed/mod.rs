//! Sentence embeddings with a BERT-family encoder: text → WordPiece ids → encoder → pooled,
//! normalised vectors; cosine similarity.
//!
//! ```text
//!  texts ─► EncoderTokenizer::encode ([CLS] … [SEP], ≤ max_seq_len) ─► batches of `batch` texts
//!        ─► BertModel::embed (packed, no padding) ─► one vector per text
//! ```
//!
//! [`Embedder::open`] takes a `bert` GGUF file or a Hugging Face directory (config.json +
//! model.safetensors + tokenizer.json, sentence-transformers files optional), which is converted
//! in memory with the same code as `slm convert`.

mod tokenizer;

pub use tokenizer::EncoderTokenizer;

use std::path::Path;
use std::sync::Arc;

use slm_format::GgufFile;
use slm_kernels::Pool;
use slm_model::bert::{BertModel, EncoderState, Pooling};
use slm_model::hf::{build_gguf, FloatType, ImportOptions};

use crate::error::RuntimeError;

/// Settings of [`Embedder::embed`].
#[derive(Clone, Copy, Debug)]
pub struct EmbedOptions {
    /// Texts per forward pass (≥ 1).
    pub batch: usize,
    /// Pooling; the model's own when `None`.
    pub pooling: Option<Pooling>,
    /// L2 normalisation; the model's own when `None`.
    pub normalize: Option<bool>,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        EmbedOptions { batch: 32, pooling: None, normalize: None }
    }
}

/// The vectors of [`Embedder::embed`], in input order, and the number of tokens encoded.
#[derive(Clone, Debug, Default)]
pub struct Embeddings {
    /// One vector per input text.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens fed to the encoder (special tokens included, after truncation).
    pub n_tokens: usize,
    /// Texts that were cut to the sequence limit.
    pub n_truncated: usize,
}

/// An encoder, its tokenizer and a thread pool.
pub struct Embedder {
    model: BertModel,
    tokenizer: EncoderTokenizer,
    pool: Pool,
    state: EncoderState,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder").field("config", self.model.config()).finish_non_exhaustive()
    }
}

impl Embedder {
    /// Opens a `bert` GGUF file, or converts a Hugging Face model directory in memory.
    pub fn open(path: &Path, n_threads: usize) -> Result<Embedder, RuntimeError> {
        let file = if path.is_dir() {
            let opts = ImportOptions { dtype: FloatType::F32, name: None };
            let (writer, summary) = build_gguf(path, &opts, &mut |_| {})?;
            if !summary.tokenizer {
                return Err(RuntimeError::MissingKey { key: format!("{}/tokenizer.json", path.display()) });
            }
            GgufFile::from_bytes(writer.to_bytes().map_err(slm_model::ModelError::from)?)
                .map_err(slm_model::ModelError::from)?
        } else {
            GgufFile::open(path).map_err(slm_model::ModelError::from)?
        };
        Embedder::from_gguf(Arc::new(file), n_threads)
    }

    /// Loads the encoder and tokenizer of a `bert` GGUF file.
    pub fn from_gguf(file: Arc<GgufFile>, n_threads: usize) -> Result<Embedder, RuntimeError> {
        let model = BertModel::load(file.clone())?;
        let tokenizer = EncoderTokenizer::from_gguf(file.metadata(), model.config().max_seq_len)?;
        let pool = Pool::new(n_threads.max(1)).map_err(slm_model::ModelError::from)?;
        Ok(Embedder { model, tokenizer, pool, state: EncoderState::new() })
    }

    /// The encoder.
    pub fn model(&self) -> &BertModel {
        &self.model
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &EncoderTokenizer {
        &self.tokenizer
    }

    /// Length of the vectors.
    pub fn dim(&self) -> usize {
        self.model.config().d_model
    }

    /// Embeds `texts` in batches; `progress(done)` is called after each batch.
    pub fn embed(
        &mut self,
        texts: &[&str],
        opts: &EmbedOptions,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Embeddings, RuntimeError> {
        if opts.batch == 0 {
            return Err(RuntimeError::InvalidRequest("batch size must be at least 1".into()));
        }
        let cfg = self.model.config();
        let pooling = opts.pooling.unwrap_or(cfg.pooling);
        let normalize = opts.normalize.unwrap_or(cfg.normalize);
        let max_len = self.tokenizer.max_len();
        let mut out = Embeddings { vectors: Vec::with_capacity(texts.len()), ..Embeddings::default() };
        for chunk in texts.chunks(opts.batch) {
            let ids: Vec<Vec<u32>> = chunk.iter().map(|t| self.tokenizer.encode(t)).collect::<Result<_, _>>()?;
            out.n_tokens += ids.iter().map(Vec::len).sum::<usize>();
            out.n_truncated += ids.iter().filter(|s| s.len() >= max_len).count();
            let seqs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
            let vectors = self.model.embed(&self.pool, &seqs, pooling, normalize, &mut self.state)?;
            out.vectors.extend(vectors);
            progress(out.vectors.len());
        }
        Ok(out)
    }
}

/// Cosine similarity of two vectors (0 when either is all zeros).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        ab += x as f64 * y as f64;
        aa += x as f64 * x as f64;
        bb += y as f64 * y as f64;
    }
    if aa == 0.0 || bb == 0.0 {
        return 0.0;
    }
    (ab / (aa.sqrt() * bb.sqrt())) as f32
}
