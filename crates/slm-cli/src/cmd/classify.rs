//! `slm classify --labels A,B [TEXT...] [--jsonl FILE]`: zero-shot classification with calibrated
//! probabilities, one text or a batch (JSON Lines with a "text" field; one result line each).
//! `--train` / `--head` (trained heads over an encoder's vectors) live in `classify_head.rs`.

use crate::args::ClassifyArgs;
use crate::load;
use anyhow::{Context, Result};
use slm_runtime::ZeroShot;
use std::io::BufRead;
use std::time::Instant;

/// Texts from the arguments and `--jsonl` (with their optional "id").
pub type Inputs = Vec<(Option<serde_json::Value>, String)>;

/// Runs the command.
pub fn run(args: ClassifyArgs) -> Result<()> {
    if let Some(data) = &args.train {
        return super::classify_head::train(&args, data);
    }
    let texts = inputs(&args)?;
    if let Some(head) = &args.head {
        return super::classify_head::predict(&args, head, &texts);
    }
    let Some(labels) = &args.labels else {
        anyhow::bail!("give --labels A,B (zero-shot), --head HEAD (trained), or --train DATA -o HEAD (train a head)");
    };
    let labels: Vec<String> = labels.split(',').map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
    let model = args.model.clone().unwrap_or_else(|| "smollm2-135m-instruct".into());
    // A LoRA adapter trained on labelled answers (`slm finetune --lora`) makes this the trained mode.
    let loaded = load::load_with_adapters(&model, &args.lora.lora)?;
    let pool = load::pool(args.threads)?;
    let n_ctx = load::context_size(Some(args.ctx), &loaded.model)?;
    let mut ctx = loaded.model.new_context(n_ctx, 512)?;
    let zs =
        ZeroShot::new(&loaded.model, &loaded.tokenizer, &loaded.template, &labels, &args.instruction, &pool, &mut ctx)?;
    let start = Instant::now();
    for (id, text) in &texts {
        let c = zs.classify(text, &pool, &mut ctx)?;
        print_result(&args, id, &c.label, zs.labels(), &c.probabilities)?;
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!("[{} texts in {:.1} s, {:.2} texts/s]", texts.len(), secs, texts.len() as f64 / secs.max(1e-9));
    Ok(())
}

/// Prints one result: a JSON line (batch or --json), else `label (a x%, b y%)`.
pub fn print_result(
    args: &ClassifyArgs,
    id: &Option<serde_json::Value>,
    label: &str,
    labels: &[String],
    probabilities: &[f64],
) -> Result<()> {
    if args.jsonl.is_some() || args.json {
        let probs: serde_json::Map<String, serde_json::Value> =
            labels.iter().cloned().zip(probabilities.iter().map(|p| serde_json::json!(p))).collect();
        outln!("{}", serde_json::json!({ "id": id, "label": label, "probabilities": probs }));
    } else {
        let probs: Vec<String> =
            labels.iter().zip(probabilities).map(|(l, p)| format!("{l} {:.1}%", 100.0 * p)).collect();
        outln!("{label}\t({})", probs.join(", "));
    }
    Ok(())
}

/// The texts to classify: positional ones, then the `--jsonl` file's.
fn inputs(args: &ClassifyArgs) -> Result<Inputs> {
    let mut texts: Inputs = args.texts.iter().map(|t| (None, t.clone())).collect();
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
    Ok(texts)
}
