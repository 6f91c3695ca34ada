//! `slm eval --reference REF -m CANDIDATE [-m ...] FILE`: how much (quantized, pruned,
//! distilled) models differ from their reference on a text — perplexities, KL divergence, same
//! top token, size, bits per weight, speed. The reference runs once for all candidates.

use super::perplexity::{chunk_bar, read_text, tokens_of};
use crate::args::{EvalArgs, ModelArgs};
use crate::load::{self, Loaded};
use anyhow::Result;
use slm_runtime::{compare_many, CompareReport};

/// File size and bits per weight of a loaded model.
fn size_of(loaded: &Loaded) -> (u64, f64) {
    let file = loaded.model.gguf();
    let (bytes, elements) = file.tensors().iter().fold((0u64, 0u64), |(b, e), t| (b + t.n_bytes, e + t.n_elements));
    (file.file_size(), bytes as f64 * 8.0 / elements.max(1) as f64)
}

/// Runs the command.
pub fn run(args: EvalArgs) -> Result<()> {
    let text = read_text(&args.file)?;
    let reference = load::load(&args.reference)?;
    let candidates = args.models.iter().map(|m| load::load(m)).collect::<Result<Vec<_>>>()?;
    let pool = load::pool(args.threads)?;
    let tokens = tokens_of(&text, &reference)?;
    let flags =
        ModelArgs { model: args.reference.clone(), threads: args.threads, ctx: Some(args.ctx), batch: args.batch };
    let opts = super::perplexity::chunk_options(&flags, args.chunks, &reference)?;
    eprintln!(
        "{} tokens, context {}, {} threads, {} candidate(s)",
        tokens.len(),
        opts.n_ctx,
        pool.n_threads(),
        candidates.len()
    );
    let bar = chunk_bar();
    let models: Vec<&slm_model::Model> = candidates.iter().map(|c| c.model.as_ref()).collect();
    let reports = compare_many(&reference.model, &models, &pool, &tokens, &opts, &mut |done, total, kld| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        bar.set_message(format!("KLD {kld:.5}"));
    })?;
    bar.finish_and_clear();
    let (ref_size, ref_bpw) = size_of(&reference);
    if args.json {
        let rows: Vec<_> = candidates
            .iter()
            .zip(&reports)
            .map(|(c, r)| {
                let (size, bpw) = size_of(c);
                serde_json::json!({ "path": c.path, "file_bytes": size, "bpw": bpw, "report": r })
            })
            .collect();
        let json = serde_json::json!({
            "reference": { "path": reference.path, "file_bytes": ref_size, "bpw": ref_bpw },
            "candidates": rows,
        });
        outln!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    print_table(&reference, &candidates, &reports)
}

fn print_table(reference: &Loaded, candidates: &[Loaded], reports: &[CompareReport]) -> Result<()> {
    let Some(first) = reports.first() else { return Ok(()) };
    outln!("{} chunks of {} tokens, {} positions scored", first.n_chunks, first.n_ctx, first.n_scored);
    outln!(
        "{:<10} {:>9} {:>6} {:>9} {:>8} {:>8} {:>9} {:>7}  file",
        "",
        "size MiB",
        "bpw",
        "PPL",
        "KLD",
        "±",
        "same top",
        "tok/s"
    );
    let (size, bpw) = size_of(reference);
    outln!(
        "{:<10} {:>9.2} {bpw:>6.2} {:>9.4} {:>8} {:>8} {:>9} {:>7.1}  {}",
        "reference",
        size as f64 / 1048576.0,
        first.ppl_reference,
        "-",
        "-",
        "-",
        first.reference_tps,
        reference.path.display()
    );
    for (c, r) in candidates.iter().zip(reports) {
        let (size, bpw) = size_of(c);
        outln!(
            "{:<10} {:>9.2} {bpw:>6.2} {:>9.4} {:>8.5} {:>8.5} {:>8.2}% {:>7.1}  {}",
            "candidate",
            size as f64 / 1048576.0,
            r.ppl_candidate,
            r.mean_kld,
            r.kld_stderr,
            r.same_top_pct,
            r.candidate_tps,
            c.path.display()
        );
    }
    Ok(())
}
