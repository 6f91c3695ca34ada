//! Pruning (`slm prune`): remove weights a model does not need, then measure what it cost.
//!
//! ```text
//!  GGUF (any type) ─► TensorSet (f32) ─┬─ unstructured / N:M: zero the lowest-scoring weights of every row
//!  calibration text ─► calibrate ──────┤   (magnitude |W|, or Wanda |W|·‖X‖₂)
//!    (CalibStats: Σx² per column,      └─ structured: drop FFN channels, KV groups, blocks
//!     block input/output cosines)              ─► smaller dense model
//!  ─► F32 / F16 GGUF (same names and keys, llama.cpp loads it), optionally re-quantized
//!  ─► report: params, non-zeros, size, PPL / KLD vs the source, tok/s, time
//! ```
//!
//! Unstructured and N:M pruning keep every tensor's shape, so the output is a drop-in
//! replacement (zeros are stored, not skipped: the file and the speed only shrink with
//! structured pruning). Calibration statistics come from one pass of the *unpruned* model
//! (the Wanda reference prunes block by block on the pruned model's activations; one pass
//! keeps the cost at a single forward over the calibration text).

mod calib;
mod error;
mod masks;
mod report;
mod scores;
mod structured;
mod tensors;

pub use calib::{calibrate, CalibStats};
pub use error::PruneError;
pub use masks::{apply, pruned_per_row, Pattern};
pub use report::{measure_speed, ModelFacts, PruneReport, Speed, Timings};
pub use scores::{weight_scores, Score};
pub use structured::{block_of, prune_structured, top_k_sorted, StructuredSpec, StructuredSummary};
pub use tensors::{FloatType, Tensor, TensorSet};

use slm_format::{GgufFile, GgufWriter};
use slm_model::quantize::{quantize_gguf, FileType, QuantizeOptions};
use slm_model::Site;

/// The block linear weights that unstructured pruning touches (embeddings, norms and the output
/// head are kept, as in the Wanda paper).
pub const PRUNABLE: [&str; 7] = [
    "attn_q.weight",
    "attn_k.weight",
    "attn_v.weight",
    "attn_output.weight",
    "ffn_gate.weight",
    "ffn_up.weight",
    "ffn_down.weight",
];

/// The activation that enters weight `name` (within `blk.N.`).
pub fn site_of(name: &str) -> Option<Site> {
    Site::ALL
        .into_iter()
        .find(|s| s.weight_names().contains(&name))
}

/// Sparsity reached in one tensor.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TensorSparsity {
    /// GGUF name.
    pub name: String,
    /// Weights.
    pub n_params: u64,
    /// Weights set to zero by pruning.
    pub n_pruned: u64,
}

/// Zeroes weights of every block linear as `pattern` says, ranked by `score`. Wanda needs
/// `stats` from [`calibrate`]. Returns per-tensor counts.
pub fn prune_unstructured(
    set: &mut TensorSet,
    stats: Option<&CalibStats>,
    score: Score,
    pattern: Pattern,
) -> Result<Vec<TensorSparsity>, PruneError> {
    let mut out = Vec::new();
    for t in &mut set.tensors {
        let Some((layer, rest)) = block_of(&t.name) else {
            continue;
        };
        if !PRUNABLE.contains(&rest.as_str()) || t.dims.len() != 2 {
            continue;
        }
        let norms = match (score, stats, site_of(&rest)) {
            (Score::Wanda, Some(st), Some(site)) => Some(st.col_norms(layer, site)?),
            (Score::Wanda, None, _) => return Err(PruneError::MissingStats(t.name.clone())),
            _ => None,
        };
        let s = weight_scores(t, score, norms.as_deref())?;
        let cols = t.cols();
        let n_pruned = apply(&mut t.data, &s, cols, pattern)?;
        out.push(TensorSparsity {
            name: t.name.clone(),
            n_params: t.data.len() as u64,
            n_pruned,
        });
    }
    if out.is_empty() {
        return Err(PruneError::Tensors(
            "no block linear weights (blk.N.attn_q.weight, ...) found".into(),
        ));
    }
    Ok(out)
}

/// Encodes a pruned set: F32 / F16, or re-quantized with `quant` (slm quantize's presets and
/// rules; exact zeros survive F32/F16 but not every block format).
pub fn encode(
    set: &TensorSet,
    dtype: FloatType,
    quant: Option<FileType>,
    n_threads: usize,
) -> Result<GgufWriter, PruneError> {
    let floats = set.to_writer(dtype)?;
    let Some(ftype) = quant else {
        return Ok(floats);
    };
    let file = GgufFile::from_bytes(floats.to_bytes()?)?;
    drop(floats);
    let opts = QuantizeOptions::preset(ftype, n_threads);
    Ok(quantize_gguf(&file, &opts, &mut |_, _, _| {})?.0)
}
