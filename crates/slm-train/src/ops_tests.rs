//! Finite-difference checks of every op's backward pass (the whole model is checked in
//! `tests/gradcheck.rs`).
//!
//! Each op is reduced to the scalar `L = Σ dy ⊙ op(x)` (summed in f64) with a fixed random
//! `dy`; the analytic gradient must match the central difference `(L(x+h) − L(x−h)) / 2h`
//! within `2e-3 + 1e-2·|g|` (f32 forward rounding divided by `h = 1e-3` stays below 1e-3).

use super::*;
use crate::attention::{attention_backward, attention_forward, Heads};
use crate::rng::Rng;

const H: f32 = 1e-3;
const TOL_ABS: f64 = 2e-3;
const TOL_REL: f64 = 1e-2;

fn random(len: usize, scale: f64, rng: &mut Rng) -> Vec<f32> {
    (0..len).map(|_| (rng.normal() * scale) as f32).collect()
}

fn weighted_sum(dy: &[f32], y: &[f32]) -> f64 {
    dy.iter().zip(y).map(|(&a, &b)| a as f64 * b as f64).sum()
}

/// Compares `analytic` with central differences of `f` around `x`, for every element.
fn check(name: &str, x: &[f32], analytic: &[f32], f: impl Fn(&[f32]) -> f64) {
    assert_eq!(x.len(), analytic.len(), "{name}: gradient length");
    let mut xp = x.to_vec();
    let mut worst = 0.0f64;
    for i in 0..x.len() {
        xp[i] = x[i] + H;
        let fp = f(&xp);
        let up = xp[i];
        xp[i] = x[i] - H;
        let fm = f(&xp);
        let step = (up - xp[i]) as f64; // the perturbation actually applied in f32
        xp[i] = x[i];
        let num = (fp - fm) / step;
        let ana = analytic[i] as f64;
        let err = (num - ana).abs();
        assert!(
            err <= TOL_ABS + TOL_REL * ana.abs(),
            "{name}[{i}]: analytic {ana} vs numeric {num}"
        );
        worst = worst.max(err);
    }
    assert!(worst.is_finite());
}

#[test]
fn rms_norm_backward_matches_finite_differences() {
    let mut rng = Rng::new(1);
    let (n, d) = (3, 8);
    let x = random(n * d, 1.0, &mut rng);
    let w: Vec<f32> = (0..d).map(|_| 1.0 + 0.3 * rng.normal() as f32).collect();
    let dy = random(n * d, 1.0, &mut rng);
    let fwd = |x: &[f32], w: &[f32]| {
        let (mut y, mut r) = (vec![0.0; n * d], vec![0.0; n]);
        rms_norm_forward(x, w, 1e-5, &mut y, &mut r);
        (y, r)
    };
    let (_, r) = fwd(&x, &w);
    let (mut dx, mut dw) = (vec![0.0; n * d], vec![0.0; d]);
    rms_norm_backward(&x, &w, &r, &dy, &mut dx, &mut dw);
    check("rms dx", &x, &dx, |x| weighted_sum(&dy, &fwd(x, &w).0));
    check("rms dw", &w, &dw, |w| weighted_sum(&dy, &fwd(&x, w).0));
}

#[test]
fn rms_norm_backward_accumulates() {
    let mut rng = Rng::new(2);
    let (n, d) = (2, 4);
    let x = random(n * d, 1.0, &mut rng);
    let w = vec![1.0; d];
    let dy = random(n * d, 1.0, &mut rng);
    let (mut y, mut r) = (vec![0.0; n * d], vec![0.0; n]);
    rms_norm_forward(&x, &w, 1e-5, &mut y, &mut r);
    let (mut dx1, mut dw1) = (vec![0.0; n * d], vec![0.0; d]);
    rms_norm_backward(&x, &w, &r, &dy, &mut dx1, &mut dw1);
    let (mut dx2, mut dw2) = (dx1.clone(), dw1.clone());
    rms_norm_backward(&x, &w, &r, &dy, &mut dx2, &mut dw2);
    for (a, b) in dx1.iter().zip(&dx2).chain(dw1.iter().zip(&dw2)) {
        assert_eq!(2.0 * a, *b);
    }
}

#[test]
fn rope_backward_is_the_inverse_rotation() {
    let mut rng = Rng::new(3);
    let (t, heads, dh) = (5, 2, 8);
    let rope = RopeCache::new(dh, 10_000.0, t);
    let x = random(2 * t * heads * dh, 1.0, &mut rng);
    let dy = random(x.len(), 1.0, &mut rng);
    let mut dx = dy.clone();
    rope.apply(&mut dx, heads * dh, t, true);
    check("rope", &x, &dx, |x| {
        let mut y = x.to_vec();
        rope.apply(&mut y, heads * dh, t, false);
        weighted_sum(&dy, &y)
    });
}

#[test]
fn rope_matches_slm_kernels_table_bit_for_bit() {
    let (t, dh) = (37, 64);
    let rope = RopeCache::new(dh, 100_000.0, t);
    let table = slm_kernels::ops::RopeTable::new(dh, 100_000.0, t);
    let mut rng = Rng::new(4);
    let x = random(t * dh, 1.0, &mut rng);
    let mut mine = x.clone();
    rope.apply(&mut mine, dh, t, false);
    for (p, row) in x.chunks_exact(dh).enumerate() {
        let mut theirs = row.to_vec();
        slm_kernels::ops::rope_inplace(&mut theirs, 1, dh, p, &table, false);
        assert_eq!(&mine[p * dh..(p + 1) * dh], &theirs[..], "position {p}");
    }
}

#[test]
fn swiglu_backward_matches_finite_differences() {
    let mut rng = Rng::new(5);
    let len = 24;
    let (g, u, dy) = (
        random(len, 2.0, &mut rng),
        random(len, 1.0, &mut rng),
        random(len, 1.0, &mut rng),
    );
    let (mut dg, mut du) = (vec![0.0; len], vec![0.0; len]);
    swiglu_backward(&g, &u, &dy, &mut dg, &mut du);
    let fwd = |g: &[f32], u: &[f32]| {
        let mut h = vec![0.0; len];
        swiglu_forward(g, u, &mut h);
        weighted_sum(&dy, &h)
    };
    check("swiglu dgate", &g, &dg, |g| fwd(g, &u));
    check("swiglu dup", &u, &du, |u| fwd(&g, u));
}

#[test]
fn cross_entropy_gradient_and_value() {
    let mut rng = Rng::new(6);
    let (n, v) = (3, 7);
    let logits = random(n * v, 2.0, &mut rng);
    let targets = [0u32, 6, 3];
    let mut grad = logits.clone();
    let loss = cross_entropy_in_place(&mut grad, &targets, v, 1.0);
    // The value against a direct f64 log-softmax.
    let want: f64 = logits
        .chunks_exact(v)
        .zip(&targets)
        .map(|(row, &t)| {
            let lse = row.iter().map(|&x| (x as f64).exp()).sum::<f64>().ln();
            lse - row[t as usize] as f64
        })
        .sum();
    assert!((loss - want).abs() < 1e-5, "{loss} vs {want}");
    check("cross-entropy", &logits, &grad, |x| {
        cross_entropy_in_place(&mut x.to_vec(), &targets, v, 1.0)
    });
}

#[test]
fn attention_backward_matches_finite_differences() {
    let mut rng = Rng::new(7);
    let hd = Heads {
        n_head: 4,
        n_kv_head: 2,
        head_dim: 4,
        seq_len: 5,
    };
    let (b, t) = (2, hd.seq_len);
    let (qd, kvd) = (hd.n_head * hd.head_dim, hd.n_kv_head * hd.head_dim);
    let q = random(b * t * qd, 1.0, &mut rng);
    let k = random(b * t * kvd, 1.0, &mut rng);
    let v = random(b * t * kvd, 1.0, &mut rng);
    let dy = random(b * t * qd, 1.0, &mut rng);
    let fwd = |q: &[f32], k: &[f32], v: &[f32]| {
        let (mut out, mut p) = (vec![0.0; b * t * qd], vec![0.0; b * hd.n_head * t * t]);
        attention_forward(hd, q, k, v, &mut out, &mut p);
        (out, p)
    };
    let (_, p) = fwd(&q, &k, &v);
    let (mut dq, mut dk, mut dv) = (vec![0.0; q.len()], vec![0.0; k.len()], vec![0.0; v.len()]);
    attention_backward(hd, &q, &k, &v, &p, &dy, &mut dq, &mut dk, &mut dv);
    check("attn dq", &q, &dq, |q| weighted_sum(&dy, &fwd(q, &k, &v).0));
    check("attn dk", &k, &dk, |k| weighted_sum(&dy, &fwd(&q, k, &v).0));
    check("attn dv", &v, &dv, |v| weighted_sum(&dy, &fwd(&q, &k, v).0));
}

#[test]
fn attention_is_causal() {
    // Changing the last token's key/value must not change any earlier output.
    let mut rng = Rng::new(8);
    let hd = Heads {
        n_head: 2,
        n_kv_head: 1,
        head_dim: 4,
        seq_len: 4,
    };
    let (qd, kvd, t) = (8, 4, 4);
    let q = random(t * qd, 1.0, &mut rng);
    let mut k = random(t * kvd, 1.0, &mut rng);
    let v = random(t * kvd, 1.0, &mut rng);
    let (mut o1, mut o2, mut p) = (vec![0.0; t * qd], vec![0.0; t * qd], vec![0.0; 2 * t * t]);
    attention_forward(hd, &q, &k, &v, &mut o1, &mut p);
    k[(t - 1) * kvd] += 5.0;
    attention_forward(hd, &q, &k, &v, &mut o2, &mut p);
    assert_eq!(o1[..(t - 1) * qd], o2[..(t - 1) * qd]);
    assert_ne!(o1[(t - 1) * qd..], o2[(t - 1) * qd..]);
}
