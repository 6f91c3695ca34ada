//! Prints a GGUF file as canonical JSON (metadata with types, tensor infos, SHA-256 of each
//! tensor's bytes) — used by reference/check_gguf_writer.py to compare with gguf-py.
//!
//! `cargo run -p slm-format --example gguf_dump -- model.gguf`

use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};
use slm_format::{Array, GgufFile, Value};

fn float(x: f64) -> Json {
    serde_json::Number::from_f64(x)
        .map(Json::Number)
        .unwrap_or_else(|| Json::String(x.to_string()))
}

fn array_items(a: &Array) -> Json {
    match a {
        Array::U8(v) => json!(v),
        Array::I8(v) => json!(v),
        Array::U16(v) => json!(v),
        Array::I16(v) => json!(v),
        Array::U32(v) => json!(v),
        Array::I32(v) => json!(v),
        Array::F32(v) => Json::Array(v.iter().map(|&x| float(x.into())).collect()),
        Array::Bool(v) => json!(v),
        Array::String(v) => json!(v),
        Array::Array(v) => Json::Array(
            v.iter()
                .map(|a| json!({"elem": a.elem_type().name(), "items": array_items(a)}))
                .collect(),
        ),
        Array::U64(v) => json!(v),
        Array::I64(v) => json!(v),
        Array::F64(v) => Json::Array(v.iter().map(|&x| float(x)).collect()),
    }
}

fn value(v: &Value) -> Json {
    let inner = match v {
        Value::U8(x) => json!(x),
        Value::I8(x) => json!(x),
        Value::U16(x) => json!(x),
        Value::I16(x) => json!(x),
        Value::U32(x) => json!(x),
        Value::I32(x) => json!(x),
        Value::F32(x) => float((*x).into()),
        Value::Bool(x) => json!(x),
        Value::String(s) => json!(s),
        Value::Array(a) => {
            return json!({"type": "ARRAY", "elem": a.elem_type().name(), "value": array_items(a)})
        }
        Value::U64(x) => json!(x),
        Value::I64(x) => json!(x),
        Value::F64(x) => float(*x),
    };
    json!({"type": v.type_name(), "value": inner})
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: gguf_dump FILE.gguf")?;
    let f = GgufFile::open(std::path::Path::new(&path))?;
    let metadata: Vec<Json> = f
        .metadata()
        .iter()
        .map(|(k, v)| json!([k, value(v)]))
        .collect();
    let tensors: Vec<Json> = f
        .tensors()
        .iter()
        .map(|t| {
            let digest = Sha256::digest(f.tensor_data(t));
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            json!({
                "name": t.name, "dims": t.dims, "type": t.dtype.id(),
                "abs_offset": f.data_offset() + t.offset, "n_bytes": t.n_bytes, "sha256": hex,
            })
        })
        .collect();
    let out = json!({
        "version": f.version(), "alignment": f.alignment(), "data_offset": f.data_offset(),
        "metadata": metadata, "tensors": tensors,
    });
    println!("{out}");
    Ok(())
}
