//! `slm perplexity FILE`: perplexity of a text, chunked like llama-perplexity.

use crate::args::{ModelArgs, PerplexityArgs};
use crate::load::{self, Loaded};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use slm_runtime::{perplexity, PerplexityOptions};
use std::path::Path;

/// Runs the command.
pub fn run(args: PerplexityArgs) -> Result<()> {
    let text = read_text(&args.file)?;
    let loaded = load::load_with_adapters(&args.model.model, &args.lora.lora)?;
    let pool = load::pool(args.model.threads)?;
    let tokens = tokens_of(&text, &loaded)?;
    let opts = chunk_options(&args.model, args.chunks, &loaded)?;
    eprintln!("{} tokens, context {}, {} threads", tokens.len(), opts.n_ctx, pool.n_threads());
    let bar = chunk_bar();
    let report = perplexity(&loaded.model, &pool, &tokens, &opts, &mut |done, total, ppl| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        bar.set_message(format!("PPL {ppl:.4}"));
    })?;
    bar.finish_and_clear();
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        outln!(
            "{} chunks of {} tokens, {} scored, {:.1} tokens/s",
            report.n_chunks,
            report.n_ctx,
            report.n_scored,
            (report.n_chunks * report.n_ctx) as f64 / report.secs.max(1e-9)
        );
        outln!("PPL = {:.4} +/- {:.5}", report.ppl, report.ppl_stderr);
    }
    Ok(())
}

/// Reads an evaluation text the way llama-perplexity does (one trailing newline dropped). Called
/// before any model is loaded, so a wrong path fails at once.
pub fn read_text(file: &Path) -> Result<String> {
    let mut text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    if text.ends_with('\n') {
        text.pop();
    }
    Ok(text)
}

/// Tokenizes an evaluation text (no BOS added here), so token counts agree with llama-perplexity.
pub fn tokens_of(text: &str, loaded: &Loaded) -> Result<Vec<u32>> {
    Ok(loaded.tokenizer.encode_prompt(text, false)?)
}

/// Chunking options from the model flags (context default 512, like llama-perplexity).
pub fn chunk_options(m: &ModelArgs, chunks: Option<u64>, loaded: &Loaded) -> Result<PerplexityOptions> {
    Ok(PerplexityOptions {
        n_ctx: load::context_size(Some(m.ctx.unwrap_or(512)), &loaded.model)?,
        n_batch: m.batch.max(1),
        max_chunks: chunks.map(|n| n as usize),
        bos: if loaded.tokenizer.add_bos() { loaded.tokenizer.bos_id() } else { None },
    })
}

/// A progress bar counting chunks.
pub fn chunk_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("chunks {pos}/{len} [{bar:30}] eta {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}
