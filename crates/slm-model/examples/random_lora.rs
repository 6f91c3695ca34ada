//! Writes a deterministic random LoRA adapter (llama.cpp GGUF format) for a base model, for
//! tests against peers (reference/gen_lora_golden.sh runs llama-perplexity with it).
//!
//! Usage: cargo run --release -p slm-model --example random_lora -- MODEL.gguf OUT.gguf TARGETS RANK ALPHA SEED B_AMPLITUDE
//! (TARGETS like q,k,v,o; A is PEFT's initialisation from SEED, B uniform in ±B_AMPLITUDE from SEED + 1.)

use slm_format::GgufFile;
use slm_model::lora::{LoraAdapter, LoraTarget};
use slm_model::ModelConfig;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, out, targets, rank, alpha, seed, amplitude] = args.as_slice() else {
        return Err("usage: random_lora MODEL.gguf OUT.gguf TARGETS RANK ALPHA SEED B_AMPLITUDE".into());
    };
    let cfg = ModelConfig::from_gguf(&GgufFile::open(std::path::Path::new(model))?)?;
    let targets = LoraTarget::parse_list(targets)?;
    let adapter =
        LoraAdapter::random(&cfg, &targets, rank.parse()?, alpha.parse()?, seed.parse()?, amplitude.parse()?)?;
    adapter.save_gguf(std::path::Path::new(out))?;
    eprintln!("wrote {out}: {} projections, {} parameters", adapter.pairs.len(), adapter.n_params());
    Ok(())
}
