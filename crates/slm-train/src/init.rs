//! Initial parameters for training from scratch.

use crate::layout::{ParamKind, ParamLayout};
use crate::rng::Rng;

/// Standard deviation of the normal initialisation of embeddings and projections (GPT-2's 0.02;
/// residual-branch outputs are further divided by `√(2L)` so the residual stream's variance
/// does not grow with depth).
pub const INIT_STD: f64 = 0.02;

/// Parameters for `layout`: norms 1, every other tensor `N(0, 0.02²)` (residual outputs
/// `N(0, (0.02/√(2L))²)`), drawn in layout order from a SplitMix64 seeded with `seed`.
pub fn init_params(layout: &ParamLayout, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut p = vec![0.0f32; layout.len()];
    let depth_scale = 1.0 / (2.0 * layout.blocks.len().max(1) as f64).sqrt();
    for t in &layout.tensors {
        let dst = &mut p[t.range()];
        match t.kind {
            ParamKind::Norm => dst.fill(1.0),
            ParamKind::Embedding | ParamKind::Matrix => {
                let std = if t.residual_out {
                    INIT_STD * depth_scale
                } else {
                    INIT_STD
                };
                for x in dst.iter_mut() {
                    *x = (rng.normal() * std) as f32;
                }
            }
        }
    }
    p
}
