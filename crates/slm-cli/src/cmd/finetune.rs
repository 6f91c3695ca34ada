//! `slm finetune MODEL --lora`: LoRA fine-tuning on CPU on instruction data (JSON Lines of chat
//! messages, prompt/completion pairs or text), the base model frozen in its own dtype
//! (QLoRA-style for quantized files). Writes `adapter.gguf` (llama.cpp's LoRA format, for
//! `--lora` and `slm lora merge`), a PEFT directory, `metrics.jsonl`, `loss.svg` and
//! `report.json` (trainable share, memory, time, validation loss before/after).
//!
//! The adapter is saved atomically at every evaluation, so an interrupted run keeps its latest
//! evaluated adapter.

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use slm_format::GgufFile;
use slm_model::lora::{LoraAdapter, LoraTarget};
use slm_runtime::{ChatTemplate, Tokenizer};
use slm_train::lora::{FrozenBase, LoraTrainer, SftConfig};
use slm_train::metrics::{self, Record};
use slm_train::sft_data::{load_sft_jsonl, SftExample, SftStats};
use slm_train::{job, plot, AdamWConfig, Rng, Schedule};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// `slm finetune`
#[derive(Debug, Args)]
pub struct FinetuneArgs {
    /// Base model: a GGUF file path or a registry name (any dtype; it stays frozen).
    pub model: String,
    /// Training data: JSON Lines with {"messages": [...]}, {"prompt", "completion"} or {"text"}.
    #[arg(long = "data")]
    pub data: PathBuf,
    /// Output folder (adapter.gguf, peft/, metrics.jsonl, loss.svg, report.json).
    #[arg(long = "out")]
    pub out: PathBuf,
    /// Train a LoRA adapter (the only mode so far; full fine-tuning is `slm train --init`).
    #[arg(long = "lora")]
    pub lora: bool,
    /// Adapter rank.
    #[arg(long = "rank", default_value_t = 8)]
    pub rank: usize,
    /// LoRA alpha (the update is scaled by alpha / rank).
    #[arg(long = "alpha", default_value_t = 16.0)]
    pub alpha: f32,
    /// Projections to adapt, comma-separated: q,k,v,o,gate,up,down.
    #[arg(long = "targets", default_value = "q,k,v,o,gate,up,down")]
    pub targets: String,
    /// Validation data (same format); default: a seeded share of --data.
    #[arg(long = "val")]
    pub val: Option<PathBuf>,
    /// Share of --data held out for validation when --val is not given.
    #[arg(long = "val-fraction", default_value_t = 0.1)]
    pub val_fraction: f64,
    /// Passes over the training examples (ignored when --steps is given).
    #[arg(long = "epochs", default_value_t = 1.0)]
    pub epochs: f64,
    /// Optimizer steps.
    #[arg(long = "steps")]
    pub steps: Option<u64>,
    /// Examples per optimizer step.
    #[arg(long = "batch", default_value_t = 8)]
    pub batch: usize,
    /// Most padded tokens per forward/backward (bounds activation memory).
    #[arg(long = "micro-batch-tokens", default_value_t = 1024)]
    pub micro_batch_tokens: usize,
    /// Peak learning rate (warmup over the first 10% of steps, then cosine decay to 10%).
    #[arg(long = "lr", default_value_t = 1e-3)]
    pub lr: f32,
    /// Cut examples to this many tokens (at most the model's context).
    #[arg(long = "max-len", default_value_t = 1024)]
    pub max_len: usize,
    /// Validation every this many steps (default: about 10 times per run).
    #[arg(long = "eval-every")]
    pub eval_every: Option<u64>,
    /// Seed for the adapter initialisation, the validation split and the example order.
    #[arg(long = "seed", default_value_t = 0)]
    pub seed: u64,
    /// Threads (default: all cores).
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
}

/// Runs the command.
pub fn run(a: FinetuneArgs) -> Result<()> {
    if !a.lora {
        bail!("slm finetune trains LoRA adapters: add --lora (for full fine-tuning of all weights use `slm train --init MODEL.gguf`)");
    }
    if !(0.0..1.0).contains(&a.val_fraction) {
        bail!("--val-fraction must be in [0, 1), got {}", a.val_fraction);
    }
    if !(a.epochs > 0.0 && a.epochs.is_finite()) {
        bail!("--epochs must be positive, got {}", a.epochs);
    }
    let targets = LoraTarget::parse_list(&a.targets)?;
    let path = crate::load::model_path(&a.model)?;
    let file = Arc::new(GgufFile::open(&path).with_context(|| format!("opening {}", path.display()))?);
    let tokenizer = Tokenizer::from_gguf(file.metadata()).context("loading the model's tokenizer")?;
    let template = ChatTemplate::for_tokenizer(&tokenizer)?;
    let n_ctx = slm_model::ModelConfig::from_gguf(&file)?.n_ctx_train;
    let max_len = a.max_len.min(n_ctx).max(2);
    let (mut train, mut stats) = load_sft_jsonl(&a.data, &tokenizer, &template, max_len)?;
    let val = match &a.val {
        Some(p) => load_sft_jsonl(p, &tokenizer, &template, max_len)?.0,
        None => split_off_validation(&mut train, &mut stats, a.val_fraction, a.seed),
    };
    if train.is_empty() {
        bail!("no training examples left after holding out validation; lower --val-fraction or pass --val");
    }
    let steps = a.steps.unwrap_or_else(|| ((a.epochs * train.len() as f64) / a.batch.max(1) as f64).ceil() as u64);
    let steps = steps.max(1);
    let eval_every = a.eval_every.unwrap_or((steps / 10).max(1)).max(1);
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let out = a.out.clone();
    let threads = a.threads;
    job::with_threads(threads, move || -> Result<()> {
        let base = FrozenBase::open(file.clone())?;
        let cfg = base.model().config().clone();
        let adapter = LoraAdapter::init(&cfg, &targets, a.rank, a.alpha, a.seed)?;
        let sft = SftConfig {
            batch_size: a.batch,
            micro_batch_tokens: a.micro_batch_tokens,
            seed: a.seed,
            optim: AdamWConfig { weight_decay: 0.0, ..AdamWConfig::with_lr(a.lr) },
            schedule: Schedule::Cosine { warmup: (steps / 10).max(1), total: steps, min_ratio: 0.1 },
            clip_grad_norm: Some(1.0),
        };
        let base_params = base.model().layout().len();
        let mut trainer = LoraTrainer::new(base, &adapter, sft, train.clone())?;
        let n_train = trainer.n_trainable();
        eprintln!(
            "{}: {} trainable parameters ({:.3}% of {}), rank {} alpha {} on {}; {} training examples ({} tokens, {} trained; {} cut to {} tokens, {} without an answer dropped), {} validation; {} steps of {}",
            path.display(),
            n_train,
            100.0 * n_train as f64 / base_params as f64,
            base_params,
            a.rank,
            a.alpha,
            a.targets,
            stats.examples,
            stats.tokens,
            stats.trained,
            stats.truncated,
            max_len,
            stats.dropped,
            val.len(),
            steps,
            a.batch
        );
        let eval = |t: &mut LoraTrainer| -> Result<Option<f64>> {
            Ok(if val.is_empty() { None } else { Some(t.evaluate(&val)?) })
        };
        let before = eval(&mut trainer)?;
        let mut records = Vec::new();
        if let Some(loss) = before {
            records.push(Record::Eval { step: 0, loss, bits_per_byte: None });
            eprintln!("validation loss before training: {loss:.4}");
        }
        let bar = progress_bar(steps);
        let title = format!("LoRA r={} on {}", a.rank, path.file_name().and_then(|n| n.to_str()).unwrap_or("model"));
        let t0 = Instant::now();
        let mut tokens = 0usize;
        let mut after = before;
        for _ in 0..steps {
            let t_step = Instant::now();
            let s = trainer.step()?;
            tokens += s.tokens;
            let tps = s.tokens as f64 / t_step.elapsed().as_secs_f64().max(1e-9);
            records.push(Record::Train {
                step: s.step,
                loss: s.loss,
                lr: s.lr,
                grad_norm: s.grad_norm,
                tok_per_s: tps,
            });
            bar.set_position(s.step);
            bar.set_message(format!("loss {:.3} | {:.0} tok/s | epoch {}", s.loss, tps, s.epoch));
            if s.step % eval_every == 0 || s.step == steps {
                after = eval(&mut trainer)?;
                if let Some(loss) = after {
                    records.push(Record::Eval { step: s.step, loss, bits_per_byte: None });
                    bar.suspend(|| eprintln!("step {}: validation loss {loss:.4}", s.step));
                }
                save_progress(&out, &trainer.adapter()?, &records, &title)?;
            }
        }
        bar.finish_and_clear();
        let secs = t0.elapsed().as_secs_f64();
        let adapter = trainer.adapter()?;
        let adapter_path = save_progress(&out, &adapter, &records, &title)?;
        let peft_dir = out.join("peft");
        let base_name = file.metadata().get_str_opt("general.name")?.unwrap_or("base-model").to_string();
        adapter.save_peft(&peft_dir, &base_name, &cfg)?;
        let tokens_per_second = tokens as f64 / secs.max(1e-9);
        let peak_rss = peak_rss_bytes();
        let report = serde_json::json!({
            "base_model": path.display().to_string(),
            "base_parameters": base_params,
            "trainable_parameters": n_train,
            "trainable_percent": 100.0 * n_train as f64 / base_params as f64,
            "rank": a.rank,
            "alpha": a.alpha,
            "targets": targets.iter().map(|t| t.short_name()).collect::<Vec<_>>(),
            "train_examples": stats.examples,
            "train_tokens": stats.tokens,
            "trained_tokens": stats.trained,
            "truncated_examples": stats.truncated,
            "dropped_examples": stats.dropped,
            "val_examples": val.len(),
            "steps": steps,
            "epochs": (steps as f64 * a.batch as f64) / train.len() as f64,
            "seconds": secs,
            "tokens_per_second": tokens_per_second,
            "val_loss_before": before,
            "val_loss_after": after,
            "base_f32_resident_bytes": trainer.base().resident_f32_bytes(),
            "base_mapped_projection_bytes": trainer.base().projection_bytes(),
            "peak_rss_bytes": peak_rss,
            "adapter_gguf": adapter_path.display().to_string(),
            "peft_dir": peft_dir.display().to_string(),
        });
        let json = serde_json::to_string_pretty(&report)?;
        slm_format::atomic::write_bytes_atomic(&out.join("report.json"), json.as_bytes())?;
        eprintln!(
            "{steps} steps in {secs:.1}s ({:.0} tok/s); validation loss {} -> {}; peak RSS {}",
            tokens_per_second,
            before.map_or("-".into(), |l| format!("{l:.4}")),
            after.map_or("-".into(), |l| format!("{l:.4}")),
            peak_rss.map_or("unknown".into(), |b| format!("{:.0} MiB", b as f64 / 1048576.0))
        );
        outln!("{}", adapter_path.display());
        Ok(())
    })?
}

/// Moves a seeded `fraction` of the examples into a validation set (at least one when there
/// are two or more examples and the fraction is positive).
fn split_off_validation(
    train: &mut Vec<SftExample>,
    stats: &mut SftStats,
    fraction: f64,
    seed: u64,
) -> Vec<SftExample> {
    if fraction <= 0.0 || train.len() < 2 {
        return Vec::new();
    }
    let n_val = ((train.len() as f64 * fraction).round() as usize).clamp(1, train.len() - 1);
    let mut rng = Rng::new(seed ^ 0x5eed_0f7a_11aa);
    rng.shuffle(train);
    let val = train.split_off(train.len() - n_val);
    stats.examples = train.len();
    stats.tokens = train.iter().map(|e| e.tokens.len()).sum();
    stats.trained = train.iter().map(|e| e.n_trained()).sum();
    val
}

/// Writes the adapter, the metrics log and the loss plot (each atomically); returns the adapter path.
fn save_progress(out: &Path, adapter: &LoraAdapter, records: &[Record], title: &str) -> Result<PathBuf> {
    let path = out.join("adapter.gguf");
    adapter.save_gguf(&path)?;
    metrics::write(&out.join("metrics.jsonl"), records)?;
    let svg = plot::loss_svg(records, title);
    slm_format::atomic::write_bytes_atomic(&out.join("loss.svg"), svg.as_bytes())?;
    Ok(path)
}

fn progress_bar(steps: u64) -> ProgressBar {
    let bar = ProgressBar::new(steps);
    bar.set_style(
        ProgressStyle::with_template("fine-tuning [{bar:30}] {pos}/{len} {msg} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

/// The process's peak resident set size (Linux `VmHWM`), when the platform reports it.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
