//! matmul (every ISA, several thread counts and token counts) against the scalar path and
//! against the dequantize-and-multiply reference.

use super::*;
use crate::quant::SUPPORTED_TYPES;
use crate::GgmlType;

fn test_data(n: usize, seed: u64) -> Vec<f32> {
    crate::quant::tests::test_data(n, seed)
}

fn make_weights(dtype: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
    crate::quant::tests::quantized_rows(dtype, rows, cols, 3)
}

#[test]
fn every_isa_and_thread_count_matches_scalar() {
    let pools: Vec<Pool> = [1, 2, 3].iter().map(|&n| Pool::new(n).unwrap()).collect();
    let mut scratch = Scratch::new();
    for dtype in SUPPORTED_TYPES {
        let cols = if dtype.block_size() == 256 { 512 } else { 96 };
        let rows = 37;
        let bytes = make_weights(dtype, rows, cols);
        let w = QMatrix::new(dtype, rows, cols, &bytes).unwrap();
        for n_tokens in [1, 3, 17] {
            let x = test_data(n_tokens * cols, 40 + n_tokens as u64);
            let mut want = vec![0.0; n_tokens * rows];
            matmul_with_isa(&pools[0], &w, &x, n_tokens, &mut want, &mut scratch, Isa::Scalar).unwrap();
            for isa in Isa::available() {
                for pool in &pools {
                    let mut got = vec![f32::NAN; n_tokens * rows];
                    matmul_with_isa(pool, &w, &x, n_tokens, &mut got, &mut scratch, isa).unwrap();
                    for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (g - e).abs() <= 1e-4 * (1.0 + e.abs()),
                            "{dtype} {isa:?} threads {} tokens {n_tokens} idx {i}: {g} vs {e}",
                            pool.n_threads()
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn matmul_is_close_to_reference() {
    // The reference does not quantize activations; the difference is the activation
    // quantization error (about 1% relative RMS for 8-bit blocks, more for Q8_K's 256-blocks).
    let pool = Pool::new(2).unwrap();
    let mut scratch = Scratch::new();
    for dtype in SUPPORTED_TYPES {
        let (rows, cols, n_tokens) = (29, 512, 5);
        let bytes = make_weights(dtype, rows, cols);
        let w = QMatrix::new(dtype, rows, cols, &bytes).unwrap();
        let x = test_data(n_tokens * cols, 9);
        let mut got = vec![0.0; n_tokens * rows];
        let mut want = vec![0.0; n_tokens * rows];
        matmul(&pool, &w, &x, n_tokens, &mut got, &mut scratch).unwrap();
        matmul_reference(&w, &x, n_tokens, &mut want).unwrap();
        let err: f64 = got.iter().zip(&want).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
        let norm: f64 = want.iter().map(|b| (*b as f64).powi(2)).sum();
        let rel = (err / norm).sqrt();
        let budget = if dtype.block_size() == 256 { 0.03 } else { 0.015 };
        assert!(rel < budget, "{dtype}: relative RMS error {rel}");
    }
}

#[test]
fn shape_errors_and_empty_inputs() {
    let pool = Pool::new(1).unwrap();
    let mut s = Scratch::new();
    let bytes = make_weights(GgmlType::Q4_1, 4, 64);
    let w = QMatrix::new(GgmlType::Q4_1, 4, 64, &bytes).unwrap();
    let x = vec![0.0; 128];
    let mut out = vec![0.0; 8];
    assert!(matmul(&pool, &w, &x[..127], 2, &mut out, &mut s).is_err());
    assert!(matmul(&pool, &w, &x, 2, &mut out[..7], &mut s).is_err());
    assert!(matmul_reference(&w, &x, 3, &mut out).is_err());
    matmul(&pool, &w, &[], 0, &mut [], &mut s).unwrap();
    // A hand-built QMatrix with a short data slice is refused, not read out of bounds.
    let bad = QMatrix { dtype: GgmlType::Q4_1, rows: 5, cols: 64, data: &bytes };
    assert!(matmul(&pool, &bad, &x[..64], 1, &mut out[..5], &mut s).is_err());
    let ragged = QMatrix { dtype: GgmlType::Q4_1, rows: 1, cols: 48, data: &bytes[..20] };
    assert!(matches!(matmul(&pool, &ragged, &x[..48], 1, &mut out[..1], &mut s), Err(KernelError::NotBlockAligned { .. })));
    let ints = QMatrix { dtype: GgmlType::I8, rows: 1, cols: 4, data: &[0; 4] };
    assert!(matches!(matmul(&pool, &ints, &x[..4], 1, &mut out[..1], &mut s), Err(KernelError::Unsupported { .. })));
}

#[test]
fn matmul_many_equals_separate_matmuls_fused_or_not() {
    let pool = Pool::new(2).unwrap();
    let mut scratch = Scratch::new();
    let cols = 256;
    for (ta, tb) in [(GgmlType::Q4_1, GgmlType::Q4_1), (GgmlType::Q4_K, GgmlType::Q4_K), (GgmlType::Q4_1, GgmlType::Q6_K)] {
        let (ba, bb) = (make_weights(ta, 45, cols), make_weights(tb, 13, cols));
        let (wa, wb) = (QMatrix::new(ta, 45, cols, &ba).unwrap(), QMatrix::new(tb, 13, cols, &bb).unwrap());
        for n_tokens in [1, 9] {
            let x = test_data(n_tokens * cols, 77);
            let (mut ea, mut eb) = (vec![0.0; n_tokens * 45], vec![0.0; n_tokens * 13]);
            matmul(&pool, &wa, &x, n_tokens, &mut ea, &mut scratch).unwrap();
            matmul(&pool, &wb, &x, n_tokens, &mut eb, &mut scratch).unwrap();
            let (mut ga, mut gb) = (vec![f32::NAN; n_tokens * 45], vec![f32::NAN; n_tokens * 13]);
            matmul_many(&pool, [&wa, &wb], &x, n_tokens, [&mut ga, &mut gb], &mut scratch).unwrap();
            assert_eq!(ga, ea, "{ta} {tb} tokens {n_tokens}");
            assert_eq!(gb, eb, "{ta} {tb} tokens {n_tokens}");
        }
    }
    // A wrong output length is reported, not written past.
    let b = make_weights(GgmlType::Q8_0, 4, 64);
    let w = QMatrix::new(GgmlType::Q8_0, 4, 64, &b).unwrap();
    let (mut o1, mut o2) = (vec![0.0; 4], vec![0.0; 3]);
    let r = matmul_many(&pool, [&w, &w], &test_data(64, 1), 1, [&mut o1, &mut o2], &mut scratch);
    assert!(matches!(r, Err(KernelError::SizeMismatch { .. })));
}

#[test]
fn row_invariant_rows_equal_one_token_calls_bit_for_bit() {
    let pool = Pool::new(2).unwrap();
    for dtype in SUPPORTED_TYPES {
        let cols = if dtype.block_size() == 256 { 512 } else { 128 };
        let rows = 29;
        let bytes = make_weights(dtype, rows, cols);
        let w = QMatrix::new(dtype, rows, cols, &bytes).unwrap();
        // 11 tokens: full 8-token tiles, a 4-token tile and single rows would all be used otherwise.
        let n_tokens = 11;
        let x = test_data(n_tokens * cols, 5);
        let mut alone = vec![0.0; n_tokens * rows];
        let mut scratch = Scratch::new();
        for (xt, ot) in x.chunks_exact(cols).zip(alone.chunks_exact_mut(rows)) {
            matmul(&pool, &w, xt, 1, ot, &mut scratch).unwrap();
        }
        for prompt in [false, true] {
            let mut scratch = Scratch::new();
            scratch.set_prompt(prompt);
            scratch.set_row_invariant(true);
            let mut got = vec![f32::NAN; n_tokens * rows];
            matmul(&pool, &w, &x, n_tokens, &mut got, &mut scratch).unwrap();
            let same = got.iter().zip(&alone).all(|(g, a)| g.to_bits() == a.to_bits());
            assert!(same, "{dtype} prompt={prompt}: a batched row differs from its one-token product");
        }
    }
}
