//! Adapters applied in the forward pass: `y = W·x + Σ_i s_i·(alpha_i/r_i)·B_i·(A_i·x)`.
//!
//! [`LoraStack`] prepares the adapters once (when they are set on the model): for every
//! adapted projection the pairs of all adapters are concatenated along the rank, with each
//! pair's scale folded into its `B` columns, so the forward pass does one `A·x` and one `B·t`
//! per projection however many adapters are active, reading only contiguous rows.

use super::{LoraAdapter, LoraError, LoraTarget};
use crate::config::ModelConfig;
use slm_kernels::ops;
use slm_kernels::Pool;

/// The combined update of one projection: `ΔW·x = B·(A·x)`, scales already in `B`.
#[derive(Clone, Debug, PartialEq)]
pub struct LoraTerm {
    /// Input features.
    pub n_in: usize,
    /// Output features.
    pub n_out: usize,
    /// Total rank (sum over the adapters that adapt this projection).
    pub rank: usize,
    /// `[rank][n_in]`, row-major.
    pub a: Vec<f32>,
    /// `Bᵀ`, `[rank][n_out]`, row-major, scaled (transposed so that `B·t` is `rank` long
    /// vector updates instead of `n_out` dot products of length `rank`).
    pub b_t: Vec<f32>,
}

impl LoraTerm {
    /// `out[t] += B·(A·x[t])` for `n` tokens; `tmp` holds at least `n·rank` floats.
    ///
    /// # Shapes
    /// `x: [n][n_in]`, `out: [n][n_out]`, `tmp: [≥ n·rank]`.
    pub fn add_to(&self, pool: &Pool, x: &[f32], n: usize, out: &mut [f32], tmp: &mut [f32]) {
        let (r, n_in, n_out) = (self.rank, self.n_in, self.n_out);
        let (out, tmp) = (&mut out[..n * n_out], &mut tmp[..n * r]);
        pool.run_rows(out, n_out, tmp, r, &|t0, out_rows, t_rows| {
            for (i, (o, t)) in out_rows.chunks_exact_mut(n_out).zip(t_rows.chunks_exact_mut(r)).enumerate() {
                let xt = &x[(t0 + i) * n_in..(t0 + i + 1) * n_in];
                for (j, tj) in t.iter_mut().enumerate() {
                    *tj = ops::dot_f32(&self.a[j * n_in..(j + 1) * n_in], xt);
                }
                for (&tj, bt_row) in t.iter().zip(self.b_t.chunks_exact(n_out)) {
                    ops::axpy(o, tj, bt_row);
                }
            }
        });
    }

    /// `ΔW = B·A` as a dense `[n_out][n_in]` matrix, added to `w` (merging).
    pub fn add_delta_to(&self, w: &mut [f32]) {
        let (n_in, n_out) = (self.n_in, self.n_out);
        for (o, w_row) in w.chunks_exact_mut(n_in).enumerate() {
            for (bt_row, a_row) in self.b_t.chunks_exact(n_out).zip(self.a.chunks_exact(n_in)) {
                ops::axpy(w_row, bt_row[o], a_row);
            }
        }
    }
}

/// Adapters prepared for a model: one optional [`LoraTerm`] per layer and target.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoraStack {
    layers: Vec<[Option<LoraTerm>; 7]>,
    max_rank: usize,
    n_adapters: usize,
}

impl LoraStack {
    /// Combines `adapters` with their user scales for a model of `cfg`, checking each against
    /// it. A scale of 0 drops that adapter.
    pub fn new(cfg: &ModelConfig, adapters: &[(LoraAdapter, f32)]) -> Result<LoraStack, LoraError> {
        let mut layers: Vec<[Option<LoraTerm>; 7]> = (0..cfg.n_layer).map(|_| Default::default()).collect();
        for (adapter, user_scale) in adapters {
            adapter.check_against(cfg)?;
            if !user_scale.is_finite() {
                return Err(LoraError::Invalid(format!("adapter scale {user_scale} is not finite")));
            }
        }
        for (layer, slots) in layers.iter_mut().enumerate() {
            for target in LoraTarget::ALL {
                let (n_in, n_out) = target.dims(cfg);
                let parts: Vec<_> = adapters
                    .iter()
                    .filter(|(_, s)| *s != 0.0)
                    .filter_map(|(ad, s)| ad.pairs.get(&(layer, target)).map(|p| (p, s * ad.pair_scale(p))))
                    .collect();
                if parts.is_empty() {
                    continue;
                }
                let rank: usize = parts.iter().map(|(p, _)| p.rank).sum();
                let mut a = Vec::with_capacity(rank * n_in);
                let mut b_t = vec![0.0f32; rank * n_out];
                let mut row = 0;
                for (p, scale) in &parts {
                    a.extend_from_slice(&p.a);
                    for (o, src) in p.b.chunks_exact(p.rank).enumerate() {
                        for (j, s) in src.iter().enumerate() {
                            b_t[(row + j) * n_out + o] = s * scale;
                        }
                    }
                    row += p.rank;
                }
                slots[target.index()] = Some(LoraTerm { n_in, n_out, rank, a, b_t });
            }
        }
        let max_rank = layers.iter().flatten().flatten().map(|t| t.rank).max().unwrap_or(0);
        let n_adapters = adapters.iter().filter(|(_, s)| *s != 0.0).count();
        Ok(LoraStack { layers, max_rank, n_adapters })
    }

    /// The term of `target` in `layer`, if any adapter changes it.
    pub fn term(&self, layer: usize, target: LoraTarget) -> Option<&LoraTerm> {
        self.layers.get(layer).and_then(|l| l[target.index()].as_ref())
    }

    /// `out += ΔW·x` for `target` of `layer` when an adapter changes it (the forward pass).
    ///
    /// # Shapes
    /// `x: [≥ n][n_in]`, `out: [≥ n][n_out]`, `tmp: [≥ n·max_rank]`.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &self,
        layer: usize,
        target: LoraTarget,
        pool: &Pool,
        x: &[f32],
        n: usize,
        out: &mut [f32],
        tmp: &mut [f32],
    ) {
        if let Some(t) = self.term(layer, target) {
            t.add_to(pool, x, n, out, tmp);
        }
    }

    /// Largest combined rank (sizes the forward scratch: `n_batch · max_rank` floats).
    pub fn max_rank(&self) -> usize {
        self.max_rank
    }

    /// Whether no projection is adapted.
    pub fn is_empty(&self) -> bool {
        self.max_rank == 0
    }

    /// Adapters with a non-zero scale.
    pub fn n_adapters(&self) -> usize {
        self.n_adapters
    }
}
