//! AVX2 versions of the activation quantizers in [`crate::act`], bit-identical to the scalar
//! ones (and to ggml-cpu's AVX2 `quantize_row_q8_0`/`q8_1`/`q8_K`): same scale, same
//! round-half-to-even, same sums.

use std::arch::x86_64::*;

use crate::act::{Q8Block, Q8KBlock};
use half::f16;
use slm_format::QK_K;

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hmax(v: __m256) -> f32 {
    let m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    let m = _mm_max_ss(m, _mm_movehdup_ps(m));
    _mm_cvtss_f32(m)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_i32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01));
    _mm_cvtsi128_si32(s)
}

/// 32 floats at `p` times `id`, rounded half-to-even, as 32 i8 in order; also their sum.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn round_pack32(p: *const f32, id: __m256, out: *mut i8) -> i32 {
    let r = |k: usize| _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(p.add(8 * k)), id), 0x08));
    let (i0, i1, i2, i3) = (r(0), r(1), r(2), r(3));
    let sum = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3)));
    // packs work per 128-bit lane; the final permute restores element order.
    let a = _mm256_packs_epi32(i0, i1);
    let b = _mm256_packs_epi32(i2, i3);
    let q = _mm256_packs_epi16(a, b);
    let q = _mm256_permutevar8x32_epi32(q, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(out as *mut __m256i, q);
    sum
}

/// AVX2 [`crate::act::quantize_q8`]. Requires avx2, fma, f16c.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn quantize_q8(x: &[f32], out: &mut [Q8Block]) {
    let sign = _mm256_set1_ps(-0.0);
    for (xs, b) in x.chunks_exact(32).zip(out.iter_mut()) {
        let p = xs.as_ptr();
        let mut m = _mm256_andnot_ps(sign, _mm256_loadu_ps(p));
        for k in 1..4 {
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(p.add(8 * k))));
        }
        let amax = hmax(m);
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let sum = round_pack32(p, _mm256_set1_ps(id), b.qs.as_mut_ptr());
        b.d = f16::from_f32(d).to_f32();
        b.s = f16::from_f32(d * sum as f32).to_f32();
        b.sd = b.d * sum as f32;
    }
}

/// AVX2 [`crate::act::quantize_q8k`]. Requires avx2, fma, f16c.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn quantize_q8k(x: &[f32], out: &mut [Q8KBlock]) {
    let sign = _mm256_set1_ps(-0.0);
    for (xs, b) in x.chunks_exact(QK_K).zip(out.iter_mut()) {
        // The signed value of largest magnitude (first one on ties, like ggml).
        let mut m = _mm256_setzero_ps();
        for c in xs.chunks_exact(8) {
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(c.as_ptr())));
        }
        let amax = hmax(m);
        if amax == 0.0 {
            b.qs = [0; QK_K];
            b.bsums = [0; 16];
            b.d = 0.0;
            continue;
        }
        let max = xs.iter().copied().find(|v| v.abs() == amax).unwrap_or(amax);
        let iscale = -127.0 / max;
        let id = _mm256_set1_ps(iscale);
        for (c, q) in xs.chunks_exact(32).zip(b.qs.chunks_exact_mut(32)) {
            round_pack32(c.as_ptr(), id, q.as_mut_ptr());
        }
        // |iscale * x| <= 127, so the saturating packs never clip and ggml's MIN(127, v) is moot.
        for (s, g) in b.bsums.iter_mut().zip(b.qs.chunks_exact(16)) {
            *s = g.iter().map(|&q| q as i16).sum();
        }
        b.d = 1.0 / iscale;
    }
}
