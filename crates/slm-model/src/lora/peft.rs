//! Hugging Face PEFT adapters: a directory with `adapter_model.safetensors` and
//! `adapter_config.json`.
//!
//! Tensor names: `base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight` (`[r, in]`)
//! and `….lora_B.weight` (`[out, r]`), PyTorch row-major, so the bytes are our `A` and `B`.
//! For the `llama` architecture the GGUF converter permutes Q/K output rows (see
//! [`crate::hf::permute_qk`]); only `B` carries output rows, so PEFT ⇄ GGUF permutes `B` of Q and
//! K, exactly as llama.cpp's `convert_lora_to_gguf.py` does. Config fields read: `r`,
//! `lora_alpha`, `use_rslora` (folded into alpha), `rank_pattern` (per-pair rank, from the
//! tensors); refused: DoRA, `fan_in_fan_out`, `alpha_pattern`, non-LORA `peft_type`.

use super::gguf::parse_layer;
use super::{LoraAdapter, LoraError, LoraPair, LoraTarget, MAX_RANK};
use crate::config::ModelConfig;
use crate::hf::{permute_qk, unpermute_qk};
use slm_format::safetensors::{Dtype, SafetensorsFile, SafetensorsWriter, TensorEntry};
use std::collections::BTreeMap;
use std::path::Path;

/// The weights file of a PEFT adapter directory.
pub const PEFT_WEIGHTS: &str = "adapter_model.safetensors";
/// The config file of a PEFT adapter directory.
pub const PEFT_CONFIG: &str = "adapter_config.json";
/// Largest `adapter_config.json` read (real ones are ~1 KiB).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

impl LoraAdapter {
    /// Writes a PEFT adapter directory (created if needed; both files atomic) for a base model of
    /// `cfg` named `base_model_name` (a Hub id or path, stored as `base_model_name_or_path`).
    pub fn save_peft(&self, dir: &Path, base_model_name: &str, cfg: &ModelConfig) -> Result<(), LoraError> {
        self.check_against(cfg)?;
        let alpha = self.peft_alpha()?;
        std::fs::create_dir_all(dir).map_err(|e| LoraError::io(dir, e))?;
        let mut w = SafetensorsWriter::new();
        w.add_metadata("format", "pt");
        for (&(layer, target), p) in &self.pairs {
            let base = format!("base_model.model.model.layers.{layer}.{}", target.peft_module());
            let b = qk_rows(&p.b, target, cfg, p.rank, false)?;
            w.add_f32(format!("{base}.lora_A.weight"), Dtype::F32, &[p.rank as u64, p.n_in as u64], &p.a)?;
            w.add_f32(format!("{base}.lora_B.weight"), Dtype::F32, &[p.n_out as u64, p.rank as u64], &b)?;
        }
        w.write_file(&dir.join(PEFT_WEIGHTS))?;

        let targets: std::collections::BTreeSet<LoraTarget> = self.pairs.keys().map(|k| k.1).collect();
        let modules: Vec<&str> = targets.iter().filter_map(|t| t.peft_module().rsplit('.').next()).collect();
        let mut rank_pattern = serde_json::Map::new();
        for (&(layer, target), p) in &self.pairs {
            if p.rank != self.rank {
                let key = format!("model.layers.{layer}.{}", target.peft_module());
                rank_pattern.insert(key, p.rank.into());
            }
        }
        let config = serde_json::json!({
            "alpha_pattern": {},
            "base_model_name_or_path": base_model_name,
            "bias": "none",
            "fan_in_fan_out": false,
            "inference_mode": true,
            "lora_alpha": alpha,
            "lora_dropout": 0.0,
            "modules_to_save": null,
            "peft_type": "LORA",
            "r": self.rank,
            "rank_pattern": rank_pattern,
            "target_modules": modules,
            "task_type": "CAUSAL_LM",
            "use_dora": false,
            "use_rslora": false,
        });
        let text = serde_json::to_string_pretty(&config)
            .map_err(|e| LoraError::Invalid(format!("cannot encode adapter_config.json: {e}")))?;
        let path = dir.join(PEFT_CONFIG);
        slm_format::atomic::write_bytes_atomic(&path, text.as_bytes()).map_err(|e| LoraError::io(&path, e))?;
        Ok(())
    }

    /// PEFT scales by `lora_alpha / r` always; our `alpha = 0` means "no scaling" (llama.cpp),
    /// which PEFT expresses as `lora_alpha = r` (one rank only).
    fn peft_alpha(&self) -> Result<f32, LoraError> {
        if self.alpha != 0.0 {
            return Ok(self.alpha);
        }
        if self.pairs.values().any(|p| p.rank != self.rank) {
            return Err(LoraError::Invalid(
                "alpha 0 (unscaled) with pairs of different ranks has no PEFT equivalent".into(),
            ));
        }
        Ok(self.rank as f32)
    }

    /// Reads a PEFT adapter directory for a base model of `cfg` (needed to reorder Q/K rows of
    /// `llama` models into GGUF order). The result is checked against `cfg`.
    pub fn load_peft(dir: &Path, cfg: &ModelConfig) -> Result<LoraAdapter, LoraError> {
        let config = read_config(dir)?;
        let weights = dir.join(PEFT_WEIGHTS);
        if !weights.is_file() && dir.join("adapter_model.bin").is_file() {
            return Err(LoraError::PeftConfig {
                path: weights,
                reason: "only adapter_model.bin (pickle) is present; save the adapter with safe_serialization=True"
                    .into(),
            });
        }
        let st = SafetensorsFile::open(&weights)?;
        let mut halves: BTreeMap<(usize, LoraTarget), [Option<&TensorEntry>; 2]> = BTreeMap::new();
        for t in st.tensors() {
            let (key, is_b) = parse_peft_name(&t.name)?;
            let slot = &mut halves.entry(key).or_default()[is_b as usize];
            if slot.is_some() {
                return Err(LoraError::Duplicate { name: t.name.clone() });
            }
            *slot = Some(t);
        }
        let mut adapter = LoraAdapter::new(cfg.arch.gguf_name(), config.r, config.alpha);
        for ((layer, target), pair) in halves {
            let name = target.weight_name(layer);
            let (a, b) = match pair {
                [Some(a), Some(b)] => (a, b),
                [None, _] => return Err(LoraError::MissingHalf { name, missing: "lora_A" }),
                [_, None] => return Err(LoraError::MissingHalf { name, missing: "lora_B" }),
            };
            let p = read_pair(&st, a, b, target, layer, cfg)?;
            adapter.rank = adapter.rank.max(p.rank);
            adapter.pairs.insert((layer, target), p);
        }
        if adapter.pairs.is_empty() {
            return Err(LoraError::Invalid(format!("{} has no LoRA tensors", weights.display())));
        }
        if config.rslora {
            // rsLoRA scales by alpha/√r; as alpha'/r that is alpha' = alpha·√r (one rank only).
            if adapter.pairs.values().any(|p| p.rank != config.r) {
                return Err(LoraError::PeftConfig {
                    path: dir.join(PEFT_CONFIG),
                    reason: "use_rslora with rank_pattern is not supported".into(),
                });
            }
            adapter.alpha = config.alpha * (config.r as f32).sqrt();
        }
        adapter.check_against(cfg)?;
        Ok(adapter)
    }
}

/// The fields of `adapter_config.json` that change the numbers.
struct PeftConfig {
    r: usize,
    alpha: f32,
    rslora: bool,
}

fn read_config(dir: &Path) -> Result<PeftConfig, LoraError> {
    let path = dir.join(PEFT_CONFIG);
    let bad = |reason: String| LoraError::PeftConfig { path: path.clone(), reason };
    let len = std::fs::metadata(&path).map_err(|e| LoraError::io(&path, e))?.len();
    if len > MAX_CONFIG_BYTES {
        return Err(bad(format!("{len} bytes is too large for an adapter config")));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| LoraError::io(&path, e))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let obj = v.as_object().ok_or_else(|| bad("not a JSON object".into()))?;
    let peft_type = obj.get("peft_type").and_then(|t| t.as_str()).unwrap_or("LORA");
    if peft_type != "LORA" {
        return Err(bad(format!("peft_type is '{peft_type}'; only LORA adapters are supported")));
    }
    let flag = |key: &str| obj.get(key).and_then(|b| b.as_bool()).unwrap_or(false);
    for key in ["use_dora", "fan_in_fan_out"] {
        if flag(key) {
            return Err(bad(format!("{key} = true is not supported")));
        }
    }
    if obj.get("alpha_pattern").and_then(|p| p.as_object()).is_some_and(|p| !p.is_empty()) {
        return Err(bad("alpha_pattern (per-module alpha) is not supported".into()));
    }
    // PEFT's defaults: r = 8, lora_alpha = 8.
    let r = match obj.get("r") {
        None => 8,
        Some(r) => {
            r.as_u64().and_then(|r| usize::try_from(r).ok()).ok_or_else(|| bad(format!("r = {r} is not a count")))?
        }
    };
    if r == 0 || r > MAX_RANK {
        return Err(bad(format!("r = {r} is outside 1..={MAX_RANK}")));
    }
    let alpha = match obj.get("lora_alpha") {
        None => 8.0,
        Some(a) => a.as_f64().ok_or_else(|| bad(format!("lora_alpha = {a} is not a number")))? as f32,
    };
    if !alpha.is_finite() || alpha == 0.0 {
        return Err(bad(format!("lora_alpha = {alpha} must be finite and non-zero")));
    }
    Ok(PeftConfig { r, alpha, rslora: flag("use_rslora") })
}

/// `[base_model.model.]model.layers.N.<module>.lora_{A,B}.weight` → `((N, target), is_b)`.
fn parse_peft_name(name: &str) -> Result<((usize, LoraTarget), bool), LoraError> {
    let unknown = |reason: &str| LoraError::UnknownTensor { name: name.into(), reason: reason.into() };
    let (base, is_b) = if let Some(b) = name.strip_suffix(".lora_A.weight") {
        (b, false)
    } else if let Some(b) = name.strip_suffix(".lora_B.weight") {
        (b, true)
    } else {
        return Err(unknown(
            "not a lora_A/lora_B weight (modules_to_save, embeddings and DoRA magnitudes are not supported)",
        ));
    };
    let base = base.strip_prefix("base_model.model.").unwrap_or(base);
    let rest = base.strip_prefix("model.layers.").ok_or_else(|| unknown("not inside model.layers"))?;
    let (n, module) = rest.split_once('.').ok_or_else(|| unknown("no layer number"))?;
    let layer = parse_layer(n).ok_or_else(|| unknown("the layer number is not a small integer"))?;
    let target =
        LoraTarget::ALL.into_iter().find(|t| t.peft_module() == module).ok_or_else(|| unknown("unknown module"))?;
    Ok(((layer, target), is_b))
}

fn read_pair(
    st: &SafetensorsFile,
    a: &TensorEntry,
    b: &TensorEntry,
    target: LoraTarget,
    layer: usize,
    cfg: &ModelConfig,
) -> Result<LoraPair, LoraError> {
    if layer >= cfg.n_layer {
        return Err(LoraError::LayerOutOfRange { layer, n_layer: cfg.n_layer });
    }
    let (n_in, n_out) = target.dims(cfg);
    let rank = match a.shape.as_slice() {
        [r, i] if *i == n_in as u64 && (1..=MAX_RANK as u64).contains(r) => *r,
        _ => {
            return Err(shape(
                a,
                vec![0, n_in as u64],
                " ([r, in]; r in 1..=65536); is this adapter for another base model?",
            ))
        }
    };
    if b.shape.as_slice() != [n_out as u64, rank] {
        return Err(shape(b, vec![n_out as u64, rank], " ([out, r]); is this adapter for another base model?"));
    }
    let rank = rank as usize;
    let b_values = qk_rows(&st.tensor_f32(b)?, target, cfg, rank, true)?;
    Ok(LoraPair { n_in, n_out, rank, a: st.tensor_f32(a)?, b: b_values })
}

fn shape(t: &TensorEntry, expected: Vec<u64>, hint: &'static str) -> LoraError {
    LoraError::Shape { name: t.name.clone(), expected, found: t.shape.clone(), hint }
}

/// Reorders the output rows of a Q/K `B` (`[n_out][rank]`) between HF and GGUF `llama` order.
fn qk_rows(
    b: &[f32],
    target: LoraTarget,
    cfg: &ModelConfig,
    rank: usize,
    to_gguf: bool,
) -> Result<Vec<f32>, LoraError> {
    let heads = match target {
        LoraTarget::Q if !cfg.arch.rope_neox() => cfg.n_head,
        LoraTarget::K if !cfg.arch.rope_neox() => cfg.n_kv_head,
        _ => return Ok(b.to_vec()),
    };
    let out = if to_gguf { permute_qk(b, heads, rank) } else { unpermute_qk(b, heads, rank) };
    out.ok_or_else(|| LoraError::Invalid(format!("{target} B of {} values does not split into {heads} heads", b.len())))
}
