//! `slm summarize [FILE|-]`: a summary of a text of any length (map-reduce over the context
//! window), the final summary streamed.

use crate::args::SummarizeArgs;
use crate::load;
use crate::sink::StdoutSink;
use anyhow::{Context, Result};
use slm_runtime::{summarize, GenerateOptions, SamplerConfig, Session, SessionOptions, SummarizeOptions};
use std::io::Read;

/// Runs the command.
pub fn run(args: SummarizeArgs) -> Result<()> {
    let text = match args.file.as_deref() {
        Some(p) if p != "-" => std::fs::read_to_string(p).with_context(|| format!("reading {p}"))?,
        _ => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).context("reading the text from stdin")?;
            s
        }
    };
    let loaded = load::load(&args.model)?;
    let n_ctx = load::context_size(args.ctx, &loaded.model)?;
    let mut session = Session::new(
        loaded.model.clone(),
        loaded.tokenizer.clone(),
        load::pool(args.threads)?,
        SessionOptions { n_ctx, n_batch: 256 },
    )?;
    // Greedy with a mild repeat penalty: small models loop without it.
    let sampler = SamplerConfig {
        temperature: args.temperature,
        repeat_penalty: args.repeat_penalty,
        ..SamplerConfig::default()
    };
    let opts = SummarizeOptions {
        sentences: args.sentences,
        max_tokens: args.max_tokens,
        generate: GenerateOptions { max_tokens: args.max_tokens, sampler, stop: Vec::new() },
    };
    let report = summarize(&mut session, &loaded.template, &text, &opts, &mut StdoutSink::new(), &mut |round, n| {
        if n > 1 {
            eprintln!("[round {round}: summarizing {n} chunks]");
        }
    })?;
    outln!();
    eprintln!(
        "[{} input tokens, {} chunks, {} rounds, {:.1} s]",
        report.n_input_tokens, report.n_chunks, report.rounds, report.secs
    );
    Ok(())
}
