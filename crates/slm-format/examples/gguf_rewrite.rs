//! Reads a GGUF with [`slm_format::GgufFile`] and writes it back with [`slm_format::GgufWriter`]
//! (same metadata, tensors and order) — reference/check_gguf_writer.py checks that llama.cpp
//! loads the result and computes the same logits.
//!
//! `cargo run -p slm-format --example gguf_rewrite -- in.gguf out.gguf`

use slm_format::{GgufFile, GgufWriter};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (src, dst) = match (args.next(), args.next()) {
        (Some(s), Some(d)) => (s, d),
        _ => return Err("usage: gguf_rewrite IN.gguf OUT.gguf".into()),
    };
    let f = GgufFile::open(std::path::Path::new(&src))?;
    let mut w = GgufWriter::new();
    for (k, v) in f.metadata().iter() {
        w.add(k, v.clone());
    }
    for t in f.tensors() {
        w.add_tensor(t.name.clone(), &t.dims, t.dtype, f.tensor_data(t))?;
    }
    w.write_file(std::path::Path::new(&dst))?;
    Ok(())
}
