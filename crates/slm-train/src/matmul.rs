//! Dense f32 matrix products for the forward and backward passes, on the `gemm` crate.
//!
//! All matrices are row-major slices. The three products a linear layer needs are named by
//! which operand is transposed; `gemm` reads operands through strides, so transposes cost no copy:
//! - forward  `y  = x · Wᵀ`   ([`matmul_nt`]): `[N][out] ← [N][in] · [out][in]ᵀ`
//! - input grad `dx = dy · W` ([`matmul_nn`]): `[N][in] ← [N][out] · [out][in]`
//! - weight grad `dW += dyᵀ · x` ([`matmul_tn`]): `[out][in] ← [N][out]ᵀ · [N][in]`
//!
//! Shapes are internal invariants (every buffer is sized from the validated config), so a
//! mismatch is a bug; it is checked with `assert!` because the call below is `unsafe`.

use gemm::Parallelism;

/// Threads `gemm` may use: rayon's pool (set its size with `RAYON_NUM_THREADS` or a pool
/// `install`). Results do not depend on it: `gemm` splits output blocks, never the inner sum.
fn parallelism(m: usize, n: usize, k: usize) -> Parallelism {
    // Tiny products run faster on one thread than the fork-join costs.
    if m * n * k < 64 * 64 * 64 {
        Parallelism::None
    } else {
        Parallelism::Rayon(rayon::current_num_threads())
    }
}

/// `c[m][n] (+)= a · b` where `a` is an `m×k` view and `b` a `k×n` view given by strides.
#[allow(clippy::too_many_arguments)]
fn gemm_strided(
    c: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    a_rs: usize,
    a_cs: usize,
    b: &[f32],
    b_rs: usize,
    b_cs: usize,
    accumulate: bool,
) {
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| {
        if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * rs + (cols - 1) * cs + 1
        }
    };
    assert!(c.len() >= m * n, "matmul: output {} < {m}x{n}", c.len());
    assert!(a.len() >= last(m, k, a_rs, a_cs), "matmul: lhs too short");
    assert!(b.len() >= last(k, n, b_rs, b_cs), "matmul: rhs too short");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(0.0);
        }
        return;
    }
    // SAFETY: the asserts above bound every element gemm reads (a, b) or writes (c) through the
    // given dimensions and strides; the slices do not alias (one is &mut).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism(m, n, k),
        );
    }
}

/// `c[m][n] (+)= a[m][k] · b[n][k]ᵀ` (a linear layer's forward pass).
pub fn matmul_nt(
    c: &mut [f32],
    a: &[f32],
    b: &[f32],
    m: usize,
    n: usize,
    k: usize,
    accumulate: bool,
) {
    gemm_strided(c, m, n, k, a, k, 1, b, 1, k, accumulate);
}

/// `c[m][n] (+)= a[m][k] · b[k][n]` (gradient of a linear layer's input).
pub fn matmul_nn(
    c: &mut [f32],
    a: &[f32],
    b: &[f32],
    m: usize,
    n: usize,
    k: usize,
    accumulate: bool,
) {
    gemm_strided(c, m, n, k, a, k, 1, b, n, 1, accumulate);
}

/// `c[m][n] (+)= a[k][m]ᵀ · b[k][n]` (gradient of a linear layer's weight).
pub fn matmul_tn(
    c: &mut [f32],
    a: &[f32],
    b: &[f32],
    m: usize,
    n: usize,
    k: usize,
    accumulate: bool,
) {
    gemm_strided(c, m, n, k, a, 1, m, b, n, 1, accumulate);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(
        a: impl Fn(usize, usize) -> f32,
        b: impl Fn(usize, usize) -> f32,
        m: usize,
        n: usize,
        k: usize,
    ) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a(i, p) as f64 * b(p, j) as f64).sum::<f64>() as f32;
            }
        }
        c
    }

    fn data(len: usize, seed: f32) -> Vec<f32> {
        (0..len)
            .map(|i| (i as f32 * 0.731 + seed).sin() * 2.0)
            .collect()
    }

    fn assert_close(x: &[f32], y: &[f32]) {
        assert_eq!(x.len(), y.len());
        for (i, (a, b)) in x.iter().zip(y).enumerate() {
            assert!(
                (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                "element {i}: {a} vs {b}"
            );
        }
    }

    #[test]
    fn three_products_match_naive_loops_and_accumulate() {
        // Sizes above the single-thread cutoff and with ragged edges.
        let (m, n, k) = (67, 45, 90);
        let a = data(m * k, 0.1);
        let bt = data(n * k, 0.7); // [n][k]
        let b = data(k * n, 1.3); // [k][n]
        let at = data(k * m, 2.1); // [k][m]

        let mut c = vec![0.0; m * n];
        matmul_nt(&mut c, &a, &bt, m, n, k, false);
        assert_close(
            &c,
            &naive(|i, p| a[i * k + p], |p, j| bt[j * k + p], m, n, k),
        );

        matmul_nn(&mut c, &a, &b, m, n, k, false);
        let want_nn = naive(|i, p| a[i * k + p], |p, j| b[p * n + j], m, n, k);
        assert_close(&c, &want_nn);

        let mut acc = want_nn.clone();
        matmul_tn(&mut acc, &at, &b, m, n, k, true);
        let tn = naive(|i, p| at[p * m + i], |p, j| b[p * n + j], m, n, k);
        let want: Vec<f32> = want_nn.iter().zip(&tn).map(|(x, y)| x + y).collect();
        assert_close(&acc, &want);
    }
}
