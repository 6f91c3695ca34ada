//! Writes a small random-weight Llama GGUF in F32, for tests against peers
//! (reference/gen_quantize_golden.sh quantizes it with llama-quantize).
//!
//! Usage: cargo run --release -p slm-model --example random_model -- OUT.gguf [--imatrix IMATRIX.gguf]

use slm_format::GgmlType;
use slm_model::random_init::{golden_config, random_imatrix, random_llama_gguf, GOLDEN_SEED};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args().nth(1).ok_or("usage: random_model OUT.gguf")?;
    let bytes = random_llama_gguf(&golden_config(), GgmlType::F32, GOLDEN_SEED)?;
    std::fs::write(&out, bytes)?;
    eprintln!("wrote {out}");
    let args: Vec<String> = std::env::args().collect();
    if let (Some("--imatrix"), Some(path)) = (args.get(2).map(String::as_str), args.get(3)) {
        random_imatrix(&golden_config(), GOLDEN_SEED)?.save(std::path::Path::new(path))?;
        eprintln!("wrote {path}");
    }
    Ok(())
}
