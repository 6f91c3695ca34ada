//! [`Engine`]: one model, its tokenizer and chat template, and one context, driven one token at a
//! time.
//!
//! `slm_runtime::Session::generate` runs a whole answer in one call. In a Web Worker that would
//! keep the worker's event loop busy until the answer ends, so a Stop message could not arrive.
//! The engine therefore splits the same loop (same sampler chain, streaming detokenizer and stop
//! strings, same prefix reuse) into [`Engine::start`] (prompt) and [`Engine::step`] (one token),
//! and the worker yields to its event loop between steps.

use crate::error::WasmError;
use slm_format::GgufFile;
use slm_kernels::Pool;
use slm_model::{Context, Logits, Model, ModelError};
use slm_runtime::{
    encode_chat, ChatMessage, ChatTemplate, FinishReason, GgufVocab, Sampler, SamplerConfig,
    StopChecker, StopStatus, TokenDecoder, Tokenizer,
};
use std::sync::Arc;

/// Prompt tokens per forward pass.
const N_BATCH: usize = 64;

/// Settings of one answer, as JavaScript sends them (JSON; every field optional).
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenerateSettings {
    /// Upper bound on generated tokens.
    pub max_tokens: usize,
    /// Temperature; 0 means greedy.
    pub temperature: f32,
    /// Keep only the K most likely tokens (0 = off).
    pub top_k: usize,
    /// Nucleus threshold (1 = off).
    pub top_p: f32,
    /// Min-p threshold (0 = off).
    pub min_p: f32,
    /// Repetition penalty (1 = off).
    pub repeat_penalty: f32,
    /// Seed for reproducible sampling.
    pub seed: Option<u64>,
    /// Strings that end the answer.
    pub stop: Vec<String>,
    /// Keep going past end-of-text tokens (benchmarks: always `max_tokens` tokens).
    pub ignore_eos: bool,
}

impl Default for GenerateSettings {
    fn default() -> Self {
        let s = SamplerConfig::default();
        GenerateSettings {
            max_tokens: 256,
            temperature: s.temperature,
            top_k: s.top_k,
            top_p: s.top_p,
            min_p: s.min_p,
            repeat_penalty: s.repeat_penalty,
            seed: None,
            stop: Vec::new(),
            ignore_eos: false,
        }
    }
}

impl GenerateSettings {
    fn sampler(&self) -> SamplerConfig {
        SamplerConfig {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            seed: self.seed,
            ..SamplerConfig::default()
        }
    }
}

/// What one [`Engine::step`] produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Text that became final with this token (may be empty).
    pub text: String,
    /// The sampled token, if one was sampled.
    pub token: Option<u32>,
    /// Set when the answer has ended.
    pub finish: Option<FinishReason>,
}

/// An answer in progress.
struct Active {
    sampler: Sampler,
    decoder: TokenDecoder,
    stop: StopChecker,
    logits: Vec<f32>,
    max_tokens: usize,
    n_generated: usize,
    ignore_eos: bool,
}

/// A loaded model with one conversation context.
pub struct Engine {
    model: Model,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    pool: Pool,
    ctx: Context,
    /// Tokens whose keys/values are in `ctx`, in order.
    history: Vec<u32>,
    active: Option<Active>,
}

impl Engine {
    /// Loads a model from the bytes of a GGUF file, with a context of `n_ctx` tokens (capped at
    /// the model's training context).
    ///
    /// # Errors
    /// When the file is not a valid GGUF, its model is unsupported, or it has no usable tokenizer.
    pub fn from_gguf_bytes(bytes: Vec<u8>, n_ctx: usize) -> Result<Engine, WasmError> {
        let file = Arc::new(GgufFile::from_bytes(bytes)?);
        let model = Model::from_gguf(file)?;
        let tokenizer =
            Tokenizer::from_gguf_vocab(&GgufVocab::from_metadata(model.gguf().metadata())?)?;
        let template = ChatTemplate::for_tokenizer(&tokenizer)?;
        let n_ctx = n_ctx.clamp(1, model.config().n_ctx_train.max(1));
        let ctx = model.new_context(n_ctx, N_BATCH)?;
        // One thread: wasm32 without shared memory has no threads (Pool::new(1) spawns none).
        let pool = Pool::new(1).map_err(ModelError::from)?;
        Ok(Engine {
            model,
            tokenizer,
            template,
            pool,
            ctx,
            history: Vec::new(),
            active: None,
        })
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Context capacity in tokens.
    pub fn n_ctx(&self) -> usize {
        self.ctx.n_ctx()
    }

    /// Bytes of the KV cache (allocated up front for the whole context).
    pub fn kv_bytes(&self) -> usize {
        self.ctx.kv_bytes()
    }

    /// Forgets the conversation (and any answer in progress).
    pub fn reset(&mut self) {
        self.ctx.clear();
        self.history.clear();
        self.active = None;
    }

    /// Token ids of a chat: the template applied, special tokens protected in message contents.
    ///
    /// # Errors
    /// When the template fails or the text cannot be tokenized.
    pub fn encode_chat(&self, messages: &[ChatMessage]) -> Result<Vec<u32>, WasmError> {
        Ok(encode_chat(
            &self.tokenizer,
            &self.template,
            messages,
            true,
        )?)
    }

    /// Token ids of a raw prompt (no template; special tokens not parsed).
    ///
    /// # Errors
    /// When the text cannot be tokenized.
    pub fn encode_raw(&self, text: &str) -> Result<Vec<u32>, WasmError> {
        Ok(self.tokenizer.encode_prompt(text, false)?)
    }

    /// Processes `prompt` (reusing the KV entries of the longest common prefix with what the
    /// context holds) and prepares an answer. Returns how many prompt tokens were reused.
    ///
    /// # Errors
    /// `Runtime(InvalidRequest)` for an empty prompt or one that does not fit the context; bad
    /// sampler settings.
    pub fn start(
        &mut self,
        prompt: &[u32],
        settings: &GenerateSettings,
    ) -> Result<usize, WasmError> {
        self.active = None;
        let n_ctx = self.ctx.n_ctx();
        if prompt.is_empty() {
            return Err(
                slm_runtime::RuntimeError::InvalidRequest("the prompt is empty".into()).into(),
            );
        }
        if prompt.len() >= n_ctx {
            return Err(slm_runtime::RuntimeError::InvalidRequest(format!(
                "the prompt has {} tokens but the context holds {n_ctx}; start a new chat or load with a larger context",
                prompt.len()
            ))
            .into());
        }
        let mut sampler = Sampler::new(settings.sampler())?;
        let reuse = self
            .history
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count()
            .min(prompt.len() - 1);
        self.ctx.truncate(reuse);
        self.history.truncate(reuse);
        let new = &prompt[reuse..];
        let logits = self
            .model
            .forward_prompt(&mut self.ctx, &self.pool, new, Logits::Last)?
            .to_vec();
        self.history.extend_from_slice(new);
        for &t in prompt {
            sampler.accept(t);
        }
        self.active = Some(Active {
            sampler,
            decoder: TokenDecoder::new(true),
            stop: StopChecker::new(settings.stop.clone()),
            logits,
            max_tokens: settings.max_tokens,
            n_generated: 0,
            ignore_eos: settings.ignore_eos,
        });
        Ok(reuse)
    }

    /// The next-token logits of the answer in progress (`[V]`), for tests and tooling.
    pub fn next_logits(&self) -> Option<&[f32]> {
        self.active.as_ref().map(|a| a.logits.as_slice())
    }

    /// Whether an answer is in progress.
    pub fn is_generating(&self) -> bool {
        self.active.is_some()
    }

    /// Samples one token, feeds it to the model and returns the text that became final.
    ///
    /// # Errors
    /// `NotGenerating` without [`Engine::start`]; model errors.
    pub fn step(&mut self) -> Result<Step, WasmError> {
        let n_ctx = self.ctx.n_ctx();
        let a = self.active.as_mut().ok_or(WasmError::NotGenerating)?;
        if a.n_generated >= a.max_tokens {
            return Ok(self.finish(String::new(), None, FinishReason::MaxTokens));
        }
        let id = a.sampler.sample(&a.logits);
        a.sampler.accept(id);
        a.n_generated += 1;
        if self.tokenizer.is_eog(id) && !a.ignore_eos {
            return Ok(self.finish(String::new(), Some(id), FinishReason::EndOfText));
        }
        let (mut text, mut hit) = (String::new(), false);
        if let Some(piece) = a.decoder.push(&self.tokenizer, id) {
            (text, hit) = match a.stop.push(&piece) {
                StopStatus::Continue { emit } => (emit, false),
                StopStatus::Stopped { emit, .. } => (emit, true),
            };
        }
        if hit {
            return Ok(self.finish(text, Some(id), FinishReason::StopString));
        }
        if self.history.len() >= n_ctx {
            return Ok(self.finish(text, Some(id), FinishReason::ContextFull));
        }
        let logits = self
            .model
            .forward(&mut self.ctx, &self.pool, &[id], Logits::Last)?;
        a.logits.copy_from_slice(logits);
        self.history.push(id);
        Ok(Step {
            text,
            token: Some(id),
            finish: None,
        })
    }

    /// Ends the answer in progress at the caller's request (the Stop button).
    pub fn cancel(&mut self) {
        self.active = None;
    }

    /// Ends the answer; text held back (an incomplete character, a possible stop-string prefix)
    /// is real output unless a stop string ended it.
    fn finish(&mut self, mut text: String, token: Option<u32>, reason: FinishReason) -> Step {
        if let Some(mut a) = self.active.take() {
            if reason != FinishReason::StopString {
                let tail = a.decoder.flush().unwrap_or_default();
                match a.stop.push(&tail) {
                    StopStatus::Continue { emit } | StopStatus::Stopped { emit, .. } => {
                        text.push_str(&emit)
                    }
                }
                text.push_str(&a.stop.flush());
            }
        }
        Step {
            text,
            token,
            finish: Some(reason),
        }
    }
}
