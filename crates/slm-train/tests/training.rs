//! End-to-end training behaviour on tiny models: learning, reproducibility, resume, export.

mod common;

use common::tiny_config;
use slm_format::GgufFile;
use slm_kernels::Pool;
use slm_model::{Logits, Model};
use slm_train::{AdamWConfig, Schedule, StepStats, TrainConfig, Trainer};
use std::sync::Arc;

fn train_config(steps: u64) -> TrainConfig {
    TrainConfig {
        seq_len: 8,
        batch_size: 2,
        grad_accum: 2,
        seed: 1234,
        optim: AdamWConfig::with_lr(1e-2),
        schedule: Schedule::Cosine {
            warmup: 5,
            total: steps,
            min_ratio: 0.1,
        },
        clip_grad_norm: Some(1.0),
    }
}

/// A short phrase repeated: perfectly predictable after its first occurrence.
fn repeated_tokens(n: usize, vocab: usize) -> Vec<u32> {
    let phrase = [3u32, 7, 1, 12, 5, 9, 2, 11, 4];
    (0..n)
        .map(|i| phrase[i % phrase.len()] % vocab as u32)
        .collect()
}

fn run(steps: u64, tokens: &[u32]) -> (Vec<StepStats>, Trainer) {
    let mut t = Trainer::new(tiny_config(true), train_config(steps), tokens.to_vec()).unwrap();
    let stats = (0..steps).map(|_| t.step().unwrap()).collect();
    (stats, t)
}

#[test]
fn tiny_model_overfits_a_repeated_sequence() {
    let tokens = repeated_tokens(400, 13);
    let (stats, mut t) = run(120, &tokens);
    let first = stats[0].loss;
    let last = stats.last().unwrap().loss;
    // Uniform guessing over 13 tokens is ln 13 ≈ 2.56 nats; the phrase is deterministic.
    assert!(first > 2.3, "initial loss {first}");
    assert!(last < 0.1, "loss after 120 steps {last} (first {first})");
    let val = t.evaluate(&tokens, 8).unwrap();
    assert!(val < 0.1, "eval loss {val}");
}

#[test]
fn same_seed_runs_are_bit_identical() {
    let tokens = repeated_tokens(300, 13);
    let (a, ta) = run(6, &tokens);
    let (b, tb) = run(6, &tokens);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.loss.to_bits(), y.loss.to_bits());
        assert_eq!(x.grad_norm.to_bits(), y.grad_norm.to_bits());
    }
    assert!(ta
        .params()
        .iter()
        .zip(tb.params())
        .all(|(x, y)| x.to_bits() == y.to_bits()));
    // And a different seed is a different run.
    let mut cfg = train_config(6);
    cfg.seed = 99;
    let mut other = Trainer::new(tiny_config(true), cfg, tokens).unwrap();
    assert_ne!(other.step().unwrap().loss.to_bits(), a[0].loss.to_bits());
}

#[test]
fn resume_from_checkpoint_continues_bit_for_bit() {
    let tokens = repeated_tokens(500, 13);
    let (full, t_full) = run(10, &tokens);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.gguf");
    let mut first = Trainer::new(tiny_config(true), train_config(10), tokens.clone()).unwrap();
    for _ in 0..4 {
        first.step().unwrap();
    }
    first.save_checkpoint(&path).unwrap();
    drop(first);
    let mut resumed = Trainer::resume(&path, tokens.clone()).unwrap();
    assert_eq!(resumed.step_count(), 4);
    let rest: Vec<StepStats> = (0..6).map(|_| resumed.step().unwrap()).collect();
    for (x, y) in full[4..].iter().zip(&rest) {
        assert_eq!(x.step, y.step);
        assert_eq!(x.loss.to_bits(), y.loss.to_bits(), "step {}", x.step);
        assert_eq!(x.lr.to_bits(), y.lr.to_bits());
    }
    assert!(t_full
        .params()
        .iter()
        .zip(resumed.params())
        .all(|(x, y)| x.to_bits() == y.to_bits()));

    // Other data is refused.
    let mut other = tokens.clone();
    other[0] = 0;
    let err = Trainer::resume(&path, other).unwrap_err().to_string();
    assert!(err.contains("other data"), "{err}");
}

#[test]
fn exported_model_loads_in_slm_model_and_predicts_the_phrase() {
    let tokens = repeated_tokens(400, 13);
    let (_, t) = run(120, &tokens);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    t.export_gguf(&path, None).unwrap();
    let model = Model::from_gguf(Arc::new(GgufFile::open(&path).unwrap())).unwrap();
    let pool = Pool::new(1).unwrap();
    let mut ctx = model.new_context(8, 8).unwrap();
    let prompt = &tokens[..6];
    let logits = model
        .forward(&mut ctx, &pool, prompt, Logits::Last)
        .unwrap();
    let argmax = logits
        .iter()
        .enumerate()
        .fold((0, f32::MIN), |b, (i, &x)| if x > b.1 { (i, x) } else { b })
        .0;
    assert_eq!(argmax as u32, tokens[6], "next token after {prompt:?}");
}

#[test]
fn accumulating_two_micro_batches_equals_one_double_batch() {
    let cfg = tiny_config(false);
    let model = slm_train::TrainModel::new(cfg.clone()).unwrap();
    let params = slm_train::init_params(model.layout(), 3);
    let tokens = repeated_tokens(17, 13);
    let (x, y) = (&tokens[..16], &tokens[1..17]);
    let mut ws = slm_train::Workspace::new();
    let scale = 1.0 / 16.0;
    let mut once = vec![0.0f32; params.len()];
    let l1 = model
        .forward_backward(&params, &mut once, x, y, 8, scale, &mut ws)
        .unwrap();
    let mut twice = vec![0.0f32; params.len()];
    let la = model
        .forward_backward(&params, &mut twice, &x[..8], &y[..8], 8, scale, &mut ws)
        .unwrap();
    let lb = model
        .forward_backward(&params, &mut twice, &x[8..], &y[8..], 8, scale, &mut ws)
        .unwrap();
    assert!((l1 - (la + lb)).abs() < 1e-9 * l1.abs());
    let scale_g = once.iter().fold(0.0f32, |m, g| m.max(g.abs()));
    assert!(scale_g > 0.0);
    for (a, b) in once.iter().zip(&twice) {
        assert!((a - b).abs() <= 1e-6 * scale_g, "{a} vs {b}");
    }
}

#[test]
fn absurd_micro_batch_is_refused_before_allocating() {
    let mut cfg = train_config(10);
    cfg.seq_len = 32;
    cfg.batch_size = 1 << 22;
    let err = Trainer::new(tiny_config(true), cfg, repeated_tokens(400, 13))
        .unwrap_err()
        .to_string();
    assert!(err.contains("GiB"), "{err}");
}

#[test]
fn memory_estimate_covers_the_workspace() {
    // The estimate must not be below what a step really holds: 4 copies of the parameters plus
    // logits for every token at least.
    let model = slm_train::TrainModel::new(tiny_config(false)).unwrap();
    let (b, t) = (2, 8);
    let est = model.memory_estimate(b, t);
    let floor = 4 * 4 * model.layout().len() as u64 + 4 * (b * t * 13) as u64;
    assert!(est > floor, "{est} <= {floor}");
}
