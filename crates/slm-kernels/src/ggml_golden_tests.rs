//! Bit-for-bit and value checks against ggml itself, from `tests/fixtures/ggml_golden.bin`
//! (written by `tests/fixtures/gen_ggml_golden.py` with the libggml of llama-cpp-python):
//! our reference encoders must produce ggml's bytes, our activation quantization must match
//! the ggml-cpu path llama.cpp runs, and every kernel must reproduce ggml's `vec_dot` values.

use crate::act::{Q8Block, Q8KBlock};
use crate::dot::{kernel, Isa, Kernel};
use crate::quant::quantize_row;
use crate::{matmul, quantize_q8, quantize_q8k, GgmlType, Pool, QMatrix, Scratch};
use half::f16;
use std::collections::HashMap;

const GOLDEN: &[u8] = include_bytes!("../tests/fixtures/ggml_golden.bin");

struct Golden {
    rows: usize,
    cols: usize,
    x: Vec<f32>,
    rec: HashMap<String, Vec<u8>>,
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

fn load() -> Golden {
    assert_eq!(&GOLDEN[0..4], b"SLMG");
    let rows = u32_at(GOLDEN, 4) as usize;
    let cols = u32_at(GOLDEN, 8) as usize;
    let mut o = 12;
    let x = GOLDEN[o..o + 4 * rows * cols].chunks(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    o += 4 * rows * cols;
    let mut rec = HashMap::new();
    while o < GOLDEN.len() {
        let nl = GOLDEN[o] as usize;
        let name = String::from_utf8(GOLDEN[o + 1..o + 1 + nl].to_vec()).unwrap();
        o += 1 + nl;
        let n = u32_at(GOLDEN, o) as usize;
        rec.insert(name, GOLDEN[o + 4..o + 4 + n].to_vec());
        o += 4 + n;
    }
    Golden { rows, cols, x, rec }
}

const WEIGHT_TYPES: [(&str, GgmlType); 12] = [
    ("q4_0", GgmlType::Q4_0),
    ("q4_1", GgmlType::Q4_1),
    ("q5_0", GgmlType::Q5_0),
    ("q5_1", GgmlType::Q5_1),
    ("q8_0", GgmlType::Q8_0),
    ("q8_1", GgmlType::Q8_1),
    ("q2_K", GgmlType::Q2_K),
    ("q3_K", GgmlType::Q3_K),
    ("q4_K", GgmlType::Q4_K),
    ("q5_K", GgmlType::Q5_K),
    ("q6_K", GgmlType::Q6_K),
    ("q8_K", GgmlType::Q8_K),
];

fn f16_at(b: &[u8], o: usize) -> f32 {
    f16::from_le_bytes([b[o], b[o + 1]]).to_f32()
}

#[test]
fn reference_encoders_match_ggml_bytes() {
    let g = load();
    for (name, t) in WEIGHT_TYPES {
        let want = &g.rec[&format!("ref/{name}")];
        let rb = t.row_bytes(g.cols as u64).unwrap() as usize;
        let mut got = vec![0u8; rb];
        let mut bad_blocks = 0;
        for r in 0..g.rows {
            quantize_row(t, &g.x[r * g.cols..(r + 1) * g.cols], &mut got).unwrap();
            for (a, b) in got.chunks(t.type_size()).zip(want[r * rb..(r + 1) * rb].chunks(t.type_size())) {
                bad_blocks += usize::from(a != b);
            }
        }
        assert_eq!(bad_blocks, 0, "{name}: {bad_blocks} blocks differ from ggml");
    }
}

#[test]
fn activation_quantization_matches_ggml_cpu() {
    let g = load();
    let (q80, q81, q8k) = (&g.rec["act/q8_0"], &g.rec["act/q8_1"], &g.rec["act/q8_K"]);
    let nb = g.cols / 32;
    let mut mine = vec![Q8Block::default(); nb];
    let mut mine_k = vec![Q8KBlock::default(); g.cols / 256];
    for r in 0..g.rows {
        let xr = &g.x[r * g.cols..(r + 1) * g.cols];
        quantize_q8(xr, &mut mine);
        for (b, m) in mine.iter().enumerate() {
            let o0 = (r * nb + b) * 34;
            let o1 = (r * nb + b) * 36;
            assert_eq!(m.d, f16_at(q80, o0), "row {r} block {b}: d");
            assert_eq!(m.d, f16_at(q81, o1));
            assert_eq!(m.s, f16_at(q81, o1 + 2), "row {r} block {b}: s");
            for k in 0..32 {
                assert_eq!(m.qs[k], q80[o0 + 2 + k] as i8, "row {r} block {b} q{k}");
                assert_eq!(m.qs[k], q81[o1 + 4 + k] as i8);
            }
        }
        quantize_q8k(xr, &mut mine_k);
        for (b, m) in mine_k.iter().enumerate() {
            let o = (r * (g.cols / 256) + b) * 292;
            assert_eq!(m.d, f32::from_le_bytes([q8k[o], q8k[o + 1], q8k[o + 2], q8k[o + 3]]));
            for k in 0..256 {
                assert_eq!(m.qs[k], q8k[o + 4 + k] as i8);
            }
            for k in 0..16 {
                assert_eq!(m.bsums[k], i16::from_le_bytes([q8k[o + 260 + 2 * k], q8k[o + 261 + 2 * k]]));
            }
        }
    }
}

/// ggml activation bytes → our blocks (so kernels see exactly ggml's inputs).
fn q8_from_ggml(b: &[u8], with_s: bool) -> Vec<Q8Block> {
    let sz = if with_s { 36 } else { 34 };
    let off = if with_s { 4 } else { 2 };
    b.chunks(sz)
        .map(|c| {
            let mut qs = [0i8; 32];
            for (q, v) in qs.iter_mut().zip(&c[off..off + 32]) {
                *q = *v as i8;
            }
            let d = f16_at(c, 0);
            let sum: i32 = qs.iter().map(|&q| q as i32).sum();
            Q8Block { qs, d, s: if with_s { f16_at(c, 2) } else { d * sum as f32 }, sd: d * sum as f32, pad: 0.0 }
        })
        .collect()
}

fn q8k_from_ggml(b: &[u8]) -> Vec<Q8KBlock> {
    b.chunks(292)
        .map(|c| {
            let mut blk = Q8KBlock { d: f32::from_le_bytes([c[0], c[1], c[2], c[3]]), ..Default::default() };
            for (q, v) in blk.qs.iter_mut().zip(&c[4..260]) {
                *q = *v as i8;
            }
            for (k, s) in blk.bsums.iter_mut().enumerate() {
                *s = i16::from_le_bytes([c[260 + 2 * k], c[261 + 2 * k]]);
            }
            blk
        })
        .collect()
}

#[test]
fn every_kernel_reproduces_ggml_vec_dot() {
    let g = load();
    let a80 = q8_from_ggml(&g.rec["act/q8_0"], false);
    let a81 = q8_from_ggml(&g.rec["act/q8_1"], true);
    let a8k = q8k_from_ggml(&g.rec["act/q8_K"]);
    for isa in Isa::available() {
        for (name, t) in WEIGHT_TYPES {
            let Some(want) = g.rec.get(&format!("dot/{name}")) else { continue };
            let w = &g.rec[&format!("ref/{name}")];
            let rb = t.row_bytes(g.cols as u64).unwrap() as usize;
            for i in 0..g.rows {
                for j in 0..g.rows {
                    let row = &w[i * rb..(i + 1) * rb];
                    let got = match kernel(t, isa).unwrap() {
                        Kernel::Q8(k) => {
                            let acts = if matches!(t, GgmlType::Q4_1 | GgmlType::Q5_1) { &a81 } else { &a80 };
                            let nb = g.cols / 32;
                            unsafe { (k.one)(row, &acts[j * nb..(j + 1) * nb]) }
                        }
                        Kernel::Q8K(k) => {
                            let nb = g.cols / 256;
                            unsafe { (k.one)(row, &a8k[j * nb..(j + 1) * nb]) }
                        }
                        Kernel::F32(_) => unreachable!(),
                    };
                    let o = 4 * (i * g.rows + j);
                    let e = f32::from_le_bytes([want[o], want[o + 1], want[o + 2], want[o + 3]]);
                    // Same integers and scales; only the float summation order differs.
                    assert!((got - e).abs() <= 1e-5 * (1.0 + e.abs()), "{name} {isa:?} ({i},{j}): {got} vs ggml {e}");
                }
            }
        }
    }
}

#[test]
fn matmul_reproduces_ggml_end_to_end() {
    // Our activation quantization equals ggml's (test above), so matmul must equal ggml's dots.
    let g = load();
    let pool = Pool::new(2).unwrap();
    let mut scratch = Scratch::new();
    for (name, t) in WEIGHT_TYPES {
        let Some(want) = g.rec.get(&format!("dot/{name}")) else { continue };
        let w = QMatrix::new(t, g.rows, g.cols, &g.rec[&format!("ref/{name}")]).unwrap();
        let mut out = vec![0.0; g.rows * g.rows];
        matmul(&pool, &w, &g.x, g.rows, &mut out, &mut scratch).unwrap();
        for i in 0..g.rows {
            for j in 0..g.rows {
                let o = 4 * (i * g.rows + j);
                let e = f32::from_le_bytes([want[o], want[o + 1], want[o + 2], want[o + 3]]);
                let got = out[j * g.rows + i];
                assert!((got - e).abs() <= 1e-5 * (1.0 + e.abs()), "{name} ({i},{j}): {got} vs ggml {e}");
            }
        }
    }
}
