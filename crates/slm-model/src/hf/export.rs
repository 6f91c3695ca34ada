//! GGUF (`llama` or `qwen2` architecture) → HF directory: `model.safetensors` (dequantized to
//! F32/F16/BF16, Q/K rows back in HF order), `config.json`, `generation_config.json`,
//! `tokenizer.json` and `tokenizer_config.json` (with the chat template). Every file is written
//! atomically.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use slm_format::hf_config::{GenerationConfig, LlamaConfig, TokenIds};
use slm_format::safetensors::{from_f32, write_streaming, TensorSpec, INDEX_FILE, SINGLE_FILE};
use slm_format::{GgufFile, TensorInfo};
use slm_kernels::quant::dequantize_row;

use super::names::{gguf_to_hf_name, unpermute_qk};
use super::tokenizer::gguf_tokenizer_to_hf;
use super::{f32_to_json_f64, FloatType, HfError, Progress};
use crate::{Arch, ModelConfig, ModelError};

/// transformers' default `max_shard_size` ("5GB").
pub const DEFAULT_MAX_SHARD_BYTES: u64 = 5_000_000_000;

/// Settings of [`export_hf`].
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// Storage type of every tensor in `model.safetensors`.
    pub dtype: FloatType,
    /// Largest shard: above it the weights are split into `model-0000i-of-0000n.safetensors`
    /// plus `model.safetensors.index.json` (transformers' default is 5 GB).
    pub max_shard_bytes: u64,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions { dtype: FloatType::F32, max_shard_bytes: DEFAULT_MAX_SHARD_BYTES }
    }
}

/// What an export produced.
#[derive(Clone, Debug)]
pub struct ExportSummary {
    /// Tensors written.
    pub n_tensors: usize,
    /// Whether `tokenizer.json` was written (false when the GGUF has no tokenizer keys).
    pub tokenizer: bool,
}

/// Writes the HF layout of `gguf` into `out_dir` (created if needed).
pub fn export_hf(
    gguf: &GgufFile,
    out_dir: &Path,
    opts: &ExportOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<ExportSummary, HfError> {
    let cfg = ModelConfig::from_gguf(gguf)?;
    // The tokenizer first: an unsupported one fails before gigabytes are written.
    let meta = gguf.metadata();
    let tokenizer = if meta.contains_key("tokenizer.ggml.model") {
        Some(gguf_tokenizer_to_hf(meta, cfg.n_ctx_train)?)
    } else {
        None
    };
    let specs = plan(gguf, opts.dtype)?;
    std::fs::create_dir_all(out_dir).map_err(|e| HfError::io(out_dir, e))?;
    let total = specs.len();
    let mut done = 0;
    let mut produce = |i: usize| -> Result<Vec<u8>, HfError> {
        let (spec, t) = specs.get(i).ok_or_else(|| HfError::tensor("?", "internal: tensor index out of range"))?;
        progress(Progress { done, total, name: &t.name });
        done += 1;
        let values = hf_values(gguf, t, &cfg)?;
        Ok(from_f32(&spec.name, spec.dtype, &values)?)
    };
    write_weights(out_dir, &specs, opts.max_shard_bytes, &mut produce)?;
    progress(Progress { done: total, total, name: "" });

    let hf_class = match cfg.arch {
        Arch::Llama => "LlamaForCausalLM",
        Arch::Qwen2 => "Qwen2ForCausalLM",
    };
    let id = |key: &str| meta.get_u32_opt(key);
    let (bos, eos, pad) =
        (id("tokenizer.ggml.bos_token_id")?, id("tokenizer.ggml.eos_token_id")?, id("tokenizer.ggml.padding_token_id")?);
    let config = LlamaConfig {
        architectures: Some(vec![hf_class.into()]),
        model_type: cfg.arch.gguf_name().into(),
        hidden_size: cfg.d_model as u64,
        intermediate_size: cfg.d_ff as u64,
        num_hidden_layers: cfg.n_layer as u64,
        num_attention_heads: cfg.n_head as u64,
        num_key_value_heads: Some(cfg.n_kv_head as u64),
        head_dim: Some(cfg.head_dim as u64),
        rms_norm_eps: f32_to_json_f64(cfg.rms_eps),
        rope_theta: f32_to_json_f64(cfg.rope_theta),
        rope_scaling: None,
        max_position_embeddings: cfg.n_ctx_train as u64,
        vocab_size: cfg.n_vocab as u64,
        tie_word_embeddings: cfg.tied_output,
        bos_token_id: bos,
        eos_token_id: eos.map(TokenIds::One),
        pad_token_id: pad,
        torch_dtype: Some(opts.dtype.torch_name().into()),
        hidden_act: Some("silu".into()),
        attention_bias: (cfg.arch == Arch::Llama).then_some(false),
        mlp_bias: (cfg.arch == Arch::Llama).then_some(false),
        extra: BTreeMap::new(),
    };
    write_json(&out_dir.join("config.json"), &serde_json::to_value(&config).unwrap_or(Value::Null))?;
    let generation = GenerationConfig { bos_token_id: bos, eos_token_id: eos.map(TokenIds::One), pad_token_id: pad, extra: BTreeMap::new() };
    write_json(&out_dir.join("generation_config.json"), &serde_json::to_value(&generation).unwrap_or(Value::Null))?;

    if let Some((tok, tok_cfg)) = &tokenizer {
        write_json(&out_dir.join("tokenizer.json"), tok)?;
        write_json(&out_dir.join("tokenizer_config.json"), tok_cfg)?;
    }
    Ok(ExportSummary { n_tensors: total, tokenizer: tokenizer.is_some() })
}

/// One safetensors entry per GGUF tensor, in file order, with the tensor it comes from.
fn plan(gguf: &GgufFile, dtype: FloatType) -> Result<Vec<(TensorSpec, &TensorInfo)>, HfError> {
    gguf.tensors()
        .iter()
        .map(|t| {
            let name = gguf_to_hf_name(&t.name)
                .ok_or_else(|| HfError::tensor(&t.name, "has no Hugging Face Llama/Qwen2 equivalent (unsupported variant)"))?;
            // PyTorch order is ggml's reversed: [rows, cols].
            let shape = t.dims.iter().rev().copied().collect();
            Ok((TensorSpec { name, dtype: dtype.safetensors(), shape }, t))
        })
        .collect()
}

/// The tensor dequantized to f32, Q/K rows back in HF order.
fn hf_values(gguf: &GgufFile, t: &TensorInfo, cfg: &ModelConfig) -> Result<Vec<f32>, HfError> {
    let n = usize::try_from(t.n_elements).map_err(|_| HfError::tensor(&t.name, "too large for memory"))?;
    let mut values = vec![0.0f32; n];
    // Rows are whole blocks, so the tensor decodes as one long row.
    dequantize_row(t.dtype, gguf.tensor_data(t), &mut values).map_err(ModelError::from)?;
    // Only `llama` files carry the permutation (`qwen2` uses NeoX RoPE like HF); biases never.
    let heads = match (cfg.arch.rope_neox(), t.name.strip_suffix(".weight")) {
        (false, Some(a)) if a.ends_with("attn_q") => Some(cfg.n_head),
        (false, Some(a)) if a.ends_with("attn_k") => Some(cfg.n_kv_head),
        _ => None,
    };
    if let (Some(n_head), Some(&cols)) = (heads, t.dims.first()) {
        values = unpermute_qk(&values, n_head, cols as usize)
            .ok_or_else(|| HfError::tensor(&t.name, format!("dims {:?} do not split into {n_head} heads", t.dims)))?;
    }
    Ok(values)
}

/// Writes `model.safetensors`, or shards of at most `max_shard` bytes plus the index, streaming
/// one tensor at a time. A stale single file or index from an earlier export is removed so
/// loaders cannot pick up old weights.
fn write_weights(
    dir: &Path,
    specs: &[(TensorSpec, &TensorInfo)],
    max_shard: u64,
    produce: &mut dyn FnMut(usize) -> Result<Vec<u8>, HfError>,
) -> Result<(), HfError> {
    let mut shards: Vec<Vec<usize>> = vec![Vec::new()];
    let mut size = 0u64;
    for (i, (spec, _)) in specs.iter().enumerate() {
        let n = spec.n_bytes().ok_or_else(|| HfError::tensor(&spec.name, "byte size overflows"))?;
        if size > 0 && size.saturating_add(n) > max_shard {
            shards.push(Vec::new());
            size = 0;
        }
        size = size.saturating_add(n);
        if let Some(last) = shards.last_mut() {
            last.push(i);
        }
    }
    let mut meta = BTreeMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    let n_shards = shards.len();
    let mut weight_map = serde_json::Map::new();
    for (k, members) in shards.iter().enumerate() {
        let file = if n_shards == 1 { SINGLE_FILE.to_string() } else { format!("model-{:05}-of-{n_shards:05}.safetensors", k + 1) };
        let shard_specs: Vec<TensorSpec> = members.iter().filter_map(|&i| specs.get(i).map(|(s, _)| s.clone())).collect();
        write_streaming(&dir.join(&file), &meta, &shard_specs, |j| match members.get(j) {
            Some(&i) => produce(i),
            None => Err(HfError::tensor("?", "internal: shard index out of range")),
        })?;
        for s in &shard_specs {
            weight_map.insert(s.name.clone(), Value::String(file.clone()));
        }
    }
    let stale = if n_shards == 1 {
        dir.join(INDEX_FILE)
    } else {
        let total: u64 = specs.iter().filter_map(|(s, _)| s.n_bytes()).sum();
        let index = serde_json::json!({ "metadata": { "total_size": total }, "weight_map": weight_map });
        write_json(&dir.join(INDEX_FILE), &index)?;
        dir.join(SINGLE_FILE)
    };
    if stale.is_file() {
        std::fs::remove_file(&stale).map_err(|e| HfError::io(&stale, e))?;
    }
    Ok(())
}

fn write_json(path: &Path, value: &Value) -> Result<(), HfError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| HfError::io(path, std::io::Error::other(e)))?;
    text.push('\n');
    slm_format::atomic::write_bytes_atomic(path, text.as_bytes()).map_err(|e| HfError::io(path, e))
}
