//! Quality of a candidate model against a reference on the same text (`slm eval`): both
//! perplexities, the KL divergence of the candidate's next-token distribution from the
//! reference's, and how often both put the same token first — the figures llama-perplexity's
//! `--kl-divergence` mode reports, computed on the same chunks it uses.

use crate::error::RuntimeError;
use crate::eval::PerplexityOptions;
use slm_kernels::Pool;
use slm_model::{Logits, Model};
use std::time::Instant;

/// The result of comparing two models.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CompareReport {
    /// Chunks evaluated.
    pub n_chunks: usize,
    /// Positions scored (second half of every chunk, as for perplexity).
    pub n_scored: usize,
    /// Context size per chunk.
    pub n_ctx: usize,
    /// Reference perplexity.
    pub ppl_reference: f64,
    /// Candidate perplexity.
    pub ppl_candidate: f64,
    /// Mean KL(reference ‖ candidate) in nats per position.
    pub mean_kld: f64,
    /// Standard error of the mean KLD.
    pub kld_stderr: f64,
    /// 99th percentile of the per-position KLD.
    pub kld_p99: f64,
    /// Largest per-position KLD.
    pub kld_max: f64,
    /// Percentage of positions where both models rank the same token first.
    pub same_top_pct: f64,
    /// Reference prompt-processing speed on this text (tokens/s).
    pub reference_tps: f64,
    /// Candidate prompt-processing speed on this text (tokens/s).
    pub candidate_tps: f64,
}

/// `log_softmax(logits)` into `out`, with f64 accumulation.
pub(crate) fn log_softmax(logits: &[f32], out: &mut [f64]) {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    let log_z = max + sum.ln();
    for (o, &l) in out.iter_mut().zip(logits) {
        *o = l as f64 - log_z;
    }
}

fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold((0, f32::NEG_INFINITY), |best, (i, &x)| if x > best.1 { (i, x) } else { best }).0
}

/// Logits of the scored positions of one chunk (llama-perplexity's split: first half as context).
fn chunk_logits(
    model: &Model,
    ctx: &mut slm_model::Context,
    pool: &Pool,
    chunk: &[u32],
) -> Result<Vec<f32>, RuntimeError> {
    let first = chunk.len() / 2;
    ctx.clear();
    model.forward_prompt(ctx, pool, &chunk[..first], Logits::Last)?;
    Ok(model.forward_prompt(ctx, pool, &chunk[first..], Logits::All)?.to_vec())
}

/// Compares `candidate` with `reference` on `tokens` chunked as `opts` says. `on_chunk(done,
/// total, running_mean_kld)` is called after every chunk.
pub fn compare(
    reference: &Model,
    candidate: &Model,
    pool: &Pool,
    tokens: &[u32],
    opts: &PerplexityOptions,
    on_chunk: &mut dyn FnMut(usize, usize, f64),
) -> Result<CompareReport, RuntimeError> {
    let mut reports = compare_many(reference, &[candidate], pool, tokens, opts, on_chunk)?;
    reports.pop().ok_or_else(|| RuntimeError::InvalidRequest("no candidate".into()))
}

/// Running sums for one candidate.
struct Tally {
    ctx: slm_model::Context,
    secs: f64,
    nll: f64,
    same: usize,
    klds: Vec<f64>,
}

/// [`compare`] for several candidates at once: the reference runs once per chunk.
/// `on_chunk` gets the first candidate's running mean KLD.
pub fn compare_many(
    reference: &Model,
    candidates: &[&Model],
    pool: &Pool,
    tokens: &[u32],
    opts: &PerplexityOptions,
    on_chunk: &mut dyn FnMut(usize, usize, f64),
) -> Result<Vec<CompareReport>, RuntimeError> {
    let n_vocab = reference.config().n_vocab;
    if let Some(c) = candidates.iter().find(|c| c.config().n_vocab != n_vocab) {
        return Err(RuntimeError::InvalidRequest(format!(
            "the models have different vocabularies ({n_vocab} vs {} tokens); compare models that share a tokenizer",
            c.config().n_vocab
        )));
    }
    let n_ctx = opts.n_ctx;
    if n_ctx < 4 || tokens.len() < 2 * n_ctx {
        return Err(RuntimeError::InvalidRequest(format!(
            "the text has {} tokens; comparing with context {n_ctx} needs at least {} (2 × context, context ≥ 4)",
            tokens.len(),
            2 * n_ctx
        )));
    }
    let n_chunks = (tokens.len() / n_ctx).min(opts.max_chunks.unwrap_or(usize::MAX).max(1));
    let first = n_ctx / 2;
    let mut ref_ctx = reference.new_context(n_ctx, opts.n_batch)?;
    let mut tallies = candidates
        .iter()
        .map(|c| Ok(Tally { ctx: c.new_context(n_ctx, opts.n_batch)?, secs: 0.0, nll: 0.0, same: 0, klds: Vec::new() }))
        .collect::<Result<Vec<_>, RuntimeError>>()?;
    let (mut ref_secs, mut nll_ref) = (0.0, 0.0f64);
    let (mut lp_ref, mut lp_cand) = (vec![0f64; n_vocab], vec![0f64; n_vocab]);
    let mut chunk = vec![0u32; n_ctx];
    for c in 0..n_chunks {
        chunk.copy_from_slice(&tokens[c * n_ctx..(c + 1) * n_ctx]);
        if let Some(bos) = opts.bos {
            chunk[0] = bos;
        }
        let t0 = Instant::now();
        let ref_logits = chunk_logits(reference, &mut ref_ctx, pool, &chunk)?;
        ref_secs += t0.elapsed().as_secs_f64();
        let scored = n_ctx - first - 1;
        for (r, lr) in ref_logits.chunks_exact(n_vocab).take(scored).enumerate() {
            log_softmax(lr, &mut lp_ref);
            nll_ref -= lp_ref.get(tokens[c * n_ctx + first + r + 1] as usize).copied().unwrap_or(f64::NEG_INFINITY);
        }
        for (model, tally) in candidates.iter().zip(&mut tallies) {
            let t1 = Instant::now();
            let cand_logits = chunk_logits(model, &mut tally.ctx, pool, &chunk)?;
            tally.secs += t1.elapsed().as_secs_f64();
            let rows = ref_logits.chunks_exact(n_vocab).zip(cand_logits.chunks_exact(n_vocab));
            for (r, (lr, lc)) in rows.take(scored).enumerate() {
                let target = tokens[c * n_ctx + first + r + 1] as usize;
                log_softmax(lr, &mut lp_ref);
                log_softmax(lc, &mut lp_cand);
                tally.nll -= lp_cand.get(target).copied().unwrap_or(f64::NEG_INFINITY);
                let kld: f64 = lp_ref.iter().zip(&lp_cand).map(|(&p, &q)| p.exp() * (p - q)).sum();
                tally.klds.push(kld.max(0.0));
                tally.same += usize::from(argmax(lr) == argmax(lc));
            }
        }
        let running = tallies.first().map_or(0.0, |t| t.klds.iter().sum::<f64>() / t.klds.len().max(1) as f64);
        on_chunk(c + 1, n_chunks, running);
    }
    let tokens_run = (n_chunks * n_ctx) as f64;
    Ok(tallies
        .into_iter()
        .map(|t| {
            let n = t.klds.len().max(1) as f64;
            let mean = t.klds.iter().sum::<f64>() / n;
            let var = t.klds.iter().map(|k| (k - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
            let mut sorted = t.klds.clone();
            sorted.sort_by(f64::total_cmp);
            let p99 = sorted.get(((sorted.len() as f64 * 0.99) as usize).min(sorted.len().saturating_sub(1))).copied();
            CompareReport {
                n_chunks,
                n_scored: t.klds.len(),
                n_ctx,
                ppl_reference: (nll_ref / n).exp(),
                ppl_candidate: (t.nll / n).exp(),
                mean_kld: mean,
                kld_stderr: (var / n).sqrt(),
                kld_p99: p99.unwrap_or(0.0),
                kld_max: sorted.last().copied().unwrap_or(0.0),
                same_top_pct: 100.0 * t.same as f64 / n,
                reference_tps: tokens_run / ref_secs.max(1e-9),
                candidate_tps: tokens_run / t.secs.max(1e-9),
            }
        })
        .collect())
}
