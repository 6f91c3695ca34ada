//! `slm classify --labels A,B [TEXT...] [--jsonl FILE]`: zero-shot classification with calibrated
//! probabilities, one text or a batch (JSON Lines with a "text" field; one result line each).

use crate::args::ClassifyArgs;
use crate::load;
use anyhow::{Context, Result};
use slm_runtime::ZeroShot;
use std::io::BufRead;
use std::time::Instant;

/// Runs the command.
pub fn run(args: ClassifyArgs) -> Result<()> {
    let labels: Vec<String> = args.labels.split(',').map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
    let mut texts: Vec<(Option<serde_json::Value>, String)> = args.texts.iter().map(|t| (None, t.clone())).collect();
    if let Some(path) = &args.jsonl {
        let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.with_context(|| format!("reading {}", path.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value =
                serde_json::from_str(&line).with_context(|| format!("{}:{}: not JSON", path.display(), i + 1))?;
            let text = v
                .get("text")
                .and_then(|t| t.as_str())
                .map(str::to_string)
                .with_context(|| format!("{}:{}: no \"text\" string field", path.display(), i + 1))?;
            texts.push((v.get("id").cloned(), text));
        }
    }
    anyhow::ensure!(!texts.is_empty(), "nothing to classify: give texts as arguments or --jsonl FILE");
    let loaded = load::load(&args.model)?;
    let pool = load::pool(args.threads)?;
    let n_ctx = load::context_size(Some(args.ctx), &loaded.model)?;
    let mut ctx = loaded.model.new_context(n_ctx, 512)?;
    let zs =
        ZeroShot::new(&loaded.model, &loaded.tokenizer, &loaded.template, &labels, &args.instruction, &pool, &mut ctx)?;
    let start = Instant::now();
    for (id, text) in &texts {
        let c = zs.classify(text, &pool, &mut ctx)?;
        if args.jsonl.is_some() || args.json {
            let probs: serde_json::Map<String, serde_json::Value> =
                zs.labels().iter().cloned().zip(c.probabilities.iter().map(|p| serde_json::json!(p))).collect();
            outln!("{}", serde_json::json!({ "id": id, "label": c.label, "probabilities": probs }));
        } else {
            let probs: Vec<String> =
                zs.labels().iter().zip(&c.probabilities).map(|(l, p)| format!("{l} {:.1}%", 100.0 * p)).collect();
            outln!("{}\t({})", c.label, probs.join(", "));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!("[{} texts in {:.1} s, {:.2} texts/s]", texts.len(), secs, texts.len() as f64 / secs.max(1e-9));
    Ok(())
}
