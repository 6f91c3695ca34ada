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

/// Query rows per causal tile: row block `[r0, r1)` only meets keys `0..r1`, so about half of
/// the `T×T` products are skipped while each product stays large enough for GEMM speed.
const TILE: usize = 64;

/// Row blocks `[r0, r1)` covering `0..t`.
fn tiles(t: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..t.div_ceil(TILE)).map(move |i| (i * TILE, ((i + 1) * TILE).min(t)))
}

/// One parallel task: sequence `b`, KV head `g` (with its `H/G` query heads).
fn task_ids(hd: Heads, b_count: usize) -> Vec<(usize, usize)> {
    (0..b_count)
        .flat_map(|b| (0..hd.n_kv_head).map(move |g| (b, g)))
        .collect()
}

/// `out[t,h] = Σ_{s≤t} softmax_s(q[t,h]·k[s,g]/√Dh) v[s,g]`; saves the probabilities.
///
/// Tasks are (sequence, KV head) pairs; per query head, `S = Q_h·K_gᵀ/√Dh` and `O_h = P·V_g` are
/// strided GEMMs over causal tiles of 64 query rows. Each task writes its heads into a scratch
/// block, scattered into `out` afterwards (head columns of `out` interleave across tasks).
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
    let b_count = q.len() / (t_len * qd).max(1);
    let gw = group * dh; // scratch row width: the group's heads side by side
    let ids = task_ids(hd, b_count);
    let mut scratch = vec![0.0f32; ids.len() * t_len * gw];
    scratch
        .par_chunks_mut(t_len * gw)
        .zip(probs.par_chunks_mut(group * t_len * t_len))
        .zip(ids.par_iter())
        .for_each(|((o, probs), &(b, g))| {
            let (q, k, v) = (
                &q[b * t_len * qd..],
                &k[b * t_len * kvd + g * dh..],
                &v[b * t_len * kvd + g * dh..],
            );
            for (j, p) in probs.chunks_exact_mut(t_len * t_len).enumerate() {
                let qh = &q[(g * group + j) * dh..];
                for (r0, r1) in tiles(t_len) {
                    let pr = &mut p[r0 * t_len..];
                    gemm_view(
                        pr,
                        t_len,
                        r1 - r0,
                        r1,
                        dh,
                        View::rows(&qh[r0 * qd..], qd),
                        View::transposed(k, kvd),
                        scale,
                        false,
                    );
                    for (t, row) in (r0..r1).zip(pr.chunks_exact_mut(t_len)) {
                        causal_softmax(row, t);
                    }
                    let oh = &mut o[r0 * gw + j * dh..];
                    gemm_view(
                        oh,
                        gw,
                        r1 - r0,
                        dh,
                        r1,
                        View::rows(pr, t_len),
                        View::rows(v, kvd),
                        1.0,
                        false,
                    );
                }
            }
        });
    scatter(&scratch, t_len * gw, 0, &ids, t_len, gw, out, qd, |g| {
        g * gw
    });
}

/// Copies the `[T][width]` block at `offset` of each task's `stride`-sized scratch into the rows
/// of `dst` (`[B*T][dst_w]`) at column `col(g)`.
#[allow(clippy::too_many_arguments)]
fn scatter(
    scratch: &[f32],
    stride: usize,
    offset: usize,
    ids: &[(usize, usize)],
    t_len: usize,
    width: usize,
    dst: &mut [f32],
    dst_w: usize,
    col: impl Fn(usize) -> usize,
) {
    for (task, &(b, g)) in scratch.chunks_exact(stride).zip(ids) {
        let block = &task[offset..offset + t_len * width];
        for (t, src) in block.chunks_exact(width).enumerate() {
            let at = (b * t_len + t) * dst_w + col(g);
            dst[at..at + width].copy_from_slice(src);
        }
    }
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
/// `dq = dS·k/√Dh`, `dk = dSᵀ·q/√Dh`, `dv = Pᵀ·dout` (summed over the heads of a group), as
/// strided GEMMs over causal tiles per (sequence, KV head) task. Overwrites `dq`, `dk`, `dv`.
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
    let b_count = q.len() / (t_len * qd).max(1);
    let gw = group * dh;
    let ids = task_ids(hd, b_count);
    // Per task: dQ of the group's heads [T][group*Dh], then dK [T][Dh] and dV [T][Dh].
    let per_task = t_len * (gw + 2 * dh);
    let mut scratch = vec![0.0f32; ids.len() * per_task];
    scratch
        .par_chunks_mut(per_task)
        .zip(probs.par_chunks(group * t_len * t_len))
        .zip(ids.par_iter())
        .for_each_init(
            || vec![0.0f32; t_len * t_len],
            |ds, ((sc, probs), &(b, g))| {
                let (dqs, dkv) = sc.split_at_mut(t_len * gw);
                let (dks, dvs) = dkv.split_at_mut(t_len * dh);
                let q = &q[b * t_len * qd..];
                let dout = &dout[b * t_len * qd..];
                let (k, v) = (
                    &k[b * t_len * kvd + g * dh..],
                    &v[b * t_len * kvd + g * dh..],
                );
                for (j, p) in probs.chunks_exact(t_len * t_len).enumerate() {
                    let h = g * group + j;
                    let (qh, doh) = (&q[h * dh..], &dout[h * dh..]);
                    for (r0, r1) in tiles(t_len) {
                        let (m, dsr) = (r1 - r0, &mut ds[r0 * t_len..]);
                        gemm_view(
                            dsr,
                            t_len,
                            m,
                            r1,
                            dh,
                            View::rows(&doh[r0 * qd..], qd),
                            View::transposed(v, kvd),
                            1.0,
                            false,
                        );
                        for (t, (dsrow, prow)) in (r0..r1).zip(
                            dsr.chunks_exact_mut(t_len)
                                .zip(p[r0 * t_len..].chunks_exact(t_len)),
                        ) {
                            let n = t + 1;
                            let row_dot: f32 =
                                dsrow[..n].iter().zip(&prow[..n]).map(|(d, p)| d * p).sum();
                            for (d, &p) in dsrow[..n].iter_mut().zip(&prow[..n]) {
                                *d = p * (*d - row_dot) * scale;
                            }
                            dsrow[n..r1].fill(0.0);
                        }
                        let dsr = &ds[r0 * t_len..];
                        let pr = &p[r0 * t_len..];
                        gemm_view(
                            &mut dqs[r0 * gw + j * dh..],
                            gw,
                            m,
                            dh,
                            r1,
                            View::rows(dsr, t_len),
                            View::rows(k, kvd),
                            1.0,
                            false,
                        );
                        gemm_view(
                            dks,
                            dh,
                            r1,
                            dh,
                            m,
                            View::transposed(dsr, t_len),
                            View::rows(&qh[r0 * qd..], qd),
                            1.0,
                            true,
                        );
                        gemm_view(
                            dvs,
                            dh,
                            r1,
                            dh,
                            m,
                            View::transposed(pr, t_len),
                            View::rows(&doh[r0 * qd..], qd),
                            1.0,
                            true,
                        );
                    }
                }
            },
        );
    scatter(&scratch, per_task, 0, &ids, t_len, gw, dq, qd, |g| g * gw);
    scatter(
        &scratch,
        per_task,
        t_len * gw,
        &ids,
        t_len,
        dh,
        dk,
        kvd,
        |g| g * dh,
    );
    scatter(
        &scratch,
        per_task,
        t_len * (gw + dh),
        &ids,
        t_len,
        dh,
        dv,
        kvd,
        |g| g * dh,
    );
}

#[cfg(test)]
#[path = "attention_tests.rs"]
mod tests;
