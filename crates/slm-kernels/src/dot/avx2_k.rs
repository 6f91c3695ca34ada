//! AVX2 kernels for K-quant weights × Q8_K activations (Q4_K, Q5_K, Q6_K).
//!
//! K-quants keep an integer scale per 16 or 32 elements, so the per-group scaling is folded
//! into the widening step: `madd(maddubs(q, a), scale_i16)` multiplies and sums in one
//! instruction, and the float conversion happens once per 256-element super-block. Mins (Q4_K,
//! Q5_K) and Q6_K's `-32` offset use the activation's per-16 sums (`bsums`).
//!
//! All functions are `unsafe` and require avx2, fma and f16c (see [`super::kernel`]).

use std::arch::x86_64::*;

use super::avx2::hsum;
use crate::act::Q8KBlock;

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16x2(p: *const u8) -> (f32, f32) {
    let v = _mm_cvtph_ps(_mm_cvtsi32_si128(std::ptr::read_unaligned(p as *const i32)));
    (_mm_cvtss_f32(v), _mm_cvtss_f32(_mm_movehdup_ps(v)))
}

/// The 8 six-bit scales and 8 mins of a Q4_K/Q5_K block, as `(scales, mins)` packed 4 per u32
/// (ggml's `utmp` shuffle; equal to `kquants::scale_min_k4` for j = 0..8).
#[inline]
fn k4_scales_mins(s: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    const KMASK1: u32 = 0x3f3f_3f3f;
    const KMASK2: u32 = 0x0f0f_0f0f;
    const KMASK3: u32 = 0x0303_0303;
    let u0 = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
    let u1 = u32::from_le_bytes([s[4], s[5], s[6], s[7]]);
    let u2 = u32::from_le_bytes([s[8], s[9], s[10], s[11]]);
    let sc_lo = u0 & KMASK1;
    let sc_hi = (u2 & KMASK2) | (((u0 >> 6) & KMASK3) << 4);
    let mn_lo = u1 & KMASK1;
    let mn_hi = ((u2 >> 4) & KMASK2) | (((u1 >> 6) & KMASK3) << 4);
    let mut sc = [0u8; 8];
    let mut mn = [0u8; 8];
    sc[..4].copy_from_slice(&sc_lo.to_le_bytes());
    sc[4..].copy_from_slice(&sc_hi.to_le_bytes());
    mn[..4].copy_from_slice(&mn_lo.to_le_bytes());
    mn[4..].copy_from_slice(&mn_hi.to_le_bytes());
    (sc, mn)
}

/// `sum_j mins[j] * (bsums[2j] + bsums[2j+1])` as 4 i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn mins_dot(mn: &[u8; 8], y: &Q8KBlock) -> __m128i {
    let mins = _mm_cvtepu8_epi16(_mm_loadl_epi64(mn.as_ptr() as *const __m128i));
    let bs = _mm256_loadu_si256(y.bsums.as_ptr() as *const __m256i);
    let sums = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    _mm_madd_epi16(mins, sums)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum128(v: __m128) -> f32 {
    let s = _mm_add_ps(v, _mm_movehl_ps(v, v));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

/// Shared body of Q4_K (`FIVE = false`) and Q5_K (`FIVE = true`) for `NT` token rows: each
/// weight super-block is unpacked once and used for all of them.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q45_k<const FIVE: bool, const BYTES: usize, const NT: usize>(w: &[u8], a: [&[Q8KBlock]; NT]) -> [f32; NT] {
    let mut nb = w.len() / BYTES;
    for r in &a {
        nb = nb.min(r.len());
    }
    let m4 = _mm256_set1_epi8(0x0F);
    let mut acc = [_mm256_setzero_ps(); NT];
    let mut acc_m = [_mm_setzero_ps(); NT];
    for i in 0..nb {
        let blk = w.get_unchecked(i * BYTES..(i + 1) * BYTES);
        let p = blk.as_ptr();
        let (dw, dminw) = f16x2(p);
        let mut s12 = [0u8; 12];
        s12.copy_from_slice(blk.get_unchecked(4..16));
        let (sc, mn) = k4_scales_mins(&s12);
        let qs = if FIVE { p.add(48) } else { p.add(16) };
        let hb = if FIVE { _mm256_loadu_si256(p.add(16) as *const __m256i) } else { _mm256_setzero_si256() };
        let mut sumi = [_mm256_setzero_si256(); NT];
        for j in 0..4 {
            let q = _mm256_loadu_si256(qs.add(32 * j) as *const __m256i);
            let mut lo = _mm256_and_si256(q, m4);
            let mut hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            if FIVE {
                // Bit 2j of qh[l] is the fifth bit of element 64j + l, bit 2j+1 of 64j + 32 + l.
                let one = _mm256_set1_epi8(1);
                let b0 = _mm256_and_si256(_mm256_srl_epi16(hb, _mm_cvtsi32_si128(2 * j as i32)), one);
                let b1 = _mm256_and_si256(_mm256_srl_epi16(hb, _mm_cvtsi32_si128(2 * j as i32 + 1)), one);
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(b0, 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(b1, 4));
            }
            let (s0, s1) = (_mm256_set1_epi16(sc[2 * j] as i16), _mm256_set1_epi16(sc[2 * j + 1] as i16));
            for t in 0..NT {
                let y = a[t].get_unchecked(i).qs.as_ptr();
                let y0 = _mm256_loadu_si256(y.add(64 * j) as *const __m256i);
                let y1 = _mm256_loadu_si256(y.add(64 * j + 32) as *const __m256i);
                let p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0), s0);
                let p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1), s1);
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(p0, p1));
            }
        }
        for t in 0..NT {
            let y = a[t].get_unchecked(i);
            acc_m[t] = _mm_fmadd_ps(_mm_set1_ps(-y.d * dminw), _mm_cvtepi32_ps(mins_dot(&mn, y)), acc_m[t]);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(y.d * dw), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
        }
    }
    let mut out = [0.0f32; NT];
    for t in 0..NT {
        out[t] = hsum(acc[t]) + hsum128(acc_m[t]);
    }
    out
}

/// Q4_K row · Q8_K row. Requires avx2, fma, f16c.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q4_k_q8k(w: &[u8], a: &[Q8KBlock]) -> f32 {
    q45_k::<false, 144, 1>(w, [a])[0]
}

/// Q4_K row · four Q8_K rows. Requires avx2, fma, f16c.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q4_k_q8k_4(w: &[u8], a: [&[Q8KBlock]; 4]) -> [f32; 4] {
    q45_k::<false, 144, 4>(w, a)
}

/// Q5_K row · Q8_K row. Requires avx2, fma, f16c.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q5_k_q8k(w: &[u8], a: &[Q8KBlock]) -> f32 {
    q45_k::<true, 176, 1>(w, [a])[0]
}

/// Q5_K row · four Q8_K rows. Requires avx2, fma, f16c.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q5_k_q8k_4(w: &[u8], a: [&[Q8KBlock]; 4]) -> [f32; 4] {
    q45_k::<true, 176, 4>(w, a)
}

/// Q6_K body for `NT` token rows.
///
/// Quants are used unsigned (0..63); the `-32` offset is applied once per block as
/// `32 * sum_g scale_g * bsum_g`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q6_k<const NT: usize>(w: &[u8], a: [&[Q8KBlock]; NT]) -> [f32; NT] {
    const BYTES: usize = 210;
    let mut nb = w.len() / BYTES;
    for r in &a {
        nb = nb.min(r.len());
    }
    let m4 = _mm256_set1_epi8(0x0F);
    let m3 = _mm256_set1_epi8(3);
    // Byte pattern that spreads the 32-bit unit (s_2c, s_2c+1) to s_2c in the low 128-bit lane
    // and s_2c+1 in the high lane.
    let spread = _mm256_setr_epi8(
        0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3,
    );
    let mut acc = [_mm256_setzero_ps(); NT];
    for i in 0..nb {
        let p = w.as_ptr().add(i * BYTES);
        let (ql, qh) = (p, p.add(128));
        let scales = _mm256_cvtepi8_epi16(_mm_loadu_si128(p.add(192) as *const __m128i));
        let d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(std::ptr::read_unaligned(p.add(208) as *const u16) as i32)));
        let mut sumi = [_mm256_setzero_si256(); NT];
        for n in 0..2 {
            let l0 = _mm256_loadu_si256(ql.add(64 * n) as *const __m256i);
            let l1 = _mm256_loadu_si256(ql.add(64 * n + 32) as *const __m256i);
            let h = _mm256_loadu_si256(qh.add(32 * n) as *const __m256i);
            let hb = |shift: i32| _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(h, _mm_cvtsi32_si128(shift)), m3), 4);
            let q = [
                _mm256_or_si256(_mm256_and_si256(l0, m4), hb(0)),
                _mm256_or_si256(_mm256_and_si256(l1, m4), hb(2)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), hb(4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), hb(6)),
            ];
            for (k, qk) in q.iter().enumerate() {
                let c = 4 * n + k; // groups 2c, 2c+1
                let sv = _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(scales, _mm256_set1_epi32(c as i32)), spread);
                for t in 0..NT {
                    let yk = _mm256_loadu_si256(a[t].get_unchecked(i).qs.as_ptr().add(32 * c) as *const __m256i);
                    sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(_mm256_maddubs_epi16(*qk, yk), sv));
                }
            }
        }
        for t in 0..NT {
            let y = a[t].get_unchecked(i);
            let bs = _mm256_loadu_si256(y.bsums.as_ptr() as *const __m256i);
            let offset = _mm256_slli_epi32(_mm256_madd_epi16(scales, bs), 5);
            let total = _mm256_sub_epi32(sumi[t], offset);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * y.d), _mm256_cvtepi32_ps(total), acc[t]);
        }
    }
    let mut out = [0.0f32; NT];
    for t in 0..NT {
        out[t] = hsum(acc[t]);
    }
    out
}

/// Q6_K row · Q8_K row. Requires avx2, fma, f16c.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q6_k_q8k(w: &[u8], a: &[Q8KBlock]) -> f32 {
    q6_k::<1>(w, [a])[0]
}

/// Q6_K row · four Q8_K rows. Requires avx2, fma, f16c.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q6_k_q8k_4(w: &[u8], a: [&[Q8KBlock]; 4]) -> [f32; 4] {
    q6_k::<4>(w, a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::kquants::scale_min_k4;

    #[test]
    fn utmp_shuffle_matches_scale_min_k4() {
        let mut s = [0u8; 12];
        for seed in 0..50u32 {
            for (k, b) in s.iter_mut().enumerate() {
                *b = (seed.wrapping_mul(2654435761).rotate_left(k as u32 * 3) >> 7) as u8;
            }
            let (sc, mn) = k4_scales_mins(&s);
            for j in 0..8 {
                assert_eq!((sc[j], mn[j]), scale_min_k4(j, &s), "seed {seed} j {j}");
            }
        }
    }
}
