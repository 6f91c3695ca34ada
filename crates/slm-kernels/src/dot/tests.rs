//! Every kernel (scalar and each SIMD level this CPU has) against an f64 dot of the
//! dequantized weights and dequantized activations: the two must agree up to f32 rounding.

use super::*;
use crate::act::{gather_group8, quantize_q8, quantize_q8k};
use crate::quant::{dequantize_row, quantize_row, SUPPORTED_TYPES};

fn test_data(n: usize, seed: u64) -> Vec<f32> {
    crate::quant::tests::test_data(n, seed)
}

/// Weight rows quantized from pseudo-random data, `cols` wide.
fn weight_row(dtype: GgmlType, cols: usize, seed: u64) -> Vec<u8> {
    let x = test_data(cols, seed);
    let mut bytes = vec![0u8; dtype.row_bytes(cols as u64).unwrap() as usize];
    quantize_row(dtype, &x, &mut bytes).unwrap();
    bytes
}

/// f64 reference and a tolerance: `|got - want| <= 2e-6 * sum |w_i a_i| + 1e-6`.
fn reference(dtype: GgmlType, w: &[u8], a: &[f32]) -> (f64, f64) {
    let mut wf = vec![0.0f32; a.len()];
    dequantize_row(dtype, w, &mut wf).unwrap();
    let dot: f64 = wf.iter().zip(a).map(|(p, q)| *p as f64 * *q as f64).sum();
    let mag: f64 = wf.iter().zip(a).map(|(p, q)| (*p as f64 * *q as f64).abs()).sum();
    (dot, 2e-6 * mag + 1e-6)
}

fn check(dtype: GgmlType, isa: Isa, cols: usize) {
    let w = weight_row(dtype, cols, 11 + cols as u64);
    let xs: Vec<Vec<f32>> = (0..8).map(|t| test_data(cols, 100 + t)).collect();
    let k = kernel(dtype, isa).unwrap();
    let ctx = format!("{dtype} {isa:?} cols {cols}");
    match k {
        Kernel::Q8(t) => {
            let acts: Vec<Vec<Q8Block>> = xs
                .iter()
                .map(|x| {
                    let mut b = vec![Q8Block::default(); cols / 32];
                    quantize_q8(x, &mut b);
                    b
                })
                .collect();
            let deq: Vec<Vec<f32>> = acts
                .iter()
                .map(|bs| bs.iter().flat_map(|b| b.qs.iter().map(move |&q| q as f32 * b.d)).collect())
                .collect();
            // Q4_1/Q5_1 use ggml's f16-rounded `s` for their `m` term: allow |m| * |s - sd|.
            let mut wf = vec![0.0f32; cols];
            dequantize_row(dtype, &w, &mut wf).unwrap();
            let extra: Vec<f64> = acts
                .iter()
                .map(|bs| {
                    bs.iter()
                        .zip(wf.chunks(32))
                        .map(|(b, wb)| {
                            let wmax = wb.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
                            wmax * (b.s - b.sd).abs() as f64
                        })
                        .sum()
                })
                .collect();
            let flat: Vec<Q8Block> = acts.iter().flatten().copied().collect();
            let mut groups = vec![Group8::default(); cols / 32];
            gather_group8(&flat, cols / 32, &mut groups);
            run_tiles(&ctx, dtype, &w, &t, &acts, &deq, &extra, &groups);
        }
        Kernel::Q8K(t) => {
            let acts: Vec<Vec<Q8KBlock>> = xs
                .iter()
                .map(|x| {
                    let mut b = vec![Q8KBlock::default(); cols / 256];
                    quantize_q8k(x, &mut b);
                    b
                })
                .collect();
            let deq: Vec<Vec<f32>> = acts
                .iter()
                .map(|bs| bs.iter().flat_map(|b| b.qs.iter().map(move |&q| q as f32 * b.d)).collect())
                .collect();
            run_tiles(&ctx, dtype, &w, &t, &acts, &deq, &[0.0; 8], &[]);
        }
        Kernel::F32(t) => run_tiles(&ctx, dtype, &w, &t, &xs, &xs, &[0.0; 8], &[]),
    }
}

#[allow(clippy::too_many_arguments)]
fn run_tiles<A>(
    ctx: &str,
    dtype: GgmlType,
    w: &[u8],
    t: &Tiles<A>,
    acts: &[Vec<A>],
    deq: &[Vec<f32>],
    extra: &[f64],
    groups: &[Group8],
) {
    for ((a, d), e) in acts.iter().zip(deq).zip(extra) {
        let got = unsafe { (t.one)(w, a) } as f64;
        let (want, tol) = reference(dtype, w, d);
        let tol = tol + e;
        assert!((got - want).abs() <= tol, "{ctx} one: got {got}, want {want}, tol {tol}");
    }
    if let Some(four) = t.four {
        let got = unsafe { four(w, [&acts[0], &acts[1], &acts[2], &acts[3]]) };
        for (k, g) in got.iter().enumerate() {
            let (want, tol) = reference(dtype, w, &deq[k]);
            let tol = tol + extra[k];
            assert!((*g as f64 - want).abs() <= tol, "{ctx} four[{k}]: got {g}, want {want}, tol {tol}");
        }
    }
    if let Some(eight) = t.eight {
        let rows: [&[A]; 8] = std::array::from_fn(|k| acts[k].as_slice());
        let got = unsafe { eight(w, rows, groups) };
        for (k, g) in got.iter().enumerate() {
            let (want, tol) = reference(dtype, w, &deq[k]);
            let tol = tol + extra[k];
            assert!((*g as f64 - want).abs() <= tol, "{ctx} eight[{k}]: got {g}, want {want}, tol {tol}");
        }
    }
}

#[test]
fn every_kernel_matches_dequantized_dot() {
    for isa in Isa::available() {
        for dtype in SUPPORTED_TYPES {
            let bs = dtype.block_size().max(32);
            for cols in [bs.max(256), 3 * bs.max(256), 2304] {
                check(dtype, isa, cols);
            }
            if bs == 32 {
                // Odd block counts exercise the tails of unrolled loops.
                for nb in [1, 2, 3, 5, 7, 18] {
                    check(dtype, isa, nb * 32);
                }
            }
        }
    }
}

#[test]
fn float_kernels_handle_odd_lengths() {
    for isa in Isa::available() {
        for dtype in [GgmlType::F32, GgmlType::F16, GgmlType::BF16] {
            for cols in [1, 7, 33, 100] {
                check(dtype, isa, cols);
            }
        }
    }
}

#[test]
fn detection_is_consistent() {
    let best = Isa::detect();
    assert!(best.is_available());
    assert!(Isa::available().contains(&Isa::Scalar));
    assert!(Isa::available().contains(&best));
    assert!(matches!(scalar_kernel(GgmlType::I32), Err(KernelError::Unsupported { .. })));
}

#[test]
fn float_tiles_give_each_token_the_one_token_result_bit_for_bit() {
    for isa in Isa::available() {
        for dtype in [GgmlType::F32, GgmlType::F16, GgmlType::BF16] {
            let Ok(Kernel::F32(t)) = kernel(dtype, isa) else { panic!("float kernel") };
            let Some(four) = t.four else { continue };
            for cols in [8, 40, 1000] {
                let w = weight_row(dtype, cols, cols as u64);
                let xs: Vec<Vec<f32>> = (0..4).map(|k| test_data(cols, 100 + k)).collect();
                let got = unsafe { four(&w, [&xs[0], &xs[1], &xs[2], &xs[3]]) };
                for (k, g) in got.iter().enumerate() {
                    let one = unsafe { (t.one)(&w, &xs[k]) };
                    assert_eq!(g.to_bits(), one.to_bits(), "{isa:?} {dtype} cols {cols} token {k}");
                }
            }
        }
    }
}

#[test]
fn quarter_kernels_give_each_row_the_one_token_result_bit_for_bit() {
    let mut checked = 0;
    for isa in Isa::available() {
        for dtype in SUPPORTED_TYPES {
            let Ok(Kernel::Q8(t)) = kernel(dtype, isa) else { continue };
            let Some(quarters) = t.quarters else { continue };
            // Odd and even block counts (the kernels pair blocks), SmolLM2's widths; one and
            // several rows per quarter.
            for (cols, q) in [(32, 1), (96, 3), (160, 1), (576, 5), (1536, 2)] {
                let rb = dtype.row_bytes(cols as u64).unwrap() as usize;
                let w: Vec<u8> = (0..4 * q).flat_map(|r| weight_row(dtype, cols, 7 * cols as u64 + r as u64)).collect();
                let mut a = vec![Q8Block::default(); cols / 32];
                quantize_q8(&test_data(cols, 300 + cols as u64), &mut a);
                // All steps at once, and the same rows as two step ranges (as a thief splits them).
                let mut got = vec![f32::NAN; 4 * q];
                unsafe { quarters(&w, rb, q, 0..q, &a, got.as_mut_ptr()) };
                let mut split = vec![f32::NAN; 4 * q];
                unsafe { quarters(&w, rb, q, q / 2..q, &a, split.as_mut_ptr()) };
                unsafe { quarters(&w, rb, q, 0..q / 2, &a, split.as_mut_ptr()) };
                for (r, (g, s)) in got.iter().zip(&split).enumerate() {
                    let one = unsafe { (t.one)(&w[r * rb..(r + 1) * rb], &a) };
                    assert_eq!(g.to_bits(), one.to_bits(), "{isa:?} {dtype} cols {cols} row {r}: {g} vs {one}");
                    assert_eq!(s.to_bits(), one.to_bits(), "{isa:?} {dtype} cols {cols} row {r} (split)");
                }
                // Too few rows, or steps past q: nothing is written (no out-of-bounds access).
                got.fill(f32::NAN);
                unsafe { quarters(&w[..w.len() - 1], rb, q, 0..q, &a, got.as_mut_ptr()) };
                unsafe { quarters(&w, rb, q, 0..q + 1, &a, got.as_mut_ptr()) };
                assert!(got.iter().all(|v| v.is_nan()));
                checked += 1;
            }
        }
    }
    // On an AVX-512 VNNI machine all six legacy types have the kernel; elsewhere none does.
    let want = if Isa::Avx512Vnni.is_available() { 6 * 5 } else { 0 };
    assert_eq!(checked, want);
}
