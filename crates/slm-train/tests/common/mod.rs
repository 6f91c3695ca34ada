//! Shared helpers for the integration tests: tiny configs and random parameters.
#![allow(dead_code)]

use slm_model::{Arch, ModelConfig};
use slm_train::{ParamKind, ParamLayout, Rng};

/// A tiny Llama config: 2 blocks, GQA (4 query heads on 2 KV heads).
pub fn tiny_config(tied: bool) -> ModelConfig {
    ModelConfig {
        arch: Arch::Llama,
        n_vocab: 13,
        d_model: 16,
        n_layer: 2,
        n_head: 4,
        n_kv_head: 2,
        head_dim: 4,
        d_ff: 24,
        n_ctx_train: 32,
        rms_eps: 1e-5,
        rope_theta: 10_000.0,
        tied_output: tied,
    }
}

/// Parameters large enough that every op is in its non-linear regime (unlike a 0.02-std
/// init): matrices `N(0, 1/fan_in)`, embeddings `N(0, 1)`, norms `1 + N(0, 0.1²)`.
pub fn lively_params(layout: &ParamLayout, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut p = vec![0.0f32; layout.len()];
    for t in &layout.tensors {
        let std = match t.kind {
            ParamKind::Norm => 0.1,
            ParamKind::Embedding => 1.0,
            ParamKind::Matrix => 1.0 / (t.cols as f64).sqrt(),
        };
        for x in &mut p[t.range()] {
            let base = if t.kind == ParamKind::Norm { 1.0 } else { 0.0 };
            *x = (base + rng.normal() * std) as f32;
        }
    }
    p
}

/// `n` token ids below `v`.
pub fn random_tokens(n: usize, v: usize, seed: u64) -> Vec<u32> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| rng.below(v as u64) as u32).collect()
}
