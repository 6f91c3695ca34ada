//! Model evaluation on text: perplexity computed exactly the way llama.cpp's `llama-perplexity`
//! does (see reference/PERPLEXITY.md), so the two figures are comparable.

use crate::error::RuntimeError;
use slm_kernels::Pool;
use slm_model::{Logits, Model};
use std::time::Instant;

/// How to chunk the text.
#[derive(Clone, Copy, Debug)]
pub struct PerplexityOptions {
    /// Tokens per chunk (llama-perplexity's `-c`). Each chunk starts from an empty cache.
    pub n_ctx: usize,
    /// Tokens per forward pass.
    pub n_batch: usize,
    /// Evaluate at most this many chunks.
    pub max_chunks: Option<usize>,
    /// Overwrite the first token of every chunk with this id (llama.cpp does so with BOS when the
    /// vocabulary asks for BOS).
    pub bos: Option<u32>,
}

/// The result of a perplexity run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PerplexityReport {
    /// Tokens in the text.
    pub n_tokens: usize,
    /// Chunks evaluated.
    pub n_chunks: usize,
    /// Tokens scored (the second half of every chunk, minus its last position).
    pub n_scored: usize,
    /// Context size per chunk.
    pub n_ctx: usize,
    /// Perplexity: exp(mean negative log-likelihood).
    pub ppl: f64,
    /// Standard error of the perplexity estimate.
    pub ppl_stderr: f64,
    /// Mean negative log-likelihood in nats.
    pub mean_nll: f64,
    /// Wall-clock seconds.
    pub secs: f64,
}

/// Log-probability of `target` under `logits`, computed like llama.cpp (f32 terms, f64 sum).
fn log_prob(logits: &[f32], target: usize) -> f64 {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| ((l - max).exp()) as f64).sum();
    let at = logits.get(target).copied().unwrap_or(f32::NEG_INFINITY);
    (at - max) as f64 - sum.ln()
}

/// Perplexity of `tokens` in non-overlapping chunks of `n_ctx`, scoring the second half of each
/// chunk. `on_chunk(done, total, running_ppl)` is called after every chunk.
pub fn perplexity(
    model: &Model,
    pool: &Pool,
    tokens: &[u32],
    opts: &PerplexityOptions,
    on_chunk: &mut dyn FnMut(usize, usize, f64),
) -> Result<PerplexityReport, RuntimeError> {
    let n_ctx = opts.n_ctx;
    if n_ctx < 4 {
        return Err(RuntimeError::InvalidRequest(format!("context {n_ctx} is too small for perplexity")));
    }
    if tokens.len() < 2 * n_ctx {
        return Err(RuntimeError::InvalidRequest(format!(
            "the text has {} tokens; perplexity with context {n_ctx} needs at least {} (2 × context)",
            tokens.len(),
            2 * n_ctx
        )));
    }
    let mut n_chunks = tokens.len() / n_ctx;
    if let Some(max) = opts.max_chunks {
        n_chunks = n_chunks.min(max.max(1));
    }
    let first = n_ctx / 2;
    let n_vocab = model.config().n_vocab;
    let mut ctx = model.new_context(n_ctx, opts.n_batch)?;
    let (mut nll, mut nll2, mut count) = (0.0f64, 0.0f64, 0usize);
    let start = Instant::now();
    let mut chunk = vec![0u32; n_ctx];
    for c in 0..n_chunks {
        chunk.copy_from_slice(&tokens[c * n_ctx..(c + 1) * n_ctx]);
        if let Some(bos) = opts.bos {
            chunk[0] = bos;
        }
        ctx.clear();
        model.forward_prompt(&mut ctx, pool, &chunk[..first], Logits::Last)?;
        let logits = model.forward_prompt(&mut ctx, pool, &chunk[first..], Logits::All)?;
        // Row r holds the logits at position first + r, predicting token first + r + 1.
        for (r, row) in logits.chunks_exact(n_vocab).take(n_ctx - first - 1).enumerate() {
            let target = tokens[c * n_ctx + first + r + 1] as usize;
            let v = -log_prob(row, target);
            nll += v;
            nll2 += v * v;
            count += 1;
        }
        on_chunk(c + 1, n_chunks, (nll / count as f64).exp());
    }
    let mean = nll / count as f64;
    let ppl = mean.exp();
    let var = nll2 / count as f64 - mean * mean;
    let ppl_stderr = if var > 0.0 && count > 1 { (var / (count - 1) as f64).sqrt() * ppl } else { 0.0 };
    Ok(PerplexityReport {
        n_tokens: tokens.len(),
        n_chunks,
        n_scored: count,
        n_ctx,
        ppl,
        ppl_stderr,
        mean_nll: mean,
        secs: start.elapsed().as_secs_f64(),
    })
}
