//! One request's generation, as steps the worker interleaves with other requests' (continuous
//! batching): feed the prompt chunk by chunk, then per generated token sample → text → decide.
//! Like `slm_runtime::Session::generate`, plus what a server needs on top: log-probabilities of
//! the sampled tokens, constrained output (`response_format`), and a cancellation check before
//! every forward step (client gone).
//!
//! ```text
//!  Generation::start ──► Phase::Prefill ──prefill_step (one n_batch chunk each)──► sample
//!        ──► Phase::Decode(token) ──worker feeds token (batched)──► after_decode ──► sample ──► …
//!        ──► Phase::Finished(reason) ──► finish: flush held-back text, hand the slot back
//! ```
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

/// Where a generation sends its output.
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

    /// Forgets everything (after an error the context may be half-written).
    fn reset(&mut self) {
        self.ctx.clear();
        self.history.clear();
    }
}

/// What a generation needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// More prompt tokens to feed: call [`Generation::prefill_step`].
    Prefill,
    /// This token was sampled: feed it (batched with others), then call
    /// [`Generation::after_decode`] with the logits.
    Decode(u32),
    /// Done: call [`Generation::finish`].
    Finished(FinishReason),
}

/// One request in flight: its slot, prompt position and sampling state.
pub struct Generation {
    slot: Slot,
    prompt: Vec<u32>,
    /// Index of the next prompt token to feed.
    fed: usize,
    params: GenParams,
    max_tokens: usize,
    sampler: Sampler,
    decoder: TokenDecoder,
    stop: StopChecker,
    constraint: Option<Constraint>,
    pending_lp: Vec<TokenLogprob>,
    logits: Vec<f32>,
    outcome: Outcome,
    phase: Phase,
}

impl Generation {
    /// Starts a request in `slot`, reusing the cached prefix it shares with `prompt` (at least
    /// one prompt token is always fed, for fresh logits). `max_tokens` is already checked to fit
    /// the context with the prompt. On error the slot comes back with the error.
    pub fn start(
        mut slot: Slot,
        engine: &Engine,
        prompt: Vec<u32>,
        params: GenParams,
        max_tokens: usize,
    ) -> Result<Generation, (Slot, ApiError)> {
        let n_ctx = slot.ctx.n_ctx();
        if prompt.is_empty() || prompt.len() >= n_ctx {
            let msg = format!(
                "the prompt has {} tokens; the context holds {n_ctx}",
                prompt.len()
            );
            return Err((slot, ApiError::bad_request(msg)));
        }
        let constraint = match engine.constraint(&params) {
            Ok(c) => c,
            Err(e) => return Err((slot, e)),
        };
        let sampler = match Sampler::new(params.sampler.clone()) {
            Ok(s) => s,
            Err(e) => return Err((slot, e.into())),
        };
        slot.last_used = Some(Instant::now());
        let reuse = slot.shared_prefix(&prompt).min(prompt.len() - 1);
        slot.ctx.truncate(reuse);
        slot.history.truncate(reuse);
        let stop = StopChecker::new(params.stop.clone());
        Ok(Generation {
            slot,
            fed: reuse,
            max_tokens,
            sampler,
            decoder: TokenDecoder::new(true),
            stop,
            constraint,
            pending_lp: Vec::new(),
            logits: Vec::new(),
            outcome: Outcome {
                n_prompt: prompt.len(),
                n_reused: reuse,
                n_generated: 0,
                finish: FinishReason::Cancelled,
                first_token: None,
            },
            prompt,
            params,
            phase: Phase::Prefill,
        })
    }

    /// What the generation needs next.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The context a [`Phase::Decode`] token is fed to.
    pub fn context(&mut self) -> &mut Context {
        &mut self.slot.ctx
    }

    /// Feeds the next chunk of the prompt (`n_batch` tokens); after the last one, samples the
    /// first answer token.
    pub fn prefill_step(&mut self, engine: &Engine, out: &mut dyn Output) -> Result<(), ApiError> {
        if out.cancelled() {
            self.phase = Phase::Finished(FinishReason::Cancelled);
            return Ok(());
        }
        let end = (self.fed + engine.opts.n_batch.max(1)).min(self.prompt.len());
        let chunk = self.prompt.get(self.fed..end).unwrap_or_default();
        let logits =
            engine
                .model
                .forward_prompt(&mut self.slot.ctx, &engine.pool, chunk, Logits::Last)?;
        self.slot.history.extend_from_slice(chunk);
        self.fed = end;
        if self.fed == self.prompt.len() {
            self.logits.clear();
            self.logits.extend_from_slice(logits);
            for &t in &self.prompt {
                self.sampler.accept(t);
            }
            self.phase = self.sample(engine, out)?;
        }
        Ok(())
    }

    /// The [`Phase::Decode`] token was fed to [`Generation::context`] and gave `logits`:
    /// record it and sample the next one.
    pub fn after_decode(
        &mut self,
        engine: &Engine,
        logits: &[f32],
        out: &mut dyn Output,
    ) -> Result<(), ApiError> {
        if let Phase::Decode(id) = self.phase {
            self.slot.history.push(id);
        }
        self.logits.clear();
        self.logits.extend_from_slice(logits);
        self.phase = self.sample(engine, out)?;
        Ok(())
    }

    /// Samples from `self.logits`, sends any finished text, and says what comes next.
    fn sample(&mut self, engine: &Engine, out: &mut dyn Output) -> Result<Phase, ApiError> {
        if self.outcome.n_generated >= self.max_tokens {
            return Ok(Phase::Finished(FinishReason::MaxTokens));
        }
        let logits = &mut self.logits;
        if self.params.ignore_eos {
            for &eog in &engine.eog_ids {
                if let Some(l) = logits.get_mut(eog as usize) {
                    *l = f32::NEG_INFINITY;
                }
            }
        }
        if let Some(c) = &mut self.constraint {
            c.mask_logits(logits)?;
        }
        let id = self.sampler.sample(logits);
        self.sampler.accept(id);
        self.outcome.n_generated += 1;
        self.outcome.first_token.get_or_insert_with(Instant::now);
        if let Some(c) = &mut self.constraint {
            c.accept(id)?;
        }
        let tokenizer = &engine.tokenizer;
        if tokenizer.is_eog(id) {
            return Ok(Phase::Finished(FinishReason::EndOfText));
        }
        if let Some(k) = self.params.logprobs {
            self.pending_lp.push(token_logprob(engine, logits, id, k));
        }
        if let Some(piece) = self.decoder.push(tokenizer, id) {
            let (text, hit) = match self.stop.push(&piece) {
                StopStatus::Continue { emit } => (emit, false),
                StopStatus::Stopped { emit, .. } => (emit, true),
            };
            if !text.is_empty() && !out.emit(text, std::mem::take(&mut self.pending_lp)) {
                return Ok(Phase::Finished(FinishReason::Cancelled));
            }
            if hit {
                return Ok(Phase::Finished(FinishReason::StopString));
            }
        }
        // A complete constrained answer ends like an end-of-text token.
        if self
            .constraint
            .as_ref()
            .is_some_and(Constraint::is_finished)
        {
            return Ok(Phase::Finished(FinishReason::EndOfText));
        }
        if self.slot.history.len() >= self.slot.ctx.n_ctx() {
            return Ok(Phase::Finished(FinishReason::ContextFull));
        }
        if out.cancelled() {
            return Ok(Phase::Finished(FinishReason::Cancelled));
        }
        Ok(Phase::Decode(id))
    }

    /// Ends the generation: sends text held back (an incomplete character or a possible
    /// stop-string prefix), which is real output unless the request was cancelled or stopped,
    /// and hands the slot back with the counts.
    pub fn finish(mut self, out: &mut dyn Output) -> (Slot, Outcome) {
        let finish = match self.phase {
            Phase::Finished(f) => f,
            _ => FinishReason::Cancelled,
        };
        if matches!(
            finish,
            FinishReason::MaxTokens | FinishReason::ContextFull | FinishReason::EndOfText
        ) {
            let tail = self.decoder.flush().unwrap_or_default();
            let mut text = match self.stop.push(&tail) {
                StopStatus::Continue { emit } | StopStatus::Stopped { emit, .. } => emit,
            };
            text.push_str(&self.stop.flush());
            if !text.is_empty() || !self.pending_lp.is_empty() {
                out.emit(text, std::mem::take(&mut self.pending_lp));
            }
        }
        self.outcome.finish = finish;
        (self.slot, self.outcome)
    }

    /// Ends the generation after an error: the slot's context may be half-written, so it is
    /// reset before it is handed back.
    pub fn fail(mut self) -> Slot {
        self.slot.reset();
        self.slot
    }

    /// Marks the generation cancelled (client gone) before its next step.
    pub fn cancel(&mut self) {
        self.phase = Phase::Finished(FinishReason::Cancelled);
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
