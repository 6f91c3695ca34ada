//! Writes a small GGUF exercising every metadata type and several tensor types with
//! [`slm_format::GgufWriter`] — input for reference/check_gguf_writer.py.
//!
//! `cargo run -p slm-format --example gguf_write_sample -- out.gguf [alignment]`

use slm_format::{Array, GgmlType, GgufWriter, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: gguf_write_sample OUT.gguf [alignment]")?;
    let mut w = GgufWriter::new();
    if let Some(a) = args.next() {
        w.set_alignment(a.parse()?);
    }
    w.add_string("general.architecture", "llama")
        .add_string("general.name", "sample ü <|im_end|>");
    w.add_u8("t.u8", 250)
        .add_i8("t.i8", -120)
        .add_u16("t.u16", 65000)
        .add_i16("t.i16", -32000);
    w.add_u32("llama.block_count", 2)
        .add_i32("t.i32", -7)
        .add_f32("t.f32", 1e-5)
        .add_bool("t.bool", true);
    w.add_u64("t.u64", u64::MAX)
        .add_i64("t.i64", i64::MIN + 1)
        .add_f64("t.f64", -2.5e100);
    w.add_str_array("tokenizer.ggml.tokens", &["<s>", "</s>", "Ġhello", "日本"]);
    w.add_f32_array(
        "tokenizer.ggml.scores",
        &[0.0, -1.5, 3.25, f32::MIN_POSITIVE],
    );
    w.add_i32_array("tokenizer.ggml.token_type", &[3, 3, 1, 1]);
    w.add_array("t.bools", Array::Bool(vec![true, false, true]));
    w.add_array("t.u64s", Array::U64(vec![0, 1 << 40]));
    w.add_array("t.empty", Array::String(vec![]));
    w.add(
        "t.nested",
        Value::Array(Array::Array(vec![
            Array::I32(vec![1, 2]),
            Array::I32(vec![3]),
        ])),
    );
    let f32s: Vec<f32> = (0..6).map(|i| i as f32 * 0.5 - 1.0).collect();
    w.add_tensor_f32("output_norm.weight", &[3, 2], &f32s)?;
    w.add_tensor(
        "blk.0.attn_q.weight",
        &[64, 2],
        GgmlType::Q4_1,
        (0..80).map(|i| i as u8).collect::<Vec<_>>(),
    )?;
    w.add_tensor(
        "token_embd.weight",
        &[32, 3],
        GgmlType::Q8_0,
        vec![9u8; 34 * 3],
    )?;
    w.add_tensor(
        "t.f16",
        &[5],
        GgmlType::F16,
        vec![0x00, 0x3c, 0x00, 0xc0, 0, 0, 0xff, 0x7b, 0x01, 0x00],
    )?;
    w.add_tensor("t.q4k", &[256], GgmlType::Q4_K, vec![1u8; 144])?;
    w.write_file(std::path::Path::new(&path))?;
    Ok(())
}
