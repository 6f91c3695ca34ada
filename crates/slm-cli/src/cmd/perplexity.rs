//! `slm perplexity FILE`: perplexity of a text, chunked like llama-perplexity.

use crate::args::PerplexityArgs;
use crate::load;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use slm_runtime::{perplexity, PerplexityOptions};

/// Runs the command.
pub fn run(args: PerplexityArgs) -> Result<()> {
    let mut text = std::fs::read_to_string(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    // llama-perplexity drops one trailing newline; do the same so token counts agree.
    if text.ends_with('\n') {
        text.pop();
    }
    let loaded = load::load(&args.model.model)?;
    let pool = load::pool(args.model.threads)?;
    let tokens = loaded.tokenizer.encode_prompt(&text, false)?;
    let n_ctx = load::context_size(Some(args.model.ctx.unwrap_or(512)), &loaded.model)?;
    let opts = PerplexityOptions {
        n_ctx,
        n_batch: args.model.batch.max(1),
        max_chunks: args.chunks.map(|n| n as usize),
        bos: if loaded.tokenizer.add_bos() { loaded.tokenizer.bos_id() } else { None },
    };
    eprintln!("{} tokens, context {n_ctx}, {} threads", tokens.len(), pool.n_threads());
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("chunks {pos}/{len} [{bar:30}] eta {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
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
