//! `slm convert IN OUT [--to gguf|hf] [--dtype f32|f16|bf16]`: Hugging Face layout ⇄ GGUF.
//!
//! IN is a GGUF file (exported to an HF directory) or an HF model directory (imported into one
//! GGUF file). Every output file is written atomically. Quantizing is `slm quantize`'s job.

use crate::args::ConvertArgs;
use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use slm_format::GgufFile;
use slm_model::hf::{export_hf, import_hf, ExportOptions, FloatType, ImportOptions, Progress};
use std::path::Path;
use std::time::Instant;

/// Runs the command.
pub fn run(args: ConvertArgs) -> Result<()> {
    let dtype = FloatType::parse(&args.dtype).ok_or_else(|| {
        anyhow!(
            "unknown --dtype '{}'; use f32, f16 or bf16 (quantize afterwards with `slm quantize`)",
            args.dtype
        )
    })?;
    let input_is_dir = args.input.is_dir();
    if !input_is_dir && !args.input.is_file() {
        bail!(
            "{} does not exist; give a GGUF file or a Hugging Face model directory",
            args.input.display()
        );
    }
    let to_gguf = match args.to.as_deref() {
        Some("gguf") => true,
        Some("hf") => false,
        Some(other) => bail!("unknown --to '{other}'; use gguf or hf"),
        None => input_is_dir,
    };
    let t0 = Instant::now();
    let bar = bar();
    let mut progress = |p: Progress| {
        bar.set_length(p.total as u64);
        bar.set_position(p.done as u64);
        bar.set_message(p.name.to_string());
    };
    if to_gguf {
        if !input_is_dir {
            bail!("{} is a file; --to gguf converts a Hugging Face directory (a GGUF file is already GGUF: use `slm quantize` to change its types)", args.input.display());
        }
        if args.output.is_dir() {
            bail!(
                "{} is a directory; give the path of the GGUF file to write",
                args.output.display()
            );
        }
        let opts = ImportOptions { dtype, name: None };
        let summary = import_hf(&args.input, &args.output, &opts, &mut progress)
            .with_context(|| format!("converting {} to GGUF", args.input.display()))?;
        bar.finish_and_clear();
        outln!(
            "wrote {} ({} tensors, {}, {}{}) in {:.1} s",
            args.output.display(),
            summary.n_tensors,
            args.dtype.to_ascii_uppercase(),
            size(&args.output),
            if summary.tokenizer {
                ", with tokenizer"
            } else {
                ", no tokenizer.json found"
            },
            t0.elapsed().as_secs_f64()
        );
    } else {
        if input_is_dir {
            bail!("{} is a directory; --to hf converts a GGUF file", args.input.display());
        }
        if args.output.is_file() {
            bail!(
                "{} is a file; give the directory to write the Hugging Face layout into",
                args.output.display()
            );
        }
        let file = GgufFile::open(&args.input).with_context(|| format!("opening {}", args.input.display()))?;
        let summary = export_hf(&file, &args.output, &ExportOptions { dtype, ..ExportOptions::default() }, &mut progress)
            .with_context(|| format!("converting {} to the Hugging Face layout", args.input.display()))?;
        bar.finish_and_clear();
        outln!(
            "wrote {}/ (model.safetensors {}, {} tensors, config.json, generation_config.json{}) in {:.1} s",
            args.output.display(),
            size(&args.output.join("model.safetensors")),
            summary.n_tensors,
            if summary.tokenizer {
                ", tokenizer.json, tokenizer_config.json"
            } else {
                "; no tokenizer in the GGUF"
            },
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn bar() -> ProgressBar {
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template("converting [{bar:30}] {pos}/{len} tensors {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

fn size(path: &Path) -> String {
    match std::fs::metadata(path) {
        Ok(m) => format!("{:.1} MB", m.len() as f64 / 1e6),
        Err(_) => "? MB".into(),
    }
}
