//! Tensor names (Hugging Face ⇄ GGUF, as llama.cpp's `convert_hf_to_gguf.py` maps them) and the
//! Q/K row permutation of the `llama` architecture (`qwen2` uses NeoX RoPE: no permutation).
//!
//! HF Llama checkpoints apply RoPE with `rotate_half`: within a head, dimension `i` pairs with
//! `i + Dh/2`. GGUF `llama` files use adjacent pairs `(2j, 2j+1)` (slm's and ggml's "normal"
//! RoPE), so the converter reorders the rows of `q_proj`/`k_proj` inside every head:
//! GGUF row `h·Dh + 2j + i` = HF row `h·Dh + i·Dh/2 + j` (i ∈ {0, 1}, j < Dh/2).

/// Per-block suffixes: (HF, GGUF).
const BLOCK: &[(&str, &str)] = &[
    ("input_layernorm.weight", "attn_norm.weight"),
    ("self_attn.q_proj.weight", "attn_q.weight"),
    ("self_attn.k_proj.weight", "attn_k.weight"),
    ("self_attn.v_proj.weight", "attn_v.weight"),
    ("self_attn.o_proj.weight", "attn_output.weight"),
    ("post_attention_layernorm.weight", "ffn_norm.weight"),
    ("mlp.gate_proj.weight", "ffn_gate.weight"),
    ("mlp.up_proj.weight", "ffn_up.weight"),
    ("mlp.down_proj.weight", "ffn_down.weight"),
    // Qwen2's Q/K/V biases.
    ("self_attn.q_proj.bias", "attn_q.bias"),
    ("self_attn.k_proj.bias", "attn_k.bias"),
    ("self_attn.v_proj.bias", "attn_v.bias"),
];

/// Whole-model tensors: (HF, GGUF).
const GLOBAL: &[(&str, &str)] = &[
    ("model.embed_tokens.weight", "token_embd.weight"),
    ("model.norm.weight", "output_norm.weight"),
    ("lm_head.weight", "output.weight"),
];

/// The GGUF name of an HF tensor, `None` when the converter does not know it.
pub fn hf_to_gguf_name(hf: &str) -> Option<String> {
    if let Some((_, g)) = GLOBAL.iter().find(|(h, _)| *h == hf) {
        return Some((*g).to_string());
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (n, suffix) = rest.split_once('.')?;
    let n: usize = n.parse().ok()?;
    let (_, g) = BLOCK.iter().find(|(h, _)| *h == suffix)?;
    Some(format!("blk.{n}.{g}"))
}

/// The HF name of a GGUF tensor, `None` when the converter does not know it.
pub fn gguf_to_hf_name(gguf: &str) -> Option<String> {
    if let Some((h, _)) = GLOBAL.iter().find(|(_, g)| *g == gguf) {
        return Some((*h).to_string());
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (n, suffix) = rest.split_once('.')?;
    let n: usize = n.parse().ok()?;
    let (h, _) = BLOCK.iter().find(|(_, g)| *g == suffix)?;
    Some(format!("model.layers.{n}.{h}"))
}

/// Reorders the rows of an HF `q_proj`/`k_proj` weight (`[n_head·head_dim][cols]`, row-major)
/// into GGUF `llama` order. `None` when the sizes do not fit.
pub fn permute_qk(w: &[f32], n_head: usize, cols: usize) -> Option<Vec<f32>> {
    reorder(w, n_head, cols, true)
}

/// The inverse of [`permute_qk`] (GGUF `llama` order back to HF order).
pub fn unpermute_qk(w: &[f32], n_head: usize, cols: usize) -> Option<Vec<f32>> {
    reorder(w, n_head, cols, false)
}

fn reorder(w: &[f32], n_head: usize, cols: usize, to_gguf: bool) -> Option<Vec<f32>> {
    if n_head == 0 || cols == 0 || !w.len().is_multiple_of(n_head * cols) {
        return None;
    }
    let head_dim = w.len() / n_head / cols;
    if !head_dim.is_multiple_of(2) {
        return None;
    }
    let half = head_dim / 2;
    let mut out = vec![0.0f32; w.len()];
    for h in 0..n_head {
        for i in 0..2 {
            for j in 0..half {
                let hf_row = h * head_dim + i * half + j;
                let gguf_row = h * head_dim + 2 * j + i;
                let (src, dst) = if to_gguf { (hf_row, gguf_row) } else { (gguf_row, hf_row) };
                out.get_mut(dst * cols..(dst + 1) * cols)?.copy_from_slice(w.get(src * cols..(src + 1) * cols)?);
            }
        }
    }
    Some(out)
}
