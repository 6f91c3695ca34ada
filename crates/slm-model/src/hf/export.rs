//! GGUF (`llama` architecture) → HF directory: `model.safetensors` (dequantized to
//! F32/F16/BF16, Q/K rows back in HF order), `config.json`, `generation_config.json`,
//! `tokenizer.json` and `tokenizer_config.json` (with the chat template). Every file is written
//! atomically.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use slm_format::hf_config::{GenerationConfig, LlamaConfig, TokenIds};
use slm_format::safetensors::SafetensorsWriter;
use slm_format::GgufFile;
use slm_kernels::quant::dequantize_row;

use super::names::{gguf_to_hf_name, unpermute_qk};
use super::tokenizer::gguf_tokenizer_to_hf;
use super::{f32_to_json_f64, FloatType, HfError, Progress};
use crate::{Arch, ModelConfig, ModelError};

/// Settings of [`export_hf`].
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// Storage type of every tensor in `model.safetensors`.
    pub dtype: FloatType,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions { dtype: FloatType::F32 }
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
    if cfg.arch != Arch::Llama {
        return Err(HfError::Unsupported(format!(
            "architecture {} (only llama is exported so far)",
            cfg.arch.gguf_name()
        )));
    }
    // The tokenizer first: an unsupported one fails before gigabytes are written.
    let meta = gguf.metadata();
    let tokenizer = if meta.contains_key("tokenizer.ggml.model") {
        Some(gguf_tokenizer_to_hf(meta, cfg.n_ctx_train)?)
    } else {
        None
    };
    std::fs::create_dir_all(out_dir).map_err(|e| HfError::io(out_dir, e))?;
    let mut st = SafetensorsWriter::new();
    st.add_metadata("format", "pt");
    let total = gguf.tensors().len();
    for (done, t) in gguf.tensors().iter().enumerate() {
        progress(Progress { done, total, name: &t.name });
        let hf = gguf_to_hf_name(&t.name)
            .ok_or_else(|| HfError::tensor(&t.name, "has no Hugging Face Llama equivalent (unsupported variant)"))?;
        let n = usize::try_from(t.n_elements).map_err(|_| HfError::tensor(&t.name, "too large for memory"))?;
        let mut values = vec![0.0f32; n];
        // Rows are whole blocks, so the tensor decodes as one long row.
        dequantize_row(t.dtype, gguf.tensor_data(t), &mut values).map_err(ModelError::from)?;
        let shape: Vec<u64> = t.dims.iter().rev().copied().collect();
        let heads = match t.name.rsplit_once('.').map(|(a, _)| a) {
            Some(a) if a.ends_with("attn_q") => Some(cfg.n_head),
            Some(a) if a.ends_with("attn_k") => Some(cfg.n_kv_head),
            _ => None,
        };
        if let (Some(n_head), Some(&cols)) = (heads, t.dims.first()) {
            values = unpermute_qk(&values, n_head, cols as usize)
                .ok_or_else(|| HfError::tensor(&t.name, format!("dims {:?} do not split into {n_head} heads", t.dims)))?;
        }
        st.add_f32(hf, opts.dtype.safetensors(), &shape, &values)?;
    }
    progress(Progress { done: total, total, name: "" });
    let path = out_dir.join("model.safetensors");
    st.write_file(&path)?;

    let id = |key: &str| meta.get_u32_opt(key);
    let (bos, eos, pad) =
        (id("tokenizer.ggml.bos_token_id")?, id("tokenizer.ggml.eos_token_id")?, id("tokenizer.ggml.padding_token_id")?);
    let config = LlamaConfig {
        architectures: Some(vec!["LlamaForCausalLM".into()]),
        model_type: "llama".into(),
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
        attention_bias: Some(false),
        mlp_bias: Some(false),
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

fn write_json(path: &Path, value: &Value) -> Result<(), HfError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| HfError::io(path, std::io::Error::other(e)))?;
    text.push('\n');
    slm_format::atomic::write_bytes_atomic(path, text.as_bytes()).map_err(|e| HfError::io(path, e))
}
