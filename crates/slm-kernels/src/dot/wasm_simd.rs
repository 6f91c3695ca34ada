//! WebAssembly SIMD128 dot products for the legacy quant formats (Q4_0, Q4_1, Q8_0) against Q8
//! activations: the types of the default model (Q4_1 blocks, Q8_0 embeddings/output).
//!
//! SIMD128 is a compile-time feature of a wasm module (`-C target-feature=+simd128`, set by
//! `scripts/build_wasm.sh`); every engine that runs such a module supports it, so no run-time
//! detection is needed and these replace the scalar kernels whenever they are compiled in.
//!
//! Per 32-value block the integer dot is exact (`i32x4_dot_i16x8` on sign/zero-extended
//! halves); the block scales are applied in f32 lanes, one lane per quarter of the block, and the
//! four lanes summed at the end, so results differ from the scalar kernels only by f32 rounding.

use crate::act::Q8Block;
use crate::quant::float::f16_at;
use core::arch::wasm32::*;

/// Loads 16 bytes starting at `b[at]`. Callers pass blocks of the exact type size.
#[inline(always)]
fn load16(b: &[u8], at: usize) -> v128 {
    let s = &b[at..at + 16];
    // SAFETY: `s` is 16 readable bytes; v128_load has no alignment requirement.
    unsafe { v128_load(s.as_ptr() as *const v128) }
}

/// The i32x4 partial dot of 16 unsigned/signed weights (`w`, as u8 or i8 lanes per `signed`)
/// and 16 i8 activations.
#[inline(always)]
fn dot16(w: v128, a: v128, signed: bool) -> v128 {
    let (wl, wh) = if signed {
        (i16x8_extend_low_i8x16(w), i16x8_extend_high_i8x16(w))
    } else {
        (u16x8_extend_low_u8x16(w), u16x8_extend_high_u8x16(w))
    };
    let al = i16x8_extend_low_i8x16(a);
    let ah = i16x8_extend_high_i8x16(a);
    i32x4_add(i32x4_dot_i16x8(wl, al), i32x4_dot_i16x8(wh, ah))
}

#[inline(always)]
fn hsum(v: v128) -> f32 {
    f32x4_extract_lane::<0>(v)
        + f32x4_extract_lane::<1>(v)
        + f32x4_extract_lane::<2>(v)
        + f32x4_extract_lane::<3>(v)
}

#[inline(always)]
fn act_halves(a: &Q8Block) -> (v128, v128) {
    // SAFETY: `qs` is 32 i8 values; unaligned loads are allowed.
    unsafe {
        (
            v128_load(a.qs.as_ptr() as *const v128),
            v128_load(a.qs.as_ptr().add(16) as *const v128),
        )
    }
}

/// The 4-bit quants of a block as two u8x16 vectors: low nibbles (values 0..16 of the block) and
/// high nibbles (values 16..32).
#[inline(always)]
fn nibbles(b: &[u8], at: usize) -> (v128, v128) {
    let q = load16(b, at);
    (v128_and(q, u8x16_splat(0x0F)), u8x16_shr(q, 4))
}

/// Q4_1 row (20-byte blocks: f16 d, f16 m, 16 bytes of nibbles) · Q8 row.
pub(crate) fn q4_1_q8(w: &[u8], a: &[Q8Block]) -> f32 {
    let mut acc = f32x4_splat(0.0);
    let mut acc_m = 0.0f32;
    for (b, a) in w.chunks_exact(20).zip(a) {
        let (lo, hi) = nibbles(b, 4);
        let (a0, a1) = act_halves(a);
        let isum = i32x4_add(dot16(lo, a0, false), dot16(hi, a1, false));
        let scale = f16_at(b[0], b[1]) * a.d;
        acc = f32x4_add(
            acc,
            f32x4_mul(f32x4_convert_i32x4(isum), f32x4_splat(scale)),
        );
        acc_m += f16_at(b[2], b[3]) * a.s;
    }
    hsum(acc) + acc_m
}

/// Q4_0 row (18-byte blocks: f16 d, 16 bytes of nibbles, offset 8) · Q8 row.
pub(crate) fn q4_0_q8(w: &[u8], a: &[Q8Block]) -> f32 {
    let mut acc = f32x4_splat(0.0);
    let eight = i8x16_splat(8);
    for (b, a) in w.chunks_exact(18).zip(a) {
        let (lo, hi) = nibbles(b, 2);
        let (a0, a1) = act_halves(a);
        let isum = i32x4_add(
            dot16(i8x16_sub(lo, eight), a0, true),
            dot16(i8x16_sub(hi, eight), a1, true),
        );
        let scale = f16_at(b[0], b[1]) * a.d;
        acc = f32x4_add(
            acc,
            f32x4_mul(f32x4_convert_i32x4(isum), f32x4_splat(scale)),
        );
    }
    hsum(acc)
}

/// Q8_0 row (34-byte blocks: f16 d, 32 i8) · Q8 row.
pub(crate) fn q8_0_q8(w: &[u8], a: &[Q8Block]) -> f32 {
    let mut acc = f32x4_splat(0.0);
    for (b, a) in w.chunks_exact(34).zip(a) {
        let (a0, a1) = act_halves(a);
        let isum = i32x4_add(
            dot16(load16(b, 2), a0, true),
            dot16(load16(b, 18), a1, true),
        );
        let scale = f16_at(b[0], b[1]) * a.d;
        acc = f32x4_add(
            acc,
            f32x4_mul(f32x4_convert_i32x4(isum), f32x4_splat(scale)),
        );
    }
    hsum(acc)
}

#[cfg(test)]
mod tests {
    use super::super::scalar;
    use crate::act::{quantize_q8, Q8Block};
    use crate::quant::quantize_row;
    use crate::GgmlType;

    /// Each SIMD128 kernel against the scalar reference on pseudo-random rows of several widths:
    /// the integer parts are exact, so only f32 rounding of the scaled sums may differ.
    #[test]
    fn simd128_kernels_match_the_scalar_reference() {
        type K = fn(&[u8], &[Q8Block]) -> f32;
        let cases: [(GgmlType, K, K); 3] = [
            (GgmlType::Q4_0, super::q4_0_q8, scalar::q4_0_q8),
            (GgmlType::Q4_1, super::q4_1_q8, scalar::q4_1_q8),
            (GgmlType::Q8_0, super::q8_0_q8, scalar::q8_0_q8),
        ];
        for (dtype, simd, reference) in cases {
            for cols in [32usize, 64, 576, 1536] {
                let x = crate::quant::tests::test_data(cols, 7 + cols as u64);
                let mut w = vec![0u8; dtype.row_bytes(cols as u64).unwrap() as usize];
                quantize_row(dtype, &x, &mut w).unwrap();
                let y = crate::quant::tests::test_data(cols, 99 + cols as u64);
                let mut a = vec![Q8Block::default(); cols / 32];
                quantize_q8(&y, &mut a);
                let (got, want) = (simd(&w, &a), reference(&w, &a));
                let mag: f32 = x.iter().zip(&y).map(|(p, q)| (p * q).abs()).sum();
                assert!(
                    (got - want).abs() <= 1e-5 * mag + 1e-6,
                    "{dtype} cols {cols}: simd {got} vs scalar {want}"
                );
            }
        }
    }
}
