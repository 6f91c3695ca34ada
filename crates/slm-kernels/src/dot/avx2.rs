//! AVX2 + FMA + F16C kernels (x86-64).
//!
//! Legacy 32-blocks: the weight block is unpacked to 32 unsigned bytes `q` (Q4_0/Q4_1 nibbles,
//! Q5_0/Q5_1 nibbles plus the fifth bit) with `value = d * q + m`; Q4_0 and Q5_0 are the same
//! with `m = -8d` / `-16d`. The integer part `sum(q * a)` uses `maddubs` (u8 × i8 → i16 pairs;
//! at most 2 * 31 * 127, no saturation), and `m * sum(a)` comes from the activation block's
//! precomputed `s` (Q4_1/Q5_1, as ggml) or exact `sd` (Q4_0/Q5_0). Q8_0/Q8_1 weights are
//! signed and use the `abs`/`sign` trick instead.
//!
//! The `*_4` variants unpack each weight block once and use it for four token rows.
//!
//! Every function here is `unsafe` and requires avx2, fma and f16c; they are reached only
//! through [`super::kernel`] for [`super::Isa::Avx2`], which is only used after detection.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use crate::act::Q8Block;

/// Sum of the 8 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// Two consecutive f16 at `p` as f32 (`(p[0..2], p[2..4])`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16x2(p: *const u8) -> (f32, f32) {
    let v = _mm_cvtph_ps(_mm_cvtsi32_si128(std::ptr::read_unaligned(p as *const i32)));
    (_mm_cvtss_f32(v), _mm_cvtss_f32(_mm_movehdup_ps(v)))
}

/// 16 bytes of packed nibbles → 32 bytes: low nibbles (elements 0..16) then high nibbles.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn nibbles(p: *const u8) -> __m256i {
    let lo = _mm_loadu_si128(p as *const __m128i);
    let hi = _mm_srli_epi16(lo, 4);
    _mm256_and_si256(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(0x0F))
}

/// The 32 bits of `qh` as 32 bytes: 0x10 where bit j is set, else 0 (the fifth bit of Q5_*).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn fifth_bits(p: *const u8) -> __m256i {
    let qh = std::ptr::read_unaligned(p as *const i32);
    let shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(qh), shuf);
    let set = _mm256_cmpeq_epi8(_mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe)), _mm256_set1_epi64x(-1));
    _mm256_and_si256(set, _mm256_set1_epi8(0x10))
}

/// `sum(q * a)` per 4-byte group as f32 lanes, `q` unsigned bytes, `a` signed.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_u8i8(q: __m256i, a: __m256i) -> __m256 {
    let pairs = _mm256_maddubs_epi16(q, a);
    _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load_act(b: &Q8Block) -> __m256i {
    _mm256_loadu_si256(b.qs.as_ptr() as *const __m256i)
}

// Unpackers: (unsigned quants, d, m) with value = d * q + m.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn unpack_q4_0(p: *const u8) -> (__m256i, f32, f32) {
    let (d, _) = f16x2(p);
    (nibbles(p.add(2)), d, -8.0 * d)
}
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn unpack_q4_1(p: *const u8) -> (__m256i, f32, f32) {
    let (d, m) = f16x2(p);
    (nibbles(p.add(4)), d, m)
}
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn unpack_q5_0(p: *const u8) -> (__m256i, f32, f32) {
    let (d, _) = f16x2(p);
    (_mm256_or_si256(nibbles(p.add(6)), fifth_bits(p.add(2))), d, -16.0 * d)
}
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn unpack_q5_1(p: *const u8) -> (__m256i, f32, f32) {
    let (d, m) = f16x2(p);
    (_mm256_or_si256(nibbles(p.add(8)), fifth_bits(p.add(4))), d, m)
}

/// Generates `$one(w, a)` and `$four(w, [a; 4])` for an unsigned legacy format.
macro_rules! unsigned_kernels {
    ($one:ident, $four:ident, $bytes:expr, $unpack:ident, $sum:ident) => {
        /// One row · one activation row. Requires avx2, fma, f16c.
        #[target_feature(enable = "avx2,fma,f16c")]
        pub(super) unsafe fn $one(w: &[u8], a: &[Q8Block]) -> f32 {
            let nb = (w.len() / $bytes).min(a.len());
            let p = w.as_ptr();
            let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            let (mut m0, mut m1) = (0.0f32, 0.0f32);
            let mut i = 0;
            // Two independent accumulators hide the FMA latency.
            while i + 2 <= nb {
                let (b0, b1) = (a.get_unchecked(i), a.get_unchecked(i + 1));
                let (q0, d0, mm0) = $unpack(p.add(i * $bytes));
                let (q1, d1, mm1) = $unpack(p.add((i + 1) * $bytes));
                acc0 = _mm256_fmadd_ps(_mm256_set1_ps(d0 * b0.d), dot_u8i8(q0, load_act(b0)), acc0);
                acc1 = _mm256_fmadd_ps(_mm256_set1_ps(d1 * b1.d), dot_u8i8(q1, load_act(b1)), acc1);
                m0 += mm0 * b0.$sum;
                m1 += mm1 * b1.$sum;
                i += 2;
            }
            if i < nb {
                let b0 = a.get_unchecked(i);
                let (q0, d0, mm0) = $unpack(p.add(i * $bytes));
                acc0 = _mm256_fmadd_ps(_mm256_set1_ps(d0 * b0.d), dot_u8i8(q0, load_act(b0)), acc0);
                m0 += mm0 * b0.$sum;
            }
            hsum(_mm256_add_ps(acc0, acc1)) + m0 + m1
        }

        /// One row · four activation rows. Requires avx2, fma, f16c.
        #[target_feature(enable = "avx2,fma,f16c")]
        pub(super) unsafe fn $four(w: &[u8], a: [&[Q8Block]; 4]) -> [f32; 4] {
            let nb = (w.len() / $bytes).min(a[0].len()).min(a[1].len()).min(a[2].len()).min(a[3].len());
            let p = w.as_ptr();
            let mut acc = [_mm256_setzero_ps(); 4];
            let mut ms = [0.0f32; 4];
            for i in 0..nb {
                let (q, d, m) = $unpack(p.add(i * $bytes));
                let dv = _mm256_set1_ps(d);
                for t in 0..4 {
                    let b = a[t].get_unchecked(i);
                    let scale = _mm256_mul_ps(dv, _mm256_broadcast_ss(&b.d));
                    acc[t] = _mm256_fmadd_ps(scale, dot_u8i8(q, load_act(b)), acc[t]);
                    ms[t] += m * b.$sum;
                }
            }
            [hsum(acc[0]) + ms[0], hsum(acc[1]) + ms[1], hsum(acc[2]) + ms[2], hsum(acc[3]) + ms[3]]
        }
    };
}

// Q4_1/Q5_1 use ggml's f16-rounded `s`; the Q4_0/Q5_0 offset trick needs the exact `sd`.
unsigned_kernels!(q4_0_q8, q4_0_q8_4, 18, unpack_q4_0, sd);
unsigned_kernels!(q4_1_q8, q4_1_q8_4, 20, unpack_q4_1, s);
unsigned_kernels!(q5_0_q8, q5_0_q8_4, 22, unpack_q5_0, sd);
unsigned_kernels!(q5_1_q8, q5_1_q8_4, 24, unpack_q5_1, s);

/// `sum(x * y)` per 4-byte group for signed bytes (`|x| * sign(y, x)`; x = -128 is fine since
/// activations are within ±127).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_i8i8(x_abs: __m256i, x: __m256i, y: __m256i) -> __m256 {
    dot_u8i8(x_abs, _mm256_sign_epi8(y, x))
}

/// Generates kernels for Q8_0 (`$off` = 2) and Q8_1 (`$off` = 4; its `s` is unused) weights.
macro_rules! signed_kernels {
    ($one:ident, $four:ident, $bytes:expr, $off:expr) => {
        /// One row · one activation row. Requires avx2, fma, f16c.
        #[target_feature(enable = "avx2,fma,f16c")]
        pub(super) unsafe fn $one(w: &[u8], a: &[Q8Block]) -> f32 {
            let nb = (w.len() / $bytes).min(a.len());
            let p = w.as_ptr();
            let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            let mut i = 0;
            while i + 2 <= nb {
                let (b0, b1) = (a.get_unchecked(i), a.get_unchecked(i + 1));
                let (p0, p1) = (p.add(i * $bytes), p.add((i + 1) * $bytes));
                let x0 = _mm256_loadu_si256(p0.add($off) as *const __m256i);
                let x1 = _mm256_loadu_si256(p1.add($off) as *const __m256i);
                let (d0, _) = f16x2(p0);
                let (d1, _) = f16x2(p1);
                acc0 = _mm256_fmadd_ps(_mm256_set1_ps(d0 * b0.d), dot_i8i8(_mm256_sign_epi8(x0, x0), x0, load_act(b0)), acc0);
                acc1 = _mm256_fmadd_ps(_mm256_set1_ps(d1 * b1.d), dot_i8i8(_mm256_sign_epi8(x1, x1), x1, load_act(b1)), acc1);
                i += 2;
            }
            if i < nb {
                let b0 = a.get_unchecked(i);
                let p0 = p.add(i * $bytes);
                let x0 = _mm256_loadu_si256(p0.add($off) as *const __m256i);
                let (d0, _) = f16x2(p0);
                acc0 = _mm256_fmadd_ps(_mm256_set1_ps(d0 * b0.d), dot_i8i8(_mm256_sign_epi8(x0, x0), x0, load_act(b0)), acc0);
            }
            hsum(_mm256_add_ps(acc0, acc1))
        }

        /// One row · four activation rows. Requires avx2, fma, f16c.
        #[target_feature(enable = "avx2,fma,f16c")]
        pub(super) unsafe fn $four(w: &[u8], a: [&[Q8Block]; 4]) -> [f32; 4] {
            let nb = (w.len() / $bytes).min(a[0].len()).min(a[1].len()).min(a[2].len()).min(a[3].len());
            let p = w.as_ptr();
            let mut acc = [_mm256_setzero_ps(); 4];
            for i in 0..nb {
                let pb = p.add(i * $bytes);
                let x = _mm256_loadu_si256(pb.add($off) as *const __m256i);
                let x_abs = _mm256_sign_epi8(x, x);
                let (d, _) = f16x2(pb);
                let dv = _mm256_set1_ps(d);
                for t in 0..4 {
                    let b = a[t].get_unchecked(i);
                    let scale = _mm256_mul_ps(dv, _mm256_broadcast_ss(&b.d));
                    acc[t] = _mm256_fmadd_ps(scale, dot_i8i8(x_abs, x, load_act(b)), acc[t]);
                }
            }
            [hsum(acc[0]), hsum(acc[1]), hsum(acc[2]), hsum(acc[3])]
        }
    };
}

signed_kernels!(q8_0_q8, q8_0_q8_4, 34, 2);
signed_kernels!(q8_1_q8, q8_1_q8_4, 36, 4);
