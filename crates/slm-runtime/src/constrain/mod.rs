//! Constrained decoding: the model may only write text a grammar accepts — any JSON object,
//! JSON matching a schema (OpenAI's `response_format`), a regex, or a Lark grammar. The grammar
//! engine is the `llguidance` crate; this module adapts slm's tokenizer to it and wraps its
//! per-request matcher.
//!
//! ```text
//!  Tokenizer ──► TokenEnv::new (once per model: token bytes, special marks, EOG ids)
//!  ConstraintSpec ──► Constraint::new(env, spec) (per request: compile, bounded)
//!  per step:  logits ──► Constraint::mask_logits (disallowed ids = -inf) ──► Sampler::sample ──► id
//!             id ──► Constraint::accept ──► is_finished()? stop: the answer is complete
//! ```
//!
//! End of text is allowed only where the grammar may end; once the grammar cannot go on,
//! [`Constraint::is_finished`] says so and the caller stops (as if EOS had been sampled).
//! Hostile specs are bounded twice: by size and nesting here, and by the engine's own compile
//! and per-step fuel ([`parser_limits`]), which fail with an error instead of running on.

mod env;
mod error;
mod spec;

#[cfg(test)]
mod cost;
#[cfg(test)]
mod tests;

pub use env::TokenEnv;
pub use error::ConstraintError;
pub use spec::ConstraintSpec;

use llguidance::api::ParserLimits;
use llguidance::toktrie::SimpleVob;
use llguidance::Matcher;

/// Largest spec (serialized schema, regex or grammar text) accepted, in bytes.
pub const MAX_SPEC_BYTES: usize = 64 * 1024;
/// Deepest JSON schema nesting accepted (objects and arrays inside each other).
pub const MAX_SCHEMA_DEPTH: usize = 32;

/// The grammar engine's limits: a fraction of its defaults, which are sized for huge
/// production schemas; ours answer a small model's requests, one at a time per worker.
pub(crate) fn parser_limits() -> ParserLimits {
    ParserLimits {
        max_items_in_row: 500,
        initial_lexer_fuel: 300_000,
        step_lexer_fuel: 100_000,
        step_max_items: 20_000,
        max_lexer_states: 50_000,
        max_grammar_size: 100_000,
        precompute_large_lexemes: true,
        verbose_errors: false,
    }
}

/// One request's grammar state: which tokens may come next, and whether the answer is complete.
pub struct Constraint {
    matcher: Matcher,
    n_vocab: usize,
    /// Set once the grammar is complete and nothing but end of text may follow.
    finished: bool,
    /// Tokens accepted so far (for messages).
    n_accepted: usize,
}

impl std::fmt::Debug for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Constraint")
            .field("n_vocab", &self.n_vocab)
            .field("finished", &self.finished)
            .field("n_accepted", &self.n_accepted)
            .finish_non_exhaustive()
    }
}

impl Constraint {
    /// Compiles `spec` against `env`'s vocabulary. Size and nesting are checked first
    /// ([`MAX_SPEC_BYTES`], [`MAX_SCHEMA_DEPTH`]); the engine then compiles within its fuel.
    pub fn new(env: &TokenEnv, spec: &ConstraintSpec) -> Result<Constraint, ConstraintError> {
        let grammar = spec.to_grammar()?;
        let parser = env.factory.create_parser(grammar).map_err(|e| spec.invalid(e))?;
        let matcher = Matcher::new(Ok(parser));
        if let Some(message) = matcher.get_error() {
            return Err(spec.invalid(message));
        }
        Ok(Constraint {
            matcher,
            n_vocab: env.n_vocab,
            finished: false,
            n_accepted: 0,
        })
    }

    /// The set of tokens allowed next (end-of-generation ids only once the grammar is
    /// complete). Costs one grammar step; [`mask_logits`](Self::mask_logits) calls it.
    pub fn allowed(&mut self) -> Result<SimpleVob, ConstraintError> {
        let mask = self.matcher.compute_mask_or_eos().map_err(|e| self.step_error(e))?;
        if mask.is_zero() {
            return Err(ConstraintError::Step(format!(
                "the grammar allows no token after {} tokens",
                self.n_accepted
            )));
        }
        Ok(mask)
    }

    /// Sets every disallowed token's logit to `-inf`. `logits` has one entry per token of the
    /// model (the `n_vocab` the [`TokenEnv`] was built with).
    pub fn mask_logits(&mut self, logits: &mut [f32]) -> Result<(), ConstraintError> {
        if logits.len() != self.n_vocab {
            return Err(ConstraintError::VocabMismatch {
                got: logits.len(),
                expected: self.n_vocab,
            });
        }
        let mask = self.allowed()?;
        apply_mask(mask.as_slice(), logits);
        Ok(())
    }

    /// Feeds the sampled token. An end-of-generation id accepted where the grammar may end
    /// finishes the constraint; a token the grammar does not allow is an error.
    pub fn accept(&mut self, id: u32) -> Result<(), ConstraintError> {
        if self.finished {
            return Ok(());
        }
        self.matcher.consume_token(id).map_err(|e| self.step_error(e))?;
        self.n_accepted += 1;
        // Stopped: the grammar is complete and cannot go on (or EOS was eaten).
        self.finished = self.matcher.is_stopped();
        Ok(())
    }

    /// Whether the answer is complete: the grammar accepts it and allows nothing but end of text.
    /// The caller stops generating here.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether the text so far is a complete answer (end of text would be allowed now).
    pub fn is_accepting(&mut self) -> bool {
        self.finished || self.matcher.is_accepting().unwrap_or(false)
    }

    fn step_error(&self, e: impl std::fmt::Display) -> ConstraintError {
        ConstraintError::Step(format!("after {} tokens: {e}", self.n_accepted))
    }
}

/// `logits[i] = -inf` where bit `i` of `bits` is clear; ids past the mask are disallowed.
/// Whole 32-token words are skipped (all allowed) or filled (none allowed) at once: most of a
/// JSON mask is one or the other.
fn apply_mask(bits: &[u32], logits: &mut [f32]) {
    let mut chunks = logits.chunks_mut(32);
    for (&word, chunk) in bits.iter().zip(&mut chunks) {
        match word {
            u32::MAX => {}
            0 => chunk.fill(f32::NEG_INFINITY),
            _ => {
                for (bit, l) in chunk.iter_mut().enumerate() {
                    if word & (1 << bit) == 0 {
                        *l = f32::NEG_INFINITY;
                    }
                }
            }
        }
    }
    for chunk in chunks {
        chunk.fill(f32::NEG_INFINITY);
    }
}
