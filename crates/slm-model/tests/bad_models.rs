//! Structurally valid GGUF files that are not valid models: each must give a clear error.

use slm_format::{GgmlType, GgufFile, GgufWriter};
use slm_model::random_init::random_llama_gguf;
use slm_model::{Arch, Model, ModelConfig};
use std::sync::Arc;

fn cfg() -> ModelConfig {
    ModelConfig {
        arch: Arch::Llama,
        n_vocab: 32,
        d_model: 32,
        n_layer: 1,
        n_head: 2,
        n_kv_head: 1,
        head_dim: 16,
        d_ff: 64,
        n_ctx_train: 64,
        rms_eps: 1e-5,
        rope_theta: 10_000.0,
        tied_output: true,
    }
}

/// Re-writes a valid random model with `edit` applied to its writer state.
fn rewrite(edit: impl FnOnce(&GgufFile, &mut GgufWriter) -> Vec<String>) -> Result<Model, String> {
    let good = GgufFile::from_bytes(random_llama_gguf(&cfg(), GgmlType::F32, 3).unwrap()).unwrap();
    let mut w = GgufWriter::new();
    let skip = edit(&good, &mut w);
    for (k, v) in good.metadata().iter() {
        if !w.metadata().contains_key(k) && !skip.iter().any(|s| s == k) {
            w.add(k, v.clone());
        }
    }
    for t in good.tensors() {
        if !skip.iter().any(|s| s == &t.name) {
            w.add_tensor(t.name.clone(), &t.dims, t.dtype, good.tensor_data(t).to_vec()).unwrap();
        }
    }
    let file = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    Model::from_gguf(Arc::new(file)).map_err(|e| e.to_string())
}

fn expect_error(result: Result<Model, String>, needle: &str) {
    match result {
        Ok(_) => panic!("expected an error containing {needle:?}, the model loaded"),
        Err(e) => assert!(e.contains(needle), "error {e:?} should mention {needle:?}"),
    }
}

#[test]
fn a_valid_file_loads() {
    assert!(rewrite(|_, _| Vec::new()).is_ok());
}

#[test]
fn unknown_architecture() {
    expect_error(
        rewrite(|_, w| {
            w.add_string("general.architecture", "mamba");
            Vec::new()
        }),
        "unsupported architecture 'mamba'",
    );
}

#[test]
fn missing_hyper_parameter() {
    expect_error(rewrite(|_, _| vec!["llama.block_count".into()]), "llama.block_count");
}

#[test]
fn inconsistent_heads() {
    expect_error(
        rewrite(|_, w| {
            w.add_u32("llama.attention.head_count_kv", 3);
            Vec::new()
        }),
        "multiple",
    );
    expect_error(
        rewrite(|_, w| {
            w.add_u32("llama.attention.head_count", 0);
            Vec::new()
        }),
        "head_count is 0",
    );
}

#[test]
fn implausible_sizes_are_refused_before_allocating() {
    expect_error(
        rewrite(|_, w| {
            w.add_u32("llama.embedding_length", u32::MAX);
            Vec::new()
        }),
        "implausible",
    );
    expect_error(
        rewrite(|_, w| {
            w.add_u32("llama.block_count", 1_000_000);
            Vec::new()
        }),
        "implausible",
    );
}

#[test]
fn missing_tensor() {
    expect_error(rewrite(|_, _| vec!["blk.0.ffn_up.weight".into()]), "blk.0.ffn_up.weight");
}

#[test]
fn wrong_tensor_shape() {
    expect_error(
        rewrite(|good, w| {
            let t = good.tensor("blk.0.attn_q.weight").unwrap();
            // Same bytes, transposed dims.
            w.add_tensor(
                t.name.clone(),
                &[t.dims[1], t.dims[0] / 2],
                t.dtype,
                vec![0u8; good.tensor_data(t).len() / 2],
            )
            .unwrap();
            vec![t.name.clone()]
        }),
        "blk.0.attn_q.weight",
    );
}

#[test]
fn unused_tensor() {
    expect_error(
        rewrite(|_, w| {
            w.add_tensor("blk.7.extra.weight", &[4], GgmlType::F32, vec![0u8; 16]).unwrap();
            Vec::new()
        }),
        "does not use",
    );
}

#[test]
fn context_bytes_match_what_a_context_allocates() {
    use slm_model::ContextBytes;
    let cfg = slm_model::random_init::golden_config();
    let file = slm_format::GgufFile::from_bytes(
        slm_model::random_init::random_llama_gguf(&cfg, slm_format::GgmlType::F32, 1).unwrap(),
    )
    .unwrap();
    let model = slm_model::Model::from_gguf(std::sync::Arc::new(file)).unwrap();
    for (n_ctx, n_batch) in [(64, 16), (256, 256), (100, 7)] {
        let ctx = model.new_context(n_ctx, n_batch).unwrap();
        let est = ContextBytes::of(&cfg, n_ctx, n_batch);
        assert_eq!(est.kv_cache, ctx.kv_bytes(), "kv at {n_ctx}/{n_batch}");
        // The estimate adds the kernel scratch of a full batch, which grows on first use.
        let allocated = ctx.activation_bytes();
        assert!(
            est.activations >= allocated && est.activations < allocated + allocated / 2 + 4096,
            "{est:?} vs {allocated}"
        );
    }
}
