//! The metrics log of a run (`metrics.jsonl`): one JSON object per line, training loss every
//! step and validation results at every evaluation, rewritten atomically so a killed run never
//! leaves a torn file. A resumed run drops the lines after its checkpoint and appends.

use crate::error::TrainError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// After an optimizer step.
    Train {
        /// Step just completed.
        step: u64,
        /// Training loss (nats/token) of the step.
        loss: f64,
        /// Learning rate used.
        lr: f32,
        /// Gradient norm before clipping.
        grad_norm: f64,
        /// Training throughput over the step, tokens per second.
        tok_per_s: f64,
    },
    /// After a validation.
    Eval {
        /// Step after which it was measured.
        step: u64,
        /// Validation loss (nats/token).
        loss: f64,
        /// Bits per byte of validation text.
        bits_per_byte: Option<f64>,
    },
}

impl Record {
    /// The step of the record.
    pub fn step(&self) -> u64 {
        match *self {
            Record::Train { step, .. } | Record::Eval { step, .. } => step,
        }
    }
}

/// Reads `path`; a missing file is an empty log. Lines that do not parse (from another tool) are
/// an error rather than silently dropped.
pub fn read(path: &Path) -> Result<Vec<Record>, TrainError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(TrainError::Io {
                path: path.display().to_string(),
                source,
            })
        }
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| {
                TrainError::Data(format!(
                    "{} line {}: {e}; delete the file to start a new log",
                    path.display(),
                    i + 1
                ))
            })
        })
        .collect()
}

/// Writes all `records` to `path` atomically.
pub fn write(path: &Path, records: &[Record]) -> Result<(), TrainError> {
    let mut out = String::new();
    for r in records {
        let line =
            serde_json::to_string(r).map_err(|e| TrainError::Data(format!("metrics: {e}")))?;
        out.push_str(&line);
        out.push('\n');
    }
    slm_format::atomic::write_bytes_atomic(path, out.as_bytes()).map_err(|source| TrainError::Io {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metrics.jsonl");
        assert!(read(&p).unwrap().is_empty());
        let recs = vec![
            Record::Train {
                step: 1,
                loss: 5.5,
                lr: 1e-3,
                grad_norm: 2.0,
                tok_per_s: 100.0,
            },
            Record::Eval {
                step: 1,
                loss: 5.25,
                bits_per_byte: Some(2.5),
            },
            Record::Eval {
                step: 2,
                loss: 5.0,
                bits_per_byte: None,
            },
        ];
        write(&p, &recs).unwrap();
        assert_eq!(read(&p).unwrap(), recs);
        assert_eq!(recs.iter().map(Record::step).max(), Some(2));
        std::fs::write(&p, "not json\n").unwrap();
        assert!(read(&p).unwrap_err().to_string().contains("line 1"));
    }
}
