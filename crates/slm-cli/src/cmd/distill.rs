//! Knowledge distillation for `slm train --teacher MODEL`: the student (the run's `[model]`, with
//! the teacher's tokenizer) learns from the teacher's top-k predictions as well as from the text.
//! The teacher runs once over the training windows; its predictions are kept in
//! `teacher-cache.gguf` in the run folder and reused by `--resume` or a second run on the same data.

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use slm_train::distill::{DistillConfig, TeacherCache};
use slm_train::Trainer;
use std::path::Path;
use std::sync::Arc;

/// Distillation flags of `slm train`.
#[derive(Debug, Args, Clone, Default)]
pub struct DistillArgs {
    /// Distil from this teacher (a GGUF path or registry name); a new student uses its tokenizer, an
    /// `--init` student must have the same vocabulary.
    #[arg(long = "teacher", conflicts_with = "tokenizer")]
    pub teacher: Option<String>,
    /// Weight of the teacher's soft targets (the text's cross-entropy gets 1 - alpha).
    #[arg(long = "distill-alpha", default_value_t = 0.5, requires = "teacher")]
    pub alpha: f32,
    /// Softmax temperature of the soft targets.
    #[arg(long = "distill-temperature", default_value_t = 1.0, requires = "teacher")]
    pub temperature: f32,
    /// Teacher tokens kept per position.
    #[arg(long = "distill-top-k", default_value_t = 32, requires = "teacher")]
    pub top_k: usize,
}

impl DistillArgs {
    /// The settings, checked.
    pub fn config(&self) -> Result<DistillConfig> {
        let cfg = DistillConfig { alpha: self.alpha, temperature: self.temperature, top_k: self.top_k };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// The teacher's GGUF metadata (for the student's tokenizer), opened without loading weights.
pub fn teacher_metadata(teacher: &str) -> Result<slm_format::Metadata> {
    let path = crate::load::model_path(teacher)?;
    let file = slm_format::GgufFile::open(&path).with_context(|| format!("opening --teacher {}", path.display()))?;
    Ok(file.metadata().clone())
}

/// Makes `trainer` distil from the teacher: loads `out/teacher-cache.gguf` when it matches the
/// data, else runs the teacher over `train_tokens` (progress bar) and saves the cache.
pub fn attach(
    trainer: &mut Trainer,
    args: &DistillArgs,
    train_tokens: &[u32],
    out: &Path,
    threads: Option<usize>,
) -> Result<()> {
    let Some(teacher) = &args.teacher else { return Ok(()) };
    let cfg = args.config()?;
    let seq_len = trainer.config().seq_len;
    let path = out.join("teacher-cache.gguf");
    let cache = match path.is_file().then(|| TeacherCache::load(&path, train_tokens, seq_len, &cfg)) {
        Some(Ok(cache)) => {
            eprintln!("teacher predictions from {}", path.display());
            cache
        }
        previous => {
            if let Some(Err(e)) = previous {
                eprintln!("note: rebuilding the teacher cache ({e})");
            }
            let model = crate::load::load_model(&crate::load::model_path(teacher)?)?;
            let student_vocab = trainer.model().config().n_vocab;
            if model.config().n_vocab != student_vocab {
                anyhow::bail!(
                    "the teacher has {} tokens and the student {student_vocab}: the student must use the teacher's vocabulary",
                    model.config().n_vocab
                );
            }
            let pool = crate::load::pool(threads)?;
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("teacher [{bar:30}] {pos}/{len} windows eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            let t0 = std::time::Instant::now();
            let cache = TeacherCache::build(&model, &pool, train_tokens, seq_len, &cfg, |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            })?;
            bar.finish_and_clear();
            eprintln!(
                "teacher: {} windows of {seq_len} tokens in {:.1}s, top-{} at temperature {}",
                cache.n_windows(),
                t0.elapsed().as_secs_f64(),
                cache.k,
                cfg.temperature
            );
            cache.save(&path).with_context(|| format!("writing {}", path.display()))?;
            cache
        }
    };
    trainer.set_teacher(Arc::new(cache), cfg)?;
    Ok(())
}
