//! `slm show`: what a model is and what it needs.

use super::models::human_bytes;
use crate::args::ShowArgs;
use crate::load::model_path;
use anyhow::{Context, Result};
use slm_format::GgufFile;
use slm_model::ModelConfig;
use std::collections::BTreeMap;

/// Runs the command.
pub fn run(args: ShowArgs) -> Result<()> {
    let path = model_path(&args.model)?;
    let file = GgufFile::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let md = file.metadata();
    outln!("file:          {}", path.display());
    outln!("format:        GGUF v{}, {} tensors, {} metadata keys", file.version(), file.tensors().len(), md.len());
    if let Ok(name) = md.get_str("general.name") {
        outln!("name:          {name}");
    }
    let weight_bytes: u64 = file.tensors().iter().map(|t| t.n_bytes).sum();
    let n_weights: u64 = file.tensors().iter().map(|t| t.n_elements).sum();
    match ModelConfig::from_gguf(&file) {
        Ok(c) => {
            let params = c.n_params();
            outln!("architecture:  {} ({})", c.arch.gguf_name(), size_class(params));
            outln!("parameters:    {} ({:.1}M)", params, params as f64 / 1e6);
            outln!(
                "dimensions:    {} layers, d_model {}, {} heads / {} KV heads of {}, FFN {}, vocab {}",
                c.n_layer, c.d_model, c.n_head, c.n_kv_head, c.head_dim, c.d_ff, c.n_vocab
            );
            outln!("context:       {} trained, RoPE θ {}, RMSNorm ε {:e}", c.n_ctx_train, c.rope_theta, c.rms_eps);
            outln!("output head:   {}", if c.tied_output { "tied to the embedding" } else { "separate" });
            let kv = 2 * c.n_layer as u64 * c.kv_dim() as u64 * args.ctx as u64 * 4;
            let scratch = scratch_bytes(&c, 256, args.ctx);
            outln!(
                "memory:        weights {} + KV cache {} (f32, ctx {}) + buffers ~{} = ~{}",
                human_bytes(weight_bytes),
                human_bytes(kv),
                args.ctx,
                human_bytes(scratch),
                human_bytes(weight_bytes + kv + scratch)
            );
        }
        Err(e) => outln!("architecture:  not runnable by slm: {e}"),
    }
    outln!(
        "weights:       {} in {} ({:.2} bits per weight)",
        human_bytes(weight_bytes),
        n_weights,
        weight_bytes as f64 * 8.0 / n_weights.max(1) as f64
    );
    let mut by_type: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    for t in file.tensors() {
        let e = by_type.entry(t.dtype.name()).or_default();
        e.0 += 1;
        e.1 += t.n_bytes;
    }
    let types: Vec<String> =
        by_type.iter().map(|(k, (n, b))| format!("{k} × {n} ({})", human_bytes(*b))).collect();
    outln!("tensor types:  {}", types.join(", "));
    if args.metadata {
        outln!("\nmetadata:");
        for (k, v) in md.iter() {
            outln!("  {k} = {v}");
        }
    }
    if args.tensors {
        outln!("\ntensors:");
        for t in file.tensors() {
            outln!("  {:<32} {:<6} {:?} {}", t.name, t.dtype.name(), t.dims, human_bytes(t.n_bytes));
        }
    }
    Ok(())
}

/// Activation buffers and logits of a context with `n_batch` and `n_ctx` (see ForwardState).
fn scratch_bytes(c: &ModelConfig, n_batch: u64, n_ctx: usize) -> u64 {
    let per_token = 2 * c.d_model + 3 * c.q_dim() + 2 * c.kv_dim() + c.d_model + 2 * c.d_ff;
    (n_batch * per_token as u64 + (c.n_head * n_ctx) as u64 + c.n_vocab as u64) * 4
}

/// The size classes people use for small models.
fn size_class(params: u64) -> &'static str {
    match params {
        0..=20_000_000 => "tiny, < 20M",
        20_000_001..=200_000_000 => "small, 20M–200M",
        200_000_001..=1_000_000_000 => "small, 200M–1B",
        1_000_000_001..=3_500_000_000 => "1B–3B",
        _ => "large for slm (> 3B)",
    }
}
