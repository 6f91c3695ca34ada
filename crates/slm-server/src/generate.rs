//! The worker's generation loop: prompt → logits → sample → text, like
//! `slm_runtime::Session::generate`, plus what a server needs on top: log-probabilities of
//! the sampled tokens, a cancellation check before every forward step (client gone), and the
//! prompt fed in batches so that cancelling a long prompt is quick too.
//!
//! A [`Slot`] owns one context and remembers which tokens it holds, so a follow-up request that
//! extends the previous conversation only pays for its new tokens (prefix reuse).

use crate::engine::Engine;
use crate::error::ApiError;
use crate::params::GenParams;
use slm_model::{Context, Logits};
use slm_runtime::{Constraint, FinishReason, Sampler, StopChecker, StopStatus, TokenDecoder};
use std::time::Instant;

/// One generated token's log-probability and the most likely alternatives (ids resolved to text).
#[derive(Debug, Clone)]
pub struct TokenLogprob {
    /// The token's bytes.
    pub bytes: Vec<u8>,
    /// Natural-log probability under the model (before sampling filters).
    pub logprob: f32,
    /// The most likely tokens at this position: bytes and log-probability, best first.
    pub top: Vec<(Vec<u8>, f32)>,
}

/// Where the loop sends its output.
pub trait Output {
    /// Whether the client is gone (checked before every forward step).
    fn cancelled(&self) -> bool;
    /// New text and the log-probabilities of the tokens behind it. `false`: stop.
    fn emit(&mut self, text: String, logprobs: Vec<TokenLogprob>) -> bool;
}

/// Counts of one finished generation.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Tokens in the prompt.
    pub n_prompt: usize,
    /// Prompt tokens whose KV entries were reused.
    pub n_reused: usize,
    /// Tokens generated (including a final end-of-text token).
    pub n_generated: usize,
    /// Why it ended.
    pub finish: FinishReason,
    /// When the first token was sampled.
    pub first_token: Option<Instant>,
}

/// A context and the tokens it holds.
pub struct Slot {
    ctx: Context,
    history: Vec<u32>,
    /// When the slot last served a request (for least-recently-used choice).
    last_used: Option<Instant>,
}

impl Slot {
    /// A slot with an empty context of the engine's size.
    pub fn new(engine: &Engine) -> Result<Slot, ApiError> {
        Ok(Slot {
            ctx: engine
                .model
                .new_context(engine.opts.n_ctx, engine.opts.n_batch)?,
            history: Vec::new(),
            last_used: None,
        })
    }

    /// How many leading tokens of `prompt` this slot's cache already holds.
    pub fn shared_prefix(&self, prompt: &[u32]) -> usize {
        self.history
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count()
    }

    /// Tokens in the slot's cache.
    pub fn cached_len(&self) -> usize {
        self.history.len()
    }

    /// When the slot last served a request (`None`: never).
    pub fn last_used(&self) -> Option<Instant> {
        self.last_used
    }

    /// Runs one request. `max_tokens` is already checked to fit the context with the prompt.
    pub fn generate(
        &mut self,
        engine: &Engine,
        prompt: &[u32],
        params: &GenParams,
        max_tokens: usize,
        out: &mut dyn Output,
    ) -> Result<Outcome, ApiError> {
        self.last_used = Some(Instant::now());
        let result = self.run(engine, prompt, params, max_tokens, out);
        if result.is_err() {
            // The context may be half-written: start from scratch next time.
            self.ctx.clear();
            self.history.clear();
        }
        result
    }

    fn run(
        &mut self,
        engine: &Engine,
        prompt: &[u32],
        params: &GenParams,
        max_tokens: usize,
        out: &mut dyn Output,
    ) -> Result<Outcome, ApiError> {
        let n_ctx = self.ctx.n_ctx();
        if prompt.is_empty() || prompt.len() >= n_ctx {
            return Err(ApiError::bad_request(format!(
                "the prompt has {} tokens; the context holds {n_ctx}",
                prompt.len()
            )));
        }
        let (model, tokenizer, pool) = (&engine.model, &engine.tokenizer, &engine.pool);
        let mut constraint = engine.constraint(params)?;
        // Reuse the cached prefix, but always feed at least one token to get fresh logits.
        let reuse = self
            .history
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count()
            .min(prompt.len() - 1);
        self.ctx.truncate(reuse);
        self.history.truncate(reuse);
        let mut outcome = Outcome {
            n_prompt: prompt.len(),
            n_reused: reuse,
            n_generated: 0,
            finish: FinishReason::Cancelled,
            first_token: None,
        };

        let mut logits = Vec::new();
        for chunk in prompt
            .get(reuse..)
            .unwrap_or_default()
            .chunks(engine.opts.n_batch.max(1))
        {
            if out.cancelled() {
                return Ok(outcome);
            }
            logits.clear();
            logits.extend_from_slice(model.forward_prompt(&mut self.ctx, pool, chunk, Logits::Last)?);
            self.history.extend_from_slice(chunk);
        }

        let mut sampler = Sampler::new(params.sampler.clone())?;
        for &t in prompt {
            sampler.accept(t);
        }
        let mut decoder = TokenDecoder::new(true);
        let mut stop = StopChecker::new(params.stop.clone());
        let mut pending_lp = Vec::new();
        let finish = loop {
            if outcome.n_generated >= max_tokens {
                break FinishReason::MaxTokens;
            }
            if params.ignore_eos {
                for &eog in &engine.eog_ids {
                    if let Some(l) = logits.get_mut(eog as usize) {
                        *l = f32::NEG_INFINITY;
                    }
                }
            }
            if let Some(c) = &mut constraint {
                c.mask_logits(&mut logits)?;
            }
            let id = sampler.sample(&logits);
            sampler.accept(id);
            if let Some(c) = &mut constraint {
                c.accept(id)?;
            }
            outcome.n_generated += 1;
            outcome.first_token.get_or_insert_with(Instant::now);
            if tokenizer.is_eog(id) {
                break FinishReason::EndOfText;
            }
            if let Some(k) = params.logprobs {
                pending_lp.push(token_logprob(engine, &logits, id, k));
            }
            if let Some(piece) = decoder.push(tokenizer, id) {
                let (text, hit) = match stop.push(&piece) {
                    StopStatus::Continue { emit } => (emit, false),
                    StopStatus::Stopped { emit, .. } => (emit, true),
                };
                if !text.is_empty() && !out.emit(text, std::mem::take(&mut pending_lp)) {
                    break FinishReason::Cancelled;
                }
                if hit {
                    break FinishReason::StopString;
                }
            }
            // A complete constrained answer ends like an end-of-text token.
            if constraint.as_ref().is_some_and(Constraint::is_finished) {
                break FinishReason::EndOfText;
            }
            if self.history.len() >= n_ctx {
                break FinishReason::ContextFull;
            }
            if out.cancelled() {
                break FinishReason::Cancelled;
            }
            logits.copy_from_slice(model.forward(&mut self.ctx, pool, &[id], Logits::Last)?);
            self.history.push(id);
        };
        if matches!(
            finish,
            FinishReason::MaxTokens | FinishReason::ContextFull | FinishReason::EndOfText
        ) {
            // Text held back (an incomplete character or a possible stop-string prefix) is real output.
            let tail = decoder.flush().unwrap_or_default();
            let mut text = match stop.push(&tail) {
                StopStatus::Continue { emit } | StopStatus::Stopped { emit, .. } => emit,
            };
            text.push_str(&stop.flush());
            if !text.is_empty() || !pending_lp.is_empty() {
                out.emit(text, pending_lp);
            }
        }
        outcome.finish = finish;
        Ok(outcome)
    }
}

/// Log-softmax of `logits` at `id`, and the `k` most likely tokens.
fn token_logprob(engine: &Engine, logits: &[f32], id: u32, k: usize) -> TokenLogprob {
    let clean = |l: f32| if l.is_nan() { f32::NEG_INFINITY } else { l };
    let max = logits
        .iter()
        .copied()
        .map(clean)
        .fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits
        .iter()
        .map(|&l| f64::from(clean(l) - max).exp())
        .sum();
    let lse = f64::from(max) + sum.ln();
    // OpenAI reports -9999 rather than -inf (JSON has no infinity).
    let lp = |l: f32| ((f64::from(clean(l)) - lse) as f32).max(-9999.0);
    let mut top: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    if k > 0 {
        for (i, &l) in (0u32..).zip(logits) {
            let l = clean(l);
            if top.len() < k || top.last().is_some_and(|&(_, m)| l > m) {
                let pos = top.partition_point(|&(_, m)| m >= l);
                top.insert(pos, (i, l));
                top.truncate(k);
            }
        }
    }
    let tok = &engine.tokenizer;
    TokenLogprob {
        bytes: tok.token_to_piece(id).to_vec(),
        logprob: logits.get(id as usize).map_or(-9999.0, |&l| lp(l)),
        top: top
            .into_iter()
            .map(|(i, l)| (tok.token_to_piece(i).to_vec(), lp(l)))
            .collect(),
    }
}
