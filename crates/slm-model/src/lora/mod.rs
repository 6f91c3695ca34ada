//! LoRA adapters: the low-rank update `W' = W + scale·B·A` of a frozen model's projections.
//!
//! ```text
//!  adapter.gguf (llama.cpp) ──load_gguf──┐                      ┌──► Model::set_adapters (applied in the forward pass)
//!  PEFT dir (safetensors)   ──load_peft──┴──► LoraAdapter ──────┼──► merge (W + scale·B·A, written as GGUF)
//!  training (slm-train)     ─────────────────►    │             └──► save_gguf / save_peft
//! ```
//!
//! One convention everywhere in memory: GGUF's. Matrices are row-major f32, `A: [rank][n_in]`,
//! `B: [n_out][rank]`, and Q/K output rows are in the GGUF `llama` order (the Hugging Face
//! order is restored only when writing PEFT files). The effective scale of a pair is
//! `user_scale · alpha / rank`, exactly as llama.cpp computes it (`alpha = 0` means 1).

mod apply;
mod error;
mod gguf;
mod init;
mod merge;
mod peft;
#[cfg(test)]
mod tests;

pub use apply::{LoraStack, LoraTerm};
pub use error::LoraError;
pub use merge::{merge_file, merge_gguf, MergeReport};
pub use peft::{PEFT_CONFIG, PEFT_WEIGHTS};

use crate::config::ModelConfig;
use std::collections::BTreeMap;

/// Largest rank accepted from a file (far above any practical adapter, far below overflow).
pub const MAX_RANK: usize = 65_536;

/// A projection of a Llama-family block that an adapter can change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LoraTarget {
    /// Query projection `[H*Dh] ← [D]`.
    Q,
    /// Key projection `[G*Dh] ← [D]`.
    K,
    /// Value projection `[G*Dh] ← [D]`.
    V,
    /// Attention output `[D] ← [H*Dh]`.
    O,
    /// Feed-forward gate `[F] ← [D]`.
    Gate,
    /// Feed-forward up `[F] ← [D]`.
    Up,
    /// Feed-forward down `[D] ← [F]`.
    Down,
}

impl LoraTarget {
    /// All targets, in block order.
    pub const ALL: [LoraTarget; 7] = [
        LoraTarget::Q,
        LoraTarget::K,
        LoraTarget::V,
        LoraTarget::O,
        LoraTarget::Gate,
        LoraTarget::Up,
        LoraTarget::Down,
    ];

    /// The GGUF tensor infix (`blk.N.<this>.weight`).
    pub fn gguf_name(self) -> &'static str {
        match self {
            LoraTarget::Q => "attn_q",
            LoraTarget::K => "attn_k",
            LoraTarget::V => "attn_v",
            LoraTarget::O => "attn_output",
            LoraTarget::Gate => "ffn_gate",
            LoraTarget::Up => "ffn_up",
            LoraTarget::Down => "ffn_down",
        }
    }

    /// The Hugging Face module path inside a layer (`model.layers.N.<this>`).
    pub fn peft_module(self) -> &'static str {
        match self {
            LoraTarget::Q => "self_attn.q_proj",
            LoraTarget::K => "self_attn.k_proj",
            LoraTarget::V => "self_attn.v_proj",
            LoraTarget::O => "self_attn.o_proj",
            LoraTarget::Gate => "mlp.gate_proj",
            LoraTarget::Up => "mlp.up_proj",
            LoraTarget::Down => "mlp.down_proj",
        }
    }

    /// The short name used on the command line (`q`, `gate`, ...).
    pub fn short_name(self) -> &'static str {
        match self {
            LoraTarget::Q => "q",
            LoraTarget::K => "k",
            LoraTarget::V => "v",
            LoraTarget::O => "o",
            LoraTarget::Gate => "gate",
            LoraTarget::Up => "up",
            LoraTarget::Down => "down",
        }
    }

    /// Index in [`LoraTarget::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Parses one short name (`q`), PEFT module name (`q_proj`) or GGUF name (`attn_q`).
    pub fn parse(name: &str) -> Result<LoraTarget, LoraError> {
        let name = name.trim();
        LoraTarget::ALL
            .into_iter()
            .find(|t| {
                name == t.short_name()
                    || name == t.gguf_name()
                    || t.peft_module().rsplit('.').next() == Some(name)
                    || name == t.peft_module()
            })
            .ok_or_else(|| LoraError::UnknownTarget(name.to_string()))
    }

    /// Parses a comma-separated list (`q,k,v,o,gate,up,down`; `all` for every target),
    /// without duplicates, in block order.
    pub fn parse_list(list: &str) -> Result<Vec<LoraTarget>, LoraError> {
        if list.trim() == "all" {
            return Ok(LoraTarget::ALL.to_vec());
        }
        let mut out = Vec::new();
        for part in list.split(',') {
            let t = LoraTarget::parse(part)?;
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out.sort();
        Ok(out)
    }

    /// `(n_in, n_out)` of this projection in a model of `cfg`.
    pub fn dims(self, cfg: &ModelConfig) -> (usize, usize) {
        let (d, f, q, kv) = (cfg.d_model, cfg.d_ff, cfg.q_dim(), cfg.kv_dim());
        match self {
            LoraTarget::Q => (d, q),
            LoraTarget::K | LoraTarget::V => (d, kv),
            LoraTarget::O => (q, d),
            LoraTarget::Gate | LoraTarget::Up => (d, f),
            LoraTarget::Down => (f, d),
        }
    }

    /// The GGUF name of the base weight this target adapts in layer `layer`.
    pub fn weight_name(self, layer: usize) -> String {
        format!("blk.{layer}.{}.weight", self.gguf_name())
    }
}

impl std::fmt::Display for LoraTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.short_name())
    }
}

/// The two factors of one adapted projection: `ΔW = B·A` (`[n_out][n_in]`).
#[derive(Clone, Debug, PartialEq)]
pub struct LoraPair {
    /// Input features of the projection.
    pub n_in: usize,
    /// Output features of the projection.
    pub n_out: usize,
    /// Rank `r` of the update.
    pub rank: usize,
    /// `[rank][n_in]`, row-major.
    pub a: Vec<f32>,
    /// `[n_out][rank]`, row-major.
    pub b: Vec<f32>,
}

impl LoraPair {
    /// A pair with `A` and `B` all zeros (checked sizes).
    pub fn zeros(n_in: usize, n_out: usize, rank: usize) -> LoraPair {
        LoraPair { n_in, n_out, rank, a: vec![0.0; rank * n_in], b: vec![0.0; n_out * rank] }
    }

    /// Checks the buffer lengths, the rank and that every value is finite.
    pub fn validate(&self, name: &str) -> Result<(), LoraError> {
        if self.rank == 0 || self.rank > MAX_RANK || self.n_in == 0 || self.n_out == 0 {
            return Err(LoraError::Invalid(format!(
                "'{name}': rank {} with {} inputs and {} outputs (rank must be in 1..={MAX_RANK})",
                self.rank, self.n_in, self.n_out
            )));
        }
        if self.a.len() != self.rank * self.n_in || self.b.len() != self.n_out * self.rank {
            return Err(LoraError::Invalid(format!(
                "'{name}': A has {} values and B {}, expected {}×{} and {}×{}",
                self.a.len(),
                self.b.len(),
                self.rank,
                self.n_in,
                self.n_out,
                self.rank
            )));
        }
        if !self.a.iter().chain(&self.b).all(|v| v.is_finite()) {
            return Err(LoraError::Invalid(format!("'{name}' holds a NaN or infinite value")));
        }
        Ok(())
    }
}

/// A LoRA adapter: alpha, the nominal rank, the base architecture and the adapted projections.
#[derive(Clone, Debug, PartialEq)]
pub struct LoraAdapter {
    /// `lora_alpha`; the update is scaled by `alpha / rank` (by 1 when `alpha` is 0, as llama.cpp).
    pub alpha: f32,
    /// Nominal rank (the largest pair rank; pairs may differ, e.g. PEFT `rank_pattern`).
    pub rank: usize,
    /// GGUF `general.architecture` of the base model (`llama`, `qwen2`).
    pub arch: String,
    /// The adapted projections by `(layer, target)`.
    pub pairs: BTreeMap<(usize, LoraTarget), LoraPair>,
}

impl LoraAdapter {
    /// An adapter with no pairs yet.
    pub fn new(arch: impl Into<String>, rank: usize, alpha: f32) -> LoraAdapter {
        LoraAdapter { alpha, rank, arch: arch.into(), pairs: BTreeMap::new() }
    }

    /// `alpha / rank` for the nominal rank (1 when alpha is 0).
    pub fn scale(&self) -> f32 {
        scale_of(self.alpha, self.rank)
    }

    /// The scale of one pair, `alpha / pair.rank` (1 when alpha is 0): llama.cpp's per-tensor rule.
    pub fn pair_scale(&self, pair: &LoraPair) -> f32 {
        scale_of(self.alpha, pair.rank)
    }

    /// Number of adapter parameters (A and B of every pair).
    pub fn n_params(&self) -> usize {
        self.pairs.values().map(|p| p.a.len() + p.b.len()).sum()
    }

    /// Checks alpha, the pairs' buffers and that every pair fits a model of `cfg` (architecture,
    /// layer index, input/output widths).
    pub fn check_against(&self, cfg: &ModelConfig) -> Result<(), LoraError> {
        self.validate()?;
        if self.arch != cfg.arch.gguf_name() {
            return Err(LoraError::ArchMismatch { adapter: self.arch.clone(), model: cfg.arch.gguf_name().into() });
        }
        for (&(layer, target), pair) in &self.pairs {
            if layer >= cfg.n_layer {
                return Err(LoraError::LayerOutOfRange { layer, n_layer: cfg.n_layer });
            }
            let (n_in, n_out) = target.dims(cfg);
            if (pair.n_in, pair.n_out) != (n_in, n_out) {
                return Err(LoraError::Shape {
                    name: target.weight_name(layer),
                    expected: vec![n_in as u64, n_out as u64],
                    found: vec![pair.n_in as u64, pair.n_out as u64],
                    hint: " ([n_in, n_out]); is this adapter for another base model?",
                });
            }
        }
        Ok(())
    }

    /// Checks alpha and every pair on its own (no base model needed).
    pub fn validate(&self) -> Result<(), LoraError> {
        if !self.alpha.is_finite() {
            return Err(LoraError::Invalid(format!("alpha {} is not finite", self.alpha)));
        }
        if self.rank == 0 || self.rank > MAX_RANK {
            return Err(LoraError::Invalid(format!("rank {} is outside 1..={MAX_RANK}", self.rank)));
        }
        for (&(layer, target), pair) in &self.pairs {
            pair.validate(&target.weight_name(layer))?;
        }
        Ok(())
    }
}

fn scale_of(alpha: f32, rank: usize) -> f32 {
    if alpha == 0.0 || rank == 0 {
        1.0
    } else {
        alpha / rank as f32
    }
}

/// Splits `FILE[:SCALE]` (the `--lora` syntax) into the path and the user scale (default 1).
/// A suffix that does not parse as a number is part of the path (`C:\x` style names).
pub fn parse_lora_arg(arg: &str) -> Result<(std::path::PathBuf, f32), LoraError> {
    if let Some((path, scale)) = arg.rsplit_once(':') {
        if let Ok(s) = scale.parse::<f32>() {
            if !s.is_finite() {
                return Err(LoraError::Invalid(format!("scale '{scale}' in '{arg}' is not finite")));
            }
            if path.is_empty() {
                return Err(LoraError::Invalid(format!("'{arg}' has a scale but no file")));
            }
            return Ok((path.into(), s));
        }
    }
    if arg.is_empty() {
        return Err(LoraError::Invalid("empty --lora argument; use FILE[:SCALE]".into()));
    }
    Ok((arg.into(), 1.0))
}

/// Loads an adapter from a GGUF file or a PEFT directory (`adapter_config.json` +
/// `adapter_model.safetensors`), and checks it against the base model.
pub fn load_any(path: &std::path::Path, cfg: &ModelConfig) -> Result<LoraAdapter, LoraError> {
    let adapter = if path.is_dir() { LoraAdapter::load_peft(path, cfg)? } else { LoraAdapter::load_gguf(path)? };
    adapter.check_against(cfg)?;
    Ok(adapter)
}
