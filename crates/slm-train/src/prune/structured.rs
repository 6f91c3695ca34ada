//! Structured pruning: remove whole FFN channels, whole attention KV groups (a KV head with the
//! query heads that share it, so the result is still a valid GQA model) and whole blocks, and
//! write the result as a smaller dense model with matching hyper-parameters.
//!
//! GGUF's Llama layout has one `feed_forward_length` and one head count for all blocks, so the
//! same number of channels / groups is removed in every block; which ones is chosen per block.
//! Importance follows Wanda: a channel's (or head's) input activation norm on calibration text
//! times the norm of the output-projection column it feeds (‖X_c‖₂ · ‖W_down[:, c]‖₂), i.e. the
//! size of its contribution to the residual stream. Blocks are ranked by how little they turn
//! the residual (mean cosine between their input and output, ShortGPT's block influence).

use super::calib::CalibStats;
use super::error::PruneError;
use super::scores::Score;
use super::tensors::{Tensor, TensorSet};
use slm_format::Value;
use slm_model::Site;

/// What to remove.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct StructuredSpec {
    /// FFN channels to keep per block (`None`: keep all).
    pub ffn_keep: Option<usize>,
    /// KV groups (KV heads, each with its query heads) to keep per block (`None`: keep all).
    pub kv_groups_keep: Option<usize>,
    /// Whole blocks to remove.
    pub layers_drop: usize,
}

/// What structured pruning did.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct StructuredSummary {
    /// Original indices of the removed blocks.
    pub layers_dropped: Vec<usize>,
    /// Blocks before → after.
    pub n_layer: (usize, usize),
    /// FFN width before → after.
    pub d_ff: (usize, usize),
    /// Query heads before → after.
    pub n_head: (usize, usize),
    /// KV heads before → after.
    pub n_kv_head: (usize, usize),
}

/// Hyper-parameters structured pruning needs, read from the metadata.
struct Shape {
    n_layer: usize,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    d_ff: usize,
}

fn shape_of(set: &TensorSet) -> Result<Shape, PruneError> {
    let get = |k: &str| {
        set.hparam(k)
            .map(|v| v as usize)
            .ok_or_else(|| PruneError::Tensors(format!("metadata key {}.{k} is missing", set.arch)))
    };
    let n_head = get("attention.head_count")?;
    let n_kv_head = set
        .hparam("attention.head_count_kv")
        .map(|v| v as usize)
        .unwrap_or(n_head);
    let d_model = get("embedding_length")?;
    let head_dim = set
        .hparam("attention.key_length")
        .map(|v| v as usize)
        .unwrap_or(d_model / n_head.max(1));
    let s = Shape {
        n_layer: get("block_count")?,
        n_head,
        n_kv_head,
        head_dim,
        d_ff: get("feed_forward_length")?,
    };
    if s.n_head == 0 || s.n_kv_head == 0 || s.n_head % s.n_kv_head != 0 || s.head_dim == 0 {
        return Err(PruneError::Tensors(format!(
            "head layout {} / {} KV heads is not valid",
            s.n_head, s.n_kv_head
        )));
    }
    Ok(s)
}

/// Indices of the `keep` largest values, in ascending index order (ties go to the lower index).
pub fn top_k_sorted(values: &[f64], keep: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    idx.truncate(keep);
    idx.sort_unstable();
    idx
}

/// ‖W[:, j]‖₂ for every input column j of `w`.
fn column_norms(w: &Tensor) -> Vec<f64> {
    let cols = w.cols().max(1);
    let mut out = vec![0.0f64; cols];
    for row in w.data.chunks(cols) {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += f64::from(v) * f64::from(v);
        }
    }
    out.iter().map(|v| v.sqrt()).collect()
}

/// Per input column of `w` (read by activation `site` of `layer`): ‖X_j‖₂ · ‖W[:, j]‖₂, or just
/// ‖W[:, j]‖₂ for [`Score::Magnitude`].
fn contribution(
    set: &TensorSet,
    stats: Option<&CalibStats>,
    score: Score,
    layer: usize,
    weight: &str,
    site: Site,
) -> Result<Vec<f64>, PruneError> {
    let w = set.get(&format!("blk.{layer}.{weight}"))?;
    let mut c = column_norms(w);
    if score == Score::Wanda {
        let stats =
            stats.ok_or_else(|| PruneError::MissingStats(format!("block {layer} at {site:?}")))?;
        let norms = stats.col_norms(layer, site)?;
        if norms.len() != c.len() {
            return Err(PruneError::Tensors(format!(
                "{} columns of {weight} vs {} calibrated",
                c.len(),
                norms.len()
            )));
        }
        for (v, n) in c.iter_mut().zip(norms) {
            *v *= f64::from(n);
        }
    }
    Ok(c)
}

/// Keeps the listed rows of a matrix (or entries of a vector).
fn keep_rows(t: &mut Tensor, rows: &[usize]) -> Result<(), PruneError> {
    let cols = if t.dims.len() == 1 { 1 } else { t.cols() };
    let mut data = Vec::with_capacity(rows.len() * cols);
    for &r in rows {
        let row = t
            .data
            .get(r * cols..(r + 1) * cols)
            .ok_or_else(|| PruneError::Tensors(format!("{} has no row {r}", t.name)))?;
        data.extend_from_slice(row);
    }
    t.data = data;
    let axis = if t.dims.len() == 1 { 0 } else { 1 };
    if let Some(d) = t.dims.get_mut(axis) {
        *d = rows.len() as u64;
    }
    Ok(())
}

/// Keeps the listed input columns of a matrix.
fn keep_cols(t: &mut Tensor, cols: &[usize]) -> Result<(), PruneError> {
    let n = t.cols().max(1);
    let mut data = Vec::with_capacity(t.rows() * cols.len());
    for row in t.data.chunks(n) {
        for &c in cols {
            data.push(
                *row.get(c)
                    .ok_or_else(|| PruneError::Tensors(format!("{} has no column {c}", t.name)))?,
            );
        }
    }
    t.data = data;
    if let Some(d) = t.dims.first_mut() {
        *d = cols.len() as u64;
    }
    Ok(())
}

/// Removes FFN channels, KV groups and blocks as `spec` asks, in place.
pub fn prune_structured(
    set: &mut TensorSet,
    stats: Option<&CalibStats>,
    score: Score,
    spec: &StructuredSpec,
) -> Result<StructuredSummary, PruneError> {
    let s = shape_of(set)?;
    let ffn_keep = spec.ffn_keep.unwrap_or(s.d_ff);
    let groups_keep = spec.kv_groups_keep.unwrap_or(s.n_kv_head);
    if ffn_keep == 0 || ffn_keep > s.d_ff {
        return Err(PruneError::Request(format!(
            "--ffn-keep {ffn_keep} must be in 1..={}",
            s.d_ff
        )));
    }
    if groups_keep == 0 || groups_keep > s.n_kv_head {
        return Err(PruneError::Request(format!(
            "--kv-groups-keep {groups_keep} must be in 1..={}",
            s.n_kv_head
        )));
    }
    if spec.layers_drop >= s.n_layer {
        return Err(PruneError::Request(format!(
            "cannot drop {} of {} blocks",
            spec.layers_drop, s.n_layer
        )));
    }
    let dropped = choose_blocks(stats, s.n_layer, spec.layers_drop)?;
    let q_per_kv = s.n_head / s.n_kv_head;
    for layer in (0..s.n_layer).filter(|l| !dropped.contains(l)) {
        if ffn_keep < s.d_ff {
            let imp = contribution(set, stats, score, layer, "ffn_down.weight", Site::FfnDownIn)?;
            let keep = top_k_sorted(&imp, ffn_keep);
            for name in ["ffn_gate.weight", "ffn_up.weight"] {
                keep_rows(set.get_mut(&format!("blk.{layer}.{name}"))?, &keep)?;
            }
            keep_cols(set.get_mut(&format!("blk.{layer}.ffn_down.weight"))?, &keep)?;
        }
        if groups_keep < s.n_kv_head {
            let cols = contribution(
                set,
                stats,
                score,
                layer,
                "attn_output.weight",
                Site::AttnOutIn,
            )?;
            let group_width = q_per_kv * s.head_dim;
            let imp: Vec<f64> = cols
                .chunks(group_width.max(1))
                .map(|g| g.iter().sum())
                .collect();
            let groups = top_k_sorted(&imp, groups_keep);
            let q_rows: Vec<usize> = groups
                .iter()
                .flat_map(|g| g * group_width..(g + 1) * group_width)
                .collect();
            let kv_rows: Vec<usize> = groups
                .iter()
                .flat_map(|g| g * s.head_dim..(g + 1) * s.head_dim)
                .collect();
            keep_rows(set.get_mut(&format!("blk.{layer}.attn_q.weight"))?, &q_rows)?;
            keep_cols(
                set.get_mut(&format!("blk.{layer}.attn_output.weight"))?,
                &q_rows,
            )?;
            for name in ["attn_k.weight", "attn_v.weight"] {
                keep_rows(set.get_mut(&format!("blk.{layer}.{name}"))?, &kv_rows)?;
            }
            // Qwen2-style Q/K/V biases follow their rows.
            for (name, rows) in [
                ("attn_q.bias", &q_rows),
                ("attn_k.bias", &kv_rows),
                ("attn_v.bias", &kv_rows),
            ] {
                if let Ok(t) = set.get_mut(&format!("blk.{layer}.{name}")) {
                    keep_rows(t, rows)?;
                }
            }
        }
    }
    renumber_blocks(set, &dropped);
    let n_layer = s.n_layer - dropped.len();
    let n_kv_head = groups_keep;
    let n_head = groups_keep * q_per_kv;
    let arch = set.arch.clone();
    let u32_of = |v: usize| Value::U32(v as u32);
    set.set_meta(&format!("{arch}.block_count"), u32_of(n_layer));
    set.set_meta(&format!("{arch}.feed_forward_length"), u32_of(ffn_keep));
    set.set_meta(&format!("{arch}.attention.head_count"), u32_of(n_head));
    set.set_meta(
        &format!("{arch}.attention.head_count_kv"),
        u32_of(n_kv_head),
    );
    // With fewer heads, embedding_length / head_count is no longer the head width: say it.
    set.set_meta(&format!("{arch}.attention.key_length"), u32_of(s.head_dim));
    set.set_meta(
        &format!("{arch}.attention.value_length"),
        u32_of(s.head_dim),
    );
    Ok(StructuredSummary {
        layers_dropped: dropped,
        n_layer: (s.n_layer, n_layer),
        d_ff: (s.d_ff, ffn_keep),
        n_head: (s.n_head, n_head),
        n_kv_head: (s.n_kv_head, n_kv_head),
    })
}

/// The `n` blocks whose output is most similar to their input (never the last block, whose
/// similarity is not measured).
fn choose_blocks(
    stats: Option<&CalibStats>,
    n_layer: usize,
    n: usize,
) -> Result<Vec<usize>, PruneError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let stats = stats
        .ok_or_else(|| PruneError::MissingStats("block similarity (dropping blocks)".into()))?;
    let cos: Vec<f64> = (0..n_layer)
        .map(|l| stats.block_cosine(l).unwrap_or(f64::NEG_INFINITY))
        .collect();
    let measured = cos.iter().filter(|c| c.is_finite()).count();
    if measured < n {
        return Err(PruneError::Request(format!(
            "only {measured} blocks can be ranked for dropping (the last block never is); drop fewer"
        )));
    }
    Ok(top_k_sorted(&cos, n))
}

/// Drops the tensors of `dropped` blocks and renames the rest `blk.0..`.
fn renumber_blocks(set: &mut TensorSet, dropped: &[usize]) {
    set.tensors
        .retain(|t| block_of(&t.name).is_none_or(|(l, _)| !dropped.contains(&l)));
    for t in &mut set.tensors {
        if let Some((l, rest)) = block_of(&t.name) {
            let new = l - dropped.iter().filter(|&&d| d < l).count();
            t.name = format!("blk.{new}.{rest}");
        }
    }
}

/// `blk.N.rest` → `(N, rest)`.
pub fn block_of(name: &str) -> Option<(usize, String)> {
    let rest = name.strip_prefix("blk.")?;
    let (n, rest) = rest.split_once('.')?;
    Some((n.parse().ok()?, rest.to_string()))
}
