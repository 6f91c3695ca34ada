//! AVX2 + FMA versions of the BLAS-1 helpers in [`super`] (attention's inner loops).
//! All functions require avx2 and fma; [`super`] calls them only after detection.

use std::arch::x86_64::*;

#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

/// `sum(a[i] * b[i])` over the common length.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY (all loads): i + 8 <= n <= a.len(), b.len().
    unsafe {
        while i + 32 <= n {
            for (k, s) in acc.iter_mut().enumerate() {
                *s = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 8 * k)), _mm256_loadu_ps(pb.add(i + 8 * k)), *s);
            }
            i += 32;
        }
        while i + 8 <= n {
            acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc[0]);
            i += 8;
        }
    }
    let mut s = hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for (x, y) in a[i..n].iter().zip(&b[i..n]) {
        s += x * y;
    }
    s
}

/// `acc[i] += a * x[i]` over the common length.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn axpy(acc: &mut [f32], a: f32, x: &[f32]) {
    let n = acc.len().min(x.len());
    let av = _mm256_set1_ps(a);
    let (pa, px) = (acc.as_mut_ptr(), x.as_ptr());
    let mut i = 0;
    // SAFETY: i + 8 <= n <= acc.len(), x.len().
    unsafe {
        while i + 8 <= n {
            _mm256_storeu_ps(pa.add(i), _mm256_fmadd_ps(av, _mm256_loadu_ps(px.add(i)), _mm256_loadu_ps(pa.add(i))));
            i += 8;
        }
    }
    for (s, v) in acc[i..n].iter_mut().zip(&x[i..n]) {
        *s += a * v;
    }
}

/// `out[i] = sum_j w[j] * rows[j * d + i]` with `d = out.len()`, keeping 64 outputs in
/// registers while streaming the rows.
#[target_feature(enable = "avx2,fma")]
pub(super) fn weighted_sum(w: &[f32], rows: &[f32], out: &mut [f32]) {
    let d = out.len();
    let n = w.len().min(rows.len().checked_div(d).unwrap_or(0));
    let mut c = 0;
    while c + 64 <= d {
        let mut acc = [_mm256_setzero_ps(); 8];
        for (j, &wj) in w.iter().enumerate().take(n) {
            let wv = _mm256_set1_ps(wj);
            // SAFETY: j < n so (j + 1) * d <= rows.len(); c + 64 <= d.
            let p = unsafe { rows.as_ptr().add(j * d + c) };
            for (k, s) in acc.iter_mut().enumerate() {
                *s = _mm256_fmadd_ps(wv, unsafe { _mm256_loadu_ps(p.add(8 * k)) }, *s);
            }
        }
        for (k, s) in acc.iter().enumerate() {
            // SAFETY: c + 64 <= d = out.len().
            unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(c + 8 * k), *s) };
        }
        c += 64;
    }
    if c < d {
        out[c..].fill(0.0);
        for (j, &wj) in w.iter().enumerate().take(n) {
            axpy(&mut out[c..], wj, &rows[j * d + c..(j + 1) * d]);
        }
    }
}

/// `exp(x)` for 8 lanes, Cephes-style: `x = n ln2 + r` with a two-part ln2, a degree-6
/// polynomial for `e^r`, and `2^n` built in the exponent bits. About 1 ulp on
/// `[-87.33, 88.37]`; larger inputs saturate at `e^88.37`, smaller ones (whose exp would be
/// subnormal) and -inf give 0. Callers never pass NaN (softmax subtracts a finite max).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn exp8(x: __m256) -> __m256 {
    const HI: f32 = 88.376_26;
    const LO: f32 = -87.336_55; // ln(f32::MIN_POSITIVE)
    let too_small = _mm256_cmp_ps(x, _mm256_set1_ps(LO), _CMP_LT_OQ);
    let x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(LO)), _mm256_set1_ps(HI));
    let fx = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E), _mm256_set1_ps(0.5)));
    let r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693_359_4), x);
    let r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.121_944_4e-4), r);
    let mut p = _mm256_set1_ps(1.987_569_1e-4);
    for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5] {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
    }
    let y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0));
    let pow2 =
        _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23));
    _mm256_andnot_ps(too_small, _mm256_mul_ps(y, pow2))
}

/// In-place softmax of `x` (max-subtracted, vectorized exp).
#[target_feature(enable = "avx2,fma")]
pub(super) fn softmax(x: &mut [f32]) {
    let n = x.len();
    let mut mv = _mm256_set1_ps(f32::NEG_INFINITY);
    let mut i = 0;
    // SAFETY (all pointer accesses): i + 8 <= n.
    unsafe {
        while i + 8 <= n {
            mv = _mm256_max_ps(mv, _mm256_loadu_ps(x.as_ptr().add(i)));
            i += 8;
        }
    }
    let lanes = {
        let mut l = [0.0f32; 8];
        unsafe { _mm256_storeu_ps(l.as_mut_ptr(), mv) };
        l
    };
    let max = x[i..].iter().chain(lanes.iter()).copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return;
    }
    let m = _mm256_set1_ps(max);
    let mut sv = _mm256_setzero_ps();
    let mut tail = 0.0f32;
    i = 0;
    unsafe {
        while i + 8 <= n {
            let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x.as_ptr().add(i)), m));
            _mm256_storeu_ps(x.as_mut_ptr().add(i), e);
            sv = _mm256_add_ps(sv, e);
            i += 8;
        }
    }
    for v in x[i..].iter_mut() {
        *v = (*v - max).exp();
        tail += *v;
    }
    let inv = 1.0 / (hsum(sv) + tail);
    let iv = _mm256_set1_ps(inv);
    i = 0;
    unsafe {
        while i + 8 <= n {
            _mm256_storeu_ps(x.as_mut_ptr().add(i), _mm256_mul_ps(_mm256_loadu_ps(x.as_ptr().add(i)), iv));
            i += 8;
        }
    }
    for v in x[i..].iter_mut() {
        *v *= inv;
    }
}

/// `gate[i] = silu(gate[i]) * up[i]` with the vectorized exp.
#[target_feature(enable = "avx2,fma")]
pub(super) fn silu_mul(gate: &mut [f32], up: &[f32]) {
    let n = gate.len().min(up.len());
    let one = _mm256_set1_ps(1.0);
    let mut i = 0;
    // SAFETY: i + 8 <= n <= gate.len(), up.len().
    unsafe {
        while i + 8 <= n {
            let g = _mm256_loadu_ps(gate.as_ptr().add(i));
            let e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
            let s = _mm256_div_ps(g, _mm256_add_ps(one, e));
            _mm256_storeu_ps(gate.as_mut_ptr().add(i), _mm256_mul_ps(s, _mm256_loadu_ps(up.as_ptr().add(i))));
            i += 8;
        }
    }
    for (g, u) in gate[i..n].iter_mut().zip(&up[i..n]) {
        *g = super::silu(*g) * u;
    }
}

/// `x[i] = gelu(x[i] + bias[i])`, exact GELU with erf from Abramowitz & Stegun 7.1.26
/// (|error| < 1.5e-7) and the vectorized exp.
#[target_feature(enable = "avx2,fma")]
pub(super) fn bias_gelu_erf(x: &mut [f32], bias: &[f32]) {
    let n = x.len().min(bias.len());
    let (half, one) = (_mm256_set1_ps(0.5), _mm256_set1_ps(1.0));
    let sign_mask = _mm256_set1_ps(-0.0);
    let mut i = 0;
    // SAFETY: i + 8 <= n <= x.len(), bias.len().
    unsafe {
        while i + 8 <= n {
            let v = _mm256_add_ps(_mm256_loadu_ps(x.as_ptr().add(i)), _mm256_loadu_ps(bias.as_ptr().add(i)));
            let z = _mm256_mul_ps(v, _mm256_set1_ps(std::f32::consts::FRAC_1_SQRT_2));
            let a = _mm256_andnot_ps(sign_mask, z);
            let t = _mm256_div_ps(one, _mm256_fmadd_ps(a, _mm256_set1_ps(0.327_591_1), one));
            let mut p = _mm256_set1_ps(1.061_405_4);
            for c in [-1.453_152_1, 1.421_413_8, -0.284_496_72, 0.254_829_6] {
                p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(c));
            }
            p = _mm256_mul_ps(p, t);
            let e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(a, a)));
            let erf_abs = _mm256_fnmadd_ps(p, e, one);
            let erf = _mm256_or_ps(erf_abs, _mm256_and_ps(sign_mask, z));
            let g = _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, erf));
            _mm256_storeu_ps(x.as_mut_ptr().add(i), g);
            i += 8;
        }
    }
    for (v, &b) in x[i..n].iter_mut().zip(&bias[i..n]) {
        *v = super::gelu_erf(*v + b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp8_is_accurate_and_handles_extremes() {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            return;
        }
        let mut worst = 0.0f64;
        let mut x = -87.3f32;
        while x < 88.0 {
            let xs = [x, x + 0.013, x + 0.029, x + 0.031, x + 0.047, x + 0.05, x + 0.061, x + 0.077];
            let mut out = [0.0f32; 8];
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), exp8(_mm256_loadu_ps(xs.as_ptr()))) };
            for (v, o) in xs.iter().zip(out) {
                let e = (*v as f64).exp();
                worst = worst.max(((o as f64 - e) / e).abs());
            }
            x += 0.0791;
        }
        assert!(worst < 2.5e-7, "max relative error {worst}");
        let special = [f32::NEG_INFINITY, -1000.0, -88.5, 0.0, 1000.0, f32::INFINITY, -0.0, 1e-30];
        let mut out = [0.0f32; 8];
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), exp8(_mm256_loadu_ps(special.as_ptr()))) };
        assert_eq!(&out[..3], &[0.0, 0.0, 0.0]);
        assert_eq!(out[3], 1.0);
        assert!(out[4].is_finite() && out[4] > 1e38 && out[5] == out[4]);
        assert_eq!((out[6], out[7]), (1.0, 1.0));
    }
}
