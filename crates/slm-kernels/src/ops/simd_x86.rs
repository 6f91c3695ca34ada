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
