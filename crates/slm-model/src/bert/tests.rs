//! The packed, pooled encoder against a plain per-sequence reference written from the BERT
//! equations, on a small random model.

use std::sync::Arc;

use slm_format::{GgmlType, GgufFile, GgufWriter};
use slm_kernels::ops::{gelu_erf, layer_norm};
use slm_kernels::Pool;

use super::*;

const D: usize = 32;
const H: usize = 4;
const FF: usize = 64;
const VOCAB: usize = 50;
const POS: usize = 24;
const LAYERS: usize = 2;

/// Deterministic pseudo-random values in [-scale, scale).
fn values(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn tiny_bert(pooling: Pooling) -> Arc<GgufFile> {
    let mut w = GgufWriter::new();
    w.add_string("general.architecture", "bert");
    w.add_u32("bert.context_length", POS as u32);
    w.add_u32("bert.embedding_length", D as u32);
    w.add_u32("bert.feed_forward_length", FF as u32);
    w.add_u32("bert.block_count", LAYERS as u32);
    w.add_u32("bert.attention.head_count", H as u32);
    w.add_f32("bert.attention.layer_norm_epsilon", 1e-12);
    w.add_bool("bert.attention.causal", false);
    w.add_u32("bert.pooling_type", pooling.gguf_code());
    let mut seed = 1;
    let mut add = |w: &mut GgufWriter, name: &str, dims: &[u64], scale: f32, offset: f32| {
        seed += 1;
        let n = dims.iter().product::<u64>() as usize;
        let v: Vec<f32> = values(seed, n, scale).into_iter().map(|x| x + offset).collect();
        w.add_tensor_f32(name, dims, &v).unwrap();
    };
    let (d, ff) = (D as u64, FF as u64);
    add(&mut w, "token_embd.weight", &[d, VOCAB as u64], 1.0, 0.0);
    add(&mut w, "position_embd.weight", &[d, POS as u64], 0.5, 0.0);
    add(&mut w, "token_types.weight", &[d, 2], 0.5, 0.0);
    add(&mut w, "token_embd_norm.weight", &[d], 0.2, 1.0);
    add(&mut w, "token_embd_norm.bias", &[d], 0.1, 0.0);
    for i in 0..LAYERS {
        for (part, rows, cols) in [
            ("attn_q", d, d),
            ("attn_k", d, d),
            ("attn_v", d, d),
            ("attn_output", d, d),
            ("ffn_up", ff, d),
            ("ffn_down", d, ff),
        ] {
            add(&mut w, &format!("blk.{i}.{part}.weight"), &[cols, rows], 0.3, 0.0);
            add(&mut w, &format!("blk.{i}.{part}.bias"), &[rows], 0.1, 0.0);
        }
        for norm in ["attn_output_norm", "layer_output_norm"] {
            add(&mut w, &format!("blk.{i}.{norm}.weight"), &[d], 0.2, 1.0);
            add(&mut w, &format!("blk.{i}.{norm}.bias"), &[d], 0.1, 0.0);
        }
    }
    Arc::new(GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap())
}

/// Row `r` of a `[cols, rows]` F32 tensor.
fn row(file: &GgufFile, name: &str, r: usize) -> Vec<f32> {
    let t = file.tensor(name).unwrap();
    let cols = t.dims[0] as usize;
    let bytes = &file.tensor_data(t)[r * cols * 4..(r + 1) * cols * 4];
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

fn vector(file: &GgufFile, name: &str) -> Vec<f32> {
    row(file, name, 0)
}

/// `W x + b` with W stored `[cols, rows]`.
fn linear(file: &GgufFile, prefix: &str, x: &[f32]) -> Vec<f32> {
    let rows = file.tensor(&format!("{prefix}.weight")).unwrap().dims[1] as usize;
    let b = vector(file, &format!("{prefix}.bias"));
    (0..rows)
        .map(|r| row(file, &format!("{prefix}.weight"), r).iter().zip(x).map(|(w, x)| w * x).sum::<f32>() + b[r])
        .collect()
}

fn ln(file: &GgufFile, prefix: &str, x: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    layer_norm(
        x,
        &vector(file, &format!("{prefix}.weight")),
        &vector(file, &format!("{prefix}.bias")),
        1e-12,
        &mut out,
    );
    out
}

/// The BERT equations for one sequence, written plainly.
fn reference(file: &GgufFile, ids: &[u32]) -> Vec<Vec<f32>> {
    let t0 = row(file, "token_types.weight", 0);
    let mut x: Vec<Vec<f32>> = ids
        .iter()
        .enumerate()
        .map(|(p, &id)| {
            let e: Vec<f32> = row(file, "token_embd.weight", id as usize)
                .iter()
                .zip(row(file, "position_embd.weight", p))
                .zip(&t0)
                .map(|((a, b), c)| a + b + c)
                .collect();
            ln(file, "token_embd_norm", &e)
        })
        .collect();
    let hd = D / H;
    for i in 0..LAYERS {
        let p = |s: &str| format!("blk.{i}.{s}");
        let q: Vec<Vec<f32>> = x.iter().map(|v| linear(file, &p("attn_q"), v)).collect();
        let k: Vec<Vec<f32>> = x.iter().map(|v| linear(file, &p("attn_k"), v)).collect();
        let v: Vec<Vec<f32>> = x.iter().map(|v| linear(file, &p("attn_v"), v)).collect();
        let mut ctx = vec![vec![0.0f32; D]; x.len()];
        for h in 0..H {
            let r = h * hd..(h + 1) * hd;
            for t in 0..x.len() {
                let s: Vec<f32> = (0..x.len())
                    .map(|j| {
                        q[t][r.clone()].iter().zip(&k[j][r.clone()]).map(|(a, b)| a * b).sum::<f32>()
                            / (hd as f32).sqrt()
                    })
                    .collect();
                let m = s.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f32> = s.iter().map(|v| (v - m).exp()).collect();
                let z: f32 = e.iter().sum();
                for j in 0..x.len() {
                    for c in r.clone() {
                        ctx[t][c] += e[j] / z * v[j][c];
                    }
                }
            }
        }
        for t in 0..x.len() {
            let o = linear(file, &p("attn_output"), &ctx[t]);
            let sum: Vec<f32> = x[t].iter().zip(&o).map(|(a, b)| a + b).collect();
            let h1 = ln(file, &p("attn_output_norm"), &sum);
            let up: Vec<f32> = linear(file, &p("ffn_up"), &h1).into_iter().map(gelu_erf).collect();
            let down = linear(file, &p("ffn_down"), &up);
            let sum: Vec<f32> = h1.iter().zip(&down).map(|(a, b)| a + b).collect();
            x[t] = ln(file, &p("layer_output_norm"), &sum);
        }
    }
    x
}

fn batch() -> Vec<Vec<u32>> {
    vec![vec![1, 5, 7, 9, 2], vec![1, 3, 2], vec![1, 49, 0, 17, 23, 11, 8, 30, 2], vec![4]]
}

#[test]
fn packed_batch_matches_the_per_sequence_reference() {
    let file = tiny_bert(Pooling::Mean);
    let model = BertModel::load(file.clone()).unwrap();
    let pool = Pool::new(2).unwrap();
    let mut state = EncoderState::new();
    let seqs = batch();
    let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    model.encode(&pool, &refs, &mut state).unwrap();
    assert_eq!(state.n_seqs(), seqs.len());
    let mut worst = 0.0f32;
    for (i, ids) in seqs.iter().enumerate() {
        let want = reference(&file, ids);
        let got = state.sequence(i, D);
        assert_eq!(got.len(), ids.len() * D);
        for (g, w) in got.chunks_exact(D).zip(&want) {
            for (a, b) in g.iter().zip(w) {
                worst = worst.max((a - b).abs());
            }
        }
    }
    assert!(worst < 1e-4, "max |packed - reference| = {worst}");
}

#[test]
fn pooling_and_normalisation() {
    let file = tiny_bert(Pooling::Cls);
    let model = BertModel::load(file.clone()).unwrap();
    assert_eq!(model.config().pooling, Pooling::Cls);
    let pool = Pool::new(1).unwrap();
    let mut state = EncoderState::new();
    let seqs = batch();
    let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    let cls = model.embed(&pool, &refs, Pooling::Cls, false, &mut state).unwrap();
    let mean = model.embed(&pool, &refs, Pooling::Mean, true, &mut state).unwrap();
    for (i, ids) in seqs.iter().enumerate() {
        let want = reference(&file, ids);
        for (a, b) in cls[i].iter().zip(&want[0]) {
            assert!((a - b).abs() < 1e-4);
        }
        let mut m: Vec<f32> = (0..D).map(|c| want.iter().map(|t| t[c]).sum::<f32>() / ids.len() as f32).collect();
        l2_normalize(&mut m);
        for (a, b) in mean[i].iter().zip(&m) {
            assert!((a - b).abs() < 1e-4);
        }
        let norm: f32 = mean[i].iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
}

#[test]
fn bad_batches_are_errors() {
    let model = BertModel::load(tiny_bert(Pooling::Mean)).unwrap();
    let pool = Pool::new(1).unwrap();
    let mut state = EncoderState::new();
    let long = vec![1u32; POS + 1];
    for (seqs, what) in
        [(vec![&[][..]], "empty"), (vec![&long[..]], "positions"), (vec![&[1u32, VOCAB as u32][..]], "out of range")]
    {
        let err = model.encode(&pool, &seqs, &mut state).unwrap_err().to_string();
        assert!(err.contains(what), "{err}");
    }
}

#[test]
fn quantized_weights_stay_close() {
    // Q8_0 copies of the matrices (rows of 32) through the same forward pass.
    let file = tiny_bert(Pooling::Mean);
    let mut w = GgufWriter::new();
    for (k, v) in file.metadata().iter() {
        w.add(k, v.clone());
    }
    for t in file.tensors() {
        let data = file.tensor_data(t).to_vec();
        if t.dims.len() == 2 && t.name.starts_with("blk.") {
            let f: Vec<f32> = data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            let mut q = vec![0u8; f.len() / 32 * 34];
            slm_kernels::quant::quantize_row(GgmlType::Q8_0, &f, &mut q).unwrap();
            w.add_tensor(&t.name, &t.dims, GgmlType::Q8_0, q).unwrap();
        } else {
            w.add_tensor(&t.name, &t.dims, t.dtype, data).unwrap();
        }
    }
    let qfile = Arc::new(GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap());
    let (a, b) = (BertModel::load(file).unwrap(), BertModel::load(qfile).unwrap());
    let pool = Pool::new(2).unwrap();
    let mut state = EncoderState::new();
    let seqs = batch();
    let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    let ea = a.embed(&pool, &refs, Pooling::Mean, true, &mut state).unwrap();
    let eb = b.embed(&pool, &refs, Pooling::Mean, true, &mut state).unwrap();
    for (x, y) in ea.iter().zip(&eb) {
        let cos: f32 = x.iter().zip(y).map(|(a, b)| a * b).sum();
        assert!(cos > 0.99, "cosine {cos}");
    }
}
