//! HF directory → GGUF: `config.json` → `llama.*` / `qwen2.*` keys, safetensors tensors → GGUF tensors
//! (renamed, Q/K rows permuted, stored as F32/F16/BF16 with norms kept F32), tokenizer files →
//! `tokenizer.*` keys.

use std::path::Path;

use slm_format::hf_config::{HfConfig, LlamaConfig, TokenIds};
use slm_format::safetensors::{from_f32, SafetensorsModel};
use slm_format::{GgmlType, GgufWriter};

use super::names::{hf_to_gguf_name, permute_qk};
use super::tokenizer::{hf_tokenizer_to_gguf, FallbackIds, HfTokenizerFiles};
use super::{FloatType, HfError, Progress};
use crate::Arch;

/// Settings of [`import_hf`].
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Storage type of matrices (1-D tensors stay F32, as llama.cpp keeps them).
    pub dtype: FloatType,
    /// `general.name`; the directory name when `None`.
    pub name: Option<String>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions { dtype: FloatType::F32, name: None }
    }
}

/// What an import produced.
#[derive(Clone, Debug)]
pub struct ImportSummary {
    /// Tensors written.
    pub n_tensors: usize,
    /// Whether tokenizer keys were written (false when the directory has no `tokenizer.json`).
    pub tokenizer: bool,
    /// HF tensors deliberately dropped (e.g. a tied `lm_head.weight`, `rotary_emb.inv_freq`).
    pub skipped: Vec<String>,
}

/// Converts the HF model in `dir` into a GGUF writer (not yet written anywhere).
pub fn build_gguf(
    dir: &Path,
    opts: &ImportOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<(GgufWriter, ImportSummary), HfError> {
    let cfg = match HfConfig::read(&dir.join("config.json"))? {
        HfConfig::Llama(c) => c,
        HfConfig::Bert(c) => return super::bert::build_bert_gguf(dir, &c, opts, progress),
    };
    let dims = Dims::check(&cfg)?;
    let st = SafetensorsModel::open_dir(dir)?;
    let mut w = GgufWriter::new();
    let name = opts
        .name
        .clone()
        .unwrap_or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into()));
    write_hparams(&mut w, &cfg, &dims, &name, opts.dtype);

    // Tensors in llama.cpp's order: embedding, blocks, final norm, head.
    let mut plan: Vec<(String, String)> = Vec::new();
    let mut skipped = Vec::new();
    for hf in st.names() {
        if hf.ends_with("rotary_emb.inv_freq") || (cfg.tie_word_embeddings && hf == "lm_head.weight") {
            skipped.push(hf.clone());
            continue;
        }
        let gguf = hf_to_gguf_name(hf).ok_or_else(|| {
            HfError::tensor(hf, "is not a tensor of a plain Llama/Qwen2 model (unsupported variant: MoE, vision?)")
        })?;
        plan.push((hf.clone(), gguf));
    }
    plan.sort_by_key(|(_, g)| order_key(g));
    check_complete(&plan, cfg.num_hidden_layers, cfg.tie_word_embeddings, dims.arch)?;
    let total = plan.len();
    for (done, (hf, gguf)) in plan.iter().enumerate() {
        progress(Progress { done, total, name: hf });
        add_tensor(&mut w, &st, hf, gguf, &dims, opts.dtype)?;
    }
    progress(Progress { done: total, total, name: "" });

    let tokenizer = match HfTokenizerFiles::read_dir(dir)? {
        Some(files) => {
            let fallback = FallbackIds {
                bos: cfg.bos_token_id,
                eos: cfg.eos_token_id.as_ref().and_then(TokenIds::first),
                pad: cfg.pad_token_id,
            };
            hf_tokenizer_to_gguf(&files, dims.n_vocab, fallback, &mut w)?;
            true
        }
        None => false,
    };
    Ok((w, ImportSummary { n_tensors: total, tokenizer, skipped }))
}

/// Converts the HF model in `dir` and writes the GGUF file `out` atomically.
pub fn import_hf(
    dir: &Path,
    out: &Path,
    opts: &ImportOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<ImportSummary, HfError> {
    let (w, summary) = build_gguf(dir, opts, progress)?;
    w.write_file(out)?;
    Ok(summary)
}

/// Resolved dimensions the tensors are checked against.
struct Dims {
    arch: Arch,
    n_vocab: usize,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
}

impl Dims {
    fn check(cfg: &LlamaConfig) -> Result<Dims, HfError> {
        let unsupported = |m: String| Err(HfError::Unsupported(m));
        // Qwen2 is the Llama block with Q/K/V biases and NeoX RoPE (GGUF arch `qwen2`).
        let arch = if cfg.model_type == "qwen2" { Arch::Qwen2 } else { Arch::Llama };
        if cfg.extra.get("use_sliding_window").and_then(serde_json::Value::as_bool) == Some(true) {
            return unsupported("sliding-window attention (use_sliding_window: true)".into());
        }
        if cfg.rope_scaling.as_ref().is_some_and(|v| !v.is_null()) {
            return unsupported(format!("rope_scaling {:?} (only plain RoPE is supported)", cfg.rope_scaling));
        }
        if cfg.attention_bias == Some(true) || cfg.mlp_bias == Some(true) {
            return unsupported("Llama with attention or MLP biases".into());
        }
        if let Some(act) = cfg.hidden_act.as_deref() {
            if act != "silu" {
                return unsupported(format!("hidden_act \"{act}\" (only silu / SwiGLU)"));
            }
        }
        let to = |v: u64, what: &str| {
            usize::try_from(v)
                .ok()
                .filter(|&v| v > 0 && v < (1 << 24))
                .ok_or_else(|| HfError::Unsupported(format!("config.json {what} = {v} is zero or implausibly large")))
        };
        let n_head = to(cfg.num_attention_heads, "num_attention_heads")?;
        let n_kv_head = to(cfg.num_key_value_heads.unwrap_or(cfg.num_attention_heads), "num_key_value_heads")?;
        let d = to(cfg.hidden_size, "hidden_size")?;
        let head_dim = match cfg.head_dim {
            Some(h) => to(h, "head_dim")?,
            None => d / n_head,
        };
        if !head_dim.is_multiple_of(2) || !n_head.is_multiple_of(n_kv_head) {
            return unsupported(format!("head layout {n_head} heads / {n_kv_head} KV heads of {head_dim}"));
        }
        Ok(Dims { arch, n_vocab: to(cfg.vocab_size, "vocab_size")?, n_head, n_kv_head, head_dim })
    }
}

fn write_hparams(w: &mut GgufWriter, cfg: &LlamaConfig, dims: &Dims, name: &str, dtype: FloatType) {
    let u32_of = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    let a = dims.arch.gguf_name();
    w.add_string("general.architecture", a);
    w.add_string("general.name", name);
    w.add_u32("general.file_type", dtype.file_type());
    w.add_u32(format!("{a}.block_count"), u32_of(cfg.num_hidden_layers));
    w.add_u32(format!("{a}.context_length"), u32_of(cfg.max_position_embeddings));
    w.add_u32(format!("{a}.embedding_length"), u32_of(cfg.hidden_size));
    w.add_u32(format!("{a}.feed_forward_length"), u32_of(cfg.intermediate_size));
    w.add_u32(format!("{a}.attention.head_count"), dims.n_head as u32);
    w.add_u32(format!("{a}.attention.head_count_kv"), dims.n_kv_head as u32);
    w.add_f32(format!("{a}.rope.freq_base"), cfg.rope_theta as f32);
    w.add_f32(format!("{a}.attention.layer_norm_rms_epsilon"), cfg.rms_norm_eps as f32);
    w.add_u32(format!("{a}.vocab_size"), u32_of(cfg.vocab_size));
    w.add_u32(format!("{a}.rope.dimension_count"), dims.head_dim as u32);
    if dims.head_dim * dims.n_head != cfg.hidden_size as usize {
        w.add_u32(format!("{a}.attention.key_length"), dims.head_dim as u32);
        w.add_u32(format!("{a}.attention.value_length"), dims.head_dim as u32);
    }
}

/// Checks that every tensor of a `n_layer`-block Llama is present and none beyond, before
/// anything is converted (a clear error instead of a GGUF the loader later refuses).
fn check_complete(plan: &[(String, String)], n_layer: u64, tied: bool, arch: Arch) -> Result<(), HfError> {
    let have: std::collections::HashSet<&str> = plan.iter().map(|(_, g)| g.as_str()).collect();
    let hf_of = |g: &str| super::names::gguf_to_hf_name(g).unwrap_or_else(|| g.to_string());
    let mut want = vec!["token_embd.weight".to_string(), "output_norm.weight".to_string()];
    if !tied {
        want.push("output.weight".into());
    }
    for i in 0..n_layer {
        for s in
            ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"]
        {
            want.push(format!("blk.{i}.{s}.weight"));
        }
        if arch.qkv_bias() {
            for s in ["attn_q", "attn_k", "attn_v"] {
                want.push(format!("blk.{i}.{s}.bias"));
            }
        }
    }
    if let Some(missing) = want.iter().find(|g| !have.contains(g.as_str())) {
        let why = if missing == "output.weight" { " and tie_word_embeddings is false" } else { "" };
        return Err(HfError::tensor(&hf_of(missing), format!("is missing (config.json has {n_layer} layers){why}")));
    }
    if plan.len() > want.len() {
        let extra = plan.iter().find(|(_, g)| !want.contains(g)).map_or("?", |(h, _)| h.as_str());
        return Err(HfError::tensor(extra, format!("is beyond the {n_layer} layers config.json declares")));
    }
    Ok(())
}

/// Sort key: embedding, then blocks by index, then the rest.
fn order_key(gguf: &str) -> (usize, usize, String) {
    if gguf == "token_embd.weight" {
        return (0, 0, String::new());
    }
    if let Some(rest) = gguf.strip_prefix("blk.") {
        if let Some((n, suffix)) = rest.split_once('.') {
            if let Ok(n) = n.parse() {
                return (1, n, suffix.to_string());
            }
        }
    }
    (2, 0, gguf.to_string())
}

fn add_tensor(
    w: &mut GgufWriter,
    st: &SafetensorsModel,
    hf: &str,
    gguf: &str,
    dims: &Dims,
    dtype: FloatType,
) -> Result<(), HfError> {
    let (mut values, ggml_dims) = read_tensor(st, hf)?;
    let (rows, cols) = (ggml_dims.last().copied().unwrap_or(0), ggml_dims[0] as usize);
    let heads = if dims.arch.rope_neox() {
        // NeoX RoPE pairs (i, i + Dh/2) like HF's rotate_half: rows stay in HF order.
        None
    } else if gguf.ends_with("attn_q.weight") {
        Some(dims.n_head)
    } else if gguf.ends_with("attn_k.weight") {
        Some(dims.n_kv_head)
    } else {
        None
    };
    if let Some(n_head) = heads {
        let shape: Vec<u64> = ggml_dims.iter().rev().copied().collect();
        if rows != (n_head * dims.head_dim) as u64 {
            return Err(HfError::tensor(hf, format!("has shape {shape:?}; expected {} rows", n_head * dims.head_dim)));
        }
        values = permute_qk(&values, n_head, cols)
            .ok_or_else(|| HfError::tensor(hf, format!("shape {shape:?} does not split into {n_head} heads")))?;
    }
    write_float_tensor(w, hf, gguf, &ggml_dims, &values, dtype)
}

/// A 1- or 2-D safetensors tensor as f32 values and ggml-order dims.
pub(super) fn read_tensor(st: &SafetensorsModel, hf: &str) -> Result<(Vec<f32>, Vec<u64>), HfError> {
    let (file, entry) = st.get(hf).ok_or_else(|| HfError::tensor(hf, "listed but not found"))?;
    let values = file.tensor_f32(entry)?;
    let ggml_dims = match entry.shape.as_slice() {
        [n] => vec![*n],
        [rows, cols] => vec![*cols, *rows],
        other => return Err(HfError::tensor(hf, format!("has shape {other:?}; expected 1 or 2 dimensions"))),
    };
    Ok((values, ggml_dims))
}

/// Adds a tensor to `w`: matrices in `dtype`, 1-D tensors in F32 (as llama.cpp keeps them).
pub(super) fn write_float_tensor(
    w: &mut GgufWriter,
    hf: &str,
    gguf: &str,
    ggml_dims: &[u64],
    values: &[f32],
    dtype: FloatType,
) -> Result<(), HfError> {
    let out_type = if ggml_dims.len() == 1 { FloatType::F32 } else { dtype };
    let bytes = from_f32(hf, out_type.safetensors(), values)?;
    let ggml: GgmlType = out_type.ggml();
    w.add_tensor(gguf, ggml_dims, ggml, bytes)?;
    Ok(())
}
