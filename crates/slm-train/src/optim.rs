//! AdamW with decoupled weight decay, and global-norm gradient clipping.
//!
//! The update follows PyTorch's `torch.optim.AdamW` exactly (same order of operations), so a
//! reference run can be compared step by step:
//! `p ← p·(1 − lr·wd)`, `m ← β1·m + (1−β1)·g`, `v ← β2·v + (1−β2)·g²`,
//! `p ← p − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε)`.

use crate::error::TrainError;
use crate::layout::{ParamKind, ParamLayout};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Elements per parallel task in the element-wise loops (fixed so results never depend on the
/// thread count).
const CHUNK: usize = 16_384;

/// AdamW hyper-parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamWConfig {
    /// Base learning rate (the schedule multiplies it).
    pub lr: f32,
    /// First-moment decay β1.
    #[serde(default = "default_beta1")]
    pub beta1: f32,
    /// Second-moment decay β2.
    #[serde(default = "default_beta2")]
    pub beta2: f32,
    /// Denominator ε.
    #[serde(default = "default_eps")]
    pub eps: f32,
    /// Decoupled weight decay.
    #[serde(default)]
    pub weight_decay: f32,
    /// Also decay norm gains and the embedding (off by default: decaying them hurts small models).
    #[serde(default)]
    pub decay_norms_and_embeddings: bool,
}

fn default_beta1() -> f32 {
    0.9
}
fn default_beta2() -> f32 {
    0.95
}
fn default_eps() -> f32 {
    1e-8
}

impl AdamWConfig {
    /// Defaults (β = 0.9/0.95, ε = 1e-8, weight decay 0.1 on matrices) at learning rate `lr`.
    pub fn with_lr(lr: f32) -> AdamWConfig {
        AdamWConfig {
            lr,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
            decay_norms_and_embeddings: false,
        }
    }

    /// Checks every value is in range.
    pub fn validate(&self) -> Result<(), TrainError> {
        let ok = self.lr.is_finite()
            && self.lr > 0.0
            && (0.0..1.0).contains(&self.beta1)
            && (0.0..1.0).contains(&self.beta2)
            && self.eps > 0.0
            && self.weight_decay >= 0.0
            && self.weight_decay.is_finite();
        if ok {
            Ok(())
        } else {
            Err(TrainError::Setting(format!(
                "AdamW settings out of range (need lr > 0, 0 ≤ β < 1, ε > 0, weight decay ≥ 0): {self:?}"
            )))
        }
    }
}

/// AdamW state: both moments (same layout as the parameters) and the step count.
#[derive(Clone, Debug)]
pub struct AdamW {
    /// Hyper-parameters.
    pub cfg: AdamWConfig,
    /// First moments.
    pub m: Vec<f32>,
    /// Second moments.
    pub v: Vec<f32>,
    /// Updates applied so far (bias correction uses `t + 1` for the next one).
    pub t: u64,
}

impl AdamW {
    /// Fresh state for `n` parameters.
    pub fn new(cfg: AdamWConfig, n: usize) -> AdamW {
        AdamW {
            cfg,
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }

    /// Applies one update at learning rate `lr` to the tensors of `layout`.
    pub fn step(
        &mut self,
        layout: &ParamLayout,
        params: &mut [f32],
        grads: &[f32],
        lr: f32,
    ) -> Result<(), TrainError> {
        let c = &self.cfg;
        let groups: Vec<(std::ops::Range<usize>, bool)> = layout
            .tensors
            .iter()
            .map(|spec| (spec.range(), spec.kind == ParamKind::Matrix || c.decay_norms_and_embeddings))
            .collect();
        if params.len() != layout.len() {
            return Err(TrainError::InvalidArgument(format!(
                "AdamW: {} params for a model of {}",
                params.len(),
                layout.len()
            )));
        }
        self.step_groups(&groups, params, grads, lr)
    }

    /// Applies one update to a flat parameter vector split into `(range, decays)` groups (weight
    /// decay only where `decays`); for models without a [`ParamLayout`] (classifier heads).
    pub fn step_groups(
        &mut self,
        groups: &[(std::ops::Range<usize>, bool)],
        params: &mut [f32],
        grads: &[f32],
        lr: f32,
    ) -> Result<(), TrainError> {
        let n = params.len();
        if grads.len() != n || self.m.len() != n || self.v.len() != n {
            return Err(TrainError::InvalidArgument(format!(
                "AdamW: {} params, {} grads, {}/{} moments",
                n,
                grads.len(),
                self.m.len(),
                self.v.len()
            )));
        }
        if let Some((r, _)) = groups.iter().find(|(r, _)| r.start > r.end || r.end > n) {
            return Err(TrainError::InvalidArgument(format!("AdamW: group {r:?} outside {n} params")));
        }
        self.t += 1;
        let c = &self.cfg;
        let t = self.t.min(i32::MAX as u64) as i32;
        let bc1 = 1.0 - (c.beta1 as f64).powi(t);
        let bc2 = 1.0 - (c.beta2 as f64).powi(t);
        let step_size = (lr as f64 / bc1) as f32;
        let bc2_sqrt = bc2.sqrt() as f32;
        let (b1, b2, eps) = (c.beta1, c.beta2, c.eps);
        for (r, decays) in groups {
            let keep = if *decays {
                1.0 - lr * c.weight_decay
            } else {
                1.0
            };
            let r = r.clone();
            params[r.clone()]
                .par_chunks_mut(CHUNK)
                .zip(grads[r.clone()].par_chunks(CHUNK))
                .zip(
                    self.m[r.clone()]
                        .par_chunks_mut(CHUNK)
                        .zip(self.v[r].par_chunks_mut(CHUNK)),
                )
                .for_each(|((p, g), (m, v))| {
                    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut())
                    {
                        *p *= keep;
                        *m = b1 * *m + (1.0 - b1) * g;
                        *v = b2 * *v + (1.0 - b2) * g * g;
                        let denom = v.sqrt() / bc2_sqrt + eps;
                        *p -= step_size * *m / denom;
                    }
                });
        }
        Ok(())
    }
}

/// The global L2 norm of `grads` (f64 partial sums over fixed chunks, summed in order).
pub fn grad_norm(grads: &[f32]) -> f64 {
    let partial: Vec<f64> = grads
        .par_chunks(CHUNK)
        .map(|c| c.iter().map(|&g| g as f64 * g as f64).sum::<f64>())
        .collect();
    partial.iter().sum::<f64>().sqrt()
}

/// Scales `grads` so their global norm is at most `max_norm` (PyTorch's `clip_grad_norm_`:
/// factor `max_norm / (norm + 1e-6)` when below 1). Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut [f32], max_norm: f32) -> f64 {
    let norm = grad_norm(grads);
    let factor = max_norm as f64 / (norm + 1e-6);
    if factor < 1.0 {
        let f = factor as f32;
        grads
            .par_chunks_mut(CHUNK)
            .for_each(|c| c.iter_mut().for_each(|g| *g *= f));
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use slm_model::{Arch, ModelConfig};

    fn layout() -> ParamLayout {
        let cfg = ModelConfig {
            arch: Arch::Llama,
            n_vocab: 5,
            d_model: 4,
            n_layer: 1,
            n_head: 2,
            n_kv_head: 1,
            head_dim: 2,
            d_ff: 6,
            n_ctx_train: 8,
            rms_eps: 1e-5,
            rope_theta: 10_000.0,
            tied_output: true,
        };
        ParamLayout::new(&cfg).unwrap()
    }

    #[test]
    fn first_step_moves_each_weight_by_lr_against_its_gradient_sign() {
        // With bias correction, step 1 is p -= lr * g/(|g| + ε') for every element.
        let l = layout();
        let mut p = vec![0.5f32; l.len()];
        let g: Vec<f32> = (0..l.len())
            .map(|i| if i % 2 == 0 { 0.3 } else { -2.0 })
            .collect();
        let mut opt = AdamW::new(
            AdamWConfig {
                weight_decay: 0.0,
                ..AdamWConfig::with_lr(0.01)
            },
            l.len(),
        );
        opt.step(&l, &mut p, &g, 0.01).unwrap();
        for (i, &x) in p.iter().enumerate() {
            let want = if i % 2 == 0 { 0.49 } else { 0.51 };
            assert!((x - want).abs() < 1e-6, "{i}: {x}");
        }
    }

    #[test]
    fn weight_decay_skips_norms_and_embeddings_unless_asked() {
        let l = layout();
        let zero = vec![0.0f32; l.len()];
        for all in [false, true] {
            let mut p = vec![1.0f32; l.len()];
            let cfg = AdamWConfig {
                weight_decay: 0.5,
                decay_norms_and_embeddings: all,
                ..AdamWConfig::with_lr(0.1)
            };
            AdamW::new(cfg, l.len())
                .step(&l, &mut p, &zero, 0.1)
                .unwrap();
            for t in &l.tensors {
                let decays = t.kind == ParamKind::Matrix || all;
                let want = if decays { 0.95 } else { 1.0 };
                assert!(
                    p[t.range()].iter().all(|&x| (x - want).abs() < 1e-7),
                    "{} all={all}",
                    t.name
                );
            }
        }
    }

    #[test]
    fn clipping_scales_to_max_norm_and_leaves_small_gradients() {
        let mut g = vec![3.0f32, 4.0];
        let n = clip_grad_norm(&mut g, 1.0);
        assert!((n - 5.0).abs() < 1e-9);
        assert!((grad_norm(&g) - 1.0).abs() < 1e-5);
        let mut small = vec![0.3f32, 0.4];
        clip_grad_norm(&mut small, 1.0);
        assert_eq!(small, vec![0.3, 0.4]);
    }
}
