//! Resolving `-m` to a file (fetching it on first use) and loading model + tokenizer + template.

use crate::progress::BarProgress;
use anyhow::{Context as _, Result};
use slm_format::Residency;
use slm_hub::HubConfig;
use slm_kernels::Pool;
use slm_model::Model;
use slm_runtime::{ChatTemplate, GgufVocab, Tokenizer};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// How model weights are held in memory (`--mmap` sets [`Residency::Mapped`]).
static RESIDENCY: OnceLock<Residency> = OnceLock::new();

/// Sets how every model this process loads holds its weights (once, at start-up).
pub fn set_residency(residency: Residency) {
    let _ = RESIDENCY.set(residency);
}

/// Loads a GGUF model with the process's [`Residency`] (default [`Residency::Auto`]).
pub fn load_model(path: &std::path::Path) -> Result<Model> {
    let residency = RESIDENCY.get().copied().unwrap_or_default();
    Model::load_with(path, residency).with_context(|| format!("loading model {}", path.display()))
}

/// Default context when the user gives none (capped by the model's training context).
pub const DEFAULT_CTX: usize = 4096;

/// Everything needed to generate with one model.
pub struct Loaded {
    /// Where the GGUF file is.
    pub path: PathBuf,
    /// The model.
    pub model: Arc<Model>,
    /// Its tokenizer.
    pub tokenizer: Arc<Tokenizer>,
    /// Its chat template (ChatML when the file has none).
    pub template: ChatTemplate,
}

/// Finds the model file for `-m`: an existing path, or a registry name fetched into the cache.
pub fn model_path(name_or_path: &str) -> Result<PathBuf> {
    let cfg = HubConfig::from_env()?;
    Ok(slm_hub::ensure_model(&cfg, name_or_path, &BarProgress::default())?)
}

/// Loads model, tokenizer and chat template.
pub fn load(name_or_path: &str) -> Result<Loaded> {
    load_with_adapters(name_or_path, &[])
}

/// [`load`], then applies LoRA adapters given as `FILE[:SCALE]` (GGUF adapters or PEFT
/// directories), each checked against the model.
pub fn load_with_adapters(name_or_path: &str, lora: &[String]) -> Result<Loaded> {
    let path = model_path(name_or_path)?;
    let mut model = load_model(&path)?;
    if !lora.is_empty() {
        let adapters = load_adapters(lora, model.config())?;
        model.set_adapters(&adapters).context("applying the LoRA adapters")?;
    }
    let tokenizer = GgufVocab::from_metadata(model.gguf().metadata()).and_then(|v| Tokenizer::from_gguf_vocab(&v))
        .with_context(|| format!("reading the tokenizer of {}", path.display()))?;
    let template = ChatTemplate::for_tokenizer(&tokenizer).context("preparing the chat template")?;
    Ok(Loaded { path, model: Arc::new(model), tokenizer: Arc::new(tokenizer), template })
}

/// Reads `--lora FILE[:SCALE]` adapters for a model of `cfg`, reporting each on stderr.
pub fn load_adapters(lora: &[String], cfg: &slm_model::ModelConfig) -> Result<Vec<(slm_model::lora::LoraAdapter, f32)>> {
    let mut out = Vec::with_capacity(lora.len());
    for arg in lora {
        let (path, scale) = slm_model::lora::parse_lora_arg(arg)?;
        let adapter = slm_model::lora::load_any(&path, cfg)
            .with_context(|| format!("loading the LoRA adapter {}", path.display()))?;
        eprintln!(
            "lora: {} (scale {scale}, rank {}, alpha {}, {} projections, {} parameters)",
            path.display(),
            adapter.rank,
            adapter.alpha,
            adapter.pairs.len(),
            adapter.n_params()
        );
        out.push((adapter, scale));
    }
    Ok(out)
}

/// The thread count: the flag, else the number of cores.
pub fn threads(flag: Option<usize>) -> usize {
    flag.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)).max(1)
}

/// A thread pool of `threads(flag)` workers.
pub fn pool(flag: Option<usize>) -> Result<Arc<Pool>> {
    Ok(Arc::new(Pool::new(threads(flag))?))
}

/// The context size: the flag (at most the model's training context, which also bounds the KV
/// cache's memory), else the default capped at the training context.
pub fn context_size(flag: Option<usize>, model: &Model) -> Result<usize> {
    let train = model.config().n_ctx_train.max(1);
    match flag {
        Some(0) => anyhow::bail!("the context size must be at least 1 token"),
        Some(n) if n > train => {
            anyhow::bail!("context size {n} exceeds the {train} tokens this model was trained for; pass -c {train} or less")
        }
        Some(n) => Ok(n),
        None => Ok(DEFAULT_CTX.min(train)),
    }
}
