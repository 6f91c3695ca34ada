//! WebAssembly SIMD128 dot products for the legacy quant formats (Q4_0, Q4_1, Q8_0) against Q8
//! activations: the types of the default model (Q4_1 blocks, Q8_0 embeddings/output).
//!
//! SIMD128 is a compile-time feature of a wasm module (`-C target-feature=+simd128`, set by
//! `scripts/build_wasm.sh`); every engine that runs such a module supports it, so no run-time
//! detection is needed and these replace the scalar kernels whenever they are compiled in.
//!
//! Per 32-value block the integer dot is exact (i8×i8 → i16 `extmul`, summed in i16 where the
//! value ranges allow, then widened to i32); the block scales are applied in f32 lanes and the
//! four lanes summed at the end, so results differ from the scalar kernels only by f32 rounding.

use crate::act::Q8Block;
use core::arch::wasm32::*;

/// Loads 16 bytes starting at `b[at]`. Callers pass blocks of the exact type size.
#[inline(always)]
fn load16(b: &[u8], at: usize) -> v128 {
    let s = &b[at..at + 16];
    // SAFETY: `s` is 16 readable bytes; v128_load has no alignment requirement.
    unsafe { v128_load(s.as_ptr() as *const v128) }
}

/// f16 (little-endian bytes) to f32, exact for every finite value, branch-free: the f16 bits moved
/// into f32 position give the value times 2^-112 (normal or subnormal alike), and one exact multiply
/// restores it. (`half`'s portable conversion branches per call; block scales are never inf/NaN.)
#[inline(always)]
fn f16_at(b0: u8, b1: u8) -> f32 {
    let h = u16::from_le_bytes([b0, b1]) as u32;
    let magnitude = f32::from_bits((h & 0x7FFF) << 13) * f32::from_bits(0x7780_0000);
    f32::from_bits(magnitude.to_bits() | ((h & 0x8000) << 16))
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

/// The 4-bit quants of a block as two i8x16 vectors (values 0..=15): low nibbles (values 0..16 of
/// the block) and high nibbles (values 16..32).
#[inline(always)]
fn nibbles(b: &[u8], at: usize) -> (v128, v128) {
    let q = load16(b, at);
    (v128_and(q, u8x16_splat(0x0F)), u8x16_shr(q, 4))
}

/// Σ w·a over a block whose weights are small (|w| ≤ 16: nibbles, or nibbles − 8), as i32x4.
/// Products go to i16 lanes (`extmul`), four per lane are summed in i16 (|sum| ≤ 4·16·127 < 2^15),
/// then pairs widen to i32: 9 operations per 32 values instead of 17 with i16 dot products.
#[inline(always)]
fn dot_small(w0: v128, w1: v128, a0: v128, a1: v128) -> v128 {
    let s = i16x8_add(
        i16x8_add(
            i16x8_extmul_low_i8x16(w0, a0),
            i16x8_extmul_high_i8x16(w0, a0),
        ),
        i16x8_add(
            i16x8_extmul_low_i8x16(w1, a1),
            i16x8_extmul_high_i8x16(w1, a1),
        ),
    );
    i32x4_extadd_pairwise_i16x8(s)
}

/// Q4_1 row (20-byte blocks: f16 d, f16 m, 16 bytes of nibbles) · Q8 row.
pub(crate) fn q4_1_q8(w: &[u8], a: &[Q8Block]) -> f32 {
    let mut acc = f32x4_splat(0.0);
    let mut acc_m = 0.0f32;
    for (b, a) in w.chunks_exact(20).zip(a) {
        let (lo, hi) = nibbles(b, 4);
        let (a0, a1) = act_halves(a);
        let isum = dot_small(lo, hi, a0, a1);
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
        let isum = dot_small(i8x16_sub(lo, eight), i8x16_sub(hi, eight), a0, a1);
        let scale = f16_at(b[0], b[1]) * a.d;
        acc = f32x4_add(
            acc,
            f32x4_mul(f32x4_convert_i32x4(isum), f32x4_splat(scale)),
        );
    }
    hsum(acc)
}

/// Q8_0 row (34-byte blocks: f16 d, 32 i8) · Q8 row. Two products per i16 lane before widening:
/// |w| ≤ 128 and |a| ≤ 127 (Q8 activations are rounded into ±127), so |sum| ≤ 32,512 < 2^15.
pub(crate) fn q8_0_q8(w: &[u8], a: &[Q8Block]) -> f32 {
    let mut acc = f32x4_splat(0.0);
    for (b, a) in w.chunks_exact(34).zip(a) {
        let (a0, a1) = act_halves(a);
        let (w0, w1) = (load16(b, 2), load16(b, 18));
        let lo = i16x8_add(
            i16x8_extmul_low_i8x16(w0, a0),
            i16x8_extmul_low_i8x16(w1, a1),
        );
        let hi = i16x8_add(
            i16x8_extmul_high_i8x16(w0, a0),
            i16x8_extmul_high_i8x16(w1, a1),
        );
        let isum = i32x4_add(
            i32x4_extadd_pairwise_i16x8(lo),
            i32x4_extadd_pairwise_i16x8(hi),
        );
        let scale = f16_at(b[0], b[1]) * a.d;
        acc = f32x4_add(
            acc,
            f32x4_mul(f32x4_convert_i32x4(isum), f32x4_splat(scale)),
        );
    }
    hsum(acc)
}

/// One weight row against four activation rows (prompt processing): each block's weights and
/// scales are decoded once for the four tokens. Every token's result is bit-for-bit the one-token
/// kernel's (same operations in the same order).
macro_rules! four_rows {
    ($name:ident, $one_block:expr, $size:expr, $has_m:expr) => {
        pub(crate) fn $name(w: &[u8], a: [&[Q8Block]; 4]) -> [f32; 4] {
            let mut acc = [f32x4_splat(0.0); 4];
            let mut acc_m = [0.0f32; 4];
            let n = a.iter().map(|r| r.len()).min().unwrap_or(0);
            for (i, b) in w.chunks_exact($size).take(n).enumerate() {
                let (w0, w1, d, m) = $one_block(b);
                for t in 0..4 {
                    // `i < n <= a[t].len()`; `get` keeps it checked anyway.
                    let Some(at) = a[t].get(i) else { continue };
                    let (a0, a1) = act_halves(at);
                    let isum = dot_small(w0, w1, a0, a1);
                    acc[t] = f32x4_add(
                        acc[t],
                        f32x4_mul(f32x4_convert_i32x4(isum), f32x4_splat(d * at.d)),
                    );
                    if $has_m {
                        acc_m[t] += m * at.s;
                    }
                }
            }
            [0, 1, 2, 3].map(|t| {
                if $has_m {
                    hsum(acc[t]) + acc_m[t]
                } else {
                    hsum(acc[t])
                }
            })
        }
    };
}

four_rows!(
    q4_1_q8_4,
    |b: &[u8]| {
        let (lo, hi) = nibbles(b, 4);
        (lo, hi, f16_at(b[0], b[1]), f16_at(b[2], b[3]))
    },
    20,
    true
);
four_rows!(
    q4_0_q8_4,
    |b: &[u8]| {
        let (lo, hi) = nibbles(b, 2);
        let eight = i8x16_splat(8);
        (
            i8x16_sub(lo, eight),
            i8x16_sub(hi, eight),
            f16_at(b[0], b[1]),
            0.0f32,
        )
    },
    18,
    false
);

/// [`q8_0_q8`] for four activation rows (weights and scale decoded once per block).
pub(crate) fn q8_0_q8_4(w: &[u8], a: [&[Q8Block]; 4]) -> [f32; 4] {
    let mut acc = [f32x4_splat(0.0); 4];
    let n = a.iter().map(|r| r.len()).min().unwrap_or(0);
    for (i, b) in w.chunks_exact(34).take(n).enumerate() {
        let (w0, w1) = (load16(b, 2), load16(b, 18));
        let d = f16_at(b[0], b[1]);
        for t in 0..4 {
            let Some(at) = a[t].get(i) else { continue };
            let (a0, a1) = act_halves(at);
            let lo = i16x8_add(
                i16x8_extmul_low_i8x16(w0, a0),
                i16x8_extmul_low_i8x16(w1, a1),
            );
            let hi = i16x8_add(
                i16x8_extmul_high_i8x16(w0, a0),
                i16x8_extmul_high_i8x16(w1, a1),
            );
            let isum = i32x4_add(
                i32x4_extadd_pairwise_i16x8(lo),
                i32x4_extadd_pairwise_i16x8(hi),
            );
            acc[t] = f32x4_add(
                acc[t],
                f32x4_mul(f32x4_convert_i32x4(isum), f32x4_splat(d * at.d)),
            );
        }
    }
    acc.map(hsum)
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

    /// The four-row kernels give each row exactly the one-row kernel's result.
    #[test]
    fn four_row_kernels_equal_the_one_row_kernel_bit_for_bit() {
        type One = fn(&[u8], &[Q8Block]) -> f32;
        type Four = fn(&[u8], [&[Q8Block]; 4]) -> [f32; 4];
        let cases: [(GgmlType, One, Four); 3] = [
            (GgmlType::Q4_0, super::q4_0_q8, super::q4_0_q8_4),
            (GgmlType::Q4_1, super::q4_1_q8, super::q4_1_q8_4),
            (GgmlType::Q8_0, super::q8_0_q8, super::q8_0_q8_4),
        ];
        let cols = 576;
        for (dtype, one, four) in cases {
            let x = crate::quant::tests::test_data(cols, 5);
            let mut w = vec![0u8; dtype.row_bytes(cols as u64).unwrap() as usize];
            quantize_row(dtype, &x, &mut w).unwrap();
            let acts: Vec<Vec<Q8Block>> = (0..4)
                .map(|t| {
                    let mut a = vec![Q8Block::default(); cols / 32];
                    quantize_q8(&crate::quant::tests::test_data(cols, 40 + t), &mut a);
                    a
                })
                .collect();
            let got = four(&w, [&acts[0], &acts[1], &acts[2], &acts[3]]);
            for t in 0..4 {
                assert_eq!(
                    got[t].to_bits(),
                    one(&w, &acts[t]).to_bits(),
                    "{dtype} row {t}"
                );
            }
        }
    }

    /// The branch-free f16 conversion equals `half`'s for every finite f16.
    #[test]
    fn f16_conversion_is_exact() {
        for h in 0..=u16::MAX {
            let want = half::f16::from_bits(h);
            if want.is_finite() {
                let [b0, b1] = h.to_le_bytes();
                assert_eq!(
                    super::f16_at(b0, b1).to_bits(),
                    want.to_f32().to_bits(),
                    "{h:#06x}"
                );
            }
        }
    }

    /// The largest magnitudes the i16 partial sums must hold: Q8_0 weights of −128 against
    /// activations of ±127, and Q4 nibbles of 15 against 127 (exact integers in both kernels).
    #[test]
    fn extreme_values_do_not_overflow() {
        let a = |q: i8| Q8Block {
            qs: [q; 32],
            d: 1.0,
            s: 32.0 * q as f32,
            sd: 32.0 * q as f32,
            pad: 0.0,
        };
        let one = [0x00, 0x3C]; // f16 1.0
        let q8_0: Vec<u8> = [one.as_slice(), &[0x80u8; 32]].concat();
        for q in [-127i8, 127] {
            assert_eq!(
                super::q8_0_q8(&q8_0, &[a(q)]),
                scalar::q8_0_q8(&q8_0, &[a(q)])
            );
            assert_eq!(super::q8_0_q8(&q8_0, &[a(q)]), -128.0 * q as f32 * 32.0);
        }
        let q4_1: Vec<u8> = [one.as_slice(), &[0, 0], &[0xFFu8; 16]].concat();
        let q4_0: Vec<u8> = [one.as_slice(), &[0x00u8; 16]].concat();
        for q in [-127i8, 127] {
            assert_eq!(super::q4_1_q8(&q4_1, &[a(q)]), 15.0 * q as f32 * 32.0);
            assert_eq!(super::q4_0_q8(&q4_0, &[a(q)]), -8.0 * q as f32 * 32.0);
        }
    }
}
