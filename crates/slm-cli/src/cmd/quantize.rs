//! `slm quantize IN OUT --type T`: re-encode a model's tensors (llama-quantize's rules).

use crate::args::QuantizeArgs;
use crate::load;
use anyhow::{anyhow, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use slm_format::GgufFile;
use slm_model::quantize::{
    parse_tensor_type, plan, quantize_gguf, FileType, ImportanceMatrix, PolicyOptions, QuantizeOptions, QuantizeReport,
    TensorReport, TensorTypeOverride,
};
use std::time::Instant;

/// Runs the command.
pub fn run(args: QuantizeArgs) -> Result<()> {
    let opts = options(&args)?;
    let input = load::model_path(&args.input)?;
    if input.canonicalize().ok().is_some_and(|i| args.output.canonicalize().ok() == Some(i)) {
        anyhow::bail!("the output {} is the input file; write to another path", args.output.display());
    }
    let file = GgufFile::open(&input).with_context(|| format!("opening {}", input.display()))?;
    if args.dry_run {
        let report = plan(&file, &opts)?;
        for t in &report.tensors {
            print_tensor(t)?;
        }
        print_summary(&report, opts.policy.ftype, None)?;
        return Ok(());
    }
    let t0 = Instant::now();
    let total: u64 = file.tensors().iter().map(|t| t.n_elements).sum();
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("quantizing [{bar:30}] {percent}% eta {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let verbose = args.verbose;
    let mut printed = Ok(());
    let (writer, report) = quantize_gguf(&file, &opts, &mut |t, _, _| {
        bar.inc(t.n_elements);
        bar.set_message(t.name.clone());
        if verbose && printed.is_ok() {
            printed = bar.suspend(|| print_tensor(t));
        }
    })?;
    printed?;
    bar.set_message(format!("writing {}", args.output.display()));
    writer.write_file(&args.output).with_context(|| format!("writing {}", args.output.display()))?;
    bar.finish_and_clear();
    print_summary(&report, opts.policy.ftype, Some(t0.elapsed().as_secs_f64()))?;
    outln!("wrote {}", args.output.display());
    Ok(())
}

fn options(args: &QuantizeArgs) -> Result<QuantizeOptions> {
    let ftype = FileType::parse(&args.ftype)
        .ok_or_else(|| anyhow!("unknown type '{}'; use one of {}", args.ftype, FileType::names()))?;
    let tensor_type = |s: &Option<String>| s.as_deref().map(parse_tensor_type).transpose().map_err(|e| anyhow!(e));
    let overrides = args
        .tensor_types
        .iter()
        .map(|s| TensorTypeOverride::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!(e))?;
    let imatrix = match &args.imatrix {
        Some(p) => {
            let m = ImportanceMatrix::load(p)?;
            eprintln!("importance matrix: {} entries from {} chunks of {:?}", m.len(), m.chunk_count, m.datasets);
            Some(m)
        }
        None => None,
    };
    Ok(QuantizeOptions {
        policy: PolicyOptions {
            ftype,
            pure: args.pure,
            output_type: tensor_type(&args.output_type)?,
            embedding_type: tensor_type(&args.embedding_type)?,
            leave_output: args.leave_output,
            overrides,
            has_imatrix: imatrix.is_some(),
        },
        allow_requantize: args.allow_requantize,
        n_threads: load::threads(args.threads),
        imatrix,
    })
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn print_tensor(t: &TensorReport) -> Result<()> {
    let change = if t.from == t.to { format!("{} (kept)", t.to) } else { format!("{} -> {}", t.from, t.to) };
    let imatrix = if t.weighted { " [imatrix]" } else { "" };
    outln!(
        "{:<36} {:>18} {:<16} {:>9.3} MiB -> {:>9.3} MiB{imatrix}",
        t.name,
        format!("{:?}", t.dims),
        change,
        mib(t.bytes_in),
        mib(t.bytes_out)
    );
    Ok(())
}

fn print_summary(r: &QuantizeReport, ftype: FileType, secs: Option<f64>) -> Result<()> {
    let n = r.n_elements().max(1) as f64;
    outln!(
        "{ftype}: {:.2} MiB ({:.2} bpw) -> {:.2} MiB ({:.2} bpw), {} tensors{}{}",
        mib(r.bytes_in()),
        r.bytes_in() as f64 * 8.0 / n,
        mib(r.bytes_out()),
        r.bits_per_weight(),
        r.tensors.len(),
        if r.n_fallback > 0 {
            format!(", {} fell back to another type (row length)", r.n_fallback)
        } else {
            String::new()
        },
        secs.map(|s| format!(", {s:.1} s")).unwrap_or_default()
    );
    Ok(())
}
