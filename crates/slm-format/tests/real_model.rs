//! Opens the real SmolLM2-135M-Instruct Q4_1 file when `SLM_TEST_MODEL` points to it:
//! `SLM_TEST_MODEL=/tmp/assets/SmolLM2-135M-Instruct.Q4_1.gguf cargo test -p slm-format`.

use slm_format::{GgmlType, GgufFile};

#[test]
fn smollm2_135m_q4_1() {
    let Some(path) = std::env::var_os("SLM_TEST_MODEL") else {
        eprintln!("note: SLM_TEST_MODEL is not set; skipping the real-model GGUF test");
        return;
    };
    let f = GgufFile::open(std::path::Path::new(&path)).unwrap();
    let m = f.metadata();
    assert_eq!(f.version(), 3);
    assert_eq!(m.get_str("general.architecture").unwrap(), "llama");
    assert_eq!(m.get_u32("llama.block_count").unwrap(), 30);
    assert_eq!(m.get_u32("llama.embedding_length").unwrap(), 576);
    assert_eq!(m.get_u32("llama.feed_forward_length").unwrap(), 1536);
    assert_eq!(m.get_u32("llama.attention.head_count").unwrap(), 9);
    assert_eq!(m.get_u32("llama.attention.head_count_kv").unwrap(), 3);
    assert_eq!(
        m.get_str_array("tokenizer.ggml.tokens").unwrap().len(),
        49152
    );
    // 30 layers × 9 tensors (2 norms, q/k/v/o, gate/up/down) + token_embd + output_norm.
    assert_eq!(f.tensors().len(), 272);
    assert_eq!(f.tensor("token_embd.weight").unwrap().dtype, GgmlType::Q8_0);
    assert_eq!(f.tensor("token_embd.weight").unwrap().dims, [576, 49152]);
    let q = f.tensor("blk.0.attn_q.weight").unwrap();
    assert_eq!(
        (q.dtype, q.dims.as_slice()),
        (GgmlType::Q4_1, &[576, 576][..])
    );
    assert_eq!(
        f.tensor("blk.29.ffn_norm.weight").unwrap().dtype,
        GgmlType::F32
    );
    assert_eq!(f.tensor_data(q).len() as u64, q.n_bytes);
    // The last tensor ends within the file and everything is aligned.
    let end = f
        .tensors()
        .iter()
        .map(|t| f.data_offset() + t.offset + t.n_bytes)
        .max()
        .unwrap();
    assert!(end <= f.file_size());
    assert_eq!(f.data_offset() % f.alignment(), 0);
}

/// Reading the real model and writing it back with `GgufWriter` reproduces the file byte for byte
/// (same layout rules as gguf-py/llama.cpp: v3, alignment 32, every tensor padded).
#[test]
fn smollm2_rewrite_is_byte_identical() {
    let Some(path) = std::env::var_os("SLM_TEST_MODEL") else {
        eprintln!("note: SLM_TEST_MODEL is not set; skipping the GGUF rewrite test");
        return;
    };
    let original = std::fs::read(&path).unwrap();
    let f = GgufFile::from_bytes(original.clone()).unwrap();
    let mut w = slm_format::GgufWriter::new();
    for (k, v) in f.metadata().iter() {
        w.add(k, v.clone());
    }
    for t in f.tensors() {
        w.add_tensor(t.name.clone(), &t.dims, t.dtype, f.tensor_data(t))
            .unwrap();
    }
    let rewritten = w.to_bytes().unwrap();
    assert_eq!(rewritten.len(), original.len());
    assert!(
        rewritten == original,
        "rewritten file differs from the original"
    );
}
