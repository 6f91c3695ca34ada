//! Trainable LoRA factors in one flat vector, and the [`Weights`] that add them to a frozen base.
//!
//! For an adapted projection `y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ` (`s` = alpha / rank):
//! - forward: `u = x·Aᵀ` `[N][r]`, `y += s·u·Bᵀ`;
//! - backward: `g = dy·B` `[N][r]`, `dx += s·g·A`, `dB += s·dyᵀ·u`, `dA += s·gᵀ·x`.
//!
//! `u` is recomputed in the backward pass instead of saved (it costs `r/out` of the base
//! product), so adapters add no activation memory.

use super::base::FrozenBase;
use crate::error::TrainError;
use crate::matmul::{matmul_nn, matmul_nt, matmul_tn};
use crate::weights::{LoraTarget, Mat, Weights};
use slm_model::lora::{LoraAdapter, LoraPair};
use std::collections::BTreeMap;

/// Where one adapted projection's factors sit in the flat adapter vector.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PairSlot {
    /// Offset of `A` `[rank][n_in]`.
    pub a: usize,
    /// Offset of `B` `[n_out][rank]` (right after `A`).
    pub b: usize,
    /// Rank of this pair.
    pub rank: usize,
    /// Input features.
    pub n_in: usize,
    /// Output features.
    pub n_out: usize,
    /// `alpha / rank`.
    pub scale: f32,
}

/// The layout of an adapter's parameters: every pair's `A` then `B`, in `(layer, target)` order.
#[derive(Clone, Debug, PartialEq)]
pub struct AdapterLayout {
    slots: BTreeMap<(usize, LoraTarget), PairSlot>,
    alpha: f32,
    rank: usize,
    arch: String,
    len: usize,
}

impl AdapterLayout {
    /// The layout of `adapter` and its values as a flat vector (what the optimizer updates).
    pub fn from_adapter(adapter: &LoraAdapter) -> (AdapterLayout, Vec<f32>) {
        let mut slots = BTreeMap::new();
        let mut values = Vec::with_capacity(adapter.n_params());
        for (&key, pair) in &adapter.pairs {
            let a = values.len();
            values.extend_from_slice(&pair.a);
            let b = values.len();
            values.extend_from_slice(&pair.b);
            let slot = PairSlot {
                a,
                b,
                rank: pair.rank,
                n_in: pair.n_in,
                n_out: pair.n_out,
                scale: adapter.pair_scale(pair),
            };
            slots.insert(key, slot);
        }
        let layout = AdapterLayout {
            slots,
            alpha: adapter.alpha,
            rank: adapter.rank,
            arch: adapter.arch.clone(),
            len: values.len(),
        };
        (layout, values)
    }

    /// The adapter holding `values` (laid out by `self`).
    pub fn to_adapter(&self, values: &[f32]) -> Result<LoraAdapter, TrainError> {
        if values.len() != self.len {
            return Err(TrainError::InvalidArgument(format!(
                "{} adapter values for a layout of {}",
                values.len(),
                self.len
            )));
        }
        let mut adapter = LoraAdapter::new(self.arch.clone(), self.rank, self.alpha);
        for (&key, s) in &self.slots {
            let pair = LoraPair {
                n_in: s.n_in,
                n_out: s.n_out,
                rank: s.rank,
                a: values[s.a..s.a + s.rank * s.n_in].to_vec(),
                b: values[s.b..s.b + s.n_out * s.rank].to_vec(),
            };
            adapter.pairs.insert(key, pair);
        }
        Ok(adapter)
    }

    /// Number of trainable values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the adapter adapts nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slot of block `layer`'s projection `target`, if adapted.
    pub fn slot(&self, layer: usize, target: LoraTarget) -> Option<&PairSlot> {
        self.slots.get(&(layer, target))
    }
}

/// A frozen base plus adapter values: the [`Weights`] of adapter training. Gradients exist
/// only for the adapter (`grads` is laid out by the [`AdapterLayout`]).
pub struct LoraWeights<'a> {
    /// The frozen model.
    pub base: &'a FrozenBase,
    /// Where the factors are in `values`.
    pub layout: &'a AdapterLayout,
    /// The adapter's current values.
    pub values: &'a [f32],
}

impl LoraWeights<'_> {
    /// The base projection `m` in f32. A failure here is a bug (the base's tensors were all
    /// checked when it was opened), so it is reported by panicking with the reason.
    fn base_matrix(&self, m: Mat) -> Vec<f32> {
        let mut w = vec![0.0f32; m.rows * m.cols];
        if let Err(e) = self.base.dequantize(m.offset, m.rows, m.cols, &mut w) {
            panic!(
                "frozen base projection {:?} of layer {}: {e}",
                m.proj, m.layer
            );
        }
        w
    }

    fn factors(&self, s: &PairSlot) -> (&[f32], &[f32]) {
        let a = &self.values[s.a..s.a + s.rank * s.n_in];
        let b = &self.values[s.b..s.b + s.n_out * s.rank];
        (a, b)
    }
}

impl Weights for LoraWeights<'_> {
    fn tensor(&self, offset: usize, len: usize) -> &[f32] {
        self.base.small(offset, len)
    }

    fn linear(&self, m: Mat, x: &[f32], y: &mut [f32], n: usize, accumulate: bool) {
        let w = self.base_matrix(m);
        matmul_nt(y, x, &w, n, m.rows, m.cols, accumulate);
        let Some(s) = self.layout.slot(m.layer, m.proj) else {
            return;
        };
        let (a, b) = self.factors(s);
        let u = scaled_down(x, a, s, n);
        matmul_nt(y, &u, b, n, s.n_out, s.rank, true);
    }

    fn linear_backward(
        &self,
        m: Mat,
        x: &[f32],
        dy: &[f32],
        dx: &mut [f32],
        n: usize,
        accumulate: bool,
        grads: &mut [f32],
    ) {
        let w = self.base_matrix(m);
        matmul_nn(dx, dy, &w, n, m.cols, m.rows, accumulate);
        let Some(s) = self.layout.slot(m.layer, m.proj) else {
            return;
        };
        let (a, b) = self.factors(s);
        // u = s·x·Aᵀ, g = s·dy·B
        let u = scaled_down(x, a, s, n);
        let mut g = vec![0.0f32; n * s.rank];
        matmul_nn(&mut g, dy, b, n, s.rank, s.n_out, false);
        g.iter_mut().for_each(|v| *v *= s.scale);
        matmul_nn(dx, &g, a, n, s.n_in, s.rank, true);
        let (ga, gb) = grads.split_at_mut(s.b);
        matmul_tn(
            &mut gb[..s.n_out * s.rank],
            dy,
            &u,
            s.n_out,
            s.rank,
            n,
            true,
        );
        matmul_tn(
            &mut ga[s.a..s.a + s.rank * s.n_in],
            &g,
            x,
            s.rank,
            s.n_in,
            n,
            true,
        );
    }

    fn tensor_grad<'g>(
        &self,
        _grads: &'g mut [f32],
        _offset: usize,
        _len: usize,
    ) -> Option<&'g mut [f32]> {
        None
    }

    fn n_grads(&self) -> usize {
        self.layout.len()
    }
}

/// `s·x·Aᵀ` `[n][rank]`: the scaled down-projection of an adapter's input.
fn scaled_down(x: &[f32], a: &[f32], s: &PairSlot, n: usize) -> Vec<f32> {
    let mut u = vec![0.0f32; n * s.rank];
    matmul_nt(&mut u, x, a, n, s.rank, s.n_in, false);
    u.iter_mut().for_each(|v| *v *= s.scale);
    u
}
