//! The optimised forward pass against a naive, explicit-loop reference implementation
//! (llama2.c style) on small random models, for several weight types, batch sizes and thread
//! counts; plus KV-cache consistency (one batch == token by token).

use slm_format::{GgmlType, GgufFile};
use slm_kernels::quant::dequantize_row;
use slm_kernels::Pool;
use slm_model::random_init::random_llama_gguf;
use slm_model::{Arch, Logits, Model, ModelConfig};
use std::sync::Arc;

/// A config whose widths are multiples of 256, as the K-quant formats need.
fn kquant_config() -> ModelConfig {
    ModelConfig { n_vocab: 64, d_model: 256, n_head: 4, n_kv_head: 2, head_dim: 64, d_ff: 512, ..tiny_config(true) }
}

fn tiny_config(tied: bool) -> ModelConfig {
    ModelConfig {
        arch: Arch::Llama,
        n_vocab: 96,
        d_model: 64,
        n_layer: 2,
        n_head: 4,
        n_kv_head: 2,
        head_dim: 16,
        d_ff: 96,
        n_ctx_train: 128,
        rms_eps: 1e-5,
        rope_theta: 10_000.0,
        tied_output: tied,
    }
}

/// Dequantizes a whole tensor into `[rows][cols]` f32.
fn dense(file: &GgufFile, name: &str) -> Vec<f32> {
    let t = file.tensor(name).unwrap_or_else(|| panic!("missing {name}"));
    let cols = t.dims[0] as usize;
    let rows = t.dims.get(1).copied().unwrap_or(1) as usize;
    let data = file.tensor_data(t);
    let rb = data.len() / rows;
    let mut out = vec![0.0; rows * cols];
    for r in 0..rows {
        dequantize_row(t.dtype, &data[r * rb..(r + 1) * rb], &mut out[r * cols..(r + 1) * cols]).unwrap();
    }
    out
}

/// y[r] = Σ_c W[r][c] x[c]
fn matvec(w: &[f32], x: &[f32]) -> Vec<f32> {
    w.chunks(x.len()).map(|row| row.iter().zip(x).map(|(a, b)| a * b).sum()).collect()
}

fn rms_norm(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let s = 1.0 / (ms + eps).sqrt();
    x.iter().zip(w).map(|(a, b)| a * s * b).collect()
}

/// Adjacent-pair RoPE (ggml "normal" mode) on one head.
fn rope(head: &mut [f32], pos: usize, theta: f32) {
    let dh = head.len();
    for i in 0..dh / 2 {
        let angle = pos as f64 * (theta as f64).powf(-2.0 * i as f64 / dh as f64);
        let (s, c) = (angle.sin() as f32, angle.cos() as f32);
        let (a, b) = (head[2 * i], head[2 * i + 1]);
        head[2 * i] = a * c - b * s;
        head[2 * i + 1] = a * s + b * c;
    }
}

/// Logits for every position of `tokens`, computed from scratch with no cache and no batching.
fn reference_logits(file: &GgufFile, cfg: &ModelConfig, tokens: &[u32]) -> Vec<Vec<f32>> {
    let (d, dh) = (cfg.d_model, cfg.head_dim);
    let embd = dense(file, "token_embd.weight");
    let mut xs: Vec<Vec<f32>> = tokens.iter().map(|&t| embd[t as usize * d..(t as usize + 1) * d].to_vec()).collect();
    for l in 0..cfg.n_layer {
        let g = |s: &str| dense(file, &format!("blk.{l}.{s}"));
        let (wq, wk, wv, wo) = (g("attn_q.weight"), g("attn_k.weight"), g("attn_v.weight"), g("attn_output.weight"));
        let (an, fnorm) = (g("attn_norm.weight"), g("ffn_norm.weight"));
        let (wg, wu, wd) = (g("ffn_gate.weight"), g("ffn_up.weight"), g("ffn_down.weight"));
        let mut ks = Vec::new();
        let mut vs = Vec::new();
        let mut qs = Vec::new();
        for (p, x) in xs.iter().enumerate() {
            let xn = rms_norm(x, &an, cfg.rms_eps);
            let mut q = matvec(&wq, &xn);
            let mut k = matvec(&wk, &xn);
            q.chunks_mut(dh).for_each(|h| rope(h, p, cfg.rope_theta));
            k.chunks_mut(dh).for_each(|h| rope(h, p, cfg.rope_theta));
            qs.push(q);
            ks.push(k);
            vs.push(matvec(&wv, &xn));
        }
        for p in 0..xs.len() {
            let mut att = vec![0.0f32; cfg.q_dim()];
            for h in 0..cfg.n_head {
                let gk = h / (cfg.n_head / cfg.n_kv_head);
                let q = &qs[p][h * dh..(h + 1) * dh];
                let mut s: Vec<f32> = (0..=p)
                    .map(|j| q.iter().zip(&ks[j][gk * dh..(gk + 1) * dh]).map(|(a, b)| a * b).sum::<f32>() / (dh as f32).sqrt())
                    .collect();
                let m = s.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                s.iter_mut().for_each(|v| *v = (*v - m).exp());
                let z: f32 = s.iter().sum();
                for (j, a) in s.iter().enumerate() {
                    for i in 0..dh {
                        att[h * dh + i] += a / z * vs[j][gk * dh + i];
                    }
                }
            }
            let o = matvec(&wo, &att);
            xs[p].iter_mut().zip(&o).for_each(|(x, y)| *x += y);
            let xn = rms_norm(&xs[p], &fnorm, cfg.rms_eps);
            let gate = matvec(&wg, &xn);
            let up = matvec(&wu, &xn);
            let h: Vec<f32> = gate.iter().zip(&up).map(|(g, u)| g / (1.0 + (-g).exp()) * u).collect();
            let down = matvec(&wd, &h);
            xs[p].iter_mut().zip(&down).for_each(|(x, y)| *x += y);
        }
    }
    let on = dense(file, "output_norm.weight");
    let out = if cfg.tied_output { embd } else { dense(file, "output.weight") };
    xs.iter().map(|x| matvec(&out, &rms_norm(x, &on, cfg.rms_eps))).collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn check(dtype: GgmlType, tied: bool, tol: f32) {
    check_config(tiny_config(tied), dtype, tol);
}

fn check_config(cfg: ModelConfig, dtype: GgmlType, tol: f32) {
    let tied = cfg.tied_output;
    let bytes = random_llama_gguf(&cfg, dtype, 42).unwrap();
    let file = Arc::new(GgufFile::from_bytes(bytes).unwrap());
    let model = Model::from_gguf(file.clone()).unwrap();
    assert_eq!(model.config(), &cfg);
    let tokens: Vec<u32> = (0..11).map(|i| (i * 37 + 5) % cfg.n_vocab as u32).collect();
    let want = reference_logits(&file, &cfg, &tokens);
    for threads in [1, 2] {
        let pool = Pool::new(threads).unwrap();
        // Whole prompt in batches of 4 (exercises chunking), all logits.
        let mut ctx = model.new_context(32, 4).unwrap();
        let all = model.forward(&mut ctx, &pool, &tokens, Logits::All).unwrap().to_vec();
        for (p, w) in want.iter().enumerate() {
            let got = &all[p * cfg.n_vocab..(p + 1) * cfg.n_vocab];
            // Error relative to the logit scale: quantized activations err in proportion to it.
            let scale = w.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            let err = max_abs_diff(got, w) / scale;
            assert!(err < tol, "{dtype} tied={tied} threads={threads} pos {p}: max |Δlogit|/max|logit| {err} > {tol}");
        }
        // Token by token through the KV cache must agree with the batched pass.
        let mut ctx = model.new_context(32, 8).unwrap();
        for (p, &t) in tokens.iter().enumerate() {
            let last = model.forward(&mut ctx, &pool, &[t], Logits::Last).unwrap();
            let err = max_abs_diff(last, &all[p * cfg.n_vocab..(p + 1) * cfg.n_vocab]);
            assert!(err < 1e-4, "{dtype}: decode vs batch at pos {p}: {err}");
        }
        assert_eq!(ctx.n_past(), tokens.len());
    }
}

#[test]
fn f32_weights_match_reference() {
    check(GgmlType::F32, true, 1e-4);
    check(GgmlType::F32, false, 1e-4);
}

#[test]
fn f16_weights_match_reference() {
    // Activations may be rounded to f16 for the dot products.
    check(GgmlType::F16, true, 5e-3);
}

#[test]
fn q8_0_weights_match_reference() {
    // Activations are quantized to 8 bits for the integer dot products: allow that error.
    check(GgmlType::Q8_0, true, 2e-2);
}

#[test]
fn q4_1_weights_match_reference() {
    check(GgmlType::Q4_1, false, 2e-2);
}

#[test]
fn context_overflow_is_an_error() {
    let cfg = tiny_config(true);
    let model = Model::from_gguf(Arc::new(GgufFile::from_bytes(random_llama_gguf(&cfg, GgmlType::F32, 1).unwrap()).unwrap())).unwrap();
    let pool = Pool::new(1).unwrap();
    let mut ctx = model.new_context(4, 4).unwrap();
    let err = model.forward(&mut ctx, &pool, &[1, 2, 3, 4, 5], Logits::Last).unwrap_err();
    assert!(err.to_string().contains("context is full"), "{err}");
    let err = model.forward(&mut ctx, &pool, &[96], Logits::Last).unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
}

#[test]
fn legacy_quant_weights_match_reference() {
    for dtype in [GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::BF16] {
        check(dtype, true, 2e-2);
    }
}

#[test]
fn k_quant_weights_match_reference() {
    for dtype in [GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K] {
        check_config(kquant_config(), dtype, 2e-2);
    }
}
