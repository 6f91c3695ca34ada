//! HF `BertModel` directory (sentence-transformers layout included) → GGUF arch `bert`, named and
//! keyed as llama.cpp's `convert_hf_to_gguf.py` does: tensors renamed (pooler and MLM heads
//! dropped), `bert.*` hyper-parameters, the pooling from `modules.json` + `1_Pooling/config.json`,
//! and the WordPiece vocabulary in llama.cpp's "phantom space" spelling (`▁word`, `piece` for
//! `##piece`). slm's own keys add the GELU variant, `max_seq_length` and `Normalize`, and the whole
//! `tokenizer.json` under `tokenizer.huggingface.json` so slm tokenizes exactly as the original.

use std::path::Path;

use serde_json::Value;
use slm_format::hf_config::{read_json, BertConfig as HfBertConfig};
use slm_format::safetensors::SafetensorsModel;
use slm_format::GgufWriter;

use super::tokenizer::HfTokenizerFiles;
use super::{FloatType, HfError, ImportOptions, ImportSummary, Progress};
use crate::bert::{Pooling, KEY_ACTIVATION, KEY_MAX_SEQ_LEN, KEY_NORMALIZE};

const NORMAL: i32 = 1;
const CONTROL: i32 = 3;

/// The HF name of a BERT tensor → its GGUF name; `Ok(None)` for tensors deliberately dropped.
pub fn bert_hf_to_gguf_name(hf: &str) -> Result<Option<String>, HfError> {
    let name = hf.strip_prefix("bert.").unwrap_or(hf);
    let name = match name.strip_suffix(".gamma") {
        Some(stem) => format!("{stem}.weight"),
        None => match name.strip_suffix(".beta") {
            Some(stem) => format!("{stem}.bias"),
            None => name.to_string(),
        },
    };
    if name == "embeddings.position_ids" || name.starts_with("pooler.") || name.starts_with("cls.") {
        return Ok(None);
    }
    let (stem, kind) = name
        .rsplit_once('.')
        .filter(|(_, k)| *k == "weight" || *k == "bias")
        .ok_or_else(|| HfError::tensor(hf, "is not a weight or bias of a BertModel"))?;
    let fixed = match stem {
        "embeddings.word_embeddings" => Some("token_embd"),
        "embeddings.position_embeddings" => Some("position_embd"),
        "embeddings.token_type_embeddings" => Some("token_types"),
        "embeddings.LayerNorm" => Some("token_embd_norm"),
        _ => None,
    };
    if let Some(g) = fixed {
        return Ok(Some(format!("{g}.{kind}")));
    }
    let rest = stem.strip_prefix("encoder.layer.").ok_or_else(|| HfError::tensor(hf, "is not part of a BertModel"))?;
    let (idx, part) = rest.split_once('.').ok_or_else(|| HfError::tensor(hf, "has no layer index"))?;
    let idx: u32 = idx.parse().map_err(|_| HfError::tensor(hf, "has a non-numeric layer index"))?;
    let g = match part {
        "attention.self.query" => "attn_q",
        "attention.self.key" => "attn_k",
        "attention.self.value" => "attn_v",
        "attention.output.dense" => "attn_output",
        "attention.output.LayerNorm" => "attn_output_norm",
        "intermediate.dense" => "ffn_up",
        "output.dense" => "ffn_down",
        "output.LayerNorm" => "layer_output_norm",
        _ => return Err(HfError::tensor(hf, "is not a tensor of a BERT block (unsupported variant?)")),
    };
    Ok(Some(format!("blk.{idx}.{g}.{kind}")))
}

/// Converts the BERT model in `dir` into a GGUF writer.
pub(super) fn build_bert_gguf(
    dir: &Path,
    cfg: &HfBertConfig,
    opts: &ImportOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<(GgufWriter, ImportSummary), HfError> {
    let gelu = match cfg.hidden_act.as_deref().unwrap_or("gelu") {
        "gelu" => "gelu",
        "gelu_new" | "gelu_pytorch_tanh" => "gelu_tanh",
        other => return Err(HfError::Unsupported(format!("BERT hidden_act \"{other}\" (gelu, gelu_new)"))),
    };
    if let Some(p) = cfg.position_embedding_type.as_deref().filter(|p| *p != "absolute") {
        return Err(HfError::Unsupported(format!("position_embedding_type \"{p}\" (only absolute)")));
    }
    let st = SafetensorsModel::open_dir(dir)?;
    let mut plan = Vec::new();
    let mut skipped = Vec::new();
    for hf in st.names() {
        match bert_hf_to_gguf_name(hf)? {
            Some(g) => plan.push((hf.clone(), g)),
            None => skipped.push(hf.clone()),
        }
    }
    check_complete(&plan, cfg.num_hidden_layers)?;

    let mut w = GgufWriter::new();
    let name = opts
        .name
        .clone()
        .unwrap_or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into()));
    let u32_of = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    w.add_string("general.architecture", "bert");
    w.add_string("general.name", name);
    w.add_u32("general.file_type", opts.dtype.file_type());
    w.add_u32("bert.context_length", u32_of(cfg.max_position_embeddings));
    w.add_u32("bert.embedding_length", u32_of(cfg.hidden_size));
    w.add_u32("bert.feed_forward_length", u32_of(cfg.intermediate_size));
    w.add_u32("bert.block_count", u32_of(cfg.num_hidden_layers));
    w.add_u32("bert.attention.head_count", u32_of(cfg.num_attention_heads));
    w.add_f32("bert.attention.layer_norm_epsilon", cfg.layer_norm_eps as f32);
    w.add_bool("bert.attention.causal", false);
    let st_cfg = SentenceTransformersConfig::read(dir)?;
    w.add_u32("bert.pooling_type", st_cfg.pooling.gguf_code());
    w.add_string(KEY_ACTIVATION, gelu);
    w.add_bool(KEY_NORMALIZE, st_cfg.normalize);
    if let Some(n) = st_cfg.max_seq_length {
        w.add_u32(KEY_MAX_SEQ_LEN, n.min(u32_of(cfg.max_position_embeddings)));
    }

    let total = plan.len();
    for (done, (hf, gguf)) in plan.iter().enumerate() {
        progress(Progress { done, total, name: hf });
        add_tensor(&mut w, &st, hf, gguf, opts.dtype)?;
    }
    progress(Progress { done: total, total, name: "" });

    let tokenizer = match HfTokenizerFiles::read_dir(dir)? {
        Some(files) => {
            wordpiece_to_gguf(&files, cfg.vocab_size as usize, cfg.type_vocab_size, &mut w)?;
            true
        }
        None => false,
    };
    Ok((w, ImportSummary { n_tensors: total, tokenizer, skipped }))
}

/// What the sentence-transformers files around a BERT say about its use as an embedder.
struct SentenceTransformersConfig {
    pooling: Pooling,
    normalize: bool,
    max_seq_length: Option<u32>,
}

impl SentenceTransformersConfig {
    /// Reads `modules.json` (+ the pooling module's `config.json`) and `sentence_bert_config.json`.
    /// A plain HF BERT without them pools by mean and normalises (the usual embedding recipe).
    fn read(dir: &Path) -> Result<SentenceTransformersConfig, HfError> {
        let mut out = SentenceTransformersConfig { pooling: Pooling::Mean, normalize: true, max_seq_length: None };
        let modules_path = dir.join("modules.json");
        if modules_path.is_file() {
            let modules = read_json(&modules_path)?;
            let list = modules.as_array().map(Vec::as_slice).unwrap_or(&[]);
            let type_of = |m: &Value| m.get("type").and_then(Value::as_str).unwrap_or("").to_string();
            out.normalize = list.iter().any(|m| type_of(m).ends_with("Normalize"));
            if let Some(m) = list.iter().find(|m| type_of(m).ends_with("Pooling")) {
                let sub = m.get("path").and_then(Value::as_str).unwrap_or("");
                if sub.contains("..") || sub.starts_with('/') {
                    return Err(HfError::Unsupported(format!(
                        "modules.json pooling path \"{sub}\" leaves the directory"
                    )));
                }
                let pcfg = read_json(&dir.join(sub).join("config.json"))?;
                let flag = |k: &str| pcfg.get(k).and_then(Value::as_bool).unwrap_or(false);
                let mode = pcfg.get("pooling_mode").and_then(Value::as_str);
                out.pooling = if flag("pooling_mode_mean_tokens") || mode == Some("mean") {
                    Pooling::Mean
                } else if flag("pooling_mode_cls_token") || mode == Some("cls") {
                    Pooling::Cls
                } else {
                    return Err(HfError::Unsupported(
                        "sentence-transformers pooling other than mean or CLS (max, last token, weighted)".into(),
                    ));
                };
            }
        }
        let sb_path = dir.join("sentence_bert_config.json");
        if sb_path.is_file() {
            let sb = read_json(&sb_path)?;
            out.max_seq_length =
                sb.get("max_seq_length").and_then(Value::as_u64).and_then(|v| u32::try_from(v).ok()).filter(|&v| v > 0);
        }
        Ok(out)
    }
}

fn check_complete(plan: &[(String, String)], n_layer: u64) -> Result<(), HfError> {
    let have: std::collections::HashSet<&str> = plan.iter().map(|(_, g)| g.as_str()).collect();
    let mut want: Vec<String> =
        ["token_embd.weight", "position_embd.weight", "token_embd_norm.weight", "token_embd_norm.bias"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    for i in 0..n_layer {
        for part in
            ["attn_q", "attn_k", "attn_v", "attn_output", "attn_output_norm", "ffn_up", "ffn_down", "layer_output_norm"]
        {
            want.push(format!("blk.{i}.{part}.weight"));
            want.push(format!("blk.{i}.{part}.bias"));
        }
    }
    if let Some(missing) = want.iter().find(|g| !have.contains(g.as_str())) {
        return Err(HfError::tensor(missing, format!("(GGUF name) is missing; config.json declares {n_layer} layers")));
    }
    let extra = plan.iter().find(|(_, g)| !want.contains(g) && g != "token_types.weight");
    if let Some((hf, _)) = extra {
        return Err(HfError::tensor(hf, format!("is beyond the {n_layer} layers config.json declares")));
    }
    Ok(())
}

fn add_tensor(
    w: &mut GgufWriter,
    st: &SafetensorsModel,
    hf: &str,
    gguf: &str,
    dtype: FloatType,
) -> Result<(), HfError> {
    let (values, ggml_dims) = super::import::read_tensor(st, hf)?;
    super::import::write_float_tensor(w, hf, gguf, &ggml_dims, &values, dtype)
}

/// Writes a WordPiece `tokenizer.json` as llama.cpp's `bert` tokenizer keys plus the original
/// JSON (`tokenizer.huggingface.json`).
fn wordpiece_to_gguf(
    files: &HfTokenizerFiles,
    n_vocab: usize,
    n_types: u64,
    w: &mut GgufWriter,
) -> Result<(), HfError> {
    let tok = &files.tokenizer;
    let model = tok.get("model").ok_or_else(|| HfError::Tokenizer("tokenizer.json has no \"model\"".into()))?;
    let kind = model.get("type").and_then(Value::as_str).unwrap_or("");
    if kind != "WordPiece" {
        return Err(HfError::Unsupported(format!("BERT tokenizer model \"{kind}\" (only WordPiece)")));
    }
    let vocab = model
        .get("vocab")
        .and_then(Value::as_object)
        .ok_or_else(|| HfError::Tokenizer("model.vocab is not an object".into()))?;
    let n = n_vocab.max(vocab.len());
    if n > 1 << 22 {
        return Err(HfError::Tokenizer(format!("vocabulary of {n} entries is implausibly large")));
    }
    let mut tokens: Vec<Option<String>> = vec![None; n];
    for (text, id) in vocab {
        let slot = id
            .as_u64()
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i < n)
            .ok_or_else(|| HfError::Tokenizer(format!("id of {text:?} is not below the vocabulary size {n}")))?;
        tokens[slot] = Some(text.clone());
    }
    let mut types = vec![NORMAL; n];
    for added in tok.get("added_tokens").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]) {
        let id = added.get("id").and_then(Value::as_u64).and_then(|i| usize::try_from(i).ok());
        let special = added.get("special").and_then(Value::as_bool).unwrap_or(false);
        if let (Some(id), true) = (id, special) {
            if let Some(t) = types.get_mut(id) {
                *t = CONTROL;
            }
        }
    }
    let id_of = |text: &str| tokens.iter().position(|t| t.as_deref() == Some(text)).and_then(|i| u32::try_from(i).ok());
    let ids = [
        ("unknown", id_of("[UNK]")),
        ("seperator", id_of("[SEP]")),
        ("padding", id_of("[PAD]")),
        ("cls", id_of("[CLS]")),
        ("mask", id_of("[MASK]")),
    ];
    // llama.cpp's spelling: control tokens verbatim, `##piece` → `piece`, `word` → `▁word`.
    let phantom: Vec<String> = tokens
        .into_iter()
        .zip(&types)
        .enumerate()
        .map(|(i, (t, &ty))| match t {
            None => format!("[PAD{i}]"),
            Some(t) if ty == CONTROL => t,
            Some(t) => match t.strip_prefix("##") {
                Some(piece) => piece.to_string(),
                None => format!("\u{2581}{t}"),
            },
        })
        .collect();
    w.add_string("tokenizer.ggml.model", "bert");
    w.add_string("tokenizer.ggml.pre", "default");
    w.add_str_array("tokenizer.ggml.tokens", &phantom);
    w.add_i32_array("tokenizer.ggml.token_type", &types);
    w.add_u32("tokenizer.ggml.token_type_count", u32::try_from(n_types).unwrap_or(u32::MAX));
    for (key, id) in ids {
        if let Some(id) = id {
            w.add_u32(format!("tokenizer.ggml.{key}_token_id"), id);
        }
    }
    let json = serde_json::to_string(tok)
        .map_err(|e| HfError::Tokenizer(format!("cannot re-serialize tokenizer.json: {e}")))?;
    w.add_string("tokenizer.huggingface.json", json);
    Ok(())
}
