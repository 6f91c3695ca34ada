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

use crate::act::{Group8, Q8Block};

/// Sum of the 8 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// Horizontal sums of eight accumulators, plus `extra[t]`, as one array.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn finish8(acc: &[__m256; 8], extra: __m256) -> [f32; 8] {
    // Transpose-and-add: pairs, then quads, then the two 128-bit halves.
    let s01 = _mm256_hadd_ps(acc[0], acc[1]);
    let s23 = _mm256_hadd_ps(acc[2], acc[3]);
    let s45 = _mm256_hadd_ps(acc[4], acc[5]);
    let s67 = _mm256_hadd_ps(acc[6], acc[7]);
    let s0123 = _mm256_hadd_ps(s01, s23);
    let s4567 = _mm256_hadd_ps(s45, s67);
    let lo = _mm256_permute2f128_ps(s0123, s4567, 0x20);
    let hi = _mm256_permute2f128_ps(s0123, s4567, 0x31);
    let sum = _mm256_add_ps(_mm256_add_ps(lo, hi), extra);
    let mut out = [0.0f32; 8];
    // SAFETY: `out` has room for 8 f32.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sum) };
    out
}

/// Two consecutive f16 at `p` as f32 (`(p[0..2], p[2..4])`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn f16x2(p: *const u8) -> (f32, f32) {
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
pub(super) unsafe fn load_act(b: &Q8Block) -> __m256i {
    _mm256_loadu_si256(b.qs.as_ptr() as *const __m256i)
}

/// `(d, m, 0, 0)` from a block starting with f16 `d`, `m` (Q4_1, Q5_1).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dm_dm(p: *const u8) -> __m128 {
    _mm_cvtph_ps(_mm_cvtsi32_si128(std::ptr::read_unaligned(p as *const i32)))
}

/// `(d, d, d, d)` from a block starting with f16 `d` (Q4_0, Q5_0).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dm_d(p: *const u8) -> __m128 {
    let d = _mm_cvtph_ps(_mm_cvtsi32_si128(std::ptr::read_unaligned(p as *const u16) as i32));
    _mm_shuffle_ps(d, d, 0)
}

// Unpackers: (unsigned quants, d, m) with value = d * q + m.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn unpack_q4_0(p: *const u8) -> (__m256i, f32, f32) {
    let (d, _) = f16x2(p);
    (nibbles(p.add(2)), d, -8.0 * d)
}
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn unpack_q4_1(p: *const u8) -> (__m256i, f32, f32) {
    let (d, m) = f16x2(p);
    (nibbles(p.add(4)), d, m)
}
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn unpack_q5_0(p: *const u8) -> (__m256i, f32, f32) {
    let (d, _) = f16x2(p);
    (_mm256_or_si256(nibbles(p.add(6)), fifth_bits(p.add(2))), d, -16.0 * d)
}
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn unpack_q5_1(p: *const u8) -> (__m256i, f32, f32) {
    let (d, m) = f16x2(p);
    (_mm256_or_si256(nibbles(p.add(8)), fifth_bits(p.add(4))), d, m)
}

/// Generates `$one(w, a)` and `$four(w, [a; 4])` for an unsigned legacy format.
macro_rules! unsigned_kernels {
    ($one:ident, $four:ident, $eight:ident, $exact4:ident, $bytes:expr, $unpack:ident, $sum:ident, $dm:ident, $lane:expr, $mmul:expr) => {
        /// One row · four activation rows, each token computed with exactly the operations of
        /// the one-token kernel (same accumulators, same order), so its result is bit for bit
        /// the one-token result; the weights are loaded and unpacked once for the four.
        /// Requires avx2, fma, f16c.
        #[target_feature(enable = "avx2,fma,f16c")]
        pub(super) unsafe fn $exact4(w: &[u8], a: [&[Q8Block]; 4]) -> [f32; 4] {
            let nb = (w.len() / $bytes).min(a[0].len()).min(a[1].len()).min(a[2].len()).min(a[3].len());
            let p = w.as_ptr();
            let (mut acc0, mut acc1) = ([_mm256_setzero_ps(); 4], [_mm256_setzero_ps(); 4]);
            let mut macc = [_mm_setzero_ps(); 4];
            let mut i = 0;
            while i + 2 <= nb {
                let (p0, p1) = (p.add(i * $bytes), p.add((i + 1) * $bytes));
                let (dm0, dm1) = ($dm(p0), $dm(p1));
                let (q0, _, _) = $unpack(p0);
                let (q1, _, _) = $unpack(p1);
                for t in 0..4 {
                    let (b0, b1) = (a[t].get_unchecked(i), a[t].get_unchecked(i + 1));
                    let s0 = _mm_mul_ps(dm0, _mm_load_ps(&b0.d));
                    let s1 = _mm_mul_ps(dm1, _mm_load_ps(&b1.d));
                    acc0[t] = _mm256_fmadd_ps(_mm256_broadcastss_ps(s0), dot_u8i8(q0, load_act(b0)), acc0[t]);
                    acc1[t] = _mm256_fmadd_ps(_mm256_broadcastss_ps(s1), dot_u8i8(q1, load_act(b1)), acc1[t]);
                    macc[t] = _mm_add_ps(macc[t], _mm_add_ps(s0, s1));
                }
                i += 2;
            }
            if i < nb {
                let p0 = p.add(i * $bytes);
                let dm0 = $dm(p0);
                let (q0, _, _) = $unpack(p0);
                for t in 0..4 {
                    let b0 = a[t].get_unchecked(i);
                    let s0 = _mm_mul_ps(dm0, _mm_load_ps(&b0.d));
                    acc0[t] = _mm256_fmadd_ps(_mm256_broadcastss_ps(s0), dot_u8i8(q0, load_act(b0)), acc0[t]);
                    macc[t] = _mm_add_ps(macc[t], s0);
                }
            }
            let mut out = [0.0f32; 4];
            for t in 0..4 {
                let mut lanes = [0.0f32; 4];
                _mm_storeu_ps(lanes.as_mut_ptr(), macc[t]);
                out[t] = hsum(_mm256_add_ps(acc0[t], acc1[t])) + $mmul * lanes[$lane];
            }
            out
        }

        /// One row · eight activation rows. Requires avx2, fma, f16c.
        ///
        /// The eight per-token `maddubs` results are reduced with two levels of 16-bit
        /// horizontal adds (each lane then sums 8 products of at most 31 * 127, < 2^15) and one
        /// `madd`, so the conversion and the scaling happen once per block for all tokens.
        #[target_feature(enable = "avx2,fma,f16c")]
        pub(super) unsafe fn $eight(w: &[u8], a: [&[Q8Block]; 8], g: &[Group8]) -> [f32; 8] {
            let mut nb = (w.len() / $bytes).min(g.len());
            for r in &a {
                nb = nb.min(r.len());
            }
            let p = w.as_ptr();
            let ones = _mm256_set1_epi16(1);
            let mut acc = _mm256_setzero_ps();
            let mut macc = _mm256_setzero_ps();
            for i in 0..nb {
                let (q, d, m) = $unpack(p.add(i * $bytes));
                let pr = |t: usize| _mm256_maddubs_epi16(q, load_act(a[t].get_unchecked(i)));
                // Lane layout after each step (per 128-bit half): [t0 t0 t0 t0 t1 t1 t1 t1] ...
                let h01 = _mm256_hadd_epi16(pr(0), pr(1));
                let h23 = _mm256_hadd_epi16(pr(2), pr(3));
                let h45 = _mm256_hadd_epi16(pr(4), pr(5));
                let h67 = _mm256_hadd_epi16(pr(6), pr(7));
                // ... then [t0 t0 t1 t1 t2 t2 t3 t3]; madd makes it [t0 t1 t2 t3] as i32.
                let s0123 = _mm256_madd_epi16(_mm256_hadd_epi16(h01, h23), ones);
                let s4567 = _mm256_madd_epi16(_mm256_hadd_epi16(h45, h67), ones);
                // Each 128-bit half holds a partial sum; add the halves: [t0 .. t7].
                let lo = _mm256_permute2x128_si256(s0123, s4567, 0x20);
                let hi = _mm256_permute2x128_si256(s0123, s4567, 0x31);
                let isum = _mm256_cvtepi32_ps(_mm256_add_epi32(lo, hi));
                let gi = g.get_unchecked(i);
                let scale = _mm256_mul_ps(_mm256_set1_ps(d), _mm256_load_ps(gi.d.as_ptr()));
                acc = _mm256_fmadd_ps(scale, isum, acc);
                macc = _mm256_fmadd_ps(_mm256_set1_ps(m), _mm256_load_ps(gi.$sum.as_ptr()), macc);
            }
            let mut out = [0.0f32; 8];
            _mm256_storeu_ps(out.as_mut_ptr(), _mm256_add_ps(acc, macc));
            out
        }

        /// One row · one activation row. Requires avx2, fma, f16c.
        ///
        /// Per block, one 4-lane multiply `(d_w, m_w | d_w, ..) * (d_a, s_a, sd_a, 0)` yields
        /// both the block scale (lane 0) and the `m` term (lane `$lane`), which accumulates in
        /// place and is scaled by `$mmul` once at the end.
        #[target_feature(enable = "avx2,fma,f16c")]
        pub(super) unsafe fn $one(w: &[u8], a: &[Q8Block]) -> f32 {
            let nb = (w.len() / $bytes).min(a.len());
            let p = w.as_ptr();
            let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            let mut macc = _mm_setzero_ps();
            let mut i = 0;
            // Two independent accumulators hide the FMA latency.
            while i + 2 <= nb {
                let (b0, b1) = (a.get_unchecked(i), a.get_unchecked(i + 1));
                let (p0, p1) = (p.add(i * $bytes), p.add((i + 1) * $bytes));
                let s0 = _mm_mul_ps($dm(p0), _mm_load_ps(&b0.d));
                let s1 = _mm_mul_ps($dm(p1), _mm_load_ps(&b1.d));
                let (q0, _, _) = $unpack(p0);
                let (q1, _, _) = $unpack(p1);
                acc0 = _mm256_fmadd_ps(_mm256_broadcastss_ps(s0), dot_u8i8(q0, load_act(b0)), acc0);
                acc1 = _mm256_fmadd_ps(_mm256_broadcastss_ps(s1), dot_u8i8(q1, load_act(b1)), acc1);
                macc = _mm_add_ps(macc, _mm_add_ps(s0, s1));
                i += 2;
            }
            if i < nb {
                let b0 = a.get_unchecked(i);
                let p0 = p.add(i * $bytes);
                let s0 = _mm_mul_ps($dm(p0), _mm_load_ps(&b0.d));
                let (q0, _, _) = $unpack(p0);
                acc0 = _mm256_fmadd_ps(_mm256_broadcastss_ps(s0), dot_u8i8(q0, load_act(b0)), acc0);
                macc = _mm_add_ps(macc, s0);
            }
            let mut lanes = [0.0f32; 4];
            _mm_storeu_ps(lanes.as_mut_ptr(), macc);
            hsum(_mm256_add_ps(acc0, acc1)) + $mmul * lanes[$lane]
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
unsigned_kernels!(q4_0_q8, q4_0_q8_4, q4_0_q8_8, q4_0_q8_4x, 18, unpack_q4_0, sd, dm_d, 2, -8.0);
unsigned_kernels!(q4_1_q8, q4_1_q8_4, q4_1_q8_8, q4_1_q8_4x, 20, unpack_q4_1, s, dm_dm, 1, 1.0);
unsigned_kernels!(q5_0_q8, q5_0_q8_4, q5_0_q8_8, q5_0_q8_4x, 22, unpack_q5_0, sd, dm_d, 2, -16.0);
unsigned_kernels!(q5_1_q8, q5_1_q8_4, q5_1_q8_8, q5_1_q8_4x, 24, unpack_q5_1, s, dm_dm, 1, 1.0);

/// `sum(x * y)` per 4-byte group for signed bytes (`|x| * sign(y, x)`; x = -128 is fine since
/// activations are within ±127).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_i8i8(x_abs: __m256i, x: __m256i, y: __m256i) -> __m256 {
    dot_u8i8(x_abs, _mm256_sign_epi8(y, x))
}

/// Generates kernels for Q8_0 (`$off` = 2) and Q8_1 (`$off` = 4; its `s` is unused) weights.
macro_rules! signed_kernels {
    ($one:ident, $four:ident, $eight:ident, $exact4:ident, $bytes:expr, $off:expr) => {
        /// One row · four activation rows, each token computed with exactly the operations of
        /// the one-token kernel (bit for bit its result), the weights loaded once for the four.
        /// Requires avx2, fma, f16c.
        #[target_feature(enable = "avx2,fma,f16c")]
        pub(super) unsafe fn $exact4(w: &[u8], a: [&[Q8Block]; 4]) -> [f32; 4] {
            let nb = (w.len() / $bytes).min(a[0].len()).min(a[1].len()).min(a[2].len()).min(a[3].len());
            let p = w.as_ptr();
            let (mut acc0, mut acc1) = ([_mm256_setzero_ps(); 4], [_mm256_setzero_ps(); 4]);
            let mut i = 0;
            while i + 2 <= nb {
                let (p0, p1) = (p.add(i * $bytes), p.add((i + 1) * $bytes));
                let x0 = _mm256_loadu_si256(p0.add($off) as *const __m256i);
                let x1 = _mm256_loadu_si256(p1.add($off) as *const __m256i);
                let (a0, a1) = (_mm256_sign_epi8(x0, x0), _mm256_sign_epi8(x1, x1));
                let (d0, _) = f16x2(p0);
                let (d1, _) = f16x2(p1);
                for t in 0..4 {
                    let (b0, b1) = (a[t].get_unchecked(i), a[t].get_unchecked(i + 1));
                    acc0[t] = _mm256_fmadd_ps(_mm256_set1_ps(d0 * b0.d), dot_i8i8(a0, x0, load_act(b0)), acc0[t]);
                    acc1[t] = _mm256_fmadd_ps(_mm256_set1_ps(d1 * b1.d), dot_i8i8(a1, x1, load_act(b1)), acc1[t]);
                }
                i += 2;
            }
            if i < nb {
                let p0 = p.add(i * $bytes);
                let x0 = _mm256_loadu_si256(p0.add($off) as *const __m256i);
                let a0 = _mm256_sign_epi8(x0, x0);
                let (d0, _) = f16x2(p0);
                for t in 0..4 {
                    let b0 = a[t].get_unchecked(i);
                    acc0[t] = _mm256_fmadd_ps(_mm256_set1_ps(d0 * b0.d), dot_i8i8(a0, x0, load_act(b0)), acc0[t]);
                }
            }
            std::array::from_fn(|t| hsum(_mm256_add_ps(acc0[t], acc1[t])))
        }

        /// One row · eight activation rows. Requires avx2, fma, f16c.
        #[target_feature(enable = "avx2,fma,f16c")]
        pub(super) unsafe fn $eight(w: &[u8], a: [&[Q8Block]; 8], g: &[Group8]) -> [f32; 8] {
            let mut nb = (w.len() / $bytes).min(g.len());
            for r in &a {
                nb = nb.min(r.len());
            }
            let p = w.as_ptr();
            let mut acc = [_mm256_setzero_ps(); 8];
            for i in 0..nb {
                let pb = p.add(i * $bytes);
                let x = _mm256_loadu_si256(pb.add($off) as *const __m256i);
                let x_abs = _mm256_sign_epi8(x, x);
                let (d, _) = f16x2(pb);
                let dv = _mm256_set1_ps(d);
                for t in 0..8 {
                    let b = a[t].get_unchecked(i);
                    let v = _mm256_mul_ps(dot_i8i8(x_abs, x, load_act(b)), dv);
                    acc[t] = _mm256_fmadd_ps(v, _mm256_broadcast_ss(&b.d), acc[t]);
                }
            }
            finish8(&acc, _mm256_setzero_ps())
        }

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

signed_kernels!(q8_0_q8, q8_0_q8_4, q8_0_q8_8, q8_0_q8_4x, 34, 2);
signed_kernels!(q8_1_q8, q8_1_q8_4, q8_1_q8_8, q8_1_q8_4x, 36, 4);

/// Generates an f32-activation kernel and its 4-token tile: `$load(p, i)` returns 8 weights
/// starting at element `i`. The tile loads (and converts) each weight vector once for four
/// tokens and accumulates every token exactly as the one-token kernel does, so a token's result
/// does not depend on the batch it was computed in.
macro_rules! float_kernel {
    ($name:ident, $name4:ident, $elem:expr, $load:ident, $scalar:path) => {
        /// One float row · four f32 rows. Requires avx2, fma, f16c.
        #[target_feature(enable = "avx2,fma,f16c")]
        pub(super) unsafe fn $name4(w: &[u8], x: [&[f32]; 4]) -> [f32; 4] {
            let mut n = w.len() / $elem;
            for r in &x {
                n = n.min(r.len());
            }
            let p = w.as_ptr();
            let mut acc = [[_mm256_setzero_ps(); 4]; 4];
            let mut i = 0;
            while i + 32 <= n {
                for k in 0..4 {
                    let j = i + 8 * k;
                    let wv = $load(p, j);
                    for t in 0..4 {
                        acc[t][k] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x[t].as_ptr().add(j)), acc[t][k]);
                    }
                }
                i += 32;
            }
            while i + 8 <= n {
                let wv = $load(p, i);
                for t in 0..4 {
                    acc[t][0] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x[t].as_ptr().add(i)), acc[t][0]);
                }
                i += 8;
            }
            let tail = w.get_unchecked(i * $elem..n * $elem);
            std::array::from_fn(|t| {
                let a = &acc[t];
                let main = hsum(_mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3])));
                main + $scalar(tail, x[t].get_unchecked(i..n))
            })
        }

        /// One float row · one f32 row. Requires avx2, fma, f16c.
        #[target_feature(enable = "avx2,fma,f16c")]
        pub(super) unsafe fn $name(w: &[u8], x: &[f32]) -> f32 {
            let n = (w.len() / $elem).min(x.len());
            let (p, xp) = (w.as_ptr(), x.as_ptr());
            let mut acc = [_mm256_setzero_ps(); 4];
            let mut i = 0;
            while i + 32 <= n {
                for (k, a) in acc.iter_mut().enumerate() {
                    let j = i + 8 * k;
                    *a = _mm256_fmadd_ps($load(p, j), _mm256_loadu_ps(xp.add(j)), *a);
                }
                i += 32;
            }
            while i + 8 <= n {
                acc[0] = _mm256_fmadd_ps($load(p, i), _mm256_loadu_ps(xp.add(i)), acc[0]);
                i += 8;
            }
            let main = hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
            main + $scalar(w.get_unchecked(i * $elem..n * $elem), x.get_unchecked(i..n))
        }
    };
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load_f32(p: *const u8, i: usize) -> __m256 {
    _mm256_loadu_ps(p.add(4 * i) as *const f32)
}
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load_f16(p: *const u8, i: usize) -> __m256 {
    _mm256_cvtph_ps(_mm_loadu_si128(p.add(2 * i) as *const __m128i))
}
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load_bf16(p: *const u8, i: usize) -> __m256 {
    let h = _mm256_cvtepu16_epi32(_mm_loadu_si128(p.add(2 * i) as *const __m128i));
    _mm256_castsi256_ps(_mm256_slli_epi32(h, 16))
}

float_kernel!(f32_f32, f32_f32_4, 4, load_f32, super::scalar::f32_f32);
float_kernel!(f16_f32, f16_f32_4, 2, load_f16, super::scalar::f16_f32);
float_kernel!(bf16_f32, bf16_f32_4, 2, load_bf16, super::scalar::bf16_f32);
