//! Learning-rate schedules: constant, linear warmup + cosine decay, and warmup-stable-decay
//! (WSD). A schedule gives a factor in `[0, 1]` that multiplies the base learning rate.

use crate::error::TrainError;
use serde::{Deserialize, Serialize};

/// How the learning rate evolves over optimizer steps `0..total`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// Linear warmup over `warmup` steps, then constant.
    Constant {
        /// Warmup steps.
        warmup: u64,
    },
    /// Linear warmup, then cosine decay to `min_ratio × lr` at step `total`.
    Cosine {
        /// Warmup steps.
        warmup: u64,
        /// Step at which the decay ends (the run length).
        total: u64,
        /// Final learning rate as a fraction of the base rate.
        min_ratio: f32,
    },
    /// Warmup-stable-decay: linear warmup, constant, then a linear decay to `min_ratio × lr`
    /// over the last `decay` steps before `total` (a run can be extended before decaying).
    Wsd {
        /// Warmup steps.
        warmup: u64,
        /// Step at which the decay ends.
        total: u64,
        /// Length of the final decay.
        decay: u64,
        /// Final learning rate as a fraction of the base rate.
        min_ratio: f32,
    },
}

impl Schedule {
    /// Checks the fields are consistent.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::Setting(m));
        match *self {
            Schedule::Constant { .. } => Ok(()),
            Schedule::Cosine {
                warmup,
                total,
                min_ratio,
            }
            | Schedule::Wsd {
                warmup,
                total,
                min_ratio,
                ..
            } => {
                if !(0.0..=1.0).contains(&min_ratio) {
                    return bad(format!("schedule min_ratio {min_ratio} must be in [0, 1]"));
                }
                if warmup > total {
                    return bad(format!(
                        "warmup {warmup} is longer than the run ({total} steps)"
                    ));
                }
                if let Schedule::Wsd { decay, .. } = *self {
                    if decay > total - warmup {
                        return bad(format!(
                            "WSD decay {decay} does not fit after warmup {warmup} in {total} steps"
                        ));
                    }
                }
                Ok(())
            }
        }
    }

    /// Learning-rate factor for optimizer step `step` (0-based).
    pub fn factor(&self, step: u64) -> f32 {
        let warm = |warmup: u64| {
            if step < warmup {
                Some((step + 1) as f64 / warmup as f64)
            } else {
                None
            }
        };
        let f = match *self {
            Schedule::Constant { warmup } => warm(warmup).unwrap_or(1.0),
            Schedule::Cosine {
                warmup,
                total,
                min_ratio,
            } => warm(warmup).unwrap_or_else(|| {
                let span = total.saturating_sub(warmup).max(1) as f64;
                let p = ((step - warmup) as f64 / span).min(1.0);
                let min = min_ratio as f64;
                min + (1.0 - min) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
            }),
            Schedule::Wsd {
                warmup,
                total,
                decay,
                min_ratio,
            } => warm(warmup).unwrap_or_else(|| {
                let start = total.saturating_sub(decay);
                if step < start || decay == 0 {
                    1.0
                } else {
                    let p = ((step - start) as f64 / decay as f64).min(1.0);
                    1.0 - (1.0 - min_ratio as f64) * p
                }
            }),
        };
        f as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine_reaches_min() {
        let s = Schedule::Cosine {
            warmup: 10,
            total: 110,
            min_ratio: 0.1,
        };
        s.validate().unwrap();
        assert!((s.factor(0) - 0.1).abs() < 1e-6);
        assert!((s.factor(9) - 1.0).abs() < 1e-6);
        assert!((s.factor(10) - 1.0).abs() < 1e-6);
        assert!((s.factor(60) - 0.55).abs() < 1e-6, "{}", s.factor(60));
        assert!((s.factor(110) - 0.1).abs() < 1e-6);
        assert!((s.factor(500) - 0.1).abs() < 1e-6);
        // Monotone after warmup.
        assert!((10..110).all(|i| s.factor(i + 1) <= s.factor(i)));
    }

    #[test]
    fn wsd_is_flat_then_decays_linearly() {
        let s = Schedule::Wsd {
            warmup: 5,
            total: 100,
            decay: 20,
            min_ratio: 0.0,
        };
        s.validate().unwrap();
        assert!((s.factor(2) - 0.6).abs() < 1e-6);
        assert_eq!(s.factor(50), 1.0);
        assert_eq!(s.factor(79), 1.0);
        assert!((s.factor(90) - 0.5).abs() < 1e-6);
        assert_eq!(s.factor(100), 0.0);
    }

    #[test]
    fn rejects_inconsistent_settings() {
        assert!(Schedule::Cosine {
            warmup: 20,
            total: 10,
            min_ratio: 0.0
        }
        .validate()
        .is_err());
        assert!(Schedule::Wsd {
            warmup: 5,
            total: 10,
            decay: 6,
            min_ratio: 0.0
        }
        .validate()
        .is_err());
        assert!(Schedule::Cosine {
            warmup: 0,
            total: 10,
            min_ratio: 1.5
        }
        .validate()
        .is_err());
    }
}
