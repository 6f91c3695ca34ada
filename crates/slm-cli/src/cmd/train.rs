//! `slm train`: a whole CPU training run from a TOML config and a text folder, with a progress
//! bar, periodic validation, `metrics.jsonl`, a `loss.svg` plot, atomic checkpoints (`--resume`
//! continues bit-for-bit) and a final `model.gguf` that `slm run` loads (tokenizer embedded).
//! Ctrl-C finishes the current step, writes the checkpoint and exits with status 130 (a second
//! Ctrl-C exits at once, losing at most `checkpoint_every` steps).

use crate::args::TrainArgs;
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use slm_format::{GgufFile, Metadata};
use slm_runtime::Tokenizer;
use slm_train::config_file::ConfigFile;
use slm_train::metrics::{self, Record};
use slm_train::{bpe, job, plot, EvalStats, RunObserver, StepStats, Trainer, Validation};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Exit status after Ctrl-C (128 + SIGINT, as shells report it).
const INTERRUPTED: u8 = 130;

/// Runs the command (exits the process with status 130 when Ctrl-C stopped the run).
pub fn run(a: TrainArgs) -> Result<()> {
    let cfg = ConfigFile::read(&a.config)?;
    let ckpt = a.out.join("checkpoint.gguf");
    if a.resume && !ckpt.is_file() {
        bail!("--resume: {} does not exist; start the run without --resume", ckpt.display());
    }
    if !a.resume && ckpt.is_file() {
        bail!(
            "{} already holds a run (checkpoint.gguf); pass --resume to continue it or choose another --out",
            a.out.display()
        );
    }
    let init = match &a.init {
        Some(p) => Some(GgufFile::open(p).with_context(|| format!("opening --init model {}", p.display()))?),
        None => None,
    };
    let md = tokenizer_metadata(&a, init.as_ref())?;
    let tokenizer = Tokenizer::from_gguf(&md).context("loading the tokenizer")?;
    let model_cfg = match &init {
        Some(f) => slm_model::ModelConfig::from_gguf(f)?,
        None => cfg.model_config(tokenizer.vocab_size())?,
    };
    // Block sharing: from [model] for a new model; an --init model keeps its own.
    let block_map = cfg.block_map(model_cfg.n_layer)?;
    if init.is_some() && !block_map.is_identity() {
        bail!("--init: block sharing comes from the model file; remove sharing/block_map from [model]");
    }
    if tokenizer.vocab_size() > model_cfg.n_vocab {
        bail!("the tokenizer has {} tokens but the model only {}", tokenizer.vocab_size(), model_cfg.n_vocab);
    }
    let steps = a.steps.unwrap_or(cfg.train.steps);
    let train_cfg = cfg.train_config(steps, model_cfg.n_ctx_train)?;
    let data = job::prepare_data(&a.data, &tokenizer, cfg.train.val_fraction, train_cfg.seq_len)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let metrics_path = a.out.join("metrics.jsonl");
    let threads = a.threads;
    let run_cfg = cfg.run_config(steps);

    job::with_threads(threads, move || -> Result<()> {
        let mut trainer = if a.resume {
            Trainer::resume(&ckpt, data.train.clone())?
        } else {
            job::save_tokenizer(&a.out, &md)?;
            copy_config(&a.config, &a.out.join("config.toml"))?;
            match &init {
                Some(f) => Trainer::from_gguf(f, train_cfg, data.train.clone())?,
                None => Trainer::from_scratch(
                    slm_train::TrainModel::with_sharing(model_cfg, block_map)?,
                    train_cfg,
                    data.train.clone(),
                )?,
            }
        };
        crate::cmd::distill::attach(&mut trainer, &a.distill, &data.train, &a.out, threads)?;
        let start_step = trainer.step_count();
        let mut records = if a.resume { metrics::read(&metrics_path)? } else { Vec::new() };
        records.retain(|r| r.step() <= start_step);
        let layout = trainer.model().layout();
        let n_params = layout.len();
        let map = &layout.block_map;
        let sharing = if map.is_identity() {
            String::new()
        } else {
            format!(" ({} stored blocks run as {} layers: {:?})", map.stored_blocks(), map.n_layer(), map.layers())
        };
        eprintln!(
            "{} parameters{sharing}; {} documents, {} bytes -> {} training + {} validation tokens; {} tokens/step; {}",
            n_params,
            data.documents,
            data.bytes,
            data.train.len(),
            data.val.len(),
            trainer.config().tokens_per_step(),
            if a.resume { format!("resuming at step {start_step}") } else { "starting from scratch".into() }
        );
        let mut obs = Observer::new(&a.out, records, &run_cfg, start_step, n_params, on_ctrl_c()?);
        let val =
            (!data.val.is_empty()).then(|| Validation { tokens: &data.val, bytes_per_token: data.bytes_per_token });
        let t0 = Instant::now();
        let summary = slm_train::run(&mut trainer, &run_cfg, val, &a.out, Some(&md), &mut obs);
        obs.bar.finish_and_clear();
        if let Some(e) = obs.error.take() {
            return Err(e.context("writing metrics"));
        }
        let summary = summary?;
        if summary.stopped && obs.interrupted() {
            eprintln!(
                "interrupted: stopped after step {} of {} and saved {}; continue with the same command plus --resume",
                summary.steps,
                run_cfg.steps,
                a.out.join("checkpoint.gguf").display()
            );
            // Everything is on disk (checkpoint, metrics, plot), written atomically.
            std::process::exit(i32::from(INTERRUPTED));
        }
        let done = summary.steps.saturating_sub(start_step);
        let secs = t0.elapsed().as_secs_f64();
        let tokens = done as f64 * trainer.config().tokens_per_step() as f64;
        eprintln!(
            "{} steps in {:.1}s ({:.0} tok/s){}",
            done,
            secs,
            tokens / secs.max(1e-9),
            match summary.evals.last() {
                Some(e) => format!("; validation loss {:.4}{}", e.loss, bpb(e)),
                None => String::new(),
            }
        );
        let final_eval = summary.evals.last();
        let report = serde_json::json!({
            "parameters": n_params,
            "steps": summary.steps,
            "tokens_per_step": trainer.config().tokens_per_step(),
            "seconds_this_session": secs,
            "tokens_per_second": tokens / secs.max(1e-9),
            "val_loss": final_eval.map(|e| e.loss),
            "val_perplexity": final_eval.map(|e| e.loss.exp()),
            "val_bits_per_byte": final_eval.and_then(|e| e.bits_per_byte),
            "model_bytes": summary.model.as_ref().and_then(|m| std::fs::metadata(m).ok()).map(|m| m.len()),
            "teacher": a.distill.teacher.as_ref().map(|t| serde_json::json!({
                "model": t, "alpha": a.distill.alpha, "temperature": a.distill.temperature, "top_k": a.distill.top_k,
            })),
        });
        slm_format::atomic::write_bytes_atomic(
            &a.out.join("report.json"),
            serde_json::to_string_pretty(&report)?.as_bytes(),
        )?;
        if let Some(m) = summary.model {
            outln!("{}", m.display());
            if cfg.export.unshared && !trainer.model().layout().block_map.is_identity() {
                let path = a.out.join("model.unshared.gguf");
                trainer.export_gguf_unshared(&path, Some(&md))?;
                outln!("{}", path.display());
            }
        }
        Ok(())
    })?
}

/// A flag set by the first Ctrl-C (SIGINT); a second one exits at once with status 130.
fn on_ctrl_c() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    #[cfg(unix)]
    {
        use signal_hook::consts::SIGINT;
        // Registered first, so it sees the flag before the second handler sets it.
        signal_hook::flag::register_conditional_shutdown(SIGINT, i32::from(INTERRUPTED), flag.clone())
            .context("installing the Ctrl-C handler")?;
        signal_hook::flag::register(SIGINT, flag.clone()).context("installing the Ctrl-C handler")?;
    }
    Ok(flag)
}

/// The tokenizer: the `--init` model's, a `--tokenizer` file, or the one saved with the run.
fn tokenizer_metadata(a: &TrainArgs, init: Option<&GgufFile>) -> Result<Metadata> {
    if let Some(f) = init {
        if f.metadata().get_str_opt("tokenizer.ggml.model")?.is_none() {
            bail!("--init model has no tokenizer metadata; it cannot tokenize the training text");
        }
        return Ok(f.metadata().clone());
    }
    if let Some(teacher) = &a.distill.teacher {
        return crate::cmd::distill::teacher_metadata(teacher);
    }
    if let Some(p) = a.tokenizer.as_ref().filter(|p| p.extension().is_some_and(|e| e == "gguf")) {
        // A model's vocabulary, e.g. to train a small student on a bigger model's tokens.
        let f = GgufFile::open(p).with_context(|| format!("opening --tokenizer model {}", p.display()))?;
        if f.metadata().get_str_opt("tokenizer.ggml.model")?.is_none() {
            bail!("--tokenizer {} has no tokenizer metadata", p.display());
        }
        return Ok(f.metadata().clone());
    }
    if let Some(p) = &a.tokenizer {
        return bpe::metadata_from_file(p).with_context(|| format!("reading tokenizer {}", p.display()));
    }
    if a.resume {
        return Ok(job::load_tokenizer(&a.out)?);
    }
    bail!("pass --tokenizer tokenizer.json (make one with `slm tokenizer train`) or --init MODEL.gguf to fine-tune")
}

fn copy_config(from: &Path, to: &Path) -> Result<()> {
    let text = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    slm_format::atomic::write_bytes_atomic(to, &text).with_context(|| format!("writing {}", to.display()))
}

fn bpb(e: &EvalStats) -> String {
    e.bits_per_byte.map(|b| format!(", {b:.4} bits/byte")).unwrap_or_default()
}

/// Progress bar, metrics log and plot, fed by the run.
struct Observer {
    bar: ProgressBar,
    records: Vec<Record>,
    metrics: PathBuf,
    svg: PathBuf,
    title: String,
    /// Steps after which the run writes a checkpoint (the log is saved just before).
    checkpoint_every: u64,
    steps: u64,
    last: Instant,
    tok_per_s: f64,
    error: Option<anyhow::Error>,
    /// Set by Ctrl-C: the run stops after the current step (with a checkpoint).
    stop: Arc<AtomicBool>,
}

impl Observer {
    fn new(
        out: &Path,
        records: Vec<Record>,
        run: &slm_train::RunConfig,
        start: u64,
        n_params: usize,
        stop: Arc<AtomicBool>,
    ) -> Observer {
        let bar = ProgressBar::new(run.steps);
        bar.set_style(
            ProgressStyle::with_template("training [{bar:30}] {pos}/{len} {msg} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_position(start);
        bar.reset_eta();
        Observer {
            bar,
            records,
            metrics: out.join("metrics.jsonl"),
            svg: out.join("loss.svg"),
            title: format!("{} — {:.2}M parameters", out.display(), n_params as f64 / 1e6),
            checkpoint_every: run.checkpoint_every,
            steps: run.steps,
            last: Instant::now(),
            tok_per_s: 0.0,
            error: None,
            stop,
        }
    }

    fn interrupted(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Rewrites metrics.jsonl and loss.svg; a failure stops the run (after a checkpoint).
    fn save(&mut self) -> bool {
        let r = metrics::write(&self.metrics, &self.records).map_err(anyhow::Error::from).and_then(|()| {
            let svg = plot::loss_svg(&self.records, &self.title);
            slm_format::atomic::write_bytes_atomic(&self.svg, svg.as_bytes())
                .with_context(|| format!("writing {}", self.svg.display()))
        });
        match r {
            Ok(()) => true,
            Err(e) => {
                self.error = Some(e);
                false
            }
        }
    }
}

impl RunObserver for Observer {
    fn on_step(&mut self, s: &StepStats) -> bool {
        let dt = self.last.elapsed().as_secs_f64().max(1e-9);
        self.last = Instant::now();
        let tps = s.tokens as f64 / dt;
        // Smoothed for display; the log keeps the raw figure.
        self.tok_per_s = if self.tok_per_s == 0.0 { tps } else { 0.9 * self.tok_per_s + 0.1 * tps };
        self.records.push(Record::Train {
            step: s.step,
            loss: s.loss,
            lr: s.lr,
            grad_norm: s.grad_norm,
            tok_per_s: tps,
        });
        self.bar.set_position(s.step);
        self.bar.set_message(format!("loss {:.3} | {:.0} tok/s", s.loss, self.tok_per_s));
        // Save the log before the checkpoint of this step is written, so a kill at any moment
        // leaves a log that covers the checkpoint (a resume drops any lines beyond it).
        // Read once: the log saved here must cover the checkpoint the run writes next.
        let stop = self.interrupted();
        let ckpt_step =
            s.step == self.steps || (self.checkpoint_every > 0 && s.step.is_multiple_of(self.checkpoint_every)) || stop;
        let ok = !ckpt_step || self.save();
        self.last = Instant::now();
        ok && !stop
    }

    fn on_eval(&mut self, e: &EvalStats) -> bool {
        self.records.push(Record::Eval { step: e.step, loss: e.loss, bits_per_byte: e.bits_per_byte });
        let line = format!("step {}: validation loss {:.4}{} | {:.0} tok/s", e.step, e.loss, bpb(e), self.tok_per_s);
        self.bar.suspend(|| eprintln!("{line}"));
        let ok = self.save();
        self.last = Instant::now();
        ok && !self.interrupted()
    }

    fn on_checkpoint(&mut self, _step: u64, _path: &Path) {
        self.last = Instant::now();
    }
}
