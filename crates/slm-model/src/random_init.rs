//! Randomly initialised Llama-family models written as GGUF.
//!
//! Used to train models from scratch and, in tests, to exercise the whole loading and forward
//! path on models small enough to check against a naive reference.

use crate::arch::Arch;
use crate::config::ModelConfig;
use crate::error::ModelError;
use crate::observe::Site;
use crate::quantize::imatrix::{ImatrixEntry, ImportanceMatrix};
use crate::quantize::QuantizeError;
use slm_format::{GgmlType, GgufWriter};
use slm_kernels::quant::quantize_row;
use std::collections::BTreeMap;

/// A deterministic SplitMix64 generator (no dependency needed for reproducible init).
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn next_signed(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// Writes a Llama-architecture GGUF with uniform random weights scaled by `1/sqrt(fan_in)`,
/// matrices stored as `dtype` (norms stay F32). Returns the file bytes.
pub fn random_llama_gguf(cfg: &ModelConfig, dtype: GgmlType, seed: u64) -> Result<Vec<u8>, ModelError> {
    cfg.validate()?;
    let mut rng = SplitMix64::new(seed);
    let mut w = GgufWriter::new();
    let arch = cfg.arch.gguf_name();
    let u32_of = |v: usize| u32::try_from(v).map_err(|_| ModelError::InvalidArgument(format!("{v} too large")));
    w.add_string("general.architecture", arch);
    w.add_string("general.name", "random");
    w.add_u32(format!("{arch}.embedding_length"), u32_of(cfg.d_model)?);
    w.add_u32(format!("{arch}.block_count"), u32_of(cfg.n_layer)?);
    w.add_u32(format!("{arch}.attention.head_count"), u32_of(cfg.n_head)?);
    w.add_u32(format!("{arch}.attention.head_count_kv"), u32_of(cfg.n_kv_head)?);
    w.add_u32(format!("{arch}.feed_forward_length"), u32_of(cfg.d_ff)?);
    w.add_u32(format!("{arch}.context_length"), u32_of(cfg.n_ctx_train)?);
    w.add_u32(format!("{arch}.rope.dimension_count"), u32_of(cfg.head_dim)?);
    w.add_f32(format!("{arch}.attention.layer_norm_rms_epsilon"), cfg.rms_eps);
    w.add_f32(format!("{arch}.rope.freq_base"), cfg.rope_theta);

    let (d, q, kv, f, v) = (cfg.d_model, cfg.q_dim(), cfg.kv_dim(), cfg.d_ff, cfg.n_vocab);
    // The embedding is looked up row by row: give it unit-scale entries.
    let embd: Vec<f32> = (0..v * d).map(|_| rng.next_signed()).collect();
    add_tensor(&mut w, "token_embd.weight", &embd, v, d, dtype)?;
    for i in 0..cfg.n_layer {
        let name = |s: &str| format!("blk.{i}.{s}");
        add_tensor(&mut w, &name("attn_norm.weight"), &random_norm(&mut rng, d), 1, d, GgmlType::F32)?;
        add_tensor(&mut w, &name("attn_q.weight"), &random_matrix(&mut rng, q, d), q, d, dtype)?;
        add_tensor(&mut w, &name("attn_k.weight"), &random_matrix(&mut rng, kv, d), kv, d, dtype)?;
        add_tensor(&mut w, &name("attn_v.weight"), &random_matrix(&mut rng, kv, d), kv, d, dtype)?;
        add_tensor(&mut w, &name("attn_output.weight"), &random_matrix(&mut rng, d, q), d, q, dtype)?;
        add_tensor(&mut w, &name("ffn_norm.weight"), &random_norm(&mut rng, d), 1, d, GgmlType::F32)?;
        add_tensor(&mut w, &name("ffn_gate.weight"), &random_matrix(&mut rng, f, d), f, d, dtype)?;
        add_tensor(&mut w, &name("ffn_up.weight"), &random_matrix(&mut rng, f, d), f, d, dtype)?;
        add_tensor(&mut w, &name("ffn_down.weight"), &random_matrix(&mut rng, d, f), d, f, dtype)?;
    }
    add_tensor(&mut w, "output_norm.weight", &random_norm(&mut rng, d), 1, d, GgmlType::F32)?;
    if !cfg.tied_output {
        add_tensor(&mut w, "output.weight", &random_matrix(&mut rng, v, d), v, d, dtype)?;
    }
    Ok(w.to_bytes()?)
}

/// `[rows][cols]` uniform values scaled by `1/sqrt(cols)` (keeps activations O(1)).
fn random_matrix(rng: &mut SplitMix64, rows: usize, cols: usize) -> Vec<f32> {
    let scale = 1.0 / (cols as f32).sqrt();
    (0..rows * cols).map(|_| rng.next_signed() * scale).collect()
}

/// A norm weight near 1.
fn random_norm(rng: &mut SplitMix64, d: usize) -> Vec<f32> {
    (0..d).map(|_| 1.0 + 0.1 * rng.next_signed()).collect()
}

/// Encodes `[rows][cols]` f32 values as `dtype` and adds them as a tensor (1-D when `rows == 1`).
fn add_tensor(
    w: &mut GgufWriter,
    name: &str,
    values: &[f32],
    rows: usize,
    cols: usize,
    dtype: GgmlType,
) -> Result<(), ModelError> {
    let row_bytes = dtype
        .row_bytes(cols as u64)
        .ok_or_else(|| ModelError::InvalidArgument(format!("{name}: {cols} columns do not fit {dtype} blocks")))?
        as usize;
    let mut bytes = vec![0u8; row_bytes * rows];
    for (src, dst) in values.chunks_exact(cols).zip(bytes.chunks_exact_mut(row_bytes)) {
        quantize_row(dtype, src, dst)?;
    }
    let dims = if rows == 1 { vec![cols as u64] } else { vec![cols as u64, rows as u64] };
    w.add_tensor(name, &dims, dtype, bytes)?;
    Ok(())
}

/// Seed of the golden-test model.
pub const GOLDEN_SEED: u64 = 2024;

/// A small model for golden tests against peers (`examples/random_model.rs` writes it with
/// [`GOLDEN_SEED`] for reference/gen_quantize_golden.sh): d = 256 (K-quant rows), FFN 384 (ffn_down
/// rows fall back), 8 layers (every branch of the mix rules), 4/2 heads, untied output.
pub fn golden_config() -> ModelConfig {
    ModelConfig {
        arch: Arch::Llama,
        n_vocab: 320,
        d_model: 256,
        n_layer: 8,
        n_head: 4,
        n_kv_head: 2,
        head_dim: 64,
        d_ff: 384,
        n_ctx_train: 256,
        rms_eps: 1e-5,
        rope_theta: 10000.0,
        tied_output: false,
    }
}

/// A deterministic importance matrix for a model of `cfg` (every block linear; values spread
/// over two orders of magnitude like real activation statistics), for golden tests.
pub fn random_imatrix(cfg: &ModelConfig, seed: u64) -> Result<ImportanceMatrix, QuantizeError> {
    let mut rng = SplitMix64::new(seed);
    let mut entries = BTreeMap::new();
    for layer in 0..cfg.n_layer {
        for site in Site::ALL {
            let cols = match site {
                Site::AttnIn | Site::FfnIn => cfg.d_model,
                Site::AttnOutIn => cfg.q_dim(),
                Site::FfnDownIn => cfg.d_ff,
            };
            let count = 64.0;
            let sums: Vec<f32> = (0..cols).map(|_| count * 10f32.powf(1.5 * rng.next_signed())).collect();
            for w in site.weight_names() {
                entries.insert(format!("blk.{layer}.{w}"), ImatrixEntry { sums: sums.clone(), counts: vec![count] });
            }
        }
    }
    ImportanceMatrix::from_entries(entries, vec!["random".into()], 1, 64)
}
