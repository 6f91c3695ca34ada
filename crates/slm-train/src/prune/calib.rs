//! Calibration: run the source model on calibration text and record, per block and per input of
//! its linear layers, Σ x² of every activation column (Wanda's ‖X_j‖₂², llama-imatrix's sums),
//! plus how much each block turns its input residual (for choosing which blocks to drop).

use super::error::PruneError;
use slm_kernels::Pool;
use slm_model::{ActivationObserver, Logits, Model, Site};
use std::collections::HashMap;

/// Activation statistics gathered on calibration text.
#[derive(Clone, Debug, Default)]
pub struct CalibStats {
    /// Σ x² per column, per (block, site).
    sums: HashMap<(usize, Site), Vec<f64>>,
    /// Σ over tokens of cos(h_l, h_{l+1}) per block `l` (residual before vs after the block).
    cos_sum: Vec<f64>,
    /// Tokens that contributed to `cos_sum`, per block.
    cos_count: Vec<u64>,
    /// Tokens observed.
    pub n_tokens: u64,
}

impl CalibStats {
    /// ‖X_j‖₂ (square root of Σ x² over calibration tokens) for the inputs of `site` in `layer`.
    pub fn col_norms(&self, layer: usize, site: Site) -> Result<Vec<f32>, PruneError> {
        self.sums
            .get(&(layer, site))
            .map(|s| s.iter().map(|v| v.sqrt() as f32).collect())
            .ok_or_else(|| PruneError::MissingStats(format!("block {layer} at {site:?}")))
    }

    /// Mean cosine similarity between block `layer`'s input and output residual (ShortGPT's
    /// "block influence" is 1 minus this); `None` where it was not measured (the last block,
    /// whose output no later block reads).
    pub fn block_cosine(&self, layer: usize) -> Option<f64> {
        let n = *self.cos_count.get(layer)?;
        (n > 0).then(|| self.cos_sum.get(layer).copied().unwrap_or(0.0) / n as f64)
    }

    /// Records statistics from hand-made activations (tests, or callers with their own forward).
    pub fn add(&mut self, layer: usize, site: Site, x: &[f32], n_tokens: usize) {
        let cols = x.len() / n_tokens.max(1);
        let sums = self
            .sums
            .entry((layer, site))
            .or_insert_with(|| vec![0.0; cols]);
        if sums.len() != cols {
            return;
        }
        for row in x.chunks_exact(cols.max(1)) {
            for (s, &v) in sums.iter_mut().zip(row) {
                *s += f64::from(v) * f64::from(v);
            }
        }
    }
}

/// The observer: Σ x² per column, and the direction of the residual entering each block.
struct Collector<'a> {
    stats: &'a mut CalibStats,
    /// `attn_norm` weight per block: the normalised input divided by it has the residual's direction.
    attn_norm: &'a [Vec<f32>],
    /// Previous block's residual directions, `[T][D]`, and that block's index.
    prev: Option<(usize, Vec<f32>)>,
}

impl ActivationObserver for Collector<'_> {
    fn observe(&mut self, layer: usize, site: Site, x: &[f32], n_tokens: usize) {
        self.stats.add(layer, site, x, n_tokens);
        if site != Site::AttnIn {
            return;
        }
        let Some(g) = self.attn_norm.get(layer) else {
            return;
        };
        let d = g.len();
        if d == 0 || x.len() != d * n_tokens {
            return;
        }
        // RMSNorm only rescales each token, so x / g points where the residual h_l points.
        let dir: Vec<f32> = x
            .chunks_exact(d)
            .flat_map(|row| {
                row.iter()
                    .zip(g)
                    .map(|(v, w)| if *w != 0.0 { v / w } else { 0.0 })
            })
            .collect();
        if let Some((p, prev)) = &self.prev {
            if *p + 1 == layer && prev.len() == dir.len() {
                let l = *p;
                if self.stats.cos_sum.len() <= l {
                    self.stats.cos_sum.resize(l + 1, 0.0);
                    self.stats.cos_count.resize(l + 1, 0);
                }
                for (a, b) in prev.chunks_exact(d).zip(dir.chunks_exact(d)) {
                    self.stats.cos_sum[l] += cosine(a, b);
                    self.stats.cos_count[l] += 1;
                }
            }
        }
        self.prev = Some((layer, dir));
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        ab += f64::from(x) * f64::from(y);
        aa += f64::from(x) * f64::from(x);
        bb += f64::from(y) * f64::from(y);
    }
    if aa > 0.0 && bb > 0.0 {
        ab / (aa.sqrt() * bb.sqrt())
    } else {
        1.0
    }
}

/// Runs `model` over `tokens` in chunks of `n_ctx` (each from an empty cache, the first token set
/// to `bos` when given, at most `max_chunks`), recording [`CalibStats`].
pub fn calibrate(
    model: &Model,
    pool: &Pool,
    tokens: &[u32],
    n_ctx: usize,
    max_chunks: Option<usize>,
    bos: Option<u32>,
) -> Result<CalibStats, PruneError> {
    if n_ctx == 0 {
        return Err(PruneError::Request(
            "the calibration context must be at least 1 token".into(),
        ));
    }
    let n_chunks = (tokens.len() / n_ctx).min(max_chunks.unwrap_or(usize::MAX));
    if n_chunks == 0 {
        return Err(PruneError::Request(format!(
            "the calibration text has {} tokens, fewer than one chunk of {n_ctx}; give a longer text or a smaller context",
            tokens.len()
        )));
    }
    let attn_norm = attn_norms(model)?;
    let mut stats = CalibStats::default();
    // One forward call per chunk, so every block sees all tokens of the chunk at once.
    let mut ctx = model.new_context(n_ctx, n_ctx)?;
    let mut chunk = vec![0u32; n_ctx];
    for c in 0..n_chunks {
        chunk.copy_from_slice(&tokens[c * n_ctx..(c + 1) * n_ctx]);
        if let Some(b) = bos {
            chunk[0] = b;
        }
        ctx.clear();
        let mut obs = Collector {
            stats: &mut stats,
            attn_norm: &attn_norm,
            prev: None,
        };
        model.forward_observed(&mut ctx, pool, &chunk, Logits::Last, Some(&mut obs))?;
        stats.n_tokens += n_ctx as u64;
    }
    Ok(stats)
}

/// Every block's `attn_norm` weight, decoded to f32.
fn attn_norms(model: &Model) -> Result<Vec<Vec<f32>>, PruneError> {
    let file = model.gguf();
    (0..model.config().n_layer)
        .map(|l| {
            let name = format!("blk.{l}.attn_norm.weight");
            let info = file
                .tensor(&name)
                .ok_or_else(|| PruneError::Tensors(format!("tensor {name} is missing")))?;
            let mut out = vec![0f32; info.n_elements as usize];
            slm_kernels::quant::dequantize_row(info.dtype, file.tensor_data(info), &mut out)?;
            Ok(out)
        })
        .collect()
}
