//! Row ops against straightforward formulas; RoPE against hand-computed rotations.

use super::*;

fn close(a: f32, b: f32, tol: f32) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

#[test]
fn rms_norm_matches_formula() {
    let x = [1.0f32, -2.0, 3.0, 0.5];
    let w = [1.0f32, 2.0, 0.5, -1.0];
    let mut out = [0.0; 4];
    rms_norm(&x, &w, 1e-5, &mut out);
    let ms = (1.0 + 4.0 + 9.0 + 0.25) / 4.0;
    let inv = 1.0 / (ms + 1e-5f32).sqrt();
    for i in 0..4 {
        assert!(close(out[i], x[i] * inv * w[i], 1e-6), "{i}: {}", out[i]);
    }
    rms_norm(&[], &[], 1e-5, &mut []);
}

#[test]
fn softmax_is_stable_and_normalized() {
    let mut x = [1000.0f32, 1001.0, 999.0, f32::NEG_INFINITY];
    softmax_inplace(&mut x);
    let e = [(-1.0f32).exp(), 1.0, (-2.0f32).exp()];
    let s: f32 = e.iter().sum();
    for i in 0..3 {
        assert!(close(x[i], e[i] / s, 1e-6));
    }
    assert_eq!(x[3], 0.0);
    assert!(close(x.iter().sum::<f32>(), 1.0, 1e-6));
    let mut all_masked = [f32::NEG_INFINITY; 2];
    softmax_inplace(&mut all_masked);
    softmax_inplace(&mut []);
}

#[test]
fn silu_mul_matches_formula() {
    let mut g = [-3.0f32, 0.0, 2.0, 10.0];
    let u = [2.0f32, 5.0, -1.0, 0.5];
    let want: Vec<f32> = g.iter().zip(&u).map(|(g, u)| g / (1.0 + (-g).exp()) * u).collect();
    silu_mul_inplace(&mut g, &u);
    for (a, b) in g.iter().zip(&want) {
        assert!(close(*a, *b, 1e-6));
    }
    assert!(close(silu(2.0), 2.0 * (1.0 / (1.0 + (-2.0f32).exp())), 1e-6));
}

#[test]
fn blas1_helpers() {
    let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.5 - 3.0).collect();
    let b: Vec<f32> = (0..37).map(|i| (i as f32).sin()).collect();
    let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
    assert!((dot_f32(&a, &b) as f64 - want).abs() < 1e-4);
    let mut acc = b.clone();
    axpy(&mut acc, 2.0, &a);
    for i in 0..37 {
        assert_eq!(acc[i], b[i] + 2.0 * a[i]);
    }
    let mut acc = b.clone();
    add_inplace(&mut acc, &a);
    assert_eq!(acc[5], a[5] + b[5]);
    scale_inplace(&mut acc, 0.0);
    assert!(acc.iter().all(|v| *v == 0.0));
}

#[test]
fn rope_normal_rotates_adjacent_pairs_by_hand_computed_angles() {
    // head_dim 4, base 100: pair 0 angle = pos, pair 1 angle = pos * 100^(-2/4) = pos / 10.
    let table = RopeTable::new(4, 100.0, 8);
    let mut x = [1.0f32, 0.0, 0.0, 2.0, /* head 2 */ 3.0, 4.0, 1.0, 1.0];
    rope_inplace(&mut x, 2, 4, 3, &table, false);
    let (c0, s0) = (3.0f32.cos(), 3.0f32.sin());
    let (c1, s1) = (0.3f32.cos(), 0.3f32.sin());
    let want = [c0, s0, -2.0 * s1, 2.0 * c1, 3.0 * c0 - 4.0 * s0, 3.0 * s0 + 4.0 * c0, c1 - s1, s1 + c1];
    for (a, b) in x.iter().zip(&want) {
        assert!(close(*a, *b, 1e-6), "{x:?} vs {want:?}");
    }
}

#[test]
fn rope_neox_rotates_half_split_pairs() {
    let table = RopeTable::new(4, 100.0, 8);
    let mut x = [1.0f32, 0.0, 0.0, 2.0];
    rope_inplace(&mut x, 1, 4, 3, &table, true);
    // pairs (x0, x2) with angle 3 and (x1, x3) with angle 0.3
    let (c0, s0) = (3.0f32.cos(), 3.0f32.sin());
    let (c1, s1) = (0.3f32.cos(), 0.3f32.sin());
    let want = [c0, -2.0 * s1, s0, 2.0 * c1];
    for (a, b) in x.iter().zip(&want) {
        assert!(close(*a, *b, 1e-6), "{x:?} vs {want:?}");
    }
}

#[test]
fn rope_position_zero_is_identity_and_norm_is_preserved() {
    let table = RopeTable::new(64, 10000.0, 16);
    let orig: Vec<f32> = (0..3 * 64).map(|i| (i as f32 * 0.37).cos()).collect();
    let mut x = orig.clone();
    rope_inplace(&mut x, 3, 64, 0, &table, false);
    assert_eq!(x, orig);
    rope_inplace(&mut x, 3, 64, 11, &table, true);
    let n0: f32 = orig.iter().map(|v| v * v).sum();
    let n1: f32 = x.iter().map(|v| v * v).sum();
    assert!(close(n0, n1, 1e-5));
}

#[test]
fn rope_beyond_table_matches_a_larger_table() {
    let small = RopeTable::new(64, 10000.0, 4);
    let big = RopeTable::new(64, 10000.0, 100);
    let orig: Vec<f32> = (0..64).map(|i| (i as f32 * 0.1).sin()).collect();
    let (mut a, mut b) = (orig.clone(), orig);
    rope_inplace(&mut a, 1, 64, 77, &small, false);
    rope_inplace(&mut b, 1, 64, 77, &big, false);
    assert_eq!(a, b);
}

#[test]
fn rope_matches_ggml_angle_recurrence() {
    // ggml: theta_scale = base^(-2/n_dims); theta_0 = pos; theta_{i+1} = theta_i * theta_scale (f32).
    let (n, base, pos) = (64usize, 100000.0f32, 1234usize);
    let table = RopeTable::new(n, base, 2048);
    let theta_scale = base.powf(-2.0 / n as f32);
    let mut x = vec![0.0f32; n];
    for i in 0..n / 2 {
        x[2 * i] = 1.0;
    }
    rope_inplace(&mut x, 1, n, pos, &table, false);
    let mut theta = pos as f32;
    for i in 0..n / 2 {
        assert_eq!((x[2 * i], x[2 * i + 1]), (theta.cos(), theta.sin()), "pair {i}");
        theta *= theta_scale;
    }
}

#[test]
fn rope_partial_rotation_and_freq_factors() {
    // n_rot 2 of head_dim 4: dims 2,3 untouched; freq factor 2 halves the angle.
    let table = RopeTable::with_scaling(2, 10000.0, 8, 1.0, &[2.0]);
    let mut x = [1.0f32, 0.0, 5.0, 6.0];
    rope_inplace(&mut x, 1, 4, 4, &table, false);
    assert!(close(x[0], 2.0f32.cos(), 1e-6) && close(x[1], 2.0f32.sin(), 1e-6));
    assert_eq!((x[2], x[3]), (5.0, 6.0));
}

#[test]
fn simd_blas1_matches_scalar_for_all_lengths() {
    for n in [0usize, 1, 7, 8, 9, 31, 32, 33, 64, 100, 257] {
        let a: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.01).collect();
        let b: Vec<f32> = (0..n).map(|i| ((i * 53 % 97) as f32 - 48.0) * 0.02).collect();
        let exact: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let mag: f64 = a.iter().zip(&b).map(|(x, y)| (*x as f64 * *y as f64).abs()).sum();
        assert!((dot_f32(&a, &b) as f64 - exact).abs() <= 1e-6 * mag + 1e-7, "dot n={n}");
        assert!((dot_f32_scalar(&a, &b) as f64 - exact).abs() <= 1e-6 * mag + 1e-7);
        let mut acc = b.clone();
        axpy(&mut acc, 0.75, &a);
        for i in 0..n {
            assert!((acc[i] - (b[i] + 0.75 * a[i])).abs() <= 1e-6, "axpy n={n} i={i}");
        }
    }
}

#[test]
fn attention_helpers_match_naive_loops() {
    for d in [4usize, 64, 72, 130] {
        let n = 13;
        let q: Vec<f32> = (0..d).map(|i| (i as f32 * 0.3).sin()).collect();
        let keys: Vec<f32> = (0..n * d).map(|i| (i as f32 * 0.17).cos()).collect();
        let mut scores = vec![0.0; n];
        dot_rows(&q, &keys, 0.5, &mut scores);
        for j in 0..n {
            let want: f32 = q.iter().zip(&keys[j * d..(j + 1) * d]).map(|(a, b)| a * b).sum::<f32>() * 0.5;
            assert!(close(scores[j], want, 1e-5), "d={d} j={j}");
        }
        let mut out = vec![f32::NAN; d];
        weighted_sum_rows(&scores, &keys, &mut out);
        for i in 0..d {
            let want: f32 = (0..n).map(|j| scores[j] * keys[j * d + i]).sum();
            assert!(close(out[i], want, 1e-5), "d={d} i={i}: {} vs {want}", out[i]);
        }
    }
}

#[test]
fn vectorized_softmax_and_silu_match_scalar() {
    for n in [1usize, 5, 8, 17, 64, 513] {
        let mut x: Vec<f32> = (0..n).map(|i| ((i * 7919 % 211) as f32 - 100.0) * 0.173).collect();
        if n > 3 {
            x[2] = f32::NEG_INFINITY;
        }
        let mut a = x.clone();
        let mut b = x.clone();
        softmax_inplace(&mut a);
        softmax_scalar(&mut b);
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() <= 1e-6 * q.max(1e-30) + 1e-12, "n={n}: {p} vs {q}");
        }
        let up: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).cos()).collect();
        let mut g1: Vec<f32> = x.iter().map(|v| v.max(-50.0)).collect();
        let g0 = g1.clone();
        silu_mul_inplace(&mut g1, &up);
        for ((r, g), u) in g1.iter().zip(&g0).zip(&up) {
            let want = (*g as f64 / (1.0 + (-*g as f64).exp()) * *u as f64) as f32;
            assert!((r - want).abs() <= 1e-6 * want.abs() + 1e-30, "silu n={n}: {r} vs {want}");
        }
    }
}
