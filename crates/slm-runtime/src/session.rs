//! Generation sessions: one model context plus the loop prompt → logits → sample → text.
//!
//! A [`Session`] remembers which tokens its KV cache holds, so a follow-up prompt that extends
//! the previous conversation only pays for the new tokens (prefix reuse). Text leaves through a
//! push-style [`TokenSink`]; returning `Ok(false)` stops generation cleanly.

use crate::error::RuntimeError;
use crate::chat_template::{ChatMessage, ChatTemplate};
use crate::constrain::Constraint;
use crate::sampler::{Sampler, SamplerConfig};
use crate::stop::{StopChecker, StopStatus};
use crate::tokenizer::{TokenDecoder, Tokenizer};
use slm_kernels::Pool;
use slm_model::{Context, Logits, Model};
use std::sync::Arc;
use std::time::Instant;

/// Receives generated text as it is produced.
pub trait TokenSink {
    /// Called with each newly completed piece of text (never a partial UTF-8 character).
    /// Return `Ok(false)` to stop generating.
    fn on_token(&mut self, text: &str) -> Result<bool, RuntimeError>;
}

/// Collects the generated text into a string.
#[derive(Debug, Default)]
pub struct StringSink {
    /// Everything received so far.
    pub text: String,
}

impl TokenSink for StringSink {
    fn on_token(&mut self, text: &str) -> Result<bool, RuntimeError> {
        self.text.push_str(text);
        Ok(true)
    }
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// The model produced an end-of-generation token.
    EndOfText,
    /// A stop string was produced (it is not part of the output).
    StopString,
    /// `max_tokens` were generated.
    MaxTokens,
    /// The context window is full.
    ContextFull,
    /// The sink asked to stop.
    Cancelled,
}

impl FinishReason {
    /// The OpenAI `finish_reason` value: `stop` or `length`.
    pub fn openai_name(self) -> &'static str {
        match self {
            FinishReason::EndOfText | FinishReason::StopString | FinishReason::Cancelled => "stop",
            FinishReason::MaxTokens | FinishReason::ContextFull => "length",
        }
    }
}

/// What a generation call should do.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// Upper bound on generated tokens.
    pub max_tokens: usize,
    /// Sampling settings.
    pub sampler: SamplerConfig,
    /// Strings that end generation when produced.
    pub stop: Vec<String>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions { max_tokens: 256, sampler: SamplerConfig::default(), stop: Vec::new() }
    }
}

/// Counts and timings of one generation call.
#[derive(Clone, Debug)]
pub struct GenerationStats {
    /// Tokens in the prompt.
    pub n_prompt: usize,
    /// Prompt tokens whose KV entries were reused from the previous call.
    pub n_reused: usize,
    /// Tokens generated (including a final end-of-text token).
    pub n_generated: usize,
    /// Seconds spent processing the (non-reused part of the) prompt.
    pub prompt_secs: f64,
    /// Seconds spent generating.
    pub gen_secs: f64,
    /// Why it ended.
    pub finish: FinishReason,
}

impl GenerationStats {
    /// Prompt-processing speed in tokens per second.
    pub fn prompt_tps(&self) -> f64 {
        (self.n_prompt - self.n_reused) as f64 / self.prompt_secs.max(1e-9)
    }

    /// Generation speed in tokens per second.
    pub fn gen_tps(&self) -> f64 {
        self.n_generated as f64 / self.gen_secs.max(1e-9)
    }
}

/// Sizes of a session's context.
#[derive(Clone, Copy, Debug)]
pub struct SessionOptions {
    /// Context window in tokens.
    pub n_ctx: usize,
    /// Prompt tokens per forward pass.
    pub n_batch: usize,
}

/// A model, its tokenizer, a thread pool and one context, with the tokens the context holds.
pub struct Session {
    model: Arc<Model>,
    tokenizer: Arc<Tokenizer>,
    pool: Arc<Pool>,
    ctx: Context,
    /// Tokens whose keys/values are in `ctx`, in order.
    history: Vec<u32>,
}

impl Session {
    /// A new session with an empty context.
    pub fn new(
        model: Arc<Model>,
        tokenizer: Arc<Tokenizer>,
        pool: Arc<Pool>,
        opts: SessionOptions,
    ) -> Result<Session, RuntimeError> {
        let ctx = model.new_context(opts.n_ctx, opts.n_batch)?;
        Ok(Session { model, tokenizer, pool, ctx, history: Vec::new() })
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Context capacity in tokens.
    pub fn n_ctx(&self) -> usize {
        self.ctx.n_ctx()
    }

    /// Forgets the conversation.
    pub fn reset(&mut self) {
        self.ctx.clear();
        self.history.clear();
    }

    /// Runs `prompt` and streams up to `opts.max_tokens` sampled tokens into `sink`.
    ///
    /// The KV entries of the longest common prefix with the previous call are reused.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        opts: &GenerateOptions,
        sink: &mut dyn TokenSink,
    ) -> Result<GenerationStats, RuntimeError> {
        self.generate_constrained(prompt, opts, None, sink)
    }

    /// [`generate`](Self::generate) with the output held to `constraint` (see
    /// [`crate::constrain`]): disallowed tokens are masked before sampling, and generation ends
    /// with [`FinishReason::EndOfText`] as soon as the grammar is complete.
    pub fn generate_constrained(
        &mut self,
        prompt: &[u32],
        opts: &GenerateOptions,
        mut constraint: Option<&mut Constraint>,
        sink: &mut dyn TokenSink,
    ) -> Result<GenerationStats, RuntimeError> {
        let n_ctx = self.ctx.n_ctx();
        if prompt.is_empty() {
            return Err(RuntimeError::InvalidRequest("the prompt is empty".into()));
        }
        if prompt.len() >= n_ctx {
            return Err(RuntimeError::InvalidRequest(format!(
                "the prompt has {} tokens but the context holds {n_ctx}; shorten it or raise the context size",
                prompt.len()
            )));
        }
        // Reuse the cached prefix, but always feed at least one token to get fresh logits.
        let mut reuse = self.history.iter().zip(prompt).take_while(|(a, b)| a == b).count();
        reuse = reuse.min(prompt.len() - 1);
        self.ctx.truncate(reuse);
        self.history.truncate(reuse);

        let t0 = Instant::now();
        let new = &prompt[reuse..];
        let mut logits = self.model.forward_prompt(&mut self.ctx, &self.pool, new, Logits::Last)?.to_vec();
        self.history.extend_from_slice(new);
        let prompt_secs = t0.elapsed().as_secs_f64();

        let mut sampler = Sampler::new(opts.sampler.clone())?;
        for &t in prompt {
            sampler.accept(t);
        }
        let mut decoder = TokenDecoder::new(true);
        let mut stop = StopChecker::new(opts.stop.clone());
        let t1 = Instant::now();
        let mut n_generated = 0;
        let finish = loop {
            if n_generated >= opts.max_tokens {
                break FinishReason::MaxTokens;
            }
            if let Some(c) = constraint.as_deref_mut() {
                c.mask_logits(&mut logits).map_err(|e| RuntimeError::InvalidRequest(e.to_string()))?;
            }
            let id = sampler.sample(&logits);
            sampler.accept(id);
            n_generated += 1;
            if let Some(c) = constraint.as_deref_mut() {
                c.accept(id).map_err(|e| RuntimeError::InvalidRequest(e.to_string()))?;
            }
            if self.tokenizer.is_eog(id) {
                break FinishReason::EndOfText;
            }
            if let Some(piece) = decoder.push(&self.tokenizer, id) {
                let (text, hit) = match stop.push(&piece) {
                    StopStatus::Continue { emit } => (emit, false),
                    StopStatus::Stopped { emit, .. } => (emit, true),
                };
                if !text.is_empty() && !sink.on_token(&text)? {
                    break FinishReason::Cancelled;
                }
                if hit {
                    break FinishReason::StopString;
                }
            }
            if constraint.as_deref().is_some_and(Constraint::is_finished) {
                break FinishReason::EndOfText;
            }
            if self.history.len() >= n_ctx {
                break FinishReason::ContextFull;
            }
            logits.copy_from_slice(self.model.forward(&mut self.ctx, &self.pool, &[id], Logits::Last)?);
            self.history.push(id);
        };
        if matches!(finish, FinishReason::MaxTokens | FinishReason::ContextFull | FinishReason::EndOfText) {
            // Text held back (an incomplete character or a possible stop-string prefix) is real output.
            let tail = decoder.flush().unwrap_or_default();
            let mut text = match stop.push(&tail) {
                StopStatus::Continue { emit } | StopStatus::Stopped { emit, .. } => emit,
            };
            text.push_str(&stop.flush());
            if !text.is_empty() {
                sink.on_token(&text)?;
            }
        }
        Ok(GenerationStats {
            n_prompt: prompt.len(),
            n_reused: reuse,
            n_generated,
            prompt_secs,
            gen_secs: t1.elapsed().as_secs_f64(),
            finish,
        })
    }
}

/// Renders `messages` with the chat template and tokenizes the result with special tokens parsed
/// in the template's own text but never inside message contents (a user typing `<|im_end|>`
/// gets those characters, not the control token). Adds BOS when the model wants it and the
/// template did not emit it.
pub fn encode_chat(
    tokenizer: &Tokenizer,
    template: &ChatTemplate,
    messages: &[ChatMessage],
    add_generation_prompt: bool,
) -> Result<Vec<u32>, RuntimeError> {
    let prompt = template.render_prompt(messages, add_generation_prompt)?;
    let mut ids = tokenizer.encode_protected(&prompt.text, &prompt.content_ranges)?;
    if let (true, Some(bos)) = (tokenizer.add_bos(), tokenizer.bos_id()) {
        if ids.first() != Some(&bos) {
            ids.insert(0, bos);
        }
    }
    Ok(ids)
}
