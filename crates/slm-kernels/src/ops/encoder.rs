//! Row operations of BERT-style encoders: LayerNorm (with bias) and GELU, exact (erf) and tanh
//! approximation.

/// Mean and (biased) variance of `x`, two passes with eight f32 partial sums each (the compiler
/// vectorizes them; PyTorch's LayerNorm also accumulates in f32).
fn mean_var(x: &[f32]) -> (f32, f32) {
    let n = x.len() as f32;
    let mean = sum8(x, |v| v) / n;
    let var = sum8(x, |v| (v - mean) * (v - mean)) / n;
    (mean, var)
}

/// `Σ f(x[i])` over eight interleaved partial sums.
#[inline(always)]
fn sum8(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = x.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `out[i] = (x[i] - mean) / sqrt(var + eps) * weight[i] + bias[i]` with the mean and the
/// (biased) variance of `x`.
///
/// # Shapes
/// `x`, `weight`, `bias`, `out`: `[d]`.
pub fn layer_norm(x: &[f32], weight: &[f32], bias: &[f32], eps: f32, out: &mut [f32]) {
    debug_assert!(x.len() == weight.len() && x.len() == bias.len() && x.len() == out.len());
    if x.is_empty() {
        return;
    }
    let (mean, var) = mean_var(x);
    let inv = 1.0 / (var + eps).sqrt();
    for (((o, &v), &g), &b) in out.iter_mut().zip(x).zip(weight).zip(bias) {
        *o = (v - mean) * inv * g + b;
    }
}

/// [`layer_norm`] in place.
pub fn layer_norm_inplace(x: &mut [f32], weight: &[f32], bias: &[f32], eps: f32) {
    debug_assert!(x.len() == weight.len() && x.len() == bias.len());
    if x.is_empty() {
        return;
    }
    let (mean, var) = mean_var(x);
    let inv = 1.0 / (var + eps).sqrt();
    for ((v, &g), &b) in x.iter_mut().zip(weight).zip(bias) {
        *v = (*v - mean) * inv * g + b;
    }
}

/// The error function, |error| < 1.2e-7 (Numerical Recipes' `erfc` Chebyshev fit, in f64).
pub fn erf(x: f32) -> f32 {
    let z = (x as f64).abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    let r = 1.0 - erfc;
    (if x >= 0.0 { r } else { -r }) as f32
}

/// Exact GELU, `x · Φ(x) = x/2 · (1 + erf(x/√2))`, as PyTorch's default `gelu` (BERT's "gelu").
#[inline]
pub fn gelu_erf(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// GELU with the tanh approximation (`gelu_new`, `gelu_pytorch_tanh`, ggml's `gelu`).
#[inline]
pub fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x)).tanh())
}

/// Which GELU a model was trained with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gelu {
    /// Exact, via erf.
    Erf,
    /// tanh approximation.
    Tanh,
}

/// `x[i] = gelu(x[i] + bias[i])` for one row.
///
/// # Shapes
/// `x`, `bias`: `[d]`.
pub fn bias_gelu_inplace(x: &mut [f32], bias: &[f32], kind: Gelu) {
    debug_assert_eq!(x.len(), bias.len());
    match kind {
        Gelu::Erf => {
            #[cfg(target_arch = "x86_64")]
            if super::use_avx2() {
                // SAFETY: avx2 and fma were detected.
                return unsafe { super::simd_x86::bias_gelu_erf(x, bias) };
            }
            x.iter_mut().zip(bias).for_each(|(v, &b)| *v = gelu_erf(*v + b))
        }
        Gelu::Tanh => x.iter_mut().zip(bias).for_each(|(v, &b)| *v = gelu_tanh(*v + b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        // Values from the definition (Abramowitz & Stegun table 7.1).
        for (x, want) in [(0.0, 0.0), (0.5, 0.520_499_9), (1.0, 0.842_700_8), (2.0, 0.995_322_3), (-1.0, -0.842_700_8)]
        {
            assert!((erf(x) - want).abs() < 2e-7, "erf({x}) = {} want {want}", erf(x));
        }
        assert_eq!(erf(f32::INFINITY), 1.0);
        assert_eq!(erf(f32::NEG_INFINITY), -1.0);
    }

    #[test]
    fn gelu_variants_agree_roughly_and_match_points() {
        // torch.nn.functional.gelu(torch.tensor([-3., -1., 0.5, 2.])) (exact) →
        // [-0.0040497, -0.1586553, 0.3457312, 1.9544997].
        for (x, want) in [(-3.0, -0.004_049_7), (-1.0, -0.158_655_3), (0.5, 0.345_731_2), (2.0, 1.954_499_7)] {
            assert!((gelu_erf(x) - want).abs() < 1e-6, "gelu({x})");
            assert!((gelu_tanh(x) - want).abs() < 1e-3, "gelu_tanh({x})");
        }
    }

    #[test]
    fn vectorized_gelu_matches_the_scalar_one() {
        let n = 1000 + 5;
        let x: Vec<f32> = (0..n).map(|i| (i as f32 - 500.0) / 60.0).collect();
        let bias: Vec<f32> = (0..n).map(|i| ((i % 7) as f32 - 3.0) / 10.0).collect();
        let mut got = x.clone();
        bias_gelu_inplace(&mut got, &bias, Gelu::Erf);
        for ((g, &v), &b) in got.iter().zip(&x).zip(&bias) {
            let want = gelu_erf(v + b);
            assert!((g - want).abs() <= 2e-7 * (1.0 + (v + b).abs()), "gelu({}) = {g}, want {want}", v + b);
        }
    }

    #[test]
    fn layer_norm_normalizes_then_scales_and_shifts() {
        let x = [1.0f32, 2.0, 3.0, 4.0];
        let (w, b) = ([1.0f32; 4], [0.5f32; 4]);
        let mut out = [0.0f32; 4];
        layer_norm(&x, &w, &b, 1e-12, &mut out);
        // mean 2.5, var 1.25 → (x - 2.5) / 1.118034 + 0.5
        let want = [-0.841_640_8, 0.052_786_4, 0.947_213_6, 1.841_640_8];
        for (o, w) in out.iter().zip(want) {
            assert!((o - w).abs() < 1e-6);
        }
        let mut y = x;
        layer_norm_inplace(&mut y, &w, &b, 1e-12);
        assert_eq!(y, out);
    }
}
