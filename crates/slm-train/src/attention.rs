//! Causal grouped-query self-attention over packed sequences, forward and backward.
//!
//! Shapes (legend of [`crate::model`]): `B` sequences of `T` tokens, `H` query heads, `G`
//! key/value heads, `Dh` head width. Query head `h` reads KV head `h / (H/G)`, as in
//! slm-model. The forward pass keeps the softmax probabilities `P` `[B][H][T][T]` (entries above
//! the diagonal are 0) for the backward pass; sequences are independent and run in parallel.

use crate::matmul::{gemm_view, View};
use rayon::prelude::*;

/// Head layout of one attention layer.
#[derive(Clone, Copy, Debug)]
pub struct Heads {
    /// Query heads `H`.
    pub n_head: usize,
    /// Key/value heads `G`.
    pub n_kv_head: usize,
    /// Head width `Dh`.
    pub head_dim: usize,
    /// Tokens per sequence `T`.
    pub seq_len: usize,
}

impl Heads {
    fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }
    fn kv_dim(&self) -> usize {
        self.n_kv_head * self.head_dim
    }
    fn group(&self) -> usize {
        (self.n_head / self.n_kv_head.max(1)).max(1)
    }
    fn scale(&self) -> f32 {
        1.0 / (self.head_dim as f32).sqrt()
    }
}

/// `out[t,h] = Σ_{s≤t} softmax_s(q[t,h]·k[s,g]/√Dh) v[s,g]`; saves the probabilities.
///
/// Per sequence and head: `S = Q_h·K_gᵀ/√Dh` and `O_h = P·V_g` are small GEMMs (the full `T×T`
/// square is computed; the masked half is zeroed — at these sizes GEMM speed beats skipping it).
///
/// # Shapes
/// `q`, `out`: `[B*T][H*Dh]`; `k`, `v`: `[B*T][G*Dh]`; `probs`: `[B][H][T][T]`.
pub fn attention_forward(
    hd: Heads,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    probs: &mut [f32],
) {
    let (t_len, dh, qd, kvd) = (hd.seq_len, hd.head_dim, hd.q_dim(), hd.kv_dim());
    let (group, scale) = (hd.group(), hd.scale());
    out.par_chunks_mut(t_len * qd)
        .zip(probs.par_chunks_mut(hd.n_head * t_len * t_len))
        .zip(
            q.par_chunks(t_len * qd)
                .zip(k.par_chunks(t_len * kvd))
                .zip(v.par_chunks(t_len * kvd)),
        )
        .for_each(|((out, probs), ((q, k), v))| {
            for (h, p) in probs.chunks_exact_mut(t_len * t_len).enumerate() {
                let g = h / group;
                let (qh, kg, vg) = (&q[h * dh..], &k[g * dh..], &v[g * dh..]);
                gemm_view(
                    p,
                    t_len,
                    t_len,
                    t_len,
                    dh,
                    View::rows(qh, qd),
                    View::transposed(kg, kvd),
                    scale,
                    false,
                );
                for (t, row) in p.chunks_exact_mut(t_len).enumerate() {
                    causal_softmax(row, t);
                }
                gemm_view(
                    &mut out[h * dh..],
                    qd,
                    t_len,
                    dh,
                    t_len,
                    View::rows(p, t_len),
                    View::rows(vg, kvd),
                    1.0,
                    false,
                );
            }
        });
}

/// Softmax of `row[..=t]` in place; `row[t+1..]` (future positions) become 0.
fn causal_softmax(row: &mut [f32], t: usize) {
    let (past, future) = row.split_at_mut((t + 1).min(row.len()));
    future.fill(0.0);
    let max = past.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f64;
    for x in past.iter_mut() {
        *x = (*x - max).exp();
        sum += *x as f64;
    }
    let inv = (1.0 / sum) as f32;
    past.iter_mut().for_each(|x| *x *= inv);
}

/// Backward of [`attention_forward`]. With `dP = dout·vᵀ` and `dS = P⊙(dP − rowsum(P⊙dP))`:
/// `dq = dS·k/√Dh`, `dk = dSᵀ·q/√Dh`, `dv = Pᵀ·dout` (summed over the heads of a group), each a
/// small GEMM per sequence and head. Overwrites `dq`, `dk`, `dv`.
///
/// # Shapes
/// `q`, `dout`, `dq`: `[B*T][H*Dh]`; `k`, `v`, `dk`, `dv`: `[B*T][G*Dh]`; `probs`: `[B][H][T][T]`.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward(
    hd: Heads,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    probs: &[f32],
    dout: &[f32],
    dq: &mut [f32],
    dk: &mut [f32],
    dv: &mut [f32],
) {
    let (t_len, dh, qd, kvd) = (hd.seq_len, hd.head_dim, hd.q_dim(), hd.kv_dim());
    let (group, scale) = (hd.group(), hd.scale());
    dq.par_chunks_mut(t_len * qd)
        .zip(
            dk.par_chunks_mut(t_len * kvd)
                .zip(dv.par_chunks_mut(t_len * kvd)),
        )
        .zip(
            q.par_chunks(t_len * qd)
                .zip(k.par_chunks(t_len * kvd))
                .zip(v.par_chunks(t_len * kvd)),
        )
        .zip(
            probs
                .par_chunks(hd.n_head * t_len * t_len)
                .zip(dout.par_chunks(t_len * qd)),
        )
        .for_each(|(((dq, (dk, dv)), ((q, k), v)), (probs, dout))| {
            let mut ds = vec![0.0f32; t_len * t_len];
            for (h, p) in probs.chunks_exact(t_len * t_len).enumerate() {
                let g = h / group;
                // The first head of a group overwrites the group's dK/dV, the others add.
                let first = h % group == 0;
                let (qh, kg, vg, doh) = (&q[h * dh..], &k[g * dh..], &v[g * dh..], &dout[h * dh..]);
                gemm_view(
                    &mut ds,
                    t_len,
                    t_len,
                    t_len,
                    dh,
                    View::rows(doh, qd),
                    View::transposed(vg, kvd),
                    1.0,
                    false,
                );
                for (t, (dsr, pr)) in ds
                    .chunks_exact_mut(t_len)
                    .zip(p.chunks_exact(t_len))
                    .enumerate()
                {
                    let n = t + 1;
                    let row_dot: f32 = dsr[..n].iter().zip(&pr[..n]).map(|(d, p)| d * p).sum();
                    for (d, &p) in dsr[..n].iter_mut().zip(&pr[..n]) {
                        *d = p * (*d - row_dot) * scale;
                    }
                    dsr[n..].fill(0.0);
                }
                gemm_view(
                    &mut dq[h * dh..],
                    qd,
                    t_len,
                    dh,
                    t_len,
                    View::rows(&ds, t_len),
                    View::rows(kg, kvd),
                    1.0,
                    false,
                );
                let dst = View::transposed(&ds, t_len);
                gemm_view(
                    &mut dk[g * dh..],
                    kvd,
                    t_len,
                    dh,
                    t_len,
                    dst,
                    View::rows(qh, qd),
                    1.0,
                    !first,
                );
                let pt = View::transposed(p, t_len);
                gemm_view(
                    &mut dv[g * dh..],
                    kvd,
                    t_len,
                    dh,
                    t_len,
                    pt,
                    View::rows(doh, qd),
                    1.0,
                    !first,
                );
            }
        });
}

#[cfg(test)]
#[path = "attention_tests.rs"]
mod tests;
