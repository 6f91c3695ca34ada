//! Row operations of the Llama block with their backward passes: RMSNorm, RoPE, SwiGLU and the
//! cross-entropy loss. (Attention is in [`crate::attention`], matrix products in
//! [`crate::matmul`].)
//!
//! Shapes use the legend of [`crate::model`]: `N` tokens (`B` sequences of `T`), `D` width, `F`
//! FFN width, `V` vocabulary. Forward functions match `slm_kernels::ops` arithmetic (f64 sum of
//! squares in RMSNorm, ggml's f32 angle recurrence in RoPE) so that training and inference agree
//! to rounding. Backward functions *add* into their gradient outputs (`+=`), so gradients of a
//! tensor used twice (residual stream, tied embedding, shared K/V heads) sum naturally.

use rayon::prelude::*;

/// Rows handed to one rayon task in the row-parallel loops (amortises the fork cost).
const ROWS_PER_TASK: usize = 16;

/// RMSNorm of each `[D]` row: `out = x / sqrt(mean(x²) + eps) ⊙ w`; saves `1/rms` per row.
///
/// # Shapes
/// `x`, `out`: `[N][D]`; `w`: `[D]`; `inv_rms`: `[N]`.
pub fn rms_norm_forward(x: &[f32], w: &[f32], eps: f32, out: &mut [f32], inv_rms: &mut [f32]) {
    let d = w.len();
    out.par_chunks_mut(d * ROWS_PER_TASK)
        .zip(inv_rms.par_chunks_mut(ROWS_PER_TASK))
        .zip(x.par_chunks(d * ROWS_PER_TASK))
        .for_each(|((o, r), x)| {
            for ((or, rr), xr) in o
                .chunks_exact_mut(d)
                .zip(r.iter_mut())
                .zip(x.chunks_exact(d))
            {
                let sum: f64 = xr.iter().map(|&v| v as f64 * v as f64).sum();
                let mean = (sum / d as f64) as f32;
                let scale = 1.0 / (mean + eps).sqrt();
                *rr = scale;
                for ((o, &v), &g) in or.iter_mut().zip(xr).zip(w) {
                    *o = v * scale * g;
                }
            }
        });
}

/// Backward of [`rms_norm_forward`]: with `r = 1/rms(x)`,
/// `dx += r·(dy⊙w) − x·r³/D·Σ(dy⊙w⊙x)` and `dw += Σ_rows dy⊙x·r`.
///
/// # Shapes
/// `x`, `dy`, `dx`: `[N][D]`; `w`, `dw`: `[D]`; `inv_rms`: `[N]`.
pub fn rms_norm_backward(
    x: &[f32],
    w: &[f32],
    inv_rms: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    dw: &mut [f32],
) {
    let d = w.len();
    dx.par_chunks_mut(d * ROWS_PER_TASK)
        .zip(x.par_chunks(d * ROWS_PER_TASK))
        .zip(dy.par_chunks(d * ROWS_PER_TASK))
        .zip(inv_rms.par_chunks(ROWS_PER_TASK))
        .for_each(|(((dx, x), dy), r)| {
            for (((dxr, xr), dyr), &r) in dx
                .chunks_exact_mut(d)
                .zip(x.chunks_exact(d))
                .zip(dy.chunks_exact(d))
                .zip(r)
            {
                let dot: f64 = xr
                    .iter()
                    .zip(dyr)
                    .zip(w)
                    .map(|((&x, &g), &w)| x as f64 * g as f64 * w as f64)
                    .sum();
                let c = (dot as f32) * r * r * r / d as f32;
                for (((o, &x), &g), &w) in dxr.iter_mut().zip(xr).zip(dyr).zip(w) {
                    *o += r * g * w - x * c;
                }
            }
        });
    // The gain gradient is a sum over rows; a serial pass keeps the order (and bits) fixed.
    for ((xr, dyr), &r) in x.chunks_exact(d).zip(dy.chunks_exact(d)).zip(inv_rms) {
        for ((o, &x), &g) in dw.iter_mut().zip(xr).zip(dyr) {
            *o += g * x * r;
        }
    }
}

/// `cos`/`sin` of every (position, rotary pair) for positions `0..T`, built with ggml's f32
/// angle recurrence (`theta *= base^(-2/Dh)`) exactly like `slm_kernels::ops::RopeTable`.
#[derive(Clone, Debug)]
pub struct RopeCache {
    head_dim: usize,
    /// `[T][Dh/2]` `(cos, sin)`.
    cs: Vec<(f32, f32)>,
}

impl RopeCache {
    /// The table for heads of `head_dim` (even), base `theta`, positions `0..n_pos`.
    pub fn new(head_dim: usize, theta: f32, n_pos: usize) -> RopeCache {
        let half = head_dim / 2;
        let theta_scale = theta.powf(-2.0 / head_dim as f32);
        let mut cs = Vec::with_capacity(n_pos * half);
        for p in 0..n_pos {
            let mut angle = p as f32;
            for _ in 0..half {
                cs.push((angle.cos(), angle.sin()));
                angle *= theta_scale;
            }
        }
        RopeCache { head_dim, cs }
    }

    /// Positions covered.
    pub fn n_pos(&self) -> usize {
        self.cs.len() / (self.head_dim / 2).max(1)
    }

    /// Rotates adjacent pairs `(x[2i], x[2i+1])` of every head of every row; row `n` is at
    /// position `n % seq_len`. `inverse` rotates by the negative angle, which is the backward
    /// pass (a rotation's transpose is its inverse).
    ///
    /// # Shapes
    /// `x`: `[N][heads*Dh]` with `N` a multiple of `seq_len <= n_pos()`.
    pub fn apply(&self, x: &mut [f32], width: usize, seq_len: usize, inverse: bool) {
        let half = self.head_dim / 2;
        let sign = if inverse { -1.0f32 } else { 1.0 };
        x.par_chunks_mut(width).enumerate().for_each(|(n, row)| {
            let pos = n % seq_len.max(1);
            let Some(cs) = self.cs.get(pos * half..(pos + 1) * half) else {
                return;
            };
            for head in row.chunks_exact_mut(self.head_dim) {
                for (pair, &(c, s)) in head.chunks_exact_mut(2).zip(cs) {
                    let s = sign * s;
                    let (x0, x1) = (pair[0], pair[1]);
                    pair[0] = x0 * c - x1 * s;
                    pair[1] = x0 * s + x1 * c;
                }
            }
        });
    }
}

/// `silu(g) = g·σ(g)`, computed like `slm_kernels::ops::silu`.
fn silu(g: f32) -> f32 {
    g / (1.0 + (-g).exp())
}

/// SwiGLU: `h = silu(gate) ⊙ up`.
///
/// # Shapes
/// `gate`, `up`, `h`: `[N][F]`.
pub fn swiglu_forward(gate: &[f32], up: &[f32], h: &mut [f32]) {
    h.par_chunks_mut(4096)
        .zip(gate.par_chunks(4096))
        .zip(up.par_chunks(4096))
        .for_each(|((h, g), u)| {
            for ((h, &g), &u) in h.iter_mut().zip(g).zip(u) {
                *h = silu(g) * u;
            }
        });
}

/// Backward of [`swiglu_forward`]: `dup = dh⊙silu(g)`, `dgate = dh⊙up⊙σ(g)(1 + g(1−σ(g)))`.
/// Overwrites `dgate` and `dup`.
///
/// # Shapes
/// every argument `[N][F]`.
pub fn swiglu_backward(gate: &[f32], up: &[f32], dh: &[f32], dgate: &mut [f32], dup: &mut [f32]) {
    dgate
        .par_chunks_mut(4096)
        .zip(dup.par_chunks_mut(4096))
        .zip(
            gate.par_chunks(4096)
                .zip(up.par_chunks(4096))
                .zip(dh.par_chunks(4096)),
        )
        .for_each(|((dg, du), ((g, u), dh))| {
            for ((((dg, du), &g), &u), &dh) in
                dg.iter_mut().zip(du.iter_mut()).zip(g).zip(u).zip(dh)
            {
                let sig = 1.0 / (1.0 + (-g).exp());
                *du = dh * g * sig;
                *dg = dh * u * sig * (1.0 + g * (1.0 - sig));
            }
        });
}

/// Target id of a token that is not trained on (prompt tokens in instruction tuning, padding):
/// it contributes no loss and no gradient.
pub const IGNORE_TARGET: u32 = u32::MAX;

/// Softmax cross-entropy of each logit row against its target, in place: returns the summed
/// loss `Σ_n −log softmax(logits_n)[target_n]` (f64) and replaces the logits by the gradient
/// of `scale × that sum`, i.e. `scale·(softmax − onehot)`.
///
/// A row whose target is [`IGNORE_TARGET`] adds no loss and gets a zero gradient.
///
/// # Shapes
/// `logits`: `[N][V]`; `targets`: `[N]`, each `< V` or [`IGNORE_TARGET`] (checked by the caller).
pub fn cross_entropy_in_place(logits: &mut [f32], targets: &[u32], v: usize, scale: f32) -> f64 {
    let losses: Vec<f64> = logits
        .par_chunks_mut(v)
        .zip(targets.par_iter())
        .map(|(row, &target)| {
            if target == IGNORE_TARGET {
                row.fill(0.0);
                return 0.0;
            }
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let t = target as usize;
            let shifted_target = row.get(t).map_or(0.0, |&x| x - max) as f64;
            let mut sum = 0.0f64;
            for x in row.iter_mut() {
                *x = (*x - max).exp();
                sum += *x as f64;
            }
            let inv = (1.0 / sum) as f32 * scale;
            for x in row.iter_mut() {
                *x *= inv;
            }
            if let Some(x) = row.get_mut(t) {
                *x -= scale;
            }
            // −log p_t = log Σ exp(x − max) − (x_t − max): exact even where p_t underflows.
            sum.ln() - shifted_target
        })
        .collect();
    // Summing the per-row losses serially keeps the result independent of the thread count.
    losses.iter().sum()
}

#[cfg(test)]
#[path = "ops_tests.rs"]
mod tests;
