//! Tests of [`quantize_row_weighted`]: byte identity with ggml's `ggml_quantize_chunk` (from
//! `tests/fixtures/ggml_weighted_golden.bin`, written by `gen_ggml_weighted_golden.py`), error
//! measurements against the reference encoders, and size / non-finite input handling.

use super::tests::test_data;
use super::*;
use crate::GgmlType::{self, *};

const GOLDEN: &[u8] = include_bytes!("../../tests/fixtures/ggml_weighted_golden.bin");

/// The types whose bytes depend on the importance.
const WEIGHTED: [GgmlType; 9] = [Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K];

struct Golden {
    rows: usize,
    cols: usize,
    x: Vec<f32>,
    imats: Vec<Vec<f32>>,
    rec: Vec<(String, Vec<u8>)>,
}

fn u32_at(b: &[u8], o: usize) -> usize {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) as usize
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn load(g: &[u8]) -> Golden {
    assert_eq!(&g[0..4], b"SLMW");
    let (rows, cols) = (u32_at(g, 4), u32_at(g, 8));
    let mut o = 12;
    let x = f32s(&g[o..o + 4 * rows * cols]);
    o += 4 * rows * cols;
    let n_imat = u32_at(g, o);
    o += 4;
    let imats = (0..n_imat)
        .map(|k| f32s(&g[o + 4 * cols * k..o + 4 * cols * (k + 1)]))
        .collect();
    o += 4 * cols * n_imat;
    let mut rec = Vec::new();
    while o < g.len() {
        let nl = g[o] as usize;
        let name = String::from_utf8(g[o + 1..o + 1 + nl].to_vec()).unwrap();
        o += 1 + nl;
        let n = u32_at(g, o);
        rec.push((name, g[o + 4..o + 4 + n].to_vec()));
        o += 4 + n;
    }
    Golden {
        rows,
        cols,
        x,
        imats,
        rec,
    }
}

fn type_named(name: &str) -> GgmlType {
    match name {
        "q4_0" => Q4_0,
        "q4_1" => Q4_1,
        "q5_0" => Q5_0,
        "q5_1" => Q5_1,
        "q8_0" => Q8_0,
        "q2_K" => Q2_K,
        "q3_K" => Q3_K,
        "q4_K" => Q4_K,
        "q5_K" => Q5_K,
        "q6_K" => Q6_K,
        other => panic!("unknown type {other} in the golden file"),
    }
}

fn encode(t: GgmlType, x: &[f32], w: &[f32]) -> Vec<u8> {
    let mut out = vec![0u8; t.row_bytes(x.len() as u64).unwrap() as usize];
    quantize_row_weighted(t, x, w, &mut out).unwrap();
    out
}

/// Compares every record of a golden file with our encoder; returns `(type, imatrix)` pairs
/// checked and the failures.
fn check_golden(g: &Golden) -> (Vec<(String, GgmlType)>, Vec<String>) {
    let (mut checked, mut failures) = (Vec::new(), Vec::new());
    for (name, want) in &g.rec {
        let (k, tname) = name.split_once('/').unwrap();
        let (imat, t) = (&g.imats[k.parse::<usize>().unwrap()], type_named(tname));
        let rb = t.row_bytes(g.cols as u64).unwrap() as usize;
        assert_eq!(want.len(), rb * g.rows, "{name}: record size");
        let (mut bad_blocks, mut bad_rows) = (0, Vec::new());
        for r in 0..g.rows {
            let got = encode(t, &g.x[r * g.cols..(r + 1) * g.cols], imat);
            let want = &want[r * rb..(r + 1) * rb];
            let bad = got
                .chunks(t.type_size())
                .zip(want.chunks(t.type_size()))
                .filter(|(a, b)| a != b)
                .count();
            if bad > 0 && bad_rows.len() < 10 {
                bad_rows.push(r);
            }
            bad_blocks += bad;
        }
        if bad_blocks > 0 {
            failures.push(format!(
                "{name}: {bad_blocks} blocks differ (first rows {bad_rows:?})"
            ));
        }
        checked.push((k.to_string(), t));
    }
    (checked, failures)
}

#[test]
fn weighted_encoders_match_ggml_quantize_chunk_bytes() {
    let g = load(GOLDEN);
    let (checked, failures) = check_golden(&g);
    assert!(failures.is_empty(), "differs from ggml: {failures:#?}");
    // Every importance-dependent type against both importance vectors, so this cannot pass empty.
    for k in ["0", "1"] {
        for t in WEIGHTED.iter().chain(&[Q8_0]) {
            assert!(
                checked.contains(&(k.to_string(), *t)),
                "golden file lacks {k}/{t}"
            );
        }
    }
    eprintln!(
        "{} golden records byte-identical ({} rows × {} cols each)",
        checked.len(),
        g.rows,
        g.cols
    );
}

/// The same comparison on a larger file written with `EXTRA_ROWS=n GOLDEN_OUT=path
/// gen_ggml_weighted_golden.py`, when `SLM_WEIGHTED_GOLDEN=path` is set (too big to commit).
#[test]
fn weighted_encoders_match_ggml_on_a_large_file_when_given() {
    let Ok(path) = std::env::var("SLM_WEIGHTED_GOLDEN") else {
        eprintln!("skipped: set SLM_WEIGHTED_GOLDEN to a file from gen_ggml_weighted_golden.py with EXTRA_ROWS");
        return;
    };
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let g = load(&bytes);
    let (checked, failures) = check_golden(&g);
    assert!(failures.is_empty(), "differs from ggml: {failures:#?}");
    eprintln!("{} records × {} rows byte-identical", checked.len(), g.rows);
}

/// Σ w·(x − dequant(quant(x)))² for one row, with `weighted` choosing the encoder.
fn weighted_sq_error(t: GgmlType, x: &[f32], imp: &[f32], err_w: &[f32], weighted: bool) -> f64 {
    let mut bytes = vec![0u8; t.row_bytes(x.len() as u64).unwrap() as usize];
    if weighted {
        quantize_row_weighted(t, x, imp, &mut bytes).unwrap();
    } else {
        quantize_row(t, x, &mut bytes).unwrap();
    }
    let mut y = vec![0.0f32; x.len()];
    dequantize_row(t, &bytes, &mut y).unwrap();
    assert!(
        y.iter().all(|v| v.is_finite()),
        "{t}: non-finite decoded value"
    );
    x.iter()
        .zip(&y)
        .zip(err_w)
        .map(|((a, b), w)| *w as f64 * ((a - b) as f64).powi(2))
        .sum()
}

/// (error of the weighted encoder) / (error of the reference encoder), summed over `rows` rows.
fn error_ratio(
    t: GgmlType,
    rows: usize,
    imp: impl Fn(usize) -> Vec<f32>,
    score_with_imp: bool,
) -> f64 {
    let (cols, mut ew, mut er) = (1024, 0.0, 0.0);
    for r in 0..rows {
        let x = test_data(cols, 1000 + r as u64);
        let w = imp(r);
        let err_w = if score_with_imp {
            w.clone()
        } else {
            vec![1.0; cols]
        };
        ew += weighted_sq_error(t, &x, &w, &err_w, true);
        er += weighted_sq_error(t, &x, &w, &err_w, false);
    }
    ew / er
}

/// A non-uniform importance like a real imatrix: spread over ~3 decades (e^±3.4), a few zeros.
fn varied_importance(n: usize, seed: u64) -> Vec<f32> {
    let g = test_data(n, seed);
    g.iter()
        .enumerate()
        .map(|(i, g)| {
            if i % 41 == 5 {
                0.0
            } else {
                (1.7 * g.clamp(-2.0, 2.0)).exp()
            }
        })
        .collect()
}

#[test]
fn constant_importance_does_not_lose_to_the_reference_encoders() {
    // Measured ratios (plain squared error, 16 rows × 1024): Q4_0 0.958, Q4_1 0.811,
    // Q5_0 0.965, Q5_1 0.819, Q2_K 0.782, Q3_K 0.946, Q4_K 0.986, Q5_K 0.985, Q6_K 0.977.
    // Bound: 1.0 (the weighted searches try more scales than the reference encoders).
    for t in WEIGHTED {
        let ratio = error_ratio(t, 16, |_| vec![0.37; 1024], false);
        eprintln!("constant importance, {t}: weighted / reference squared error = {ratio:.3}");
        assert!(ratio <= 1.0, "{t}: constant importance error ratio {ratio}");
    }
}

#[test]
fn varied_importance_lowers_the_importance_weighted_error() {
    // Measured ratios of Σ w·(x−q)² (16 rows × 1024): Q4_0 0.863, Q4_1 0.678, Q5_0 0.880,
    // Q5_1 0.704, Q2_K 0.604, Q3_K 0.812, Q4_K 0.843, Q5_K 0.916, Q6_K 0.897. Bound 0.95.
    // (Not a law of ggml: when a handful of columns outweigh the rest by ~e^20, ggml's Q6_K
    // path measured 1.30 here, because its final levels are re-rounded without weights.)
    for t in WEIGHTED {
        let ratio = error_ratio(t, 16, |r| varied_importance(1024, 77 + r as u64), true);
        eprintln!("varied importance, {t}: weighted / reference Σw·err² = {ratio:.3}");
        assert!(
            ratio <= 0.95,
            "{t}: importance-weighted error ratio {ratio}"
        );
    }
}

#[test]
fn importance_is_ignored_where_ggml_ignores_it() {
    let x = test_data(512, 3);
    let imp = varied_importance(512, 4);
    for t in [F32, F16, BF16, Q8_0] {
        let mut want = vec![0u8; t.row_bytes(512).unwrap() as usize];
        quantize_row(t, &x, &mut want).unwrap();
        assert_eq!(encode(t, &x, &imp), want, "{t}");
    }
    // ...and changes the bytes of every type that uses it.
    for t in WEIGHTED {
        let mut refb = vec![0u8; t.row_bytes(512).unwrap() as usize];
        quantize_row(t, &x, &mut refb).unwrap();
        assert_ne!(encode(t, &x, &imp), refb, "{t}: importance had no effect");
    }
}

#[test]
fn sizes_and_types_are_checked() {
    let x = vec![0.5f32; 256];
    let mut out = vec![0u8; 144];
    let e = quantize_row_weighted(Q4_K, &x, &x[..255], &mut out).unwrap_err();
    assert!(
        matches!(
            e,
            KernelError::SizeMismatch {
                expected: 256,
                found: 255,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("importance"), "{e}");
    let e = quantize_row_weighted(Q4_K, &x, &x, &mut out[..143]).unwrap_err();
    assert!(
        matches!(
            e,
            KernelError::SizeMismatch {
                expected: 144,
                found: 143,
                ..
            }
        ),
        "{e}"
    );
    let e = quantize_row_weighted(Q4_K, &x[..255], &x[..255], &mut out).unwrap_err();
    assert!(matches!(e, KernelError::NotBlockAligned { .. }), "{e}");
    let e = quantize_row_weighted(Q8_0, &x, &x[..1], &mut out).unwrap_err();
    assert!(matches!(e, KernelError::SizeMismatch { .. }), "{e}");
    for t in [Q8_1, Q8_K, I8, I32, F64] {
        let e = quantize_row_weighted(t, &x, &x, &mut out).unwrap_err();
        assert!(matches!(e, KernelError::Unsupported { .. }), "{t}: {e}");
    }
    assert!(quantize_row_weighted(Q4_0, &[], &[], &mut []).is_ok());
}

#[test]
fn non_finite_and_extreme_inputs_never_panic() {
    let mut x = test_data(512, 9);
    x[3] = f32::NAN;
    x[40] = f32::INFINITY;
    x[300] = f32::NEG_INFINITY;
    x[400] = 3e38;
    let good = test_data(512, 10);
    let mut bad_imp = varied_importance(512, 11);
    bad_imp[5] = f32::NAN;
    bad_imp[70] = -4.0;
    bad_imp[260] = f32::INFINITY;
    let ones = vec![1.0f32; 512];
    for t in WEIGHTED.iter().chain(&[Q8_0, F16, BF16, F32]) {
        for (src, imp) in [
            (&x, &ones),
            (&good, &bad_imp),
            (&x, &bad_imp),
            (&ones, &vec![0.0; 512]),
        ] {
            let bytes = encode(*t, src, imp);
            let mut y = vec![0.0; 512];
            dequantize_row(*t, &bytes, &mut y).unwrap();
        }
    }
}
