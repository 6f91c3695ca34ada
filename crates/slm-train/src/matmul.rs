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

/// A read-only matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    /// The backing slice (must cover every element of the view).
    pub data: &'a [f32],
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

impl<'a> View<'a> {
    /// A row-major `[rows][cols]` matrix whose rows are `rs` apart (`rs = cols` when dense).
    pub fn rows(data: &'a [f32], rs: usize) -> View<'a> {
        View { data, rs, cs: 1 }
    }

    /// The transpose of a row-major matrix whose rows are `rs` apart.
    pub fn transposed(data: &'a [f32], rs: usize) -> View<'a> {
        View {
            data,
            rs: 1,
            cs: rs,
        }
    }
}

/// Smallest slice length that holds a `rows×cols` view with strides `rs`, `cs`.
fn extent(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * rs + (cols - 1) * cs + 1
    }
}

/// `c (+)= scale · a · b` for an `m×k` view `a`, a `k×n` view `b` and a row-major `m×n` output
/// whose rows are `c_rs` apart, on the calling thread (for use inside parallel tasks).
#[allow(clippy::too_many_arguments)]
pub fn gemm_view(
    c: &mut [f32],
    c_rs: usize,
    m: usize,
    n: usize,
    k: usize,
    a: View,
    b: View,
    scale: f32,
    accumulate: bool,
) {
    gemm_impl(c, c_rs, m, n, k, a, b, scale, accumulate, Parallelism::None)
}

#[allow(clippy::too_many_arguments)]
fn gemm_impl(
    c: &mut [f32],
    c_rs: usize,
    m: usize,
    n: usize,
    k: usize,
    a: View,
    b: View,
    scale: f32,
    accumulate: bool,
    par: Parallelism,
) {
    assert!(
        c.len() >= extent(m, n, c_rs, 1),
        "matmul: output {} too short for {m}x{n}",
        c.len()
    );
    assert!(
        a.data.len() >= extent(m, k, a.rs, a.cs),
        "matmul: lhs too short"
    );
    assert!(
        b.data.len() >= extent(k, n, b.rs, b.cs),
        "matmul: rhs too short"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for row in c.chunks_mut(c_rs.max(1)).take(m) {
                row[..n].fill(0.0);
            }
        }
        return;
    }
    // SAFETY: the asserts above bound every element gemm reads (a, b) or writes (c) through the
    // given dimensions and strides; the slices do not alias (c is &mut).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            c_rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0f32,
            scale,
            false,
            false,
            false,
            par,
        );
    }
}

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
    let (a, b) = (
        View {
            data: a,
            rs: a_rs,
            cs: a_cs,
        },
        View {
            data: b,
            rs: b_rs,
            cs: b_cs,
        },
    );
    gemm_impl(c, n, m, n, k, a, b, 1.0, accumulate, parallelism(m, n, k));
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
