//! A loaded model and its decoding contexts.
//!
//! [`Model`] is immutable and shareable between threads (weights are memory-mapped); a
//! [`Context`] holds everything per conversation: the KV cache and activation buffers.

use crate::arch::llama::{self, ForwardState, LlamaWeights, SeqSpan};
use crate::config::{ModelConfig, MAX_CONTEXT};
use crate::error::ModelError;
use crate::kv_cache::KvCache;
use crate::lora::{LoraAdapter, LoraError, LoraStack};
use crate::observe::ActivationObserver;
use crate::weights::TensorLoader;
use slm_format::{GgufFile, Residency};
use slm_kernels::Pool;
use std::path::Path;
use std::sync::Arc;

/// Which logits [`Model::forward`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logits {
    /// Only for the last token: `[V]` (generation).
    Last,
    /// For every token: `[T][V]` (perplexity, evaluation, scoring).
    All,
}

/// A loaded model: configuration plus weights.
#[derive(Debug)]
pub struct Model {
    config: ModelConfig,
    weights: LlamaWeights,
    file: Arc<GgufFile>,
    /// LoRA adapters applied in the forward pass (`None`: the base model).
    lora: Option<LoraStack>,
}

/// Memory a [`Context`] needs, computed from the config without allocating (for `slm fit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextBytes {
    /// Keys and values of every layer for `n_ctx` positions (f32).
    pub kv_cache: usize,
    /// Activation buffers, RoPE table and kernel scratch for batches of `n_batch` tokens.
    pub activations: usize,
    /// One row of logits.
    pub logits: usize,
}

impl ContextBytes {
    /// For a model of `cfg` with a context of `n_ctx` positions and prompt batches of `n_batch`.
    pub fn of(cfg: &ModelConfig, n_ctx: usize, n_batch: usize) -> ContextBytes {
        ContextBytes {
            kv_cache: 2 * cfg.n_layer * cfg.kv_dim() * n_ctx * 4,
            activations: ForwardState::bytes_for(cfg, n_batch.clamp(1, n_ctx.max(1)), n_ctx),
            logits: cfg.n_vocab * 4,
        }
    }

    /// The sum.
    pub fn total(&self) -> usize {
        self.kv_cache + self.activations + self.logits
    }
}

/// Per-conversation state: KV cache, activation buffers and the logits of the last call.
#[derive(Debug)]
pub struct Context {
    cache: KvCache,
    state: ForwardState,
    logits: Vec<f32>,
}

/// Buffers for decoding several contexts together, one token each per step (continuous
/// batching): see [`Model::forward_decode`].
#[derive(Debug)]
pub struct DecodeBatch {
    state: ForwardState,
    logits: Vec<f32>,
}

impl DecodeBatch {
    /// Most sequences one step takes.
    pub fn max_seqs(&self) -> usize {
        self.state.n_batch()
    }
}

impl Context {
    /// Bytes held by the activation buffers and RoPE table (excluding the KV cache).
    pub fn activation_bytes(&self) -> usize {
        self.state.allocated_bytes()
    }

    /// Tokens already processed (the next token's position).
    pub fn n_past(&self) -> usize {
        self.cache.len()
    }

    /// Capacity in tokens.
    pub fn n_ctx(&self) -> usize {
        self.cache.n_ctx()
    }

    /// Forgets tokens from position `n` on, keeping the prefix (prompt-prefix reuse).
    pub fn truncate(&mut self, n: usize) {
        self.cache.truncate(n);
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.cache.clear();
    }

    /// Bytes held by the KV cache.
    pub fn kv_bytes(&self) -> usize {
        self.cache.n_bytes()
    }
}

impl Model {
    /// Loads a GGUF model file, its weights held as [`Residency::Auto`] decides (read into
    /// huge-page memory when the file fits comfortably, else memory-mapped).
    pub fn load(path: &Path) -> Result<Model, ModelError> {
        Model::load_with(path, Residency::Auto)
    }

    /// [`Model::load`] with the weights held as `residency` says.
    pub fn load_with(path: &Path, residency: Residency) -> Result<Model, ModelError> {
        let file = GgufFile::open_with(path, &slm_format::gguf::Limits::default(), residency)?;
        Model::from_gguf(Arc::new(file))
    }

    /// Loads a model from an already opened GGUF file.
    pub fn from_gguf(file: Arc<GgufFile>) -> Result<Model, ModelError> {
        let config = ModelConfig::from_gguf(&file)?;
        let loader = TensorLoader::new(file.clone(), config.arch.gguf_name());
        let weights = LlamaWeights::load(loader, &config)?;
        Ok(Model { config, weights, file, lora: None })
    }

    /// The model's hyper-parameters.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The GGUF file the model was loaded from (metadata, tokenizer, template).
    pub fn gguf(&self) -> &GgufFile {
        &self.file
    }

    /// The weights.
    pub fn weights(&self) -> &LlamaWeights {
        &self.weights
    }

    /// Applies LoRA `adapters` (each with a user scale, as `--lora FILE:SCALE`) in every forward
    /// pass from now on, replacing any set before; an empty list restores the base model. Each
    /// adapter is checked against the model first (nothing changes on error).
    pub fn set_adapters(&mut self, adapters: &[(LoraAdapter, f32)]) -> Result<(), LoraError> {
        let stack = LoraStack::new(&self.config, adapters)?;
        self.lora = (!stack.is_empty()).then_some(stack);
        Ok(())
    }

    /// [`Model::set_adapters`] by value.
    pub fn with_adapters(mut self, adapters: &[(LoraAdapter, f32)]) -> Result<Model, LoraError> {
        self.set_adapters(adapters)?;
        Ok(self)
    }

    /// The active adapters, combined per projection (`None` when running the base model).
    pub fn adapters(&self) -> Option<&LoraStack> {
        self.lora.as_ref()
    }

    /// A fresh context for `n_ctx` positions that processes prompts in batches of `n_batch`.
    pub fn new_context(&self, n_ctx: usize, n_batch: usize) -> Result<Context, ModelError> {
        if n_ctx == 0 || n_ctx > MAX_CONTEXT {
            return Err(ModelError::InvalidArgument(format!("context size {n_ctx} must be in 1..={MAX_CONTEXT}")));
        }
        if n_batch == 0 {
            return Err(ModelError::InvalidArgument("batch size must be at least 1".into()));
        }
        let n_batch = n_batch.min(n_ctx);
        let c = &self.config;
        Ok(Context {
            cache: KvCache::new(c.n_layer, c.n_kv_head, c.head_dim, n_ctx)?,
            state: ForwardState::new(c, n_batch, n_ctx),
            logits: Vec::new(),
        })
    }

    /// Feeds `tokens` at positions `ctx.n_past()..` and returns logits.
    ///
    /// # Shapes
    /// Returns `[V]` for [`Logits::Last`], `[T][V]` for [`Logits::All`].
    pub fn forward<'c>(
        &self,
        ctx: &'c mut Context,
        pool: &Pool,
        tokens: &[u32],
        which: Logits,
    ) -> Result<&'c [f32], ModelError> {
        self.forward_observed(ctx, pool, tokens, which, None)
    }

    /// Buffers for [`Model::forward_decode`] steps of up to `max_seqs` contexts of at most
    /// `n_ctx` positions each.
    pub fn new_decode_batch(&self, max_seqs: usize, n_ctx: usize) -> Result<DecodeBatch, ModelError> {
        if n_ctx == 0 || n_ctx > MAX_CONTEXT {
            return Err(ModelError::InvalidArgument(format!("context size {n_ctx} must be in 1..={MAX_CONTEXT}")));
        }
        if max_seqs == 0 || max_seqs > n_ctx {
            return Err(ModelError::InvalidArgument(format!(
                "a decode batch takes 1..={n_ctx} sequences, not {max_seqs}"
            )));
        }
        Ok(DecodeBatch { state: ForwardState::new(&self.config, max_seqs, n_ctx), logits: Vec::new() })
    }

    /// One generation step for several contexts at once: `tokens[i]` is fed to `ctxs[i]` at its
    /// next position, and the result holds each context's next-token logits, `[S][V]`. Every
    /// weight is read once for all of them, which is what makes serving several requests cheaper
    /// than taking turns. Each context's logits are bit for bit what [`Model::forward`] gives
    /// for it alone (the products run in row-invariant mode), so batching never changes a
    /// request's output. Nothing is written unless every context has room.
    pub fn forward_decode<'b>(
        &self,
        batch: &'b mut DecodeBatch,
        pool: &Pool,
        ctxs: &mut [&mut Context],
        tokens: &[u32],
    ) -> Result<&'b [f32], ModelError> {
        if ctxs.len() != tokens.len() {
            return Err(ModelError::InvalidArgument(format!(
                "{} contexts but {} tokens in a decode step",
                ctxs.len(),
                tokens.len()
            )));
        }
        let n = tokens.len();
        let state = &mut batch.state;
        state.set_prompt(false);
        state.set_row_invariant(true);
        let mut seqs: Vec<SeqSpan> = ctxs.iter_mut().map(|c| SeqSpan { cache: &mut c.cache, n: 1 }).collect();
        let lora = self.lora.as_ref();
        llama::forward_batch(&self.config, &self.weights, pool, &mut seqs, state, tokens, None, lora)?;
        batch.logits.resize(n * self.config.n_vocab, 0.0);
        llama::output_logits(&self.weights, pool, state, 0, n, &mut batch.logits)?;
        Ok(&batch.logits)
    }

    /// [`Model::forward`] for prompt tokens: batched products use the prompt kernels for any
    /// number of tokens (see `slm_kernels::Scratch::set_prompt`), so a prompt gives the same
    /// results however it is split into calls (prefix reuse, chunking). Use [`Model::forward`]
    /// for generated tokens.
    pub fn forward_prompt<'c>(
        &self,
        ctx: &'c mut Context,
        pool: &Pool,
        tokens: &[u32],
        which: Logits,
    ) -> Result<&'c [f32], ModelError> {
        self.forward_mode(ctx, pool, tokens, which, None, true)
    }

    /// [`Model::forward`], showing `observer` the activations that enter every block linear.
    pub fn forward_observed<'c>(
        &self,
        ctx: &'c mut Context,
        pool: &Pool,
        tokens: &[u32],
        which: Logits,
        observer: Option<&mut dyn ActivationObserver>,
    ) -> Result<&'c [f32], ModelError> {
        self.forward_mode(ctx, pool, tokens, which, observer, false)
    }

    /// The forward pass; `prompt` selects the kernels' prompt mode for this call (every entry
    /// point sets it, so an error cannot leave a stale mode behind).
    fn forward_mode<'c>(
        &self,
        ctx: &'c mut Context,
        pool: &Pool,
        tokens: &[u32],
        which: Logits,
        mut observer: Option<&mut dyn ActivationObserver>,
        prompt: bool,
    ) -> Result<&'c [f32], ModelError> {
        ctx.state.set_prompt(prompt);
        ctx.state.set_row_invariant(false);
        let v = self.config.n_vocab;
        if tokens.is_empty() {
            return Err(ModelError::InvalidArgument("forward needs at least one token".into()));
        }
        if ctx.cache.len() + tokens.len() > ctx.cache.n_ctx() {
            return Err(ModelError::ContextFull {
                n_past: ctx.cache.len(),
                n_new: tokens.len(),
                n_ctx: ctx.cache.n_ctx(),
            });
        }
        let n_out = match which {
            Logits::Last => 1,
            Logits::All => tokens.len(),
        };
        ctx.logits.resize(n_out * v, 0.0);
        let n_batch = ctx.state.n_batch();
        let n_chunks = tokens.len().div_ceil(n_batch);
        let mut written = 0;
        for (i, chunk) in tokens.chunks(n_batch).enumerate() {
            let obs = observer.as_mut().map(|o| &mut **o as &mut dyn ActivationObserver);
            let lora = self.lora.as_ref();
            let mut seqs = [SeqSpan { cache: &mut ctx.cache, n: chunk.len() }];
            llama::forward_batch(&self.config, &self.weights, pool, &mut seqs, &mut ctx.state, chunk, obs, lora)?;
            let first = match which {
                Logits::All => 0,
                Logits::Last if i + 1 == n_chunks => chunk.len() - 1,
                Logits::Last => continue,
            };
            let rows = chunk.len() - first;
            let out = &mut ctx.logits[written * v..(written + rows) * v];
            llama::output_logits(&self.weights, pool, &mut ctx.state, first, chunk.len(), out)?;
            written += rows;
        }
        Ok(&ctx.logits)
    }
}
