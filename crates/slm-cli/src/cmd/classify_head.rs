//! `slm classify --train DATA -m ENCODER -o HEAD` (embed labelled texts with an encoder, train a
//! classification head on the vectors, save it with its loss curves) and `slm classify --head HEAD`
//! (classify with it).

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use slm_runtime::embed::{EmbedOptions, Embedder};
use slm_runtime::ClassifierHead;
use slm_train::classifier::{train_head, HeadConfig};

use super::classify::{print_result, Inputs};
use crate::args::ClassifyArgs;

/// Sentence vectors of `texts`, with a progress bar.
fn embed(embedder: &mut Embedder, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
    Ok(super::embed::embed_all(embedder, texts, &EmbedOptions::default())?.vectors)
}

/// Runs `slm classify --train`.
pub fn train(args: &ClassifyArgs, data: &Path) -> Result<()> {
    let Some(model) = &args.model else { bail!("--train needs the encoder: -m MODEL (a bert GGUF or HF directory)") };
    let Some(out) = &args.out else { bail!("--train needs -o HEAD.gguf (where to write the head)") };
    let examples = slm_train::labelled::read_labelled(data)?;
    let mut names: Vec<String> = examples.iter().map(|e| e.label.clone()).collect();
    names.sort();
    names.dedup();
    if names.len() < 2 {
        bail!("{}: every example has the label {:?}; a classifier needs at least two labels", data.display(), names);
    }
    let labels: Vec<usize> = examples.iter().map(|e| names.binary_search(&e.label).unwrap_or(0)).collect();
    let mut embedder = super::embed::open(model, args.threads)?;
    let start = Instant::now();
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    let features = embed(&mut embedder, &texts)?;
    let embed_s = start.elapsed().as_secs_f64();
    eprintln!(
        "embedded {} examples in {embed_s:.1} s ({:.1}/s); labels: {}",
        texts.len(),
        texts.len() as f64 / embed_s.max(1e-9),
        names.join(", ")
    );
    let cfg = HeadConfig {
        hidden: args.hidden,
        epochs: args.epochs,
        val_fraction: args.val,
        lr: args.lr,
        seed: args.seed,
        ..HeadConfig::default()
    };
    let t0 = Instant::now();
    let (mut head, report) = train_head(&features, &labels, &names, &cfg, &mut |e| {
        let val = match (e.val_loss, e.val_accuracy) {
            (Some(l), Some(a)) => format!(", val loss {l:.4}, val accuracy {:.2}%", 100.0 * a),
            _ => String::new(),
        };
        eprintln!("epoch {:>3}: train loss {:.4}{val}", e.epoch, e.train_loss);
    })?;
    head.encoder = super::embed::model_name(model);
    head.encoder_path = std::fs::canonicalize(model).ok().map(|p| p.display().to_string());
    head.save(out).with_context(|| format!("writing {}", out.display()))?;
    let svg = out.with_extension("svg");
    let title = format!("classifier head over {} ({} examples)", head.encoder, report.n_train);
    slm_format::atomic::write_bytes_atomic(&svg, slm_train::plot::loss_svg(&report.records(), &title).as_bytes())
        .with_context(|| format!("writing {}", svg.display()))?;
    let best = report.epochs.iter().find(|e| e.epoch == report.best_epoch);
    let acc = best
        .and_then(|e| e.val_accuracy)
        .map(|a| format!(", validation accuracy {:.2}%", 100.0 * a))
        .unwrap_or_default();
    eprintln!(
        "wrote {} (best epoch {} of {}{acc}; {} train / {} validation examples; training {:.1} s) and {}",
        out.display(),
        report.best_epoch,
        report.epochs.len(),
        report.n_train,
        report.n_val,
        t0.elapsed().as_secs_f64(),
        svg.display()
    );
    Ok(())
}

/// Runs `slm classify --head`.
pub fn predict(args: &ClassifyArgs, head_path: &Path, texts: &Inputs) -> Result<()> {
    let head = ClassifierHead::load(head_path).with_context(|| format!("loading the head {}", head_path.display()))?;
    let model = match (&args.model, &head.encoder_path) {
        (Some(m), _) => m.clone(),
        (None, Some(p)) => p.clone(),
        (None, None) => bail!("the head does not say where its encoder is; pass it with -m"),
    };
    let mut embedder = super::embed::open(&model, args.threads)?;
    let start = Instant::now();
    let refs: Vec<&str> = texts.iter().map(|(_, t)| t.as_str()).collect();
    let vectors = embed(&mut embedder, &refs)?;
    for ((id, _), v) in texts.iter().zip(&vectors) {
        let p: Vec<f64> = head.probabilities(v)?.into_iter().map(f64::from).collect();
        let best = p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i);
        print_result(args, id, &head.labels[best], &head.labels, &p)?;
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!("[{} texts in {:.1} s, {:.1} texts/s]", texts.len(), secs, texts.len() as f64 / secs.max(1e-9));
    Ok(())
}
