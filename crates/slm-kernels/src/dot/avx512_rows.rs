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

use super::avx2::{dm_d, dm_dm, f16x2, hsum, load_act, unpack_q4_0, unpack_q4_1, unpack_q5_0, unpack_q5_1};
use crate::act::Q8Block;

/// `sum(q * a)` per 4-byte group as f32 lanes (`q` unsigned, `a` signed), as
/// `super::avx2::dot_u8i8` computes it.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn dot_u8i8(q: __m256i, a: __m256i) -> __m256 {
    _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), q, a))
}

/// `sum(x * y)` per 4-byte group for signed bytes: `|x| · sign(y, x)`, the unsigned operand
/// first, as `super::avx2::dot_i8i8` computes it.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn dot_i8i8(x: __m256i, y: __m256i) -> __m256 {
    dot_u8i8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x))
}

/// Blocks in a call: the shortest of the four weight rows and the activation row bounds them.
#[inline]
fn blocks(w: &[&[u8]; 4], a: &[Q8Block], block_bytes: usize) -> usize {
    w.iter().map(|r| r.len() / block_bytes).fold(a.len(), usize::min)
}

/// Generates the four-row kernel of an unsigned legacy format (see `unsigned_kernels!` in
/// `super::avx2` for the format and the meaning of `$lane` / `$mmul`).
macro_rules! unsigned_rows4 {
    ($name:ident, $bytes:expr, $unpack:ident, $dm:ident, $lane:expr, $mmul:expr) => {
        /// Four weight rows · one activation row; each row bit for bit its one-token result.
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
        pub(super) unsafe fn $name(w: [&[u8]; 4], a: &[Q8Block]) -> [f32; 4] {
            let nb = blocks(&w, a, $bytes);
            let p = w.map(|r| r.as_ptr());
            let (mut acc0, mut acc1) = ([_mm256_setzero_ps(); 4], [_mm256_setzero_ps(); 4]);
            let mut macc = [_mm_setzero_ps(); 4];
            let mut i = 0;
            while i + 2 <= nb {
                let (b0, b1) = (a.get_unchecked(i), a.get_unchecked(i + 1));
                let (x0, x1) = (load_act(b0), load_act(b1));
                let (ad0, ad1) = (_mm_load_ps(&b0.d), _mm_load_ps(&b1.d));
                for r in 0..4 {
                    let (p0, p1) = (p[r].add(i * $bytes), p[r].add((i + 1) * $bytes));
                    let s0 = _mm_mul_ps($dm(p0), ad0);
                    let s1 = _mm_mul_ps($dm(p1), ad1);
                    let (q0, _, _) = $unpack(p0);
                    let (q1, _, _) = $unpack(p1);
                    acc0[r] = _mm256_fmadd_ps(_mm256_broadcastss_ps(s0), dot_u8i8(q0, x0), acc0[r]);
                    acc1[r] = _mm256_fmadd_ps(_mm256_broadcastss_ps(s1), dot_u8i8(q1, x1), acc1[r]);
                    macc[r] = _mm_add_ps(macc[r], _mm_add_ps(s0, s1));
                }
                i += 2;
            }
            if i < nb {
                let b0 = a.get_unchecked(i);
                let (x0, ad0) = (load_act(b0), _mm_load_ps(&b0.d));
                for r in 0..4 {
                    let p0 = p[r].add(i * $bytes);
                    let s0 = _mm_mul_ps($dm(p0), ad0);
                    let (q0, _, _) = $unpack(p0);
                    acc0[r] = _mm256_fmadd_ps(_mm256_broadcastss_ps(s0), dot_u8i8(q0, x0), acc0[r]);
                    macc[r] = _mm_add_ps(macc[r], s0);
                }
            }
            std::array::from_fn(|r| {
                let mut lanes = [0.0f32; 4];
                _mm_storeu_ps(lanes.as_mut_ptr(), macc[r]);
                hsum(_mm256_add_ps(acc0[r], acc1[r])) + $mmul * lanes[$lane]
            })
        }
    };
}

unsigned_rows4!(q4_0_q8_rows4, 18, unpack_q4_0, dm_d, 2, -8.0);
unsigned_rows4!(q4_1_q8_rows4, 20, unpack_q4_1, dm_dm, 1, 1.0);
unsigned_rows4!(q5_0_q8_rows4, 22, unpack_q5_0, dm_d, 2, -16.0);
unsigned_rows4!(q5_1_q8_rows4, 24, unpack_q5_1, dm_dm, 1, 1.0);

/// Generates the four-row kernel of Q8_0 (`$off` = 2) or Q8_1 (`$off` = 4).
macro_rules! signed_rows4 {
    ($name:ident, $bytes:expr, $off:expr) => {
        /// Four weight rows · one activation row; each row bit for bit its one-token result.
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
        pub(super) unsafe fn $name(w: [&[u8]; 4], a: &[Q8Block]) -> [f32; 4] {
            let nb = blocks(&w, a, $bytes);
            let p = w.map(|r| r.as_ptr());
            let (mut acc0, mut acc1) = ([_mm256_setzero_ps(); 4], [_mm256_setzero_ps(); 4]);
            let mut i = 0;
            while i + 2 <= nb {
                let (b0, b1) = (a.get_unchecked(i), a.get_unchecked(i + 1));
                let (y0, y1) = (load_act(b0), load_act(b1));
                for r in 0..4 {
                    let (p0, p1) = (p[r].add(i * $bytes), p[r].add((i + 1) * $bytes));
                    let x0 = _mm256_loadu_si256(p0.add($off) as *const __m256i);
                    let x1 = _mm256_loadu_si256(p1.add($off) as *const __m256i);
                    let (d0, _) = f16x2(p0);
                    let (d1, _) = f16x2(p1);
                    acc0[r] = _mm256_fmadd_ps(_mm256_set1_ps(d0 * b0.d), dot_i8i8(x0, y0), acc0[r]);
                    acc1[r] = _mm256_fmadd_ps(_mm256_set1_ps(d1 * b1.d), dot_i8i8(x1, y1), acc1[r]);
                }
                i += 2;
            }
            if i < nb {
                let b0 = a.get_unchecked(i);
                let y0 = load_act(b0);
                for r in 0..4 {
                    let p0 = p[r].add(i * $bytes);
                    let x0 = _mm256_loadu_si256(p0.add($off) as *const __m256i);
                    let (d0, _) = f16x2(p0);
                    acc0[r] = _mm256_fmadd_ps(_mm256_set1_ps(d0 * b0.d), dot_i8i8(x0, y0), acc0[r]);
                }
            }
            std::array::from_fn(|r| hsum(_mm256_add_ps(acc0[r], acc1[r])))
        }
    };
}

signed_rows4!(q8_0_q8_rows4, 34, 2);
signed_rows4!(q8_1_q8_rows4, 36, 4);
