//! `slm imatrix -m MODEL FILE -o imatrix.gguf`: collect activation statistics on calibration
//! text for `slm quantize --imatrix` (llama-imatrix's file layout, so either tool can use it).

use super::perplexity::{chunk_bar, chunk_options, read_text, tokens_of};
use crate::args::ImatrixArgs;
use crate::load;
use anyhow::{Context, Result};
use slm_model::quantize::ImatrixCollector;
use slm_model::Logits;

/// Runs the command.
pub fn run(args: ImatrixArgs) -> Result<()> {
    let text = read_text(&args.file)?;
    let loaded = load::load(&args.model.model)?;
    let pool = load::pool(args.model.threads)?;
    let tokens = tokens_of(&text, &loaded)?;
    let opts = chunk_options(&args.model, args.chunks, &loaded)?;
    let n_ctx = opts.n_ctx;
    let n_chunks = (tokens.len() / n_ctx).min(opts.max_chunks.unwrap_or(usize::MAX));
    anyhow::ensure!(
        n_chunks > 0,
        "the text has {} tokens, fewer than one chunk of {n_ctx}; use a longer text or a smaller -c",
        tokens.len()
    );
    eprintln!("{} tokens, {n_chunks} chunks of {n_ctx}, {} threads", tokens.len(), pool.n_threads());
    let bar = chunk_bar();
    bar.set_length(n_chunks as u64);
    let mut ctx = loaded.model.new_context(n_ctx, opts.n_batch)?;
    let mut collector = ImatrixCollector::new();
    let mut chunk = vec![0u32; n_ctx];
    for c in 0..n_chunks {
        chunk.copy_from_slice(&tokens[c * n_ctx..(c + 1) * n_ctx]);
        if let Some(bos) = opts.bos {
            chunk[0] = bos;
        }
        ctx.clear();
        loaded.model.forward_observed(&mut ctx, &pool, &chunk, Logits::Last, Some(&mut collector))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let dataset = args.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let matrix = collector.finish(vec![dataset], n_chunks as u32, n_ctx as u32)?;
    matrix.save(&args.output).with_context(|| format!("writing {}", args.output.display()))?;
    outln!("wrote {} ({} weights, {} tokens)", args.output.display(), matrix.len(), n_chunks * n_ctx);
    Ok(())
}
