//! Dumps the logits of a token sequence (for ad-hoc comparisons with peers).
//! `cargo run --release -p slm-model --example dump_logits -- MODEL OUT.f32 ID ID ...`
use slm_kernels::Pool;
use slm_model::{Logits, Model};
use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: dump_logits MODEL OUT.f32 ID...".into());
    }
    let model = Model::load(std::path::Path::new(&args[1]))?;
    let ids: Vec<u32> = args[3..].iter().map(|s| s.parse()).collect::<Result<_, _>>()?;
    let pool = Pool::new(2)?;
    let mut ctx = model.new_context(ids.len().max(1), 512)?;
    let logits = model.forward(&mut ctx, &pool, &ids, Logits::All)?;
    let mut f = std::fs::File::create(&args[2])?;
    for v in logits {
        f.write_all(&v.to_le_bytes())?;
    }
    Ok(())
}
