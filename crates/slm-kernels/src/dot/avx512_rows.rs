//! Four weight rows · one activation row with AVX-512 VNNI: generation's products.
//!
//! A one-token product spends much of its time around each row rather than in it (a call, a
//! horizontal sum, a store per 18-block row of SmolLM2). These kernels take four rows per call
//! and interleave them, so the activation block is loaded once for four rows and the four
//! independent accumulator chains keep the vector units busy, and `vpdpbusd` replaces the
//! `maddubs` + `madd` pair.
//!
//! Each row is computed with exactly the arithmetic of its AVX2 one-token kernel in
//! `super::avx2` (same accumulators, same order, same final sum); `vpdpbusd` yields the same
//! 32-bit integers as `maddubs` + `madd` because no 16-bit pair sum saturates here (at most
//! 2 · 31 · 127 for Q4/Q5 nibbles, 2 · 128 · 127 for Q8). So a row's result is bit for bit the
//! one-token result, and batched decoding (row-invariant mode) stays exact (tested in
//! `super::tests`).
//!
//! Every function here is `unsafe` and requires avx2, fma, f16c, avx512f, avx512bw, avx512vl
//! and avx512vnni; they are reached only through [`super::kernel`] for
//! [`super::Isa::Avx512Vnni`], which is only used after detection.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::avx2::{dm_d, dm_dm, f16x2, hsum, load_act, unpack_q5_0, unpack_q5_1};
use crate::act::Q8Block;

/// The lanes of the low half (block `i`) of a two-block register.
const LOW_HALF: __mmask16 = 0x00FF;

/// Two blocks per 512-bit register: block `i` in the low half, block `i + 1` in the high half.
/// The one-token kernel keeps even blocks in `acc0` and odd blocks in `acc1`, so one 512-bit
/// accumulator holds exactly `[acc0 | acc1]` and the halves are added at the end as it adds them.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn halves(lo: __m256i, hi: __m256i) -> __m512i {
    _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1)
}

/// `[bcast(s0[0]) × 8 | bcast(s1[0]) × 8]`: the two blocks' scales, one per half.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn scales(s0: __m128, s1: __m128) -> __m512 {
    let idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(_mm_unpacklo_ps(s0, s1)))
}

/// The unsigned quants of two 16-byte nibble runs at `p0` and `p1`, each unpacked as
/// `super::avx2::nibbles` does (low nibbles, then high nibbles), as `[q0 | q1]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn nibbles2(p0: *const u8, p1: *const u8) -> __m512i {
    let both = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128(p0 as *const __m128i)),
        _mm_loadu_si128(p1 as *const __m128i),
        1,
    );
    // [n0, n0, n1, n1] by 128-bit lanes, then the second copy of each shifted down a nibble.
    let spread = _mm512_permutexvar_epi64(_mm512_set_epi64(3, 2, 3, 2, 1, 0, 1, 0), _mm512_castsi256_si512(both));
    let shifted = _mm512_srlv_epi64(spread, _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0));
    _mm512_and_si512(shifted, _mm512_set1_epi8(0x0F))
}

/// `sum(q * a)` per 4-byte group as f32 lanes (`q` unsigned, `a` signed), as
/// `super::avx2::dot_u8i8` computes it.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn dot_u8i8(q: __m512i, a: __m512i) -> __m512 {
    _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q, a))
}

/// `sum(x * y)` per 4-byte group for signed bytes: `|x| · (y negated where x < 0)`, the
/// unsigned operand first, as `super::avx2::dot_i8i8` computes it (where `x` is 0 the product
/// is 0 either way; `|-128|` is 128 as an unsigned byte in both).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn dot_i8i8(x: __m512i, y: __m512i) -> __m512 {
    let negative = _mm512_movepi8_mask(x);
    dot_u8i8(_mm512_abs_epi8(x), _mm512_mask_sub_epi8(y, negative, _mm512_setzero_si512(), y))
}

/// The sum of a `[acc0 | acc1]` accumulator as the one-token kernel takes it:
/// `hsum(acc0 + acc1)`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn finish(acc: __m512) -> f32 {
    let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1));
    hsum(_mm256_add_ps(_mm512_castps512_ps256(acc), hi))
}

/// Blocks in a call: the shortest of the four weight rows and the activation row bounds them.
#[inline]
fn blocks(w: &[&[u8]; 4], a: &[Q8Block], block_bytes: usize) -> usize {
    w.iter().map(|r| r.len() / block_bytes).fold(a.len(), usize::min)
}

/// Generates the four-row kernel of an unsigned legacy format (see `unsigned_kernels!` in
/// `super::avx2` for the format and the meaning of `$off` (where the nibbles start), `$lane`
/// and `$mmul`).
macro_rules! unsigned_rows4 {
    ($name:ident, $bytes:expr, $off:expr, $unpack:ident, $dm:ident, $lane:expr, $mmul:expr) => {
        /// Four weight rows · one activation row; each row bit for bit its one-token result.
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
        pub(super) unsafe fn $name(w: [&[u8]; 4], a: &[Q8Block]) -> [f32; 4] {
            let nb = blocks(&w, a, $bytes);
            let p = w.map(|r| r.as_ptr());
            let mut acc = [_mm512_setzero_ps(); 4];
            let mut macc = [_mm_setzero_ps(); 4];
            let mut i = 0;
            while i + 2 <= nb {
                let (b0, b1) = (a.get_unchecked(i), a.get_unchecked(i + 1));
                let x = halves(load_act(b0), load_act(b1));
                let (ad0, ad1) = (_mm_load_ps(&b0.d), _mm_load_ps(&b1.d));
                for r in 0..4 {
                    let (p0, p1) = (p[r].add(i * $bytes), p[r].add((i + 1) * $bytes));
                    let s0 = _mm_mul_ps($dm(p0), ad0);
                    let s1 = _mm_mul_ps($dm(p1), ad1);
                    let q = $unpack(p0, p1);
                    acc[r] = _mm512_fmadd_ps(scales(s0, s1), dot_u8i8(q, x), acc[r]);
                    macc[r] = _mm_add_ps(macc[r], _mm_add_ps(s0, s1));
                }
                i += 2;
            }
            if i < nb {
                // An odd last block goes to the even half (`acc0`) alone, as in the one-token kernel.
                let b0 = a.get_unchecked(i);
                let (x0, ad0) = (_mm512_castsi256_si512(load_act(b0)), _mm_load_ps(&b0.d));
                for r in 0..4 {
                    let p0 = p[r].add(i * $bytes);
                    let s0 = _mm_mul_ps($dm(p0), ad0);
                    let q0 = $unpack(p0, p0);
                    acc[r] = _mm512_mask3_fmadd_ps(scales(s0, s0), dot_u8i8(q0, x0), acc[r], LOW_HALF);
                    macc[r] = _mm_add_ps(macc[r], s0);
                }
            }
            std::array::from_fn(|r| {
                let mut lanes = [0.0f32; 4];
                _mm_storeu_ps(lanes.as_mut_ptr(), macc[r]);
                finish(acc[r]) + $mmul * lanes[$lane]
            })
        }
    };
}

/// Q4_0 / Q4_1 quants of two blocks (the nibbles start at byte 2 / 4).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn q4_0_pair(p0: *const u8, p1: *const u8) -> __m512i {
    nibbles2(p0.add(2), p1.add(2))
}
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn q4_1_pair(p0: *const u8, p1: *const u8) -> __m512i {
    nibbles2(p0.add(4), p1.add(4))
}
/// Q5_0 / Q5_1 quants of two blocks: as unpacked one block at a time (nibbles plus fifth bit).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn q5_0_pair(p0: *const u8, p1: *const u8) -> __m512i {
    halves(unpack_q5_0(p0).0, unpack_q5_0(p1).0)
}
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn q5_1_pair(p0: *const u8, p1: *const u8) -> __m512i {
    halves(unpack_q5_1(p0).0, unpack_q5_1(p1).0)
}

unsigned_rows4!(q4_0_q8_rows4, 18, 2, q4_0_pair, dm_d, 2, -8.0);
unsigned_rows4!(q4_1_q8_rows4, 20, 4, q4_1_pair, dm_dm, 1, 1.0);
unsigned_rows4!(q5_0_q8_rows4, 22, 6, q5_0_pair, dm_d, 2, -16.0);
unsigned_rows4!(q5_1_q8_rows4, 24, 8, q5_1_pair, dm_dm, 1, 1.0);

/// Generates the four-row kernel of Q8_0 (`$off` = 2) or Q8_1 (`$off` = 4).
macro_rules! signed_rows4 {
    ($name:ident, $bytes:expr, $off:expr) => {
        /// Four weight rows · one activation row; each row bit for bit its one-token result.
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
        pub(super) unsafe fn $name(w: [&[u8]; 4], a: &[Q8Block]) -> [f32; 4] {
            let nb = blocks(&w, a, $bytes);
            let p = w.map(|r| r.as_ptr());
            let mut acc = [_mm512_setzero_ps(); 4];
            let mut i = 0;
            while i + 2 <= nb {
                let (b0, b1) = (a.get_unchecked(i), a.get_unchecked(i + 1));
                let y = halves(load_act(b0), load_act(b1));
                for r in 0..4 {
                    let (p0, p1) = (p[r].add(i * $bytes), p[r].add((i + 1) * $bytes));
                    let x0 = _mm256_loadu_si256(p0.add($off) as *const __m256i);
                    let x1 = _mm256_loadu_si256(p1.add($off) as *const __m256i);
                    let (d0, _) = f16x2(p0);
                    let (d1, _) = f16x2(p1);
                    let s = scales(_mm_set_ss(d0 * b0.d), _mm_set_ss(d1 * b1.d));
                    acc[r] = _mm512_fmadd_ps(s, dot_i8i8(halves(x0, x1), y), acc[r]);
                }
                i += 2;
            }
            if i < nb {
                // An odd last block goes to the even half (`acc0`) alone, as in the one-token kernel.
                let b0 = a.get_unchecked(i);
                let y0 = _mm512_castsi256_si512(load_act(b0));
                for r in 0..4 {
                    let p0 = p[r].add(i * $bytes);
                    let x0 = _mm512_castsi256_si512(_mm256_loadu_si256(p0.add($off) as *const __m256i));
                    let (d0, _) = f16x2(p0);
                    let s = _mm512_set1_ps(d0 * b0.d);
                    acc[r] = _mm512_mask3_fmadd_ps(s, dot_i8i8(x0, y0), acc[r], LOW_HALF);
                }
            }
            std::array::from_fn(|r| finish(acc[r]))
        }
    };
}

signed_rows4!(q8_0_q8_rows4, 34, 2);
signed_rows4!(q8_1_q8_rows4, 36, 4);

/// Generates a [`super::QuartersFn`] from a four-row kernel: the loop over a share's rows runs
/// inside the target-feature function, so the four-row kernel is inlined into it instead of
/// being called through a pointer per four rows (the call, the bounds checks and the stores
/// around it cost as much as a fifth of a SmolLM2 row, 576 columns wide).
macro_rules! quarters {
    ($name:ident, $rows4:ident) => {
        /// Rows `j`, `j + q`, `j + 2q`, `j + 3q` of `w` (rows of `row_bytes`) for `j` in
        /// `steps`: each result bit for bit the one-token kernel's, written at `out + row`.
        /// Does nothing unless `w` holds `4q` rows and `steps` lie within `0..q`.
        ///
        /// # Safety
        /// The ISA (see the module doc); `out` valid for writes at every `j + k·q`, `j` in
        /// `steps`, `k < 4`, and no other thread accessing those cells meanwhile.
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
        pub(super) unsafe fn $name(
            w: &[u8],
            row_bytes: usize,
            q: usize,
            steps: std::ops::Range<usize>,
            a: &[Q8Block],
            out: *mut f32,
        ) {
            let fits = q.checked_mul(4).and_then(|n| n.checked_mul(row_bytes)).is_some_and(|b| b <= w.len());
            if !fits || steps.end > q {
                return;
            }
            let row = |r: usize| std::slice::from_raw_parts(w.as_ptr().add(r * row_bytes), row_bytes);
            for j in steps {
                let v = $rows4([row(j), row(j + q), row(j + 2 * q), row(j + 3 * q)], a);
                for (k, v) in v.into_iter().enumerate() {
                    *out.add(j + k * q) = v;
                }
            }
        }
    };
}

quarters!(q4_0_q8_quarters, q4_0_q8_rows4);
quarters!(q4_1_q8_quarters, q4_1_q8_rows4);
quarters!(q5_0_q8_quarters, q5_0_q8_rows4);
quarters!(q5_1_q8_quarters, q5_1_q8_rows4);
quarters!(q8_0_q8_quarters, q8_0_q8_rows4);
quarters!(q8_1_q8_quarters, q8_1_q8_rows4);
