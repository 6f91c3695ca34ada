//! Choosing the next token from logits: a chain of small stages over a reusable candidate list.
//!
//! ```text
//!  logits ──► penalties ──► top-k ──► top-p ──► min-p ──► temperature ──► draw (seeded PRNG)
//!                 └─────────── temperature <= 0: argmax (lowest id on ties) ───────────┘
//! ```
//!
//! Defaults and semantics are llama.cpp's (`common_params_sampling`, `src/llama-sampling.cpp`).
//! After warm-up, sampling allocates nothing: the candidate list and the penalty scratch are
//! reused. Call [`Sampler::accept`] with every token that joins the sequence (prompt tokens
//! too, if the repetition penalty should see them).

mod rng;
mod stages;

use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;
pub use rng::{entropy_seed, Rng};
pub use stages::{Candidate, Candidates, MinP, Penalties, SamplerStage, Temperature, TopK, TopP};

/// Largest accepted `repeat_last_n` (the penalty window is allocated up front).
pub const MAX_REPEAT_LAST_N: usize = 1 << 16;

/// Sampling settings. Serde fills missing fields with the defaults below.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplerConfig {
    /// Softmax temperature; `<= 0` means greedy (argmax). Default 0.8.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; 0 disables. Default 40.
    pub top_k: usize,
    /// Nucleus: keep the most likely tokens whose probabilities add up to `top_p`; 1 disables.
    /// Default 0.95.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` × the top token's probability; 0 disables.
    /// Default 0.05.
    pub min_p: f32,
    /// Repetition penalty (divide positive / multiply negative logits of recent tokens);
    /// 1 disables. Default 1.0.
    pub repeat_penalty: f32,
    /// How many recent tokens the penalties look at; 0 disables. Default 64.
    pub repeat_last_n: usize,
    /// Subtracted once from the logit of every recent token. Default 0.
    pub presence_penalty: f32,
    /// Subtracted per occurrence from the logit of recent tokens. Default 0.
    pub frequency_penalty: f32,
    /// PRNG seed; `None` picks a random one. Same seed + same logits ⇒ same tokens.
    pub seed: Option<u64>,
}

impl Default for SamplerConfig {
    fn default() -> SamplerConfig {
        SamplerConfig {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            seed: None,
        }
    }
}

impl SamplerConfig {
    /// Greedy decoding (temperature 0), no penalties.
    pub fn greedy() -> SamplerConfig {
        SamplerConfig { temperature: 0.0, ..SamplerConfig::default() }
    }

    /// Sets the temperature.
    pub fn with_temperature(mut self, t: f32) -> SamplerConfig {
        self.temperature = t;
        self
    }

    /// Sets top-k.
    pub fn with_top_k(mut self, k: usize) -> SamplerConfig {
        self.top_k = k;
        self
    }

    /// Sets top-p.
    pub fn with_top_p(mut self, p: f32) -> SamplerConfig {
        self.top_p = p;
        self
    }

    /// Sets min-p.
    pub fn with_min_p(mut self, p: f32) -> SamplerConfig {
        self.min_p = p;
        self
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> SamplerConfig {
        self.seed = Some(seed);
        self
    }

    /// Sets the repetition penalty and its window.
    pub fn with_repeat_penalty(mut self, penalty: f32, last_n: usize) -> SamplerConfig {
        self.repeat_penalty = penalty;
        self.repeat_last_n = last_n;
        self
    }

    /// Checks every field's range.
    pub fn validate(&self) -> Result<(), RuntimeError> {
        let bad = |field: &'static str, value: String, reason: &'static str| {
            Err(RuntimeError::InvalidSamplerConfig { field, value, reason })
        };
        if self.temperature.is_nan() || self.temperature.is_infinite() {
            return bad("temperature", self.temperature.to_string(), "must be a finite number (<= 0 means greedy)");
        }
        if !(0.0..=1.0).contains(&self.top_p) {
            return bad("top_p", self.top_p.to_string(), "must be in [0, 1]");
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return bad("min_p", self.min_p.to_string(), "must be in [0, 1]");
        }
        if !(self.repeat_penalty.is_finite() && self.repeat_penalty > 0.0) {
            return bad("repeat_penalty", self.repeat_penalty.to_string(), "must be a finite number > 0 (1 disables)");
        }
        if !self.presence_penalty.is_finite() {
            return bad("presence_penalty", self.presence_penalty.to_string(), "must be finite");
        }
        if !self.frequency_penalty.is_finite() {
            return bad("frequency_penalty", self.frequency_penalty.to_string(), "must be finite");
        }
        if self.repeat_last_n > MAX_REPEAT_LAST_N {
            return bad("repeat_last_n", self.repeat_last_n.to_string(), "must be at most 65536");
        }
        Ok(())
    }
}

/// A configured sampler chain with its PRNG and penalty history.
#[derive(Debug)]
pub struct Sampler {
    config: SamplerConfig,
    seed: u64,
    rng: Rng,
    penalties: Penalties,
    /// Filters after the penalties (top-k, top-p, min-p, temperature); unused when greedy.
    filters: Vec<Box<dyn SamplerStage>>,
    candidates: Candidates,
}

impl Sampler {
    /// Builds the chain for `config` (validated first).
    pub fn new(config: SamplerConfig) -> Result<Sampler, RuntimeError> {
        config.validate()?;
        let seed = config.seed.unwrap_or_else(entropy_seed);
        let penalties = Penalties::new(
            config.repeat_last_n,
            config.repeat_penalty,
            config.frequency_penalty,
            config.presence_penalty,
        );
        let filters: Vec<Box<dyn SamplerStage>> = vec![
            Box::new(TopK(config.top_k)),
            Box::new(TopP(config.top_p)),
            Box::new(MinP(config.min_p)),
            Box::new(Temperature(config.temperature)),
        ];
        Ok(Sampler { config, seed, rng: Rng::new(seed), penalties, filters, candidates: Candidates::default() })
    }

    /// The configuration.
    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// The seed in use (the drawn one when the config had none).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Whether this sampler is greedy (temperature <= 0).
    pub fn is_greedy(&self) -> bool {
        self.config.temperature <= 0.0
    }

    /// Picks the next token from `logits` (index = token id). Does not record it: call
    /// [`accept`](Self::accept) with the token that is actually used. An empty slice gives 0.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if logits.is_empty() {
            return 0;
        }
        let c = &mut self.candidates;
        c.fill(logits);
        self.penalties.apply(c);
        if self.config.temperature <= 0.0 {
            return c.best().map_or(0, |x| x.id);
        }
        for stage in &mut self.filters {
            stage.apply(c);
        }
        draw(c, &mut self.rng)
    }

    /// Records a token that joined the sequence (for the penalties).
    pub fn accept(&mut self, token: u32) {
        self.penalties.accept(token);
        for stage in &mut self.filters {
            stage.accept(token);
        }
    }

    /// Forgets the history and restarts the PRNG from the seed (same seed ⇒ same tokens again).
    pub fn reset(&mut self) {
        self.penalties.reset();
        for stage in &mut self.filters {
            stage.reset();
        }
        self.rng = Rng::new(self.seed);
    }

    /// The candidates left after the last [`sample`](Self::sample) (for log-probabilities and
    /// debugging); with greedy sampling, all tokens after penalties.
    pub fn candidates(&self) -> &[Candidate] {
        self.candidates.as_slice()
    }
}

/// Draws one candidate with probability softmax(logit).
fn draw(c: &Candidates, rng: &mut Rng) -> u32 {
    let Some(best) = c.best() else { return 0 };
    let max = best.logit;
    if max == f32::NEG_INFINITY {
        return best.id;
    }
    let total: f64 = c.as_slice().iter().map(|x| f64::from(x.logit - max).exp()).sum();
    if !(total.is_finite() && total > 0.0) {
        return best.id;
    }
    let target = rng.next_f64() * total;
    let mut cum = 0.0;
    for x in c.as_slice() {
        cum += f64::from(x.logit - max).exp();
        if cum > target {
            return x.id;
        }
    }
    // Rounding left `target` just above the sum: the last candidate with any mass.
    c.as_slice().iter().rev().find(|x| x.logit > f32::NEG_INFINITY).map_or(best.id, |x| x.id)
}

#[cfg(test)]
mod tests;
