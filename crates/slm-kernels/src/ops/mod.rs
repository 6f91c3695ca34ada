//! f32 row operations used by the transformer (norms, activations, softmax, small BLAS-1).
//!
//! All functions work on one row (or one token's heads) in place or into a caller-owned buffer
//! and never allocate. Length mismatches are caller bugs: they trip a `debug_assert`, and in
//! release the operation covers the common prefix (iterators and `zip`, never out-of-bounds).

mod attend;
mod encoder;
mod rope;
#[cfg(target_arch = "x86_64")]
mod simd_x86;
pub use attend::attend;
pub use encoder::{bias_gelu_inplace, erf, gelu_erf, gelu_tanh, layer_norm, layer_norm_inplace, Gelu};
pub use rope::{rope_inplace, RopeTable};

/// `out[i] = x[i] / rms(x) * weight[i]` with `rms(x) = sqrt(mean(x²) + eps)`, accumulated in f64
/// like ggml's `rms_norm`.
///
/// # Shapes
/// `x`, `weight`, `out`: `[d]`.
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    debug_assert!(x.len() == weight.len() && x.len() == out.len());
    if x.is_empty() {
        return;
    }
    let sum: f64 = x.iter().map(|&v| v as f64 * v as f64).sum();
    let mean = (sum / x.len() as f64) as f32;
    let scale = 1.0 / (mean + eps).sqrt();
    for ((o, &v), &g) in out.iter_mut().zip(x).zip(weight) {
        *o = v * scale * g;
    }
}

/// Replaces `x` by `softmax(x)`, subtracting the max first so large logits do not overflow.
/// `-inf` entries (masked positions) become 0. An empty row (or all `-inf`) is left as is.
/// Uses a vectorized `exp` (about 1 ulp) with AVX2.
pub fn softmax_inplace(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if use_avx2() {
        // SAFETY: avx2 and fma were detected.
        return unsafe { simd_x86::softmax(x) };
    }
    softmax_scalar(x)
}

/// Portable [`softmax_inplace`] (f64 sum, `f32::exp`).
pub(crate) fn softmax_scalar(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if x.is_empty() || max == f32::NEG_INFINITY {
        return;
    }
    let mut sum = 0.0f64;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v as f64;
    }
    let inv = (1.0 / sum) as f32;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// SiLU (swish): `x * sigmoid(x)`.
#[inline]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// The SwiGLU gate: `gate[i] = silu(gate[i]) * up[i]`.
///
/// # Shapes
/// `gate`, `up`: `[d_ff]`.
pub fn silu_mul_inplace(gate: &mut [f32], up: &[f32]) {
    debug_assert_eq!(gate.len(), up.len());
    #[cfg(target_arch = "x86_64")]
    if use_avx2() {
        // SAFETY: avx2 and fma were detected.
        return unsafe { simd_x86::silu_mul(gate, up) };
    }
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = silu(*g) * u;
    }
}

/// `acc[i] += x[i]` (residual connections).
pub fn add_inplace(acc: &mut [f32], x: &[f32]) {
    debug_assert_eq!(acc.len(), x.len());
    for (a, &v) in acc.iter_mut().zip(x) {
        *a += v;
    }
}

/// `x[i] *= a`.
pub fn scale_inplace(x: &mut [f32], a: f32) {
    for v in x.iter_mut() {
        *v *= a;
    }
}

/// Whether the AVX2 versions may be used (detected once).
#[cfg(target_arch = "x86_64")]
#[inline]
fn use_avx2() -> bool {
    matches!(crate::best_isa(), crate::Isa::Avx2 | crate::Isa::Avx512Vnni)
}

/// `sum(a[i] * b[i])` (AVX2 + FMA when available).
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if use_avx2() {
        // SAFETY: avx2 and fma were detected.
        return unsafe { simd_x86::dot(a, b) };
    }
    dot_f32_scalar(a, b)
}

/// Portable [`dot_f32`]: 16 independent partial sums so it vectorizes.
pub(crate) fn dot_f32_scalar(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 16];
    let mut ca = a.chunks_exact(16);
    let mut cb = b.chunks_exact(16);
    for (xa, xb) in (&mut ca).zip(&mut cb) {
        for ((s, &p), &q) in acc.iter_mut().zip(xa).zip(xb) {
            *s += p * q;
        }
    }
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(p, q)| p * q).sum();
    // Pairwise reduction keeps the rounding independent of the chunk order.
    let mut w = 16;
    while w > 1 {
        w /= 2;
        for i in 0..w {
            acc[i] += acc[i + w];
        }
    }
    acc[0] + tail
}

/// `acc[i] += a * x[i]` (AVX2 + FMA when available).
pub fn axpy(acc: &mut [f32], a: f32, x: &[f32]) {
    debug_assert_eq!(acc.len(), x.len());
    #[cfg(target_arch = "x86_64")]
    if use_avx2() {
        // SAFETY: avx2 and fma were detected.
        return unsafe { simd_x86::axpy(acc, a, x) };
    }
    for (s, &v) in acc.iter_mut().zip(x) {
        *s += a * v;
    }
}

/// Attention scores: `out[j] = scale * dot(q, keys[j])` for every key row.
///
/// # Shapes
/// `q`: `[d]`; `keys`: `[out.len()][d]` row-major; `out`: `[n_keys]`.
pub fn dot_rows(q: &[f32], keys: &[f32], scale: f32, out: &mut [f32]) {
    let d = q.len();
    debug_assert!(keys.len() >= out.len() * d);
    if d == 0 {
        out.fill(0.0);
        return;
    }
    for (o, k) in out.iter_mut().zip(keys.chunks_exact(d)) {
        *o = scale * dot_f32(q, k);
    }
}

/// Attention output: `out[i] = sum_j w[j] * rows[j][i]` (overwrites `out`).
///
/// # Shapes
/// `w`: `[n]`; `rows`: `[n][out.len()]` row-major; `out`: `[d]`.
pub fn weighted_sum_rows(w: &[f32], rows: &[f32], out: &mut [f32]) {
    debug_assert!(rows.len() >= w.len() * out.len());
    #[cfg(target_arch = "x86_64")]
    if use_avx2() {
        // SAFETY: avx2 and fma were detected.
        return unsafe { simd_x86::weighted_sum(w, rows, out) };
    }
    let d = out.len();
    out.fill(0.0);
    if d == 0 {
        return;
    }
    for (&wj, r) in w.iter().zip(rows.chunks_exact(d)) {
        for (o, v) in out.iter_mut().zip(r) {
            *o += wj * v;
        }
    }
}

#[cfg(test)]
mod tests;
