//! `slm prune -m MODEL -o OUT.gguf`: unstructured (magnitude / Wanda), N:M and structured
//! pruning, then a report on what it cost (slm-train's `prune` module does the work).

use super::perplexity::{read_text, tokens_of};
use crate::load::{self, Loaded};
use anyhow::{anyhow, Context, Result};
use clap::Args;
use slm_model::quantize::FileType;
use slm_model::Model;
use slm_runtime::{compare, PerplexityOptions};
use slm_train::prune::{
    calibrate, encode, measure_speed, prune_structured, prune_unstructured, CalibStats, FloatType,
    ModelFacts, Pattern, PruneReport, Score, StructuredSpec, TensorSet,
};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `slm prune`
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Source model: a GGUF file path or a registry name (any type; decoded to f32 for scoring).
    #[arg(short = 'm', long = "model", default_value = "smollm2-135m-instruct")]
    pub model: String,
    /// Output GGUF file (written atomically).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Importance score: `wanda` (|W|·‖X‖₂ on calibration text) or `magnitude` (|W|).
    #[arg(long = "method", default_value = "wanda")]
    pub method: String,
    /// Unstructured: fraction of every row of every block linear to remove (e.g. 0.5).
    #[arg(long = "sparsity")]
    pub sparsity: Option<f32>,
    /// Semi-structured N:M pattern instead (keep N of every M consecutive weights), e.g. 2:4.
    #[arg(long = "pattern")]
    pub pattern: Option<String>,
    /// Structured: FFN channels to keep per block (same count in every block).
    #[arg(long = "ffn-keep")]
    pub ffn_keep: Option<usize>,
    /// Structured: KV groups (a KV head with its query heads) to keep per block.
    #[arg(long = "kv-groups-keep")]
    pub kv_groups_keep: Option<usize>,
    /// Structured: whole blocks to remove (those that change the residual least).
    #[arg(long = "drop-layers", default_value_t = 0)]
    pub drop_layers: usize,
    /// Calibration text (needed by wanda and by --drop-layers).
    #[arg(long = "calib")]
    pub calib: Option<PathBuf>,
    /// Calibration chunks of --calib-ctx tokens.
    #[arg(long = "calib-chunks", default_value_t = 16)]
    pub calib_chunks: usize,
    /// Tokens per calibration chunk.
    #[arg(long = "calib-ctx", default_value_t = 512)]
    pub calib_ctx: usize,
    /// Evaluation text: perplexity of source and pruned model and their KL divergence.
    #[arg(long = "eval")]
    pub eval: Option<PathBuf>,
    /// Evaluate at most this many chunks.
    #[arg(long = "eval-chunks")]
    pub eval_chunks: Option<usize>,
    /// Context per evaluation chunk.
    #[arg(short = 'c', long = "ctx", default_value_t = 512)]
    pub ctx: usize,
    /// Float type of the output: F16 or F32 (norms stay F32).
    #[arg(long = "dtype", default_value = "F16")]
    pub dtype: String,
    /// Re-quantize the output with this preset (Q8_0, Q4_K_M, ... as in `slm quantize`).
    #[arg(long = "quant")]
    pub quant: Option<String>,
    /// Measure speed of source and pruned model (always on for structured pruning).
    #[arg(long = "speed")]
    pub speed: bool,
    /// Skip the speed measurement of structured pruning.
    #[arg(long = "no-speed", conflicts_with = "speed")]
    pub no_speed: bool,
    /// Report file (JSON); default: OUTPUT with `.report.json` appended.
    #[arg(long = "report")]
    pub report: Option<PathBuf>,
    /// Print the report as JSON instead of the table.
    #[arg(long = "json")]
    pub json: bool,
    /// Threads for compute (default: number of cores).
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
}

/// What the flags ask for.
enum Mode {
    Rows(Pattern),
    Structured(StructuredSpec),
}

fn mode_of(args: &PruneArgs) -> Result<Mode> {
    let structured =
        args.ffn_keep.is_some() || args.kv_groups_keep.is_some() || args.drop_layers > 0;
    match (args.sparsity, &args.pattern, structured) {
        (Some(s), None, false) => Ok(Mode::Rows(Pattern::unstructured(s)?)),
        (None, Some(p), false) => Ok(Mode::Rows(Pattern::parse_n_of_m(p)?)),
        (None, None, true) => Ok(Mode::Structured(StructuredSpec {
            ffn_keep: args.ffn_keep,
            kv_groups_keep: args.kv_groups_keep,
            layers_drop: args.drop_layers,
        })),
        (None, None, false) => Err(anyhow!(
            "say what to prune: --sparsity 0.5, --pattern 2:4, or structured --ffn-keep / --kv-groups-keep / --drop-layers"
        )),
        _ => Err(anyhow!("use one of --sparsity, --pattern or the structured flags, not several")),
    }
}

/// Runs the command.
pub fn run(args: PruneArgs) -> Result<()> {
    let start = Instant::now();
    let mode = mode_of(&args)?;
    let score = Score::parse(&args.method)?;
    let dtype = match args.dtype.to_ascii_uppercase().as_str() {
        "F16" => FloatType::F16,
        "F32" => FloatType::F32,
        other => anyhow::bail!("--dtype {other}: use F16 or F32 (then --quant TYPE to quantize)"),
    };
    let quant =
        match &args.quant {
            Some(q) => Some(FileType::parse(q).ok_or_else(|| {
                anyhow!("unknown --quant '{q}'; use one of {}", FileType::names())
            })?),
            None => None,
        };
    let needs_calib =
        score == Score::Wanda || matches!(&mode, Mode::Structured(s) if s.layers_drop > 0);
    // Read every text first, so a wrong path fails before any work.
    let calib_text = match (&args.calib, needs_calib) {
        (Some(p), _) => Some(read_text(p)?),
        (None, true) => {
            anyhow::bail!("--method wanda and --drop-layers need calibration text: --calib FILE")
        }
        (None, false) => None,
    };
    let eval_text = args.eval.as_deref().map(read_text).transpose()?;
    let source = load::load(&args.model)?;
    if source
        .path
        .canonicalize()
        .ok()
        .is_some_and(|p| args.output.canonicalize().ok() == Some(p))
    {
        anyhow::bail!(
            "the output {} is the source model; write to another path",
            args.output.display()
        );
    }
    let pool = load::pool(args.threads)?;

    let t = Instant::now();
    let mut set = TensorSet::from_gguf(source.model.gguf())?;
    let (n_params, n_nonzero) = set.counts();
    let mut report_secs = slm_train::prune::Timings {
        load: t.elapsed().as_secs_f64(),
        ..Default::default()
    };
    let source_facts = facts(&source.path, &source.model, n_params, n_nonzero);

    let t = Instant::now();
    let stats = match (&calib_text, needs_calib) {
        (Some(text), true) => Some(run_calibration(&source, &pool, text, &args)?),
        _ => None,
    };
    report_secs.calibrate = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let (pattern, structured) = match &mode {
        Mode::Rows(p) => {
            prune_unstructured(&mut set, stats.as_ref(), score, *p)?;
            (Some(*p), None)
        }
        Mode::Structured(spec) => (
            None,
            Some(prune_structured(&mut set, stats.as_ref(), score, spec)?),
        ),
    };
    let (n_params, n_nonzero) = set.counts();
    report_secs.prune = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let writer = encode(&set, dtype, quant, load::threads(args.threads))?;
    drop(set);
    writer
        .write_file(&args.output)
        .with_context(|| format!("writing {}", args.output.display()))?;
    drop(writer);
    report_secs.write = t.elapsed().as_secs_f64();
    let pruned = load::load(&args.output.to_string_lossy())
        .with_context(|| format!("loading the pruned model {}", args.output.display()))?;
    let pruned_facts = facts(&pruned.path, &pruned.model, n_params, n_nonzero);

    let t = Instant::now();
    let eval = match &eval_text {
        Some(text) => {
            let tokens = tokens_of(text, &source)?;
            let opts = PerplexityOptions {
                n_ctx: load::context_size(Some(args.ctx), &source.model)?,
                n_batch: args.ctx.max(1),
                max_chunks: args.eval_chunks,
                bos: if source.tokenizer.add_bos() {
                    source.tokenizer.bos_id()
                } else {
                    None
                },
            };
            eprintln!("evaluating on {} tokens ...", tokens.len());
            Some(compare(
                &source.model,
                &pruned.model,
                &pool,
                &tokens,
                &opts,
                &mut |_, _, _| {},
            )?)
        }
        None => None,
    };
    report_secs.eval = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let speed = if args.speed || (structured.is_some() && !args.no_speed) {
        eprintln!("measuring speed ...");
        Some(measure_speed(
            &source.model,
            &pruned.model,
            &pool,
            128,
            32,
            3,
        )?)
    } else {
        None
    };
    report_secs.speed = t.elapsed().as_secs_f64();

    let report = PruneReport {
        score,
        pattern,
        structured,
        calibration_tokens: stats.as_ref().map_or(0, |s| s.n_tokens),
        output_type: quant.map_or_else(|| format!("{dtype:?}"), |q| q.name().to_string()),
        source: source_facts,
        pruned: pruned_facts,
        eval,
        speed,
        secs: report_secs,
    };
    let json = serde_json::to_string_pretty(&report)?;
    let report_path = args.report.clone().unwrap_or_else(|| {
        let mut p = args.output.clone().into_os_string();
        p.push(".report.json");
        PathBuf::from(p)
    });
    slm_format::atomic::write_bytes_atomic(&report_path, json.as_bytes())
        .with_context(|| format!("writing {}", report_path.display()))?;
    if args.json {
        outln!("{json}");
    } else {
        for line in report.table().lines() {
            outln!("{line}");
        }
        outln!(
            "wrote {} and {} in {:.1} s",
            args.output.display(),
            report_path.display(),
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn run_calibration(
    source: &Loaded,
    pool: &slm_kernels::Pool,
    text: &str,
    args: &PruneArgs,
) -> Result<CalibStats> {
    let tokens = tokens_of(text, source)?;
    let n_ctx = load::context_size(Some(args.calib_ctx), &source.model)?;
    let bos = if source.tokenizer.add_bos() {
        source.tokenizer.bos_id()
    } else {
        None
    };
    let n_chunks = (tokens.len() / n_ctx).min(args.calib_chunks.max(1));
    eprintln!("calibrating on {n_chunks} chunks of {n_ctx} tokens ...");
    Ok(calibrate(
        &source.model,
        pool,
        &tokens,
        n_ctx,
        Some(args.calib_chunks.max(1)),
        bos,
    )?)
}

fn facts(path: &Path, model: &Model, n_params: u64, n_nonzero: u64) -> ModelFacts {
    let c = model.config();
    ModelFacts {
        path: path.display().to_string(),
        file_bytes: model.gguf().file_size(),
        n_params,
        n_nonzero,
        n_layer: c.n_layer,
        d_ff: c.d_ff,
        n_head: c.n_head,
        n_kv_head: c.n_kv_head,
    }
}
