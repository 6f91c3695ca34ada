//! The evidence every `slm prune` run ends with: parameters (total / non-zero), file size,
//! perplexity and KL divergence against the source (slm-runtime's `compare`, llama-perplexity's
//! chunking), speed for structured outputs, and where the time went. As JSON and as a table.

use super::error::PruneError;
use super::masks::Pattern;
use super::scores::Score;
use super::structured::StructuredSummary;
use slm_kernels::Pool;
use slm_model::random_init::SplitMix64;
use slm_model::{Logits, Model};
use slm_runtime::CompareReport;
use std::fmt::Write as _;
use std::time::Instant;

/// Size and shape of one model file.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ModelFacts {
    /// Where the file is.
    pub path: String,
    /// File size in bytes.
    pub file_bytes: u64,
    /// Parameters (every tensor element).
    pub n_params: u64,
    /// Parameters that are not zero.
    pub n_nonzero: u64,
    /// Blocks.
    pub n_layer: usize,
    /// FFN width.
    pub d_ff: usize,
    /// Query heads.
    pub n_head: usize,
    /// KV heads.
    pub n_kv_head: usize,
}

/// Prompt and generation speed of source and pruned model, measured alternately in one run.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Speed {
    /// Prompt tokens per measurement.
    pub n_prompt: usize,
    /// Generated tokens per measurement.
    pub n_gen: usize,
    /// Timed repetitions per model.
    pub repetitions: usize,
    /// Source prompt tokens/s (mean).
    pub source_pp_tps: f64,
    /// Pruned prompt tokens/s (mean).
    pub pruned_pp_tps: f64,
    /// Source generation tokens/s (mean).
    pub source_tg_tps: f64,
    /// Pruned generation tokens/s (mean).
    pub pruned_tg_tps: f64,
}

/// Seconds spent per phase.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Timings {
    /// Loading and decoding the source to f32.
    pub load: f64,
    /// The calibration forward passes.
    pub calibrate: f64,
    /// Scoring and pruning.
    pub prune: f64,
    /// Encoding and writing the output.
    pub write: f64,
    /// Perplexity / KLD evaluation.
    pub eval: f64,
    /// Speed measurement.
    pub speed: f64,
}

/// Everything one pruning run reports.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PruneReport {
    /// Importance score used.
    pub score: Score,
    /// Unstructured or N:M pattern (absent for structured pruning).
    pub pattern: Option<Pattern>,
    /// What structured pruning removed (absent otherwise).
    pub structured: Option<StructuredSummary>,
    /// Calibration tokens seen (0 without calibration).
    pub calibration_tokens: u64,
    /// Output encoding (`F32`, `F16`, or a quantization preset).
    pub output_type: String,
    /// The source model.
    pub source: ModelFacts,
    /// The pruned model.
    pub pruned: ModelFacts,
    /// Source vs pruned on the evaluation text.
    pub eval: Option<CompareReport>,
    /// Source vs pruned speed.
    pub speed: Option<Speed>,
    /// Where the time went.
    pub secs: Timings,
}

impl PruneReport {
    /// A short description of the method, e.g. `wanda 50%`, `magnitude 2:4`, `structured`.
    pub fn method(&self) -> String {
        match (&self.pattern, &self.structured) {
            (Some(Pattern::Unstructured { sparsity }), _) => {
                format!("{} {:.0}%", self.score.name(), sparsity * 100.0)
            }
            (Some(Pattern::NofM { n, m }), _) => format!("{} {n}:{m}", self.score.name()),
            (None, Some(_)) => format!("structured ({})", self.score.name()),
            (None, None) => self.score.name().to_string(),
        }
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mib = |b: u64| b as f64 / 1048576.0;
        let m = |n: u64| n as f64 / 1e6;
        let _ = writeln!(
            out,
            "method: {}   output: {}",
            self.method(),
            self.output_type
        );
        let _ = writeln!(
            out,
            "{:<8} {:>10} {:>10} {:>9} {:>10} {:>7} {:>6} {:>10} {:>9} {:>9}",
            "",
            "params M",
            "nonzero M",
            "sparsity",
            "size MiB",
            "layers",
            "d_ff",
            "heads/kv",
            "PPL",
            "pp/tg t/s"
        );
        let rows = [
            (
                "source",
                &self.source,
                self.eval.as_ref().map(|e| e.ppl_reference),
                self.speed
                    .as_ref()
                    .map(|s| (s.source_pp_tps, s.source_tg_tps)),
            ),
            (
                "pruned",
                &self.pruned,
                self.eval.as_ref().map(|e| e.ppl_candidate),
                self.speed
                    .as_ref()
                    .map(|s| (s.pruned_pp_tps, s.pruned_tg_tps)),
            ),
        ];
        for (label, f, ppl, tps) in rows {
            let sparsity = 100.0 * (1.0 - f.n_nonzero as f64 / f.n_params.max(1) as f64);
            let ppl = ppl.map_or("-".to_string(), |p| format!("{p:.4}"));
            let tps = tps.map_or("-".to_string(), |(pp, tg)| format!("{pp:.0}/{tg:.1}"));
            let _ = writeln!(
                out,
                "{label:<8} {:>10.2} {:>10.2} {:>8.2}% {:>10.2} {:>7} {:>6} {:>10} {ppl:>9} {tps:>9}",
                m(f.n_params),
                m(f.n_nonzero),
                sparsity,
                mib(f.file_bytes),
                f.n_layer,
                f.d_ff,
                format!("{}/{}", f.n_head, f.n_kv_head),
            );
        }
        if let Some(e) = &self.eval {
            let _ = writeln!(
                out,
                "eval: {} chunks of {}, {} positions; KLD vs source {:.5} ± {:.5}, same top token {:.2}%",
                e.n_chunks, e.n_ctx, e.n_scored, e.mean_kld, e.kld_stderr, e.same_top_pct
            );
        }
        if let Some(s) = &self.speed {
            let _ = writeln!(
                out,
                "speed (pp{} / tg{}, {} reps alternating): prompt x{:.2}, generation x{:.2}",
                s.n_prompt,
                s.n_gen,
                s.repetitions,
                s.pruned_pp_tps / s.source_pp_tps.max(1e-9),
                s.pruned_tg_tps / s.source_tg_tps.max(1e-9)
            );
        }
        let t = &self.secs;
        let _ = writeln!(
            out,
            "time: load {:.1} s, calibrate {:.1} s, prune {:.1} s, write {:.1} s, eval {:.1} s, speed {:.1} s",
            t.load, t.calibrate, t.prune, t.write, t.eval, t.speed
        );
        out
    }
}

/// Tokens/s of one timed run: `n_prompt` tokens in one prompt call, then `n_gen` single-token
/// decodes (llama-bench's pp / tg tests, random token ids).
fn one_run(
    model: &Model,
    pool: &Pool,
    n_prompt: usize,
    n_gen: usize,
    seed: u64,
) -> Result<(f64, f64), PruneError> {
    let n_vocab = model.config().n_vocab.max(1) as u64;
    let mut rng = SplitMix64::new(seed);
    let tokens: Vec<u32> = (0..n_prompt + n_gen)
        .map(|_| (rng.next_u64() % n_vocab) as u32)
        .collect();
    let mut ctx = model.new_context((n_prompt + n_gen).max(1), n_prompt.max(1))?;
    let start = Instant::now();
    if n_prompt > 0 {
        model.forward_prompt(&mut ctx, pool, &tokens[..n_prompt], Logits::Last)?;
    }
    let pp = n_prompt as f64 / start.elapsed().as_secs_f64().max(1e-9);
    let start = Instant::now();
    for &t in &tokens[n_prompt..] {
        model.forward(&mut ctx, pool, &[t], Logits::Last)?;
    }
    let tg = n_gen as f64 / start.elapsed().as_secs_f64().max(1e-9);
    Ok((pp, tg))
}

/// Measures both models alternately (source, pruned, source, ...) after one warm-up each, so
/// machine noise hits both alike.
pub fn measure_speed(
    source: &Model,
    pruned: &Model,
    pool: &Pool,
    n_prompt: usize,
    n_gen: usize,
    repetitions: usize,
) -> Result<Speed, PruneError> {
    if n_prompt == 0 || n_gen == 0 || repetitions == 0 {
        return Err(PruneError::Request(
            "speed measurement needs prompt, generation and repetitions > 0".into(),
        ));
    }
    one_run(source, pool, n_prompt, n_gen, 1)?;
    one_run(pruned, pool, n_prompt, n_gen, 1)?;
    let (mut s, mut p) = ((0.0, 0.0), (0.0, 0.0));
    for rep in 0..repetitions {
        let a = one_run(source, pool, n_prompt, n_gen, rep as u64 + 2)?;
        let b = one_run(pruned, pool, n_prompt, n_gen, rep as u64 + 2)?;
        s = (s.0 + a.0, s.1 + a.1);
        p = (p.0 + b.0, p.1 + b.1);
    }
    let r = repetitions as f64;
    Ok(Speed {
        n_prompt,
        n_gen,
        repetitions,
        source_pp_tps: s.0 / r,
        pruned_pp_tps: p.0 / r,
        source_tg_tps: s.1 / r,
        pruned_tg_tps: p.1 / r,
    })
}
