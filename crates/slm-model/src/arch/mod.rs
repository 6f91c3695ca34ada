//! Registry of supported architectures: GGUF `general.architecture` name → variant facts.
//!
//! The Llama family shares one forward pass ([`crate::arch::llama`]); the variants differ only in
//! data listed here (RoPE pairing, attention biases), never in a second copy of the model.

pub mod llama;

use crate::error::ModelError;

/// A supported decoder architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// Llama 1/2/3, SmolLM/SmolLM2, Mistral (GGUF arch `llama`).
    Llama,
    /// Qwen2 / Qwen2.5 (GGUF arch `qwen2`): biases on Q/K/V, NeoX-style RoPE.
    Qwen2,
}

/// Every supported GGUF architecture name, with its variant.
const REGISTRY: &[(&str, Arch)] = &[("llama", Arch::Llama), ("qwen2", Arch::Qwen2)];

impl Arch {
    /// Finds the variant for a GGUF `general.architecture` value.
    pub fn from_gguf_name(name: &str) -> Result<Arch, ModelError> {
        REGISTRY
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| *a)
            .ok_or_else(|| {
                let mut supported = REGISTRY.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
                if name == crate::bert::BERT_ARCH {
                    // An encoder, not a text generator: point at the commands that use it.
                    supported += " for generation; bert files are encoders: use `slm embed`, `slm similarity` or `slm classify --train`";
                }
                ModelError::UnsupportedArchitecture { found: name.to_string(), supported }
            })
    }

    /// The GGUF name.
    pub fn gguf_name(self) -> &'static str {
        REGISTRY.iter().find(|(_, a)| *a == self).map(|(n, _)| *n).unwrap_or("unknown")
    }

    /// NeoX-style RoPE rotates (x[i], x[i + d/2]) instead of adjacent pairs. llama.cpp's converter
    /// permutes Llama's Q/K weights so that adjacent-pair ("normal") RoPE applies to `llama` files.
    pub fn rope_neox(self) -> bool {
        matches!(self, Arch::Qwen2)
    }

    /// Whether the Q/K/V projections carry biases.
    pub fn qkv_bias(self) -> bool {
        matches!(self, Arch::Qwen2)
    }
}
