//! Completion suggestions (`slm complete`): the N most likely continuations of a text, each
//! extended greedily for a few tokens, with its probability — what a keyboard or an e-mail client
//! offers while the user types.
//!
//! The prefix is processed once; every suggestion then rewinds the KV cache to the end of the
//! prefix and decodes its own few tokens, so N suggestions of K tokens cost one prompt pass plus
//! N × K single-token steps.

use crate::error::RuntimeError;
use crate::tokenizer::Tokenizer;
use slm_kernels::Pool;
use slm_model::{Context, Logits, Model};
use std::time::Instant;

/// Most suggestions one call may ask for.
pub const MAX_SUGGESTIONS: usize = 16;
/// Most tokens one suggestion may have.
pub const MAX_SUGGESTION_TOKENS: usize = 64;

/// What to suggest.
#[derive(Clone, Copy, Debug)]
pub struct CompleteOptions {
    /// Number of suggestions (distinct first tokens), 1..=[`MAX_SUGGESTIONS`].
    pub n: usize,
    /// Tokens per suggestion at most, 1..=[`MAX_SUGGESTION_TOKENS`].
    pub max_tokens: usize,
}

impl Default for CompleteOptions {
    fn default() -> Self {
        CompleteOptions { n: 3, max_tokens: 5 }
    }
}

/// One suggested continuation.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Suggestion {
    /// The text to append.
    pub text: String,
    /// Its token ids.
    pub tokens: Vec<u32>,
    /// Probability of the whole continuation under the model (product of its tokens' probabilities).
    pub probability: f64,
    /// Probability of its first token alone.
    pub first_token_probability: f64,
}

/// Suggestions and timings.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Completion {
    /// Most probable first.
    pub suggestions: Vec<Suggestion>,
    /// Tokens in the prefix.
    pub n_prompt: usize,
    /// Milliseconds to process the prefix.
    pub prompt_ms: f64,
    /// Milliseconds for everything.
    pub total_ms: f64,
}

/// Softmax of `logits` in f64.
fn probabilities(logits: &[f32]) -> Vec<f64> {
    let mut out = vec![0.0; logits.len()];
    crate::compare::log_softmax(logits, &mut out);
    out.iter_mut().for_each(|lp| *lp = lp.exp());
    out
}

/// Whether a suggestion should end after this token: end of text, a control token, a line break,
/// or the end of a sentence.
fn ends_suggestion(tokenizer: &Tokenizer, id: u32) -> bool {
    if tokenizer.is_eog(id) || tokenizer.is_special(id) {
        return true;
    }
    let piece = tokenizer.token_to_piece(id);
    piece.contains(&b'\n') || matches!(piece.last(), Some(b'.' | b'!' | b'?'))
}

/// The `opts.n` most likely continuations of `text`, in a context of the model (cleared first).
pub fn complete(
    model: &Model,
    tokenizer: &Tokenizer,
    pool: &Pool,
    ctx: &mut Context,
    text: &str,
    opts: &CompleteOptions,
) -> Result<Completion, RuntimeError> {
    if !(1..=MAX_SUGGESTIONS).contains(&opts.n) || !(1..=MAX_SUGGESTION_TOKENS).contains(&opts.max_tokens) {
        return Err(RuntimeError::InvalidRequest(format!(
            "ask for 1..={MAX_SUGGESTIONS} suggestions of 1..={MAX_SUGGESTION_TOKENS} tokens (got {} of {})",
            opts.n, opts.max_tokens
        )));
    }
    let start = Instant::now();
    let prompt = tokenizer.encode_prompt(text, false)?;
    if prompt.is_empty() {
        return Err(RuntimeError::InvalidRequest("the text to complete is empty".into()));
    }
    if prompt.len() + opts.max_tokens > ctx.n_ctx() {
        return Err(RuntimeError::InvalidRequest(format!(
            "the text has {} tokens; with {} suggested tokens it needs a context of {}, but the context holds {}",
            prompt.len(),
            opts.max_tokens,
            prompt.len() + opts.max_tokens,
            ctx.n_ctx()
        )));
    }
    ctx.clear();
    let first = probabilities(model.forward(ctx, pool, &prompt, Logits::Last)?);
    let prompt_ms = start.elapsed().as_secs_f64() * 1e3;

    // Distinct first tokens, most likely first, skipping ones that end the text.
    let mut order: Vec<usize> = (0..first.len()).collect();
    order.sort_by(|&a, &b| first[b].total_cmp(&first[a]));
    let firsts: Vec<u32> = order
        .into_iter()
        .map(|i| i as u32)
        .filter(|&id| !tokenizer.is_eog(id) && !tokenizer.is_special(id))
        .take(opts.n)
        .collect();

    let mut suggestions = Vec::with_capacity(firsts.len());
    for t0 in firsts {
        ctx.truncate(prompt.len());
        let p0 = first[t0 as usize];
        let (mut tokens, mut probability) = (vec![t0], p0);
        while tokens.len() < opts.max_tokens && !ends_suggestion(tokenizer, *tokens.last().unwrap_or(&t0)) {
            let last = tokens[tokens.len() - 1];
            let probs = probabilities(model.forward(ctx, pool, &[last], Logits::Last)?);
            let (next, p) =
                probs.iter().enumerate().fold((0, 0.0), |best, (i, &p)| if p > best.1 { (i, p) } else { best });
            let next = next as u32;
            if tokenizer.is_eog(next) || tokenizer.is_special(next) {
                break;
            }
            tokens.push(next);
            probability *= p;
        }
        suggestions.push(Suggestion {
            text: tokenizer.decode(&tokens, true),
            tokens,
            probability,
            first_token_probability: p0,
        });
    }
    suggestions.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    Ok(Completion { suggestions, n_prompt: prompt.len(), prompt_ms, total_ms: start.elapsed().as_secs_f64() * 1e3 })
}
