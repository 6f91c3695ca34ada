//! Golden test against PyTorch (`reference/train_golden.py`, torch 2.5.1): the same tiny tied
//! GQA Llama gives the same logits, loss and gradients, and three Trainer steps (clipping +
//! AdamW with decay on matrices only) give the same losses, gradient norms and parameters.
//!
//! Tolerances (f32 on both sides, different summation orders): logits and loss 1e-5 relative;
//! each gradient tensor within 1e-4 of its largest magnitude; parameters after 3 steps within
//! 1e-5 absolute (each step moves a weight by at most ~lr = 1e-2).

use serde_json::Value;
use slm_model::{Arch, ModelConfig};
use slm_train::{AdamWConfig, Schedule, TrainConfig, TrainModel, Trainer, Workspace};
use std::path::Path;

fn golden() -> Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/train_tiny_llama.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn usize_of(v: &Value, k: &str) -> usize {
    v[k].as_u64().unwrap() as usize
}

fn config(g: &Value) -> ModelConfig {
    let m = &g["config"]["model"];
    ModelConfig {
        arch: Arch::Llama,
        n_vocab: usize_of(m, "n_vocab"),
        d_model: usize_of(m, "d_model"),
        n_layer: usize_of(m, "n_layer"),
        n_head: usize_of(m, "n_head"),
        n_kv_head: usize_of(m, "n_kv_head"),
        head_dim: usize_of(m, "head_dim"),
        d_ff: usize_of(m, "d_ff"),
        n_ctx_train: usize_of(m, "n_ctx_train"),
        rms_eps: m["rms_eps"].as_f64().unwrap() as f32,
        rope_theta: m["rope_theta"].as_f64().unwrap() as f32,
        tied_output: m["tied_output"].as_bool().unwrap(),
    }
}

/// The named tensors of `obj` in the model's flat layout.
fn flat_params(model: &TrainModel, obj: &Value) -> Vec<f32> {
    let mut p = vec![0.0; model.layout().len()];
    for t in &model.layout().tensors {
        let v = floats(&obj[&t.name]);
        assert_eq!(v.len(), t.len(), "{}", t.name);
        p[t.range()].copy_from_slice(&v);
    }
    p
}

fn streams(g: &Value) -> Vec<Vec<u32>> {
    g["batch"]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        })
        .collect()
}

#[test]
fn forward_and_gradients_match_pytorch() {
    let g = golden();
    let model = TrainModel::new(config(&g)).unwrap();
    let params = flat_params(&model, &g["params"]);
    let t = usize_of(&g["config"], "seq_len");
    let (mut tokens, mut targets) = (Vec::new(), Vec::new());
    for s in streams(&g) {
        tokens.extend_from_slice(&s[..t]);
        targets.extend_from_slice(&s[1..]);
    }
    let mut ws = Workspace::new();
    model.forward(&params, &tokens, t, &mut ws).unwrap();
    let want = floats(&g["batch"]["logits"]);
    let max_diff = ws
        .logits()
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
        .fold(0.0, f32::max);
    assert!(max_diff < 1e-5, "logits differ by {max_diff}");

    let mut grads = vec![0.0; params.len()];
    let n = tokens.len();
    let loss = model
        .forward_backward(
            &params,
            &mut grads,
            &tokens,
            &targets,
            t,
            1.0 / n as f32,
            &mut ws,
        )
        .unwrap()
        / n as f64;
    let want_loss = g["batch"]["loss"].as_f64().unwrap();
    assert!(
        (loss - want_loss).abs() < 1e-5 * want_loss.abs(),
        "loss {loss} vs {want_loss}"
    );

    let want = flat_params(&model, &g["batch"]["grads"]);
    let mut worst = 0.0f32;
    for spec in &model.layout().tensors {
        let (mine, theirs) = (&grads[spec.range()], &want[spec.range()]);
        let scale = theirs.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let diff = mine
            .iter()
            .zip(theirs)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(scale > 0.0, "{}: zero reference gradient", spec.name);
        assert!(
            diff <= 1e-4 * scale,
            "{}: max |Δgrad| {diff} (scale {scale})",
            spec.name
        );
        worst = worst.max(diff / scale);
    }
    eprintln!("logits rel {max_diff:.1e}, loss {loss} vs {want_loss}, worst grad rel {worst:.1e}");
}

#[test]
fn three_adamw_steps_match_pytorch() {
    let g = golden();
    let o = &g["config"]["optim"];
    let f = |k: &str| o[k].as_f64().unwrap() as f32;
    let model = TrainModel::new(config(&g)).unwrap();
    let params = flat_params(&model, &g["params"]);
    let t = usize_of(&g["config"], "seq_len");
    let cfg = TrainConfig {
        seq_len: t,
        batch_size: 1,
        grad_accum: 1,
        seed: 0,
        optim: AdamWConfig {
            lr: f("lr"),
            beta1: f("beta1"),
            beta2: f("beta2"),
            eps: f("eps"),
            weight_decay: f("weight_decay"),
            decay_norms_and_embeddings: false,
        },
        schedule: Schedule::Constant { warmup: 0 },
        clip_grad_norm: Some(f("clip")),
    };
    // One stream of T+1 tokens is exactly one window: every step sees the same batch.
    let stream = streams(&g).swap_remove(0);
    let mut trainer = Trainer::with_params(model, cfg, params, stream).unwrap();
    let losses = floats(&g["steps"]["losses"]);
    let norms = floats(&g["steps"]["grad_norms"]);
    for (i, (&want_loss, &want_norm)) in losses.iter().zip(&norms).enumerate() {
        let s = trainer.step().unwrap();
        assert!(
            (s.loss - want_loss as f64).abs() < 1e-5 * want_loss as f64,
            "step {i}: loss {} vs {want_loss}",
            s.loss
        );
        assert!(
            (s.grad_norm - want_norm as f64).abs() < 1e-4 * want_norm as f64,
            "step {i}: norm {} vs {want_norm}",
            s.grad_norm
        );
    }
    let want = flat_params(trainer.model(), &g["steps"]["params"]);
    let mut worst = 0.0f32;
    for spec in &trainer.model().layout().tensors {
        let diff = trainer.params()[spec.range()]
            .iter()
            .zip(&want[spec.range()])
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            diff <= 1e-5,
            "{}: max |Δparam| {diff} after 3 steps",
            spec.name
        );
        worst = worst.max(diff);
    }
    eprintln!("max |Δparam| after 3 steps {worst:.1e}");
}
