//! Applying scores: per-row unstructured sparsity and N:M semi-structured patterns (2:4 keeps
//! 2 of every 4 consecutive weights of a row, the pattern sparse tensor cores accelerate).

use super::error::PruneError;

/// Which weights of a row are removed.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Pattern {
    /// Remove `round(sparsity · cols)` weights of every row.
    Unstructured {
        /// Fraction removed, in [0, 1).
        sparsity: f32,
    },
    /// Keep `n` of every `m` consecutive weights of a row.
    NofM {
        /// Kept per group.
        n: usize,
        /// Group length.
        m: usize,
    },
}

impl Pattern {
    /// Parses `N:M` (e.g. `2:4`).
    pub fn parse_n_of_m(text: &str) -> Result<Pattern, PruneError> {
        let bad = || {
            PruneError::Request(format!(
                "pattern '{text}' must look like N:M with 0 < N < M, e.g. 2:4"
            ))
        };
        let (n, m) = text.split_once(':').ok_or_else(bad)?;
        let n: usize = n.trim().parse().map_err(|_| bad())?;
        let m: usize = m.trim().parse().map_err(|_| bad())?;
        if n == 0 || n >= m || m > 1024 {
            return Err(bad());
        }
        Ok(Pattern::NofM { n, m })
    }

    /// An unstructured pattern, checked.
    pub fn unstructured(sparsity: f32) -> Result<Pattern, PruneError> {
        if !(0.0..1.0).contains(&sparsity) {
            return Err(PruneError::Request(format!(
                "sparsity {sparsity} must be in [0, 1), e.g. 0.5 for 50%"
            )));
        }
        Ok(Pattern::Unstructured { sparsity })
    }

    /// Fraction of weights removed.
    pub fn sparsity(&self) -> f32 {
        match *self {
            Pattern::Unstructured { sparsity } => sparsity,
            Pattern::NofM { n, m } => 1.0 - n as f32 / m as f32,
        }
    }
}

/// Weights removed from a row of `cols` at `sparsity`.
pub fn pruned_per_row(cols: usize, sparsity: f32) -> usize {
    ((cols as f64 * f64::from(sparsity)).round() as usize).min(cols)
}

/// Indices of the `k` lowest scores (ties broken by index, so the choice is deterministic).
fn lowest(scores: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    if k == 0 {
        return Vec::new();
    }
    let key = |i: &usize| (scores.get(*i).copied().unwrap_or(0.0), *i);
    idx.select_nth_unstable_by(
        k.saturating_sub(1).min(scores.len().saturating_sub(1)),
        |a, b| {
            let (sa, ia) = key(a);
            let (sb, ib) = key(b);
            sa.total_cmp(&sb).then(ia.cmp(&ib))
        },
    );
    idx.truncate(k);
    idx
}

/// Zeroes the weights `pattern` removes, judged by `scores` (same layout as `data`, rows of
/// `cols`). Returns how many weights were zeroed.
pub fn apply(
    data: &mut [f32],
    scores: &[f32],
    cols: usize,
    pattern: Pattern,
) -> Result<u64, PruneError> {
    if cols == 0 || data.len() != scores.len() || data.len() % cols != 0 {
        return Err(PruneError::Tensors(format!(
            "{} weights with {} scores do not form rows of {cols}",
            data.len(),
            scores.len()
        )));
    }
    let mut removed = 0u64;
    match pattern {
        Pattern::Unstructured { sparsity } => {
            let k = pruned_per_row(cols, sparsity);
            for (row, s) in data.chunks_mut(cols).zip(scores.chunks(cols)) {
                for j in lowest(s, k) {
                    row[j] = 0.0;
                    removed += 1;
                }
            }
        }
        Pattern::NofM { n, m } => {
            if cols % m != 0 {
                return Err(PruneError::Request(format!(
                    "rows of {cols} weights cannot be split into groups of {m}"
                )));
            }
            for (group, s) in data.chunks_mut(m).zip(scores.chunks(m)) {
                for j in lowest(s, m - n) {
                    group[j] = 0.0;
                    removed += 1;
                }
            }
        }
    }
    Ok(removed)
}
