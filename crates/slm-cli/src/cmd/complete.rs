//! `slm complete "TEXT"`: the most likely short continuations of a text, with probabilities and
//! latency (typing suggestions).

use crate::args::CompleteArgs;
use crate::load;
use anyhow::Result;
use slm_runtime::{complete, CompleteOptions};

/// Runs the command.
pub fn run(args: CompleteArgs) -> Result<()> {
    let loaded = load::load(&args.model)?;
    let pool = load::pool(args.threads)?;
    let n_ctx = load::context_size(args.ctx, &loaded.model)?;
    let mut ctx = loaded.model.new_context(n_ctx, 512)?;
    let opts = CompleteOptions { n: args.n, max_tokens: args.max_tokens };
    let c = complete(&loaded.model, &loaded.tokenizer, &pool, &mut ctx, &args.text, &opts)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&c)?);
        return Ok(());
    }
    for s in &c.suggestions {
        outln!("{:>8.3}%  {}{}", 100.0 * s.probability, args.text, s.text);
    }
    eprintln!(
        "[{} prompt tokens in {:.1} ms, {} suggestions in {:.1} ms total]",
        c.n_prompt,
        c.prompt_ms,
        c.suggestions.len(),
        c.total_ms
    );
    Ok(())
}
