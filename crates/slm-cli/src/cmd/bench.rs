//! `slm bench`: prompt-processing (ppN) and generation (tgN) speed, reported like llama-bench.
//!
//! As in llama-bench, the prompt test processes N tokens in one go from an empty context and the
//! generation test decodes N tokens one at a time from an empty context; tokens are random ids,
//! since speed does not depend on which tokens they are. One warm-up run precedes the timed ones.
//! With `--parallel S`, the generation test decodes S sequences together, one batched step per
//! token (what `slm serve --slots S` does with S requests in flight), and reports their total
//! tokens per second (test name `tgN xS`).

use crate::args::BenchArgs;
use crate::load;
use anyhow::Result;
use serde_json::json;
use slm_kernels::Pool;
use slm_model::random_init::SplitMix64;
use slm_model::{Context as ModelContext, Logits, Model};
use std::time::Instant;

/// Runs the command.
pub fn run(args: BenchArgs) -> Result<()> {
    let path = load::model_path(&args.model)?;
    let load_start = Instant::now();
    let model = load::load_model(&path)?;
    let load_secs = load_start.elapsed().as_secs_f64();
    let threads = load::threads(args.threads);
    let pool = Pool::new(threads)?;
    let file_name = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut rows = Vec::new();
    if args.n_prompt > 0 {
        rows.push(measure(&model, &pool, args.n_prompt, 0, args.batch, args.repetitions)?);
    }
    if args.n_gen > 0 && args.parallel > 1 {
        rows.push(measure_parallel(&model, &pool, args.n_gen, usize::from(args.parallel), args.repetitions)?);
    } else if args.n_gen > 0 {
        rows.push(measure(&model, &pool, 0, args.n_gen, args.batch, args.repetitions)?);
    }
    if args.output == "json" {
        let out: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "model_filename": path.display().to_string(),
                    "model_type": file_name,
                    "n_prompt": r.n_prompt,
                    "n_gen": r.n_gen,
                    "n_parallel": r.n_parallel,
                    "n_threads": threads,
                    "n_batch": args.batch,
                    "avg_ts": r.avg,
                    "stddev_ts": r.stddev,
                    "samples_ts": r.samples,
                    "load_secs": load_secs,
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let size_mib = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as f64 / (1024.0 * 1024.0);
        let params = model.config().n_params() as f64 / 1e6;
        outln!("| model | size | params | backend | threads | test | t/s |");
        outln!("| ----- | ---: | -----: | ------- | ------: | ---: | --: |");
        for r in &rows {
            let test = match (r.n_prompt, r.n_parallel) {
                (0, 1) => format!("tg{}", r.n_gen),
                (0, s) => format!("tg{} x{s}", r.n_gen),
                (p, _) => format!("pp{p}"),
            };
            outln!(
                "| {file_name} | {size_mib:.2} MiB | {params:.2} M | CPU | {threads} | {test} | {:.2} ± {:.2} |",
                r.avg,
                r.stddev
            );
        }
    }
    Ok(())
}

/// Speeds of one test over its repetitions.
struct Row {
    n_prompt: usize,
    n_gen: usize,
    /// Sequences decoded together (1: plain generation).
    n_parallel: usize,
    samples: Vec<f64>,
    avg: f64,
    stddev: f64,
}

impl Row {
    /// A test's row: the mean and sample standard deviation of its speeds.
    fn of(n_prompt: usize, n_gen: usize, n_parallel: usize, samples: Vec<f64>) -> Row {
        let avg = samples.iter().sum::<f64>() / samples.len() as f64;
        let var = samples.iter().map(|s| (s - avg).powi(2)).sum::<f64>() / (samples.len().max(2) - 1) as f64;
        Row { n_prompt, n_gen, n_parallel, samples, avg, stddev: var.sqrt() }
    }
}

fn measure(model: &Model, pool: &Pool, n_prompt: usize, n_gen: usize, n_batch: usize, reps: usize) -> Result<Row> {
    let n_vocab = model.config().n_vocab as u64;
    let mut rng = SplitMix64::new(1234);
    let n_ctx = (n_prompt + n_gen).max(1);
    let mut ctx = model.new_context(n_ctx, n_batch.max(1))?;
    let mut samples = Vec::new();
    for rep in 0..=reps.max(1) {
        ctx.clear();
        let tokens: Vec<u32> = (0..n_ctx).map(|_| (rng.next_u64() % n_vocab) as u32).collect();
        let start = Instant::now();
        if n_prompt > 0 {
            model.forward_prompt(&mut ctx, pool, &tokens[..n_prompt], Logits::Last)?;
        }
        for &t in &tokens[..n_gen] {
            model.forward(&mut ctx, pool, &[t], Logits::Last)?;
        }
        let secs = start.elapsed().as_secs_f64();
        if rep > 0 {
            samples.push((n_prompt + n_gen) as f64 / secs);
        }
    }
    Ok(Row::of(n_prompt, n_gen, 1, samples))
}

/// Generation of `n_gen` tokens in each of `n_seq` contexts, one batched step per token.
fn measure_parallel(model: &Model, pool: &Pool, n_gen: usize, n_seq: usize, reps: usize) -> Result<Row> {
    let n_vocab = model.config().n_vocab as u64;
    let mut rng = SplitMix64::new(1234);
    let n_ctx = n_gen.max(1);
    let mut ctxs = (0..n_seq).map(|_| model.new_context(n_ctx, 1)).collect::<Result<Vec<ModelContext>, _>>()?;
    let mut batch = model.new_decode_batch(n_seq, n_ctx)?;
    let mut samples = Vec::new();
    for rep in 0..=reps.max(1) {
        ctxs.iter_mut().for_each(ModelContext::clear);
        let tokens: Vec<u32> = (0..n_gen * n_seq).map(|_| (rng.next_u64() % n_vocab) as u32).collect();
        let start = Instant::now();
        for step in tokens.chunks_exact(n_seq) {
            let mut refs: Vec<&mut ModelContext> = ctxs.iter_mut().collect();
            model.forward_decode(&mut batch, pool, &mut refs, step)?;
        }
        let secs = start.elapsed().as_secs_f64();
        if rep > 0 {
            samples.push((n_gen * n_seq) as f64 / secs);
        }
    }
    Ok(Row::of(0, n_gen, n_seq, samples))
}
