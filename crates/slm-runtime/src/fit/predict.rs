//! Memory and speed predictions from a [`Footprint`] and a [`DeviceProfile`].

use super::footprint::Footprint;
use super::profile::DeviceProfile;
use slm_model::ContextBytes;

/// Tokenizer tables (vocabulary strings, merges, lookup maps) per vocabulary entry, in bytes:
/// peak RSS minus weights, KV cache and buffers was ~2.5 MB above the bare binary for SmolLM2's
/// 49,152-token BPE vocabulary (bench/fit_check.py, docs/BENCHMARKS.md).
const TOKENIZER_BYTES_PER_TOKEN: u64 = 50;
/// Pool jobs per block and forward pass: QKV, attention, output projection, gate/up, down.
const JOBS_PER_LAYER: f64 = 5.0;

/// Whether the model can run.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Peak memory is within the device's budget.
    Fits {
        /// Bytes left over.
        headroom_bytes: u64,
    },
    /// Needs more memory than the device gives a process.
    TooLarge {
        /// Peak bytes needed.
        need_bytes: u64,
        /// Bytes available.
        have_bytes: u64,
    },
}

/// Predicted costs of running a model on a device.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Prediction {
    /// Bytes to download (the GGUF file).
    pub download_bytes: u64,
    /// Weights resident once the model has run (memory-mapped tensor data).
    pub weights_bytes: u64,
    /// KV cache with the context full.
    pub kv_cache_bytes: u64,
    /// Activation buffers, RoPE table, kernel scratch and logits.
    pub activation_bytes: u64,
    /// The engine itself and the tokenizer's tables.
    pub runtime_bytes: u64,
    /// Sum of the above: peak resident memory.
    pub peak_bytes: u64,
    /// Prompt-processing speed for a prompt of `n_prompt` tokens, tokens/s.
    pub prompt_tps: f64,
    /// Generation speed over `n_gen` tokens after an empty context, tokens/s.
    pub gen_tps: f64,
    /// Context size assumed.
    pub n_ctx: usize,
    /// The answer.
    pub verdict: Verdict,
}

/// Predicts memory at a full context of `n_ctx` and the speed of a `n_prompt`-token prompt and
/// `n_gen` generated tokens (llama-bench's pp/tg tests), in batches of `n_batch`.
pub fn predict(
    fp: &Footprint,
    dev: &DeviceProfile,
    n_ctx: usize,
    n_batch: usize,
    n_prompt: usize,
    n_gen: usize,
) -> Prediction {
    let cfg = &fp.config;
    let ctx = ContextBytes::of(cfg, n_ctx.max(1), n_batch.max(1));
    let runtime = dev.runtime_bytes + TOKENIZER_BYTES_PER_TOKEN * cfg.n_vocab as u64;
    let peak = fp.tensor_bytes + ctx.kv_cache as u64 + (ctx.activations + ctx.logits) as u64 + runtime;
    let budget = dev.memory_bytes.min(dev.address_space_bytes.unwrap_or(u64::MAX));
    let verdict = if peak <= budget {
        Verdict::Fits { headroom_bytes: budget - peak }
    } else {
        Verdict::TooLarge { need_bytes: peak, have_bytes: budget }
    };
    Prediction {
        download_bytes: fp.file_bytes,
        weights_bytes: fp.tensor_bytes,
        kv_cache_bytes: ctx.kv_cache as u64,
        activation_bytes: (ctx.activations + ctx.logits) as u64,
        runtime_bytes: runtime,
        peak_bytes: peak,
        prompt_tps: n_prompt as f64 / prompt_secs(fp, dev, n_prompt.max(1), n_batch.max(1)),
        gen_tps: n_gen as f64 / gen_secs(fp, dev, n_gen.max(1)),
        n_ctx,
        verdict,
    }
}

/// FLOPs of causal attention for tokens at positions `from..to` in every layer (QKᵀ and AV).
fn attention_flops(fp: &Footprint, from: usize, to: usize) -> f64 {
    let cfg = &fp.config;
    let keys: f64 = (from..to).map(|p| (p + 1) as f64).sum();
    cfg.n_layer as f64 * 4.0 * cfg.q_dim() as f64 * keys
}

fn overhead_secs(fp: &Footprint, dev: &DeviceProfile) -> f64 {
    fp.config.n_layer as f64 * JOBS_PER_LAYER * dev.job_overhead_us * 1e-6
}

/// A predicted time in two parts: what the probed kernels take (weights streamed, or prompt
/// multiply-adds), which calibration may scale, and the rest (pool jobs, attention, per-block
/// work, and in a prompt the output head), which it leaves alone.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Split {
    /// Seconds in the per-type kernels.
    pub kernels: f64,
    /// Seconds of everything else.
    pub rest: f64,
}

impl Split {
    /// Both parts, seconds.
    pub fn total(self) -> f64 {
        self.kernels + self.rest
    }
}

/// [`prompt_secs`] in its two parts.
pub(crate) fn prompt_split(fp: &Footprint, dev: &DeviceProfile, n: usize, n_batch: usize) -> Split {
    let blocks = fp.config.n_layer as f64;
    let (mut kernels, mut rest) = (0.0, 0.0);
    let mut pos = 0;
    while pos < n {
        let b = n_batch.max(1).min(n - pos);
        for l in &fp.block_linears {
            kernels += 2.0 * (l.rows * l.cols * b) as f64 / dev.prompt_flops_per_sec(l.dtype);
        }
        rest += attention_flops(fp, pos, pos + b) / (dev.attention_gflops.max(1e-6) * 1e9);
        rest += overhead_secs(fp, dev) + b as f64 * blocks * dev.prompt_block_us * 1e-6;
        pos += b;
    }
    // Only the last position's logits are computed.
    rest += fp.output.bytes as f64 / dev.decode_bytes_per_sec(fp.output.dtype);
    Split { kernels, rest }
}

/// Seconds to process a prompt of `n` tokens from an empty context.
pub(crate) fn prompt_secs(fp: &Footprint, dev: &DeviceProfile, n: usize, n_batch: usize) -> f64 {
    prompt_split(fp, dev, n, n_batch).total()
}

/// Seconds to generate `n` tokens one at a time after `from` positions, in two parts.
pub(crate) fn gen_split(fp: &Footprint, dev: &DeviceProfile, from: usize, n: usize) -> Split {
    let weights: f64 = fp
        .block_linears
        .iter()
        .chain(std::iter::once(&fp.output))
        .map(|l| l.bytes as f64 / dev.decode_bytes_per_sec(l.dtype))
        .sum();
    let attention = attention_flops(fp, from, from + n) / (dev.attention_gflops.max(1e-6) * 1e9);
    let per_token = overhead_secs(fp, dev) + fp.config.n_layer as f64 * dev.gen_block_us * 1e-6;
    Split { kernels: n as f64 * weights, rest: n as f64 * per_token + attention }
}

/// Seconds to generate `n` tokens one at a time from an empty context.
pub(crate) fn gen_secs(fp: &Footprint, dev: &DeviceProfile, n: usize) -> f64 {
    gen_split(fp, dev, 0, n).total()
}

/// The largest candidate (by weight bytes) whose prediction fits, with its prediction.
pub fn best_fit<T: Clone>(candidates: Vec<(T, Prediction)>) -> Option<(T, Prediction)> {
    candidates
        .into_iter()
        .filter(|(_, p)| matches!(p.verdict, Verdict::Fits { .. }))
        .max_by_key(|(_, p)| p.weights_bytes)
}
