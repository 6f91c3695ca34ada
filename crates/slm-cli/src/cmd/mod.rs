//! One module per subcommand; each exposes `run(args) -> anyhow::Result<()>`.

pub mod bench;
pub mod chat;
pub mod classify;
pub mod classify_head;
pub mod complete;
pub mod convert;
pub mod distill;
pub mod embed;
pub mod eval;
pub mod finetune;
pub mod fit;
pub mod imatrix;
pub mod lora;
pub mod models;
pub mod perplexity;
pub mod prune;
pub mod quantize;
pub mod run;
pub mod serve;
pub mod show;
pub mod summarize;
pub mod tokenizer;
pub mod train;

use crate::args::{ModelArgs, SamplingArgs};
use crate::load::{self, Loaded};
use anyhow::Result;
use slm_runtime::{GenerateOptions, SamplerConfig, Session, SessionOptions};

/// Turns the sampling flags into generation options.
pub fn generate_options(s: &SamplingArgs) -> GenerateOptions {
    let defaults = SamplerConfig::default();
    GenerateOptions {
        max_tokens: s.max_tokens,
        stop: s.stop.clone(),
        sampler: SamplerConfig {
            temperature: s.temperature,
            top_k: s.top_k,
            top_p: s.top_p,
            min_p: s.min_p,
            repeat_penalty: s.repeat_penalty,
            repeat_last_n: s.repeat_last_n,
            seed: s.seed.or(defaults.seed),
            ..defaults
        },
    }
}

/// Loads the model named by the flags and opens a session on it.
/// `lora`: `--lora FILE[:SCALE]` values, applied to the model.
pub fn open_session(m: &ModelArgs, lora: &[String]) -> Result<(Loaded, Session)> {
    let loaded = load::load_with_adapters(&m.model, lora)?;
    let n_ctx = load::context_size(m.ctx, &loaded.model)?;
    let session = Session::new(
        loaded.model.clone(),
        loaded.tokenizer.clone(),
        load::pool(m.threads)?,
        SessionOptions { n_ctx, n_batch: m.batch.max(1) },
    )?;
    Ok((loaded, session))
}

/// Prints generation statistics to stderr.
pub fn print_stats(stats: &slm_runtime::GenerationStats) {
    eprintln!(
        "\n[prompt: {} tokens ({} reused), {:.1} tok/s | generated: {} tokens, {:.1} tok/s | finish: {:?}]",
        stats.n_prompt,
        stats.n_reused,
        stats.prompt_tps(),
        stats.n_generated,
        stats.gen_tps(),
        stats.finish
    );
}
