//! Decoder tests against hand-computed values, encoder tests against hand-computed bytes, and
//! quantize→dequantize error budgets on pseudo-random data.

use super::*;
use crate::GgmlType::{self, *};

const F16_1: [u8; 2] = [0x00, 0x3C];
const F16_HALF: [u8; 2] = [0x00, 0x38];
const F16_QUARTER: [u8; 2] = [0x00, 0x34];
const F16_2: [u8; 2] = [0x00, 0x40];
const F16_EIGHTH: [u8; 2] = [0x00, 0x30];
const F16_M1: [u8; 2] = [0x00, 0xBC];

fn decode(dtype: GgmlType, block: &[u8]) -> Vec<f32> {
    let mut out = vec![f32::NAN; dtype.block_size()];
    dequantize_row(dtype, block, &mut out).unwrap();
    out
}

/// Deterministic pseudo-random values, roughly normal (sum of 4 uniforms), with some outliers.
pub(crate) fn test_data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32
    };
    (0..n)
        .map(|i| {
            let g = next() + next() + next() + next() - 2.0;
            if i % 97 == 13 {
                g * 6.0
            } else {
                g
            }
        })
        .collect()
}

/// `rows` weight rows of `dtype`, `cols` wide, quantized from [`test_data`] (seeded by `seed`).
pub(crate) fn quantized_rows(dtype: GgmlType, rows: usize, cols: usize, seed: u64) -> Vec<u8> {
    let rb = dtype.row_bytes(cols as u64).unwrap() as usize;
    let mut bytes = vec![0u8; rows * rb];
    for (xr, br) in test_data(rows * cols, seed).chunks(cols).zip(bytes.chunks_mut(rb)) {
        quantize_row(dtype, xr, br).unwrap();
    }
    bytes
}

#[test]
fn q4_0_block() {
    let mut b = vec![0x88u8; 18];
    b[0..2].copy_from_slice(&F16_HALF);
    b[2] = 0x1F; // elem 0: 15 - 8 = 7; elem 16: 1 - 8 = -7
    let y = decode(Q4_0, &b);
    assert_eq!(y[0], 3.5);
    assert_eq!(y[16], -3.5);
    assert!(y.iter().enumerate().all(|(i, v)| i == 0 || i == 16 || *v == 0.0));
}

#[test]
fn q4_1_block() {
    let mut b = vec![0u8; 20];
    b[0..2].copy_from_slice(&F16_HALF);
    b[2..4].copy_from_slice(&F16_M1);
    b[4] = 0x3A; // elem 0: 10 * 0.5 - 1; elem 16: 3 * 0.5 - 1
    let y = decode(Q4_1, &b);
    assert_eq!((y[0], y[16], y[1], y[31]), (4.0, 0.5, -1.0, -1.0));
}

#[test]
fn q5_0_block() {
    let mut b = vec![0u8; 22];
    b[0..2].copy_from_slice(&F16_QUARTER);
    b[2..6].copy_from_slice(&((1u32 << 0) | (1u32 << 16)).to_le_bytes());
    b[6] = 0x21; // elem 0: (1|16)-16 = 1; elem 16: (2|16)-16 = 2
    let y = decode(Q5_0, &b);
    assert_eq!((y[0], y[16], y[1], y[17]), (0.25, 0.5, -4.0, -4.0));
}

#[test]
fn q5_1_block() {
    let mut b = vec![0u8; 24];
    b[0..2].copy_from_slice(&F16_HALF);
    b[2..4].copy_from_slice(&F16_1);
    b[4..8].copy_from_slice(&(1u32 << 31).to_le_bytes());
    b[8 + 15] = 0xF0; // elem 31: (15|16) * 0.5 + 1; elem 15: 0 * 0.5 + 1
    let y = decode(Q5_1, &b);
    assert_eq!((y[31], y[15], y[0]), (16.5, 1.0, 1.0));
}

#[test]
fn q8_0_and_q8_1_blocks() {
    let mut b = vec![0u8; 34];
    b[0..2].copy_from_slice(&F16_2);
    b[2 + 3] = (-5i8) as u8;
    let y = decode(Q8_0, &b);
    assert_eq!((y[3], y[0]), (-10.0, 0.0));
    let mut b = vec![0u8; 36];
    b[0..2].copy_from_slice(&F16_EIGHTH);
    b[2..4].copy_from_slice(&F16_1); // s is ignored by the decoder
    b[4 + 31] = 100;
    assert_eq!(decode(Q8_1, &b)[31], 12.5);
}

#[test]
fn q8_k_block() {
    let mut b = vec![0u8; 292];
    b[0..4].copy_from_slice(&0.01f32.to_le_bytes());
    b[4 + 255] = 0x80; // -128
    b[4] = 1;
    let y = decode(Q8_K, &b);
    assert_eq!(y[255], 0.01 * -128.0);
    assert_eq!(y[0], 0.01);
}

/// Q4_K/Q5_K shared part: d = 1, dmin = 0.5; sub-block 0: sc 2, m 3; sub-block 5: sc 17, m 34.
fn q45k_head(b: &mut [u8]) {
    b[0..2].copy_from_slice(&F16_1);
    b[2..4].copy_from_slice(&F16_HALF);
    let s = &mut b[4..16];
    s[0] = 2;
    s[4] = 3;
    s[1] = 0x40; // sc(1) = 0, and bit 6 is the high bits of sc(5)
    s[5] = 0x80; // m(1) = 0, and bits 6-7 = 2 are the high bits of m(5)
    s[9] = 0x21; // low nibbles of sc(5) = 1 and m(5) = 2
}

#[test]
fn q4_k_block() {
    let mut b = vec![0u8; 144];
    q45k_head(&mut b);
    b[16] = 0x07; // elem 0
    b[16 + 64] = 0x90; // elem 160: high nibble of qs[64]
    let y = decode(Q4_K, &b);
    assert_eq!(y[0], 2.0 * 7.0 - 0.5 * 3.0);
    assert_eq!(y[1], -1.5);
    assert_eq!(y[32], 0.0);
    assert_eq!(y[160], 17.0 * 9.0 - 0.5 * 34.0);
    assert_eq!(y[128], 0.0);
}

#[test]
fn q5_k_block() {
    let mut b = vec![0u8; 176];
    q45k_head(&mut b);
    b[16] = 1 << 5; // qh[0] bit 5 -> elem 160 gets +16
    b[48] = 0x07;
    b[48 + 64] = 0x90;
    let y = decode(Q5_K, &b);
    assert_eq!(y[0], 12.5);
    assert_eq!(y[160], 17.0 * 25.0 - 17.0);
}

#[test]
fn q6_k_block() {
    let mut b = vec![0u8; 210];
    b[0] = 0x05; // elem 0 low bits
    b[128] = 0x02; // elem 0 high bits -> q = 37 - 32 = 5
    b[127] = 0x30; // elem 255: high nibble of ql[127] = 3
    b[128 + 63] = 0x40; // elem 255: qh[63] >> 6 = 1 -> q = 19 - 32 = -13
    b[192] = 2;
    b[192 + 15] = (-1i8) as u8;
    b[208..210].copy_from_slice(&F16_HALF);
    let y = decode(Q6_K, &b);
    assert_eq!((y[0], y[1], y[255]), (5.0, -32.0, 6.5));
}

#[test]
fn q2_k_block() {
    let mut b = vec![0u8; 84];
    b[0] = 0x32; // group 0: scale 2, min 3
    b[6] = 0x01; // group 6: scale 1, min 0
    b[16] = 0b1100_0010; // elem 0 = 2, elem 96 = 3
    b[80..82].copy_from_slice(&F16_HALF);
    b[82..84].copy_from_slice(&F16_QUARTER);
    let y = decode(Q2_K, &b);
    assert_eq!((y[0], y[96], y[1]), (1.25, 1.5, -0.75));
}

#[test]
fn q3_k_block() {
    let mut b = vec![0u8; 110];
    b[0] = 1; // hmask: elem 0 has its high bit
    b[31] = 0x80; // elem 255 has its high bit
    b[32] = 3; // elem 0 low bits
    b[32 + 63] = 0x40; // elem 255 low bits = 1
    // 6-bit scales: all 32 (-> 0) except group 0 = 33 (-> 1) and group 15 = 30 (-> -2).
    let s = &mut b[96..108];
    s[0] = 0x01;
    s[7] = 0xE0;
    s[8] = 0xAA;
    s[9] = 0xAA;
    s[10] = 0xAA;
    s[11] = 0x6A;
    b[108..110].copy_from_slice(&F16_1);
    let y = decode(Q3_K, &b);
    assert_eq!((y[0], y[1], y[255], y[20]), (3.0, -4.0, -2.0, 0.0));
}

#[test]
fn float_types() {
    let x = [1.5f32, -2.25, 65504.0, 1e-3];
    for (t, tol) in [(F32, 0.0), (F16, 1e-3), (BF16, 4e-3)] {
        let mut bytes = vec![0u8; t.type_size() * 4];
        quantize_row(t, &x, &mut bytes).unwrap();
        let mut y = [0.0; 4];
        dequantize_row(t, &bytes, &mut y).unwrap();
        for (a, b) in x.iter().zip(&y) {
            assert!((a - b).abs() <= tol * a.abs(), "{t}: {a} vs {b}");
        }
    }
    assert_eq!(decode(BF16, &[0x80, 0x3F]), vec![1.0]);
    assert_eq!(decode(F16, &F16_M1), vec![-1.0]);
}

#[test]
fn q8_0_encoder_rounds_half_away_from_zero() {
    let mut x = [0.0f32; 32];
    x[0] = -127.0; // amax 127 -> d = 1
    x[1] = 0.5;
    x[2] = 1.5;
    x[3] = -0.5;
    x[4] = 2.49;
    let mut b = [0u8; 34];
    quantize_row(Q8_0, &x, &mut b).unwrap();
    assert_eq!(&b[0..2], &F16_1);
    assert_eq!(&b[2..7], &[(-127i8) as u8, 1, 2, (-1i8) as u8, 2]);
}

#[test]
fn q4_0_encoder_matches_ggml_truncation() {
    let mut x = [0.0f32; 32];
    x[0] = -8.0; // the signed absmax -> d = -8 / -8 = 1
    x[1] = 7.0;
    x[2] = 0.4;
    x[16] = 7.6; // 7.6 + 8.5 = 16.1 -> clamped to 15
    x[17] = -7.5; // -7.5 + 8.5 = 1.0 -> 1
    let mut b = [0u8; 18];
    quantize_row(Q4_0, &x, &mut b).unwrap();
    assert_eq!(&b[0..2], &F16_1);
    assert_eq!(b[2] & 0x0F, 0);
    assert_eq!(b[3] & 0x0F, 15);
    assert_eq!(b[4] & 0x0F, 8);
    assert_eq!(b[2] >> 4, 15);
    assert_eq!(b[3] >> 4, 1);
}

#[test]
fn q4_1_encoder_uses_min_and_range() {
    let x: Vec<f32> = (0..32).map(|i| (i % 16) as f32 * 0.5 - 1.0).collect();
    let mut b = [0u8; 20];
    quantize_row(Q4_1, &x, &mut b).unwrap();
    assert_eq!(&b[0..2], &F16_HALF); // (6.5 - -1) / 15 = 0.5
    assert_eq!(&b[2..4], &F16_M1);
    for j in 0..16 {
        assert_eq!(b[4 + j], (j as u8) | ((j as u8) << 4));
    }
}

/// `sqrt(mean((x - y)²)) / sqrt(mean(x²))` after a quantize→dequantize round trip.
fn round_trip_rel_rmse(dtype: GgmlType, x: &[f32]) -> f32 {
    let mut bytes = vec![0u8; dtype.row_bytes(x.len() as u64).unwrap() as usize];
    quantize_row(dtype, x, &mut bytes).unwrap();
    let mut y = vec![0.0; x.len()];
    dequantize_row(dtype, &bytes, &mut y).unwrap();
    let err: f64 = x.iter().zip(&y).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
    let norm: f64 = x.iter().map(|a| (*a as f64).powi(2)).sum();
    (err / norm).sqrt() as f32
}

#[test]
fn round_trip_error_budgets() {
    // Budgets are ~1.3x what these encoders achieve on this data; a broken bit layout gives
    // errors of order 1.
    let budgets = [
        (F32, 0.0),
        (F16, 3e-4),
        (BF16, 2.5e-3),
        (Q8_0, 0.009),
        (Q8_1, 0.009),
        (Q8_K, 0.016),
        (Q6_K, 0.028),
        (Q5_0, 0.07),
        (Q5_1, 0.055),
        (Q5_K, 0.055),
        (Q4_0, 0.135),
        (Q4_1, 0.11),
        (Q4_K, 0.1),
        (Q3_K, 0.23),
        (Q2_K, 0.4),
    ];
    let x = test_data(4 * 256, 7);
    for (t, budget) in budgets {
        let e = round_trip_rel_rmse(t, &x);
        assert!(e <= budget, "{t}: relative RMSE {e} above budget {budget}");
    }
}

#[test]
fn k_quant_encoders_handle_zero_and_constant_blocks() {
    for t in [Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0] {
        for fill in [0.0f32, 0.75, -2.0] {
            let x = vec![fill; 256];
            let mut bytes = vec![0u8; t.row_bytes(256).unwrap() as usize];
            quantize_row(t, &x, &mut bytes).unwrap();
            let mut y = vec![0.0; 256];
            dequantize_row(t, &bytes, &mut y).unwrap();
            for v in &y {
                assert!(v.is_finite() && (v - fill).abs() <= 0.1 * fill.abs() + 1e-6, "{t} fill {fill}: {v}");
            }
        }
    }
}

#[test]
fn size_errors_are_reported() {
    let mut y = vec![0.0; 32];
    assert!(matches!(dequantize_row(Q4_0, &[0u8; 17], &mut y), Err(KernelError::SizeMismatch { .. })));
    assert!(matches!(dequantize_row(Q4_0, &[0u8; 18], &mut y[..31]), Err(KernelError::NotBlockAligned { .. })));
    assert!(matches!(quantize_row(I32, &y, &mut [0u8; 128]), Err(KernelError::Unsupported { .. })));
    assert!(matches!(quantize_row(Q4_K, &y, &mut [0u8; 144]), Err(KernelError::NotBlockAligned { .. })));
}
