//! Attention of several query rows against one key/value head: scores, softmax and weighted
//! sum in one call. The AVX2 path loads each key and value row once for up to three queries
//! (the query heads of one grouped-query group, which all see the same positions) and scores
//! four keys at a time.

/// `out[i] = sum_j softmax_j(scale * q[i]·keys[j]) * values[j]` for every query row `i`,
/// over keys `0..n_keys`.
///
/// # Shapes
/// - `q`: `[m][d]` with `m = q.len() / d`; `out`: `[m][d]`.
/// - `keys`, `values`: `[n_keys][d]` (at least).
/// - `scores`: scratch of at least `m * n_keys`.
///
/// Length mismatches are caller bugs: they trip a `debug_assert`, and in release the call
/// covers the rows and keys all buffers hold.
#[allow(clippy::too_many_arguments)]
pub fn attend(
    q: &[f32],
    d: usize,
    keys: &[f32],
    values: &[f32],
    n_keys: usize,
    scale: f32,
    scores: &mut [f32],
    out: &mut [f32],
) {
    if d == 0 {
        return;
    }
    debug_assert!(keys.len() >= n_keys * d && values.len() >= n_keys * d);
    debug_assert!(out.len() >= q.len() && scores.len() >= (q.len() / d) * n_keys);
    let n = n_keys.min(keys.len() / d).min(values.len() / d);
    let m = (q.len() / d).min(out.len() / d).min(scores.len().checked_div(n).unwrap_or(usize::MAX));
    if m == 0 {
        return;
    }
    if n == 0 {
        out[..m * d].fill(0.0);
        return;
    }
    let (q, keys, values) = (&q[..m * d], &keys[..n * d], &values[..n * d]);
    let (scores, out) = (&mut scores[..m * n], &mut out[..m * d]);
    #[cfg(target_arch = "x86_64")]
    if super::use_avx2() && d.is_multiple_of(8) {
        // SAFETY: avx2 and fma were detected; sizes were trimmed above (q, out: m*d;
        // keys, values: n*d; scores: m*n) and d is a multiple of 8.
        unsafe { avx2::attend(q, d, keys, values, n, scale, scores, out) };
        return;
    }
    for ((qi, si), oi) in q.chunks_exact(d).zip(scores.chunks_exact_mut(n)).zip(out.chunks_exact_mut(d)) {
        super::dot_rows(qi, keys, scale, si);
        super::softmax_inplace(si);
        super::weighted_sum_rows(si, values, oi);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
    }

    /// See [`super::attend`]. Requires: `q`, `out`: `m * d`; `keys`, `values`: `n * d`;
    /// `scores`: `m * n`; `d % 8 == 0`, `n > 0`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn attend(
        q: &[f32],
        d: usize,
        keys: &[f32],
        values: &[f32],
        n: usize,
        scale: f32,
        scores: &mut [f32],
        out: &mut [f32],
    ) {
        let m = q.len() / d;
        let mut i = 0;
        while i < m {
            let qi = q.as_ptr().add(i * d);
            let si = scores.as_mut_ptr().add(i * n);
            match m - i {
                1 => scores_m::<1>(qi, d, keys.as_ptr(), n, scale, si),
                2 => scores_m::<2>(qi, d, keys.as_ptr(), n, scale, si),
                _ => scores_m::<3>(qi, d, keys.as_ptr(), n, scale, si),
            }
            i += 3;
        }
        for row in scores.chunks_exact_mut(n) {
            crate::ops::simd_x86::softmax(row);
        }
        let mut i = 0;
        while i < m {
            let wi = scores.as_ptr().add(i * n);
            let oi = out.as_mut_ptr().add(i * d);
            match m - i {
                1 => wsum_m::<1>(wi, n, values.as_ptr(), d, oi),
                2 => wsum_m::<2>(wi, n, values.as_ptr(), d, oi),
                _ => wsum_m::<3>(wi, n, values.as_ptr(), d, oi),
            }
            i += 3;
        }
    }

    /// `s[r * n + j] = scale * q[r]·k[j]` for `r < M`, `j < n` (rows of `d` floats): four keys
    /// at a time, so each query chunk is loaded once per four keys and the four dot products
    /// are reduced together with horizontal adds.
    // Register-blocked loops: explicit (key, query) indices mirror the accumulator tile.
    #[allow(clippy::needless_range_loop)]
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn scores_m<const M: usize>(q: *const f32, d: usize, k: *const f32, n: usize, scale: f32, s: *mut f32) {
        let sv = _mm_set1_ps(scale);
        let mut j = 0;
        while j + 4 <= n {
            let kj = k.add(j * d);
            let mut acc = [[_mm256_setzero_ps(); 4]; M];
            let mut c = 0;
            while c < d {
                let qv: [__m256; M] = std::array::from_fn(|r| _mm256_loadu_ps(q.add(r * d + c)));
                for kk in 0..4 {
                    let kv = _mm256_loadu_ps(kj.add(kk * d + c));
                    for r in 0..M {
                        acc[r][kk] = _mm256_fmadd_ps(qv[r], kv, acc[r][kk]);
                    }
                }
                c += 8;
            }
            for (r, a) in acc.iter().enumerate() {
                // [k0 k0 k1 k1 | ..] -> [k0 k1 k2 k3 | k0 k1 k2 k3] partial sums, then halves.
                let h = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
                let sum = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
                _mm_storeu_ps(s.add(r * n + j), _mm_mul_ps(sv, sum));
            }
            j += 4;
        }
        while j < n {
            let kj = k.add(j * d);
            let mut acc = [_mm256_setzero_ps(); M];
            let mut c = 0;
            while c < d {
                let kv = _mm256_loadu_ps(kj.add(c));
                for (r, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_fmadd_ps(_mm256_loadu_ps(q.add(r * d + c)), kv, *a);
                }
                c += 8;
            }
            for (r, a) in acc.iter().enumerate() {
                *s.add(r * n + j) = scale * hsum(*a);
            }
            j += 1;
        }
    }

    /// `o[r][c] = sum_j w[r * n + j] * v[j][c]` for `r < M`: 32 columns at a time with the
    /// accumulators in registers, then 8 at a time.
    #[allow(clippy::needless_range_loop)]
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn wsum_m<const M: usize>(w: *const f32, n: usize, v: *const f32, d: usize, o: *mut f32) {
        let mut c = 0;
        while c + 32 <= d {
            let mut acc = [[_mm256_setzero_ps(); 4]; M];
            for j in 0..n {
                let vj = v.add(j * d + c);
                let wv: [__m256; M] = std::array::from_fn(|r| _mm256_broadcast_ss(&*w.add(r * n + j)));
                for k in 0..4 {
                    let x = _mm256_loadu_ps(vj.add(8 * k));
                    for r in 0..M {
                        acc[r][k] = _mm256_fmadd_ps(wv[r], x, acc[r][k]);
                    }
                }
            }
            for (r, ar) in acc.iter().enumerate() {
                for (k, a) in ar.iter().enumerate() {
                    _mm256_storeu_ps(o.add(r * d + c + 8 * k), *a);
                }
            }
            c += 32;
        }
        while c < d {
            let mut acc = [_mm256_setzero_ps(); M];
            for j in 0..n {
                let x = _mm256_loadu_ps(v.add(j * d + c));
                for (r, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_fmadd_ps(_mm256_broadcast_ss(&*w.add(r * n + j)), x, *a);
                }
            }
            for (r, a) in acc.iter().enumerate() {
                _mm256_storeu_ps(o.add(r * d + c), *a);
            }
            c += 8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Naive f64 attention for one query row.
    fn naive(q: &[f32], keys: &[f32], values: &[f32], n: usize, scale: f32) -> Vec<f32> {
        let d = q.len();
        let s: Vec<f64> =
            (0..n).map(|j| scale as f64 * (0..d).map(|c| q[c] as f64 * keys[j * d + c] as f64).sum::<f64>()).collect();
        let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = s.iter().map(|x| (x - max).exp()).collect();
        let z: f64 = e.iter().sum();
        (0..d).map(|c| ((0..n).map(|j| e[j] * values[j * d + c] as f64).sum::<f64>() / z) as f32).collect()
    }

    #[test]
    fn attend_matches_naive_for_all_query_counts_and_widths() {
        let mut seed = 7u32;
        let mut rnd = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
        };
        for d in [8, 24, 40, 64, 96, 5] {
            for m in 1..=7 {
                for n in [1, 3, 17, 130] {
                    let q: Vec<f32> = (0..m * d).map(|_| rnd() * 2.0).collect();
                    let k: Vec<f32> = (0..n * d).map(|_| rnd()).collect();
                    let v: Vec<f32> = (0..n * d).map(|_| rnd()).collect();
                    let mut scores = vec![f32::NAN; m * n + 3];
                    let mut out = vec![f32::NAN; m * d];
                    attend(&q, d, &k, &v, n, 0.3, &mut scores, &mut out);
                    for r in 0..m {
                        let want = naive(&q[r * d..(r + 1) * d], &k, &v, n, 0.3);
                        for (c, w) in want.iter().enumerate() {
                            let got = out[r * d + c];
                            assert!((got - w).abs() < 1e-5, "d {d} m {m} n {n} row {r} col {c}: {got} vs {w}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn attend_with_no_keys_gives_zeros() {
        let mut out = vec![1.0f32; 16];
        attend(&[0.5; 16], 8, &[], &[], 0, 1.0, &mut [], &mut out);
        assert!(out.iter().all(|&x| x == 0.0));
    }
}
