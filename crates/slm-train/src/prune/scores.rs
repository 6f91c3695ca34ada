//! Importance scores of single weights: magnitude |W_ij|, or Wanda's |W_ij| · ‖X_j‖₂ (Sun et al.
//! 2023, "A Simple and Effective Pruning Approach for Large Language Models"), where ‖X_j‖₂ is
//! the norm of input column j over the calibration tokens. Scores are compared within one
//! output row, so every row keeps the same share of its weights.

use super::error::PruneError;
use super::tensors::Tensor;

/// How a weight's importance is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Score {
    /// |W_ij|: needs no calibration.
    Magnitude,
    /// |W_ij| · ‖X_j‖₂ over calibration tokens.
    Wanda,
}

impl Score {
    /// Parses `magnitude` or `wanda`.
    pub fn parse(text: &str) -> Result<Score, PruneError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "magnitude" | "mag" => Ok(Score::Magnitude),
            "wanda" => Ok(Score::Wanda),
            other => Err(PruneError::Request(format!(
                "unknown method '{other}'; use magnitude or wanda"
            ))),
        }
    }

    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Score::Magnitude => "magnitude",
            Score::Wanda => "wanda",
        }
    }
}

/// Scores of every weight of `w` (same layout as `w.data`). `col_norms` (‖X_j‖₂ per input
/// column) is required for [`Score::Wanda`] and ignored for [`Score::Magnitude`].
pub fn weight_scores(
    w: &Tensor,
    score: Score,
    col_norms: Option<&[f32]>,
) -> Result<Vec<f32>, PruneError> {
    match score {
        Score::Magnitude => Ok(w.data.iter().map(|v| v.abs()).collect()),
        Score::Wanda => {
            let norms = col_norms.ok_or_else(|| PruneError::MissingStats(w.name.clone()))?;
            let cols = w.cols();
            if norms.len() != cols {
                return Err(PruneError::Tensors(format!(
                    "{} has {cols} input columns but the calibration saw {}; calibrate with the same model",
                    w.name,
                    norms.len()
                )));
            }
            Ok(w.data
                .chunks(cols.max(1))
                .flat_map(|row| row.iter().zip(norms).map(|(v, n)| v.abs() * n))
                .collect())
        }
    }
}
