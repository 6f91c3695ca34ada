//! Boundary tests of slm-model's limits (issue 11, docs/RELIABILITY.md "Limits as code"): model
//! dimensions (`ModelConfig::validate`), the context size (`MAX_CONTEXT`) and the caps of the
//! legacy imatrix reader — each accepted at its value and refused one above with a typed error.

use std::sync::Arc;

use slm_format::{GgmlType, GgufFile};
use slm_model::config::MAX_CONTEXT;
use slm_model::quantize::{ImportanceMatrix, QuantizeError};
use slm_model::random_init::random_llama_gguf;
use slm_model::{Arch, Model, ModelConfig, ModelError};

fn small() -> ModelConfig {
    ModelConfig {
        arch: Arch::Llama,
        n_vocab: 16,
        d_model: 8,
        n_layer: 1,
        n_head: 2,
        n_kv_head: 1,
        head_dim: 4,
        d_ff: 16,
        n_ctx_train: 16,
        rms_eps: 1e-5,
        rope_theta: 10000.0,
        tied_output: true,
    }
}

#[test]
fn model_dimension_limits() {
    // (field, limit, set) — each checked alone on an otherwise small, valid config.
    type Set = fn(&mut ModelConfig, usize);
    let cases: [(&str, usize, Set); 6] = [
        ("d_model", 65_536, |c, v| c.d_model = v),
        ("d_ff", 262_144, |c, v| c.d_ff = v),
        ("n_layer", 1_024, |c, v| c.n_layer = v),
        ("n_vocab", 4_194_304, |c, v| c.n_vocab = v),
        ("n_head", 1_024, |c, v| c.n_head = v),
        // head_dim must be even: one step above the limit is the next even value.
        ("head_dim", 1_024, |c, v| c.head_dim = v),
    ];
    for (name, limit, set) in cases {
        let mut at = small();
        set(&mut at, limit);
        at.validate().unwrap_or_else(|e| panic!("{name} = {limit} must be accepted: {e}"));
        let above = if name == "head_dim" { limit + 2 } else { limit + 1 };
        let mut over = small();
        set(&mut over, above);
        match over.validate() {
            Err(ModelError::InvalidConfig(msg)) => {
                assert!(msg.contains("implausible") && msg.contains(&above.to_string()), "{name}: {msg}")
            }
            other => panic!("{name} = {above}: expected InvalidConfig, got {other:?}"),
        }
    }
}

#[test]
fn context_size_limit() {
    // One layer, one KV head of 2: a context of 2^20 positions is 16 MiB of cache.
    let cfg = ModelConfig { d_model: 2, n_head: 1, n_kv_head: 1, head_dim: 2, d_ff: 2, n_vocab: 4, ..small() };
    let bytes = random_llama_gguf(&cfg, GgmlType::F32, 1).unwrap();
    let model = Model::from_gguf(Arc::new(GgufFile::from_bytes(bytes).unwrap())).unwrap();
    model.new_context(MAX_CONTEXT, 1).expect("a context of MAX_CONTEXT positions");
    for n in [MAX_CONTEXT + 1, 0] {
        match model.new_context(n, 1) {
            Err(ModelError::InvalidArgument(msg)) => assert!(msg.contains(&MAX_CONTEXT.to_string()), "{msg}"),
            other => panic!("context {n}: expected InvalidArgument, got {:?}", other.map(|_| ())),
        }
    }
}

/// A legacy (`.dat`) imatrix: i32 count, then per entry i32 name length, name, i32 ncall, i32
/// value count, f32 values.
fn legacy(entries: &[(Vec<u8>, Vec<f32>)], declared_count: i32) -> Vec<u8> {
    let mut b = declared_count.to_le_bytes().to_vec();
    for (name, values) in entries {
        b.extend_from_slice(&(name.len() as i32).to_le_bytes());
        b.extend_from_slice(name);
        b.extend_from_slice(&1i32.to_le_bytes());
        b.extend_from_slice(&(values.len() as i32).to_le_bytes());
        values.iter().for_each(|v| b.extend_from_slice(&v.to_le_bytes()));
    }
    b
}

fn load(dir: &tempfile::TempDir, bytes: &[u8]) -> Result<ImportanceMatrix, QuantizeError> {
    let path = dir.path().join("imatrix.dat");
    std::fs::write(&path, bytes).unwrap();
    ImportanceMatrix::load(&path)
}

/// The error message, asserting it is `QuantizeError::Imatrix`.
#[track_caller]
fn imatrix_error(r: Result<ImportanceMatrix, QuantizeError>) -> String {
    match r {
        Err(QuantizeError::Imatrix(msg)) => msg,
        other => panic!("expected QuantizeError::Imatrix, got {:?}", other.map(|_| ())),
    }
}

use slm_model::quantize::imatrix::{
    LEGACY_MAX_ENTRIES as MAX_ENTRIES, LEGACY_MAX_NAME as MAX_NAME, LEGACY_MAX_VALUES as MAX_VALUES,
};

#[test]
fn legacy_imatrix_entry_count_limit() {
    let dir = tempfile::tempdir().unwrap();
    let entries: Vec<(Vec<u8>, Vec<f32>)> =
        (0..MAX_ENTRIES).map(|i| (format!("blk.{i}.ffn_up.weight").into_bytes(), vec![1.0])).collect();
    let m = load(&dir, &legacy(&entries, MAX_ENTRIES as i32)).expect("2^20 entries are accepted");
    assert_eq!(m.len(), MAX_ENTRIES);
    let msg = imatrix_error(load(&dir, &legacy(&entries[..1], MAX_ENTRIES as i32 + 1)));
    assert!(msg.contains(&format!("entry count {} is out of range (0..={MAX_ENTRIES})", MAX_ENTRIES + 1)), "{msg}");
}

#[test]
fn legacy_imatrix_name_length_limit() {
    let dir = tempfile::tempdir().unwrap();
    let m = load(&dir, &legacy(&[(vec![b'n'; MAX_NAME], vec![2.0])], 1)).expect("a 4096-byte name is accepted");
    assert_eq!(m.len(), 1);
    let msg = imatrix_error(load(&dir, &legacy(&[(vec![b'n'; MAX_NAME + 1], vec![2.0])], 1)));
    assert!(msg.contains(&format!("name length {} is out of range (0..={MAX_NAME})", MAX_NAME + 1)), "{msg}");
}

#[test]
fn legacy_imatrix_value_count_limit() {
    // A full entry of 2^28 values is 1 GiB; at the limit the count itself is accepted and the
    // reader goes on to find the values missing, one above it is refused as a count.
    let dir = tempfile::tempdir().unwrap();
    let header = |count: usize| {
        let mut b = 1i32.to_le_bytes().to_vec();
        b.extend_from_slice(&1i32.to_le_bytes());
        b.push(b'x');
        b.extend_from_slice(&1i32.to_le_bytes());
        b.extend_from_slice(&(count as i32).to_le_bytes());
        b.extend_from_slice(&[0u8; 16]);
        b
    };
    let at = imatrix_error(load(&dir, &header(MAX_VALUES)));
    assert!(!at.contains("out of range"), "2^28 values must pass the count check: {at}");
    let above = imatrix_error(load(&dir, &header(MAX_VALUES + 1)));
    assert!(above.contains(&format!("value count {} is out of range (0..={MAX_VALUES})", MAX_VALUES + 1)), "{above}");
    // A small complete entry loads.
    load(&dir, &legacy(&[(b"x".to_vec(), vec![1.0, 2.0])], 1)).expect("a small entry loads");
}
