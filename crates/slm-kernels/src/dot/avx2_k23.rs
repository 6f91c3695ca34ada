//! AVX2 kernels for the 2- and 3-bit K-quants (Q2_K, Q3_K) × Q8_K activations.
//!
//! Both store 2-bit quants as four 2-bit planes of 32 bytes per 128 elements (element
//! `128n + 32j + l` is bits `2j..2j+2` of byte `32n + l`), with one scale per 16 elements. The
//! quants are made unsigned for `maddubs` (Q3_K adds its high bit as `+4` and takes the `-4`
//! back through the activation's per-16 sums), and the per-16 scales are applied with one
//! `madd` per 32 elements, as in [`super::avx2_k`].
//!
//! All functions are `unsafe` and require avx2, fma and f16c (see [`super::kernel`]).

use std::arch::x86_64::*;

use super::avx2::hsum;
use crate::act::Q8KBlock;

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16_at(p: *const u8) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(std::ptr::read_unaligned(p as *const u16) as i32)))
}

/// The sixteen scales of a group pair `c` (groups `2c`, `2c + 1`) spread to the low and high
/// 128-bit lanes, from 16 i16 scales.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn pair_scales(scales: __m256i, c: i32) -> __m256i {
    let spread = _mm256_setr_epi8(
        0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3,
    );
    _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(scales, _mm256_set1_epi32(c)), spread)
}

/// `Σ_c scale_pair(c) · (q_c · y_c)` over the 8 planes of one super-block, for `NT` tokens.
/// `plane(n, j)` returns the unsigned quants of elements `128n + 32j ..+32`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn planes_dot<const NT: usize>(
    scales: __m256i,
    a: &[&Q8KBlock; NT],
    mut plane: impl FnMut(usize, usize) -> __m256i,
) -> [__m256i; NT] {
    let mut sumi = [_mm256_setzero_si256(); NT];
    for n in 0..2 {
        for j in 0..4 {
            let q = plane(n, j);
            let c = 4 * n + j;
            let sv = pair_scales(scales, c as i32);
            for t in 0..NT {
                let y = _mm256_loadu_si256(a[t].qs.as_ptr().add(32 * c) as *const __m256i);
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(_mm256_maddubs_epi16(q, y), sv));
            }
        }
    }
    sumi
}

/// Q2_K body (84-byte blocks: scales[16] (scale | min << 4), qs[64], d, dmin) for `NT` tokens.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q2_k<const NT: usize>(w: &[u8], a: [&[Q8KBlock]; NT]) -> [f32; NT] {
    const BYTES: usize = 84;
    let mut nb = w.len() / BYTES;
    for r in &a {
        nb = nb.min(r.len());
    }
    let m3 = _mm256_set1_epi8(3);
    let m4 = _mm_set1_epi8(0x0F);
    let mut acc = [_mm256_setzero_ps(); NT];
    for i in 0..nb {
        let p = w.as_ptr().add(i * BYTES);
        let raw = _mm_loadu_si128(p as *const __m128i);
        let scales = _mm256_cvtepu8_epi16(_mm_and_si128(raw, m4));
        let mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), m4));
        let (d, dmin) = (f16_at(p.add(80)), f16_at(p.add(82)));
        let y: [&Q8KBlock; NT] = std::array::from_fn(|t| a[t].get_unchecked(i));
        let bits = [_mm256_loadu_si256(p.add(16) as *const __m256i), _mm256_loadu_si256(p.add(48) as *const __m256i)];
        let sumi = planes_dot::<NT>(scales, &y, |n, j| {
            _mm256_and_si256(_mm256_srl_epi16(bits[n], _mm_cvtsi32_si128(2 * j as i32)), m3)
        });
        for t in 0..NT {
            let bs = _mm256_loadu_si256(y[t].bsums.as_ptr() as *const __m256i);
            let summs = _mm256_madd_epi16(mins, bs);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * y[t].d), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(-dmin * y[t].d), _mm256_cvtepi32_ps(summs), acc[t]);
        }
    }
    std::array::from_fn(|t| hsum(acc[t]))
}

/// The sixteen signed 6-bit scales of a Q3_K block minus 32, with ggml's word-wise shuffle
/// (a few shifts and masks instead of a byte loop: this runs once per 256 weights).
#[inline]
fn q3_scales(s: &[u8; 12]) -> [i8; 16] {
    const KMASK1: u32 = 0x0303_0303;
    const KMASK2: u32 = 0x0f0f_0f0f;
    let a0 = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
    let a1 = u32::from_le_bytes([s[4], s[5], s[6], s[7]]);
    let tmp = u32::from_le_bytes([s[8], s[9], s[10], s[11]]);
    let words = [
        (a0 & KMASK2) | ((tmp & KMASK1) << 4),
        (a1 & KMASK2) | (((tmp >> 2) & KMASK1) << 4),
        ((a0 >> 4) & KMASK2) | (((tmp >> 4) & KMASK1) << 4),
        ((a1 >> 4) & KMASK2) | (((tmp >> 6) & KMASK1) << 4),
    ];
    let mut out = [0i8; 16];
    for (k, w) in words.iter().enumerate() {
        for (j, byte) in w.to_le_bytes().iter().enumerate() {
            out[4 * k + j] = (*byte as i8).wrapping_sub(32);
        }
    }
    out
}

/// Q3_K body (110-byte blocks: hmask[32], qs[64], scales[12], d) for `NT` tokens.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q3_k<const NT: usize>(w: &[u8], a: [&[Q8KBlock]; NT]) -> [f32; NT] {
    const BYTES: usize = 110;
    let mut nb = w.len() / BYTES;
    for r in &a {
        nb = nb.min(r.len());
    }
    let m3 = _mm256_set1_epi8(3);
    let m1 = _mm256_set1_epi8(1);
    let mut acc = [_mm256_setzero_ps(); NT];
    for i in 0..nb {
        let p = w.as_ptr().add(i * BYTES);
        let sc = q3_scales(&*(p.add(96) as *const [u8; 12]));
        let scales = _mm256_cvtepi8_epi16(_mm_loadu_si128(sc.as_ptr() as *const __m128i));
        let d = f16_at(p.add(108));
        let y: [&Q8KBlock; NT] = std::array::from_fn(|t| a[t].get_unchecked(i));
        let hm = _mm256_loadu_si256(p as *const __m256i);
        let bits = [_mm256_loadu_si256(p.add(32) as *const __m256i), _mm256_loadu_si256(p.add(64) as *const __m256i)];
        // Quant + 4 (0..7): the 2 low bits, and the high bit (set = no -4) as +4.
        let sumi = planes_dot::<NT>(scales, &y, |n, j| {
            let lo = _mm256_and_si256(_mm256_srl_epi16(bits[n], _mm_cvtsi32_si128(2 * j as i32)), m3);
            let hi = _mm256_and_si256(_mm256_srl_epi16(hm, _mm_cvtsi32_si128((4 * n + j) as i32)), m1);
            _mm256_or_si256(lo, _mm256_slli_epi16(hi, 2))
        });
        for t in 0..NT {
            // Take back the +4: 4 · Σ_g scale_g · bsum_g.
            let bs = _mm256_loadu_si256(y[t].bsums.as_ptr() as *const __m256i);
            let offset = _mm256_slli_epi32(_mm256_madd_epi16(scales, bs), 2);
            let total = _mm256_sub_epi32(sumi[t], offset);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * y[t].d), _mm256_cvtepi32_ps(total), acc[t]);
        }
    }
    std::array::from_fn(|t| hsum(acc[t]))
}

/// Q2_K row · Q8_K row. Requires avx2, fma, f16c.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q2_k_q8k(w: &[u8], a: &[Q8KBlock]) -> f32 {
    q2_k::<1>(w, [a])[0]
}

/// Q2_K row · four Q8_K rows. Requires avx2, fma, f16c.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q2_k_q8k_4(w: &[u8], a: [&[Q8KBlock]; 4]) -> [f32; 4] {
    q2_k::<4>(w, a)
}

/// Q3_K row · Q8_K row. Requires avx2, fma, f16c.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q3_k_q8k(w: &[u8], a: &[Q8KBlock]) -> f32 {
    q3_k::<1>(w, [a])[0]
}

/// Q3_K row · four Q8_K rows. Requires avx2, fma, f16c.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q3_k_q8k_4(w: &[u8], a: [&[Q8KBlock]; 4]) -> [f32; 4] {
    q3_k::<4>(w, a)
}

#[cfg(test)]
mod tests {
    #[test]
    fn q3_scales_match_the_reference_unpacking() {
        let mut s = [0u8; 12];
        for seed in 0..256u32 {
            for (k, b) in s.iter_mut().enumerate() {
                *b = (seed.wrapping_mul(2_654_435_761).rotate_left(k as u32 * 5) >> 3) as u8;
            }
            assert_eq!(super::q3_scales(&s), crate::quant::kquants::q3k_scales(&s), "scales {s:?}");
        }
    }
}
