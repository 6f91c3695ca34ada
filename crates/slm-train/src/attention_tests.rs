//! The straightforward loop implementation of attention, kept as the reference the gemm-based
//! version is tested against (and by finite differences in `ops_tests.rs`).

use super::*;

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `out[t,h] = Σ_{s≤t} softmax_s(q[t,h]·k[s,g]/√Dh) v[s,g]`; saves the probabilities.
///
/// # Shapes
/// `q`, `out`: `[B*T][H*Dh]`; `k`, `v`: `[B*T][G*Dh]`; `probs`: `[B][H][T][T]`.
pub fn attention_forward_ref(
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
            for h in 0..hd.n_head {
                let g = h / group;
                for t in 0..t_len {
                    let qt = &q[t * qd + h * dh..t * qd + (h + 1) * dh];
                    let p = &mut probs[(h * t_len + t) * t_len..(h * t_len + t + 1) * t_len];
                    let mut max = f32::NEG_INFINITY;
                    for (s, ps) in p.iter_mut().enumerate().take(t + 1) {
                        *ps = dot(qt, &k[s * kvd + g * dh..s * kvd + (g + 1) * dh]) * scale;
                        max = max.max(*ps);
                    }
                    let mut sum = 0.0f64;
                    for ps in p.iter_mut().take(t + 1) {
                        *ps = (*ps - max).exp();
                        sum += *ps as f64;
                    }
                    let inv = (1.0 / sum) as f32;
                    p[..=t].iter_mut().for_each(|x| *x *= inv);
                    p[t + 1..].fill(0.0);
                    let ot = &mut out[t * qd + h * dh..t * qd + (h + 1) * dh];
                    ot.fill(0.0);
                    for (s, &ps) in p.iter().enumerate().take(t + 1) {
                        for (o, &vv) in ot
                            .iter_mut()
                            .zip(&v[s * kvd + g * dh..s * kvd + (g + 1) * dh])
                        {
                            *o += ps * vv;
                        }
                    }
                }
            }
        });
}

/// Backward of [`attention_forward`]. With `dP = dout·vᵀ` and `dS = P⊙(dP − rowsum(P⊙dP))`:
/// `dq = dS·k/√Dh`, `dk = dSᵀ·q/√Dh`, `dv = Pᵀ·dout` (summed over the heads of a group).
/// Overwrites `dq`, `dk`, `dv`.
///
/// # Shapes
/// `q`, `dout`, `dq`: `[B*T][H*Dh]`; `k`, `v`, `dk`, `dv`: `[B*T][G*Dh]`; `probs`: `[B][H][T][T]`.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward_ref(
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
            dq.fill(0.0);
            dk.fill(0.0);
            dv.fill(0.0);
            let mut ds = vec![0.0f32; t_len];
            for h in 0..hd.n_head {
                let g = h / group;
                let (hq, hk) = (h * dh..(h + 1) * dh, g * dh..(g + 1) * dh);
                for t in 0..t_len {
                    let p = &probs[(h * t_len + t) * t_len..(h * t_len + t) * t_len + t + 1];
                    let dot_t = &dout[t * qd + hq.start..t * qd + hq.end];
                    let mut row_dot = 0.0f32;
                    for (s, (&ps, d)) in p.iter().zip(ds.iter_mut()).enumerate() {
                        let vs = &v[s * kvd + hk.start..s * kvd + hk.end];
                        let dp = dot(dot_t, vs);
                        *d = dp;
                        row_dot += ps * dp;
                        for (o, &g) in dv[s * kvd + hk.start..s * kvd + hk.end]
                            .iter_mut()
                            .zip(dot_t)
                        {
                            *o += ps * g;
                        }
                    }
                    let qt = &q[t * qd + hq.start..t * qd + hq.end];
                    let dqt = &mut dq[t * qd + hq.start..t * qd + hq.end];
                    for (s, (&ps, d)) in p.iter().zip(ds.iter_mut()).enumerate() {
                        let dsv = ps * (*d - row_dot) * scale;
                        let ks = &k[s * kvd + hk.start..s * kvd + hk.end];
                        for (o, &kk) in dqt.iter_mut().zip(ks) {
                            *o += dsv * kk;
                        }
                        for (o, &qq) in dk[s * kvd + hk.start..s * kvd + hk.end].iter_mut().zip(qt)
                        {
                            *o += dsv * qq;
                        }
                    }
                }
            }
        });
}

fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = crate::rng::Rng::new(seed);
    (0..len).map(|_| rng.normal() as f32).collect()
}

fn assert_close(name: &str, x: &[f32], y: &[f32]) {
    for (i, (a, b)) in x.iter().zip(y).enumerate() {
        assert!(
            (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
            "{name}[{i}]: {a} vs {b}"
        );
    }
}

#[test]
fn gemm_attention_matches_loop_reference() {
    for hd in [
        Heads {
            n_head: 4,
            n_kv_head: 2,
            head_dim: 8,
            seq_len: 7,
        },
        Heads {
            n_head: 6,
            n_kv_head: 1,
            head_dim: 16,
            seq_len: 33,
        },
        Heads {
            n_head: 2,
            n_kv_head: 2,
            head_dim: 4,
            seq_len: 1,
        },
    ] {
        let b = 3;
        let (qd, kvd, t) = (
            hd.n_head * hd.head_dim,
            hd.n_kv_head * hd.head_dim,
            hd.seq_len,
        );
        let (q, k, v, dy) = (
            random(b * t * qd, 1),
            random(b * t * kvd, 2),
            random(b * t * kvd, 3),
            random(b * t * qd, 4),
        );
        let np = b * hd.n_head * t * t;
        let (mut o1, mut p1, mut o2, mut p2) = (
            vec![0.0; b * t * qd],
            vec![0.0; np],
            vec![1.0; b * t * qd],
            vec![1.0; np],
        );
        attention_forward_ref(hd, &q, &k, &v, &mut o1, &mut p1);
        attention_forward(hd, &q, &k, &v, &mut o2, &mut p2);
        assert_close("out", &o2, &o1);
        assert_close("probs", &p2, &p1);
        let z = |n: usize| vec![0.0f32; n];
        let (mut dq1, mut dk1, mut dv1) = (z(q.len()), z(k.len()), z(v.len()));
        let (mut dq2, mut dk2, mut dv2) =
            (vec![7.0; q.len()], vec![7.0; k.len()], vec![7.0; v.len()]);
        attention_backward_ref(hd, &q, &k, &v, &p1, &dy, &mut dq1, &mut dk1, &mut dv1);
        attention_backward(hd, &q, &k, &v, &p2, &dy, &mut dq2, &mut dk2, &mut dv2);
        assert_close("dq", &dq2, &dq1);
        assert_close("dk", &dk2, &dk1);
        assert_close("dv", &dv2, &dv1);
    }
}
