//! Knowledge distillation: the mixed loss's gradient against finite differences, alpha = 0 is
//! plain cross-entropy, the teacher cache round-trips and refuses other data, and a student
//! trained on a teacher's soft targets moves toward the teacher.

mod common;

use common::{lively_params, random_tokens, tiny_config};
use slm_format::{GgmlType, GgufFile};
use slm_kernels::Pool;
use slm_model::Model;
use slm_train::distill::{distill_loss_in_place, DistillConfig, SoftTargets, TeacherCache};
use slm_train::ops::cross_entropy_in_place;
use slm_train::{AdamWConfig, Schedule, TrainConfig, TrainModel, Trainer, Workspace};
use std::sync::Arc;

fn soft<'a>(ids: &'a [u32], probs: &'a [f32], k: usize, alpha: f32, t: f32) -> SoftTargets<'a> {
    SoftTargets { k, ids, probs, cfg: DistillConfig { alpha, temperature: t, top_k: k } }
}

#[test]
fn mixed_loss_gradient_matches_finite_differences() {
    let v = 7;
    let z0: Vec<f32> = vec![0.3, -1.2, 2.0, 0.1, -0.4, 1.1, 0.0, 0.5, 0.2, -0.9, 1.4, -0.3, 0.8, 0.05];
    let targets = [2u32, 4];
    let ids = [2u32, 5, 0, 4, 6, 1];
    let probs = [0.6f32, 0.3, 0.1, 0.5, 0.25, 0.25];
    let st = soft(&ids, &probs, 3, 0.7, 2.0);
    let mut g = z0.clone();
    distill_loss_in_place(&mut g, &targets, v, &st, 1.0);
    let eps = 1e-3f32;
    for i in 0..z0.len() {
        let (mut p, mut m) = (z0.clone(), z0.clone());
        p[i] += eps;
        m[i] -= eps;
        let numeric = (distill_loss_in_place(&mut p, &targets, v, &st, 1.0)
            - distill_loss_in_place(&mut m, &targets, v, &st, 1.0))
            / (2.0 * eps as f64);
        assert!((numeric - g[i] as f64).abs() < 2e-3, "logit {i}: numeric {numeric} vs analytic {}", g[i]);
    }
}

#[test]
fn alpha_zero_is_cross_entropy() {
    let v = 5;
    let z: Vec<f32> = vec![0.3, -1.2, 2.0, 0.1, -0.4];
    let (mut a, mut b) = (z.clone(), z.clone());
    let la = distill_loss_in_place(&mut a, &[3], v, &soft(&[1, 2], &[0.5, 0.5], 2, 0.0, 3.0), 0.5);
    let lb = cross_entropy_in_place(&mut b, &[3], v, 0.5);
    assert!((la - lb).abs() < 1e-6, "{la} vs {lb}");
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-6);
    }
}

fn teacher_and_tokens() -> (Model, Vec<u32>, usize) {
    let mut cfg = tiny_config(true);
    cfg.n_vocab = 24;
    let bytes = slm_model::random_init::random_llama_gguf(&cfg, GgmlType::F32, 17).unwrap();
    let teacher = Model::from_gguf(Arc::new(GgufFile::from_bytes(bytes).unwrap())).unwrap();
    (teacher, random_tokens(8 * 16 + 1, cfg.n_vocab, 5), 16)
}

#[test]
fn teacher_cache_round_trips_and_refuses_other_data() {
    let (teacher, tokens, t) = teacher_and_tokens();
    let cfg = DistillConfig { alpha: 0.5, temperature: 2.0, top_k: 5 };
    let pool = Pool::new(1).unwrap();
    let mut calls = 0;
    let cache = TeacherCache::build(&teacher, &pool, &tokens, t, &cfg, |_, _| calls += 1).unwrap();
    assert_eq!(cache.n_windows(), 8);
    assert_eq!(calls, 8);
    for p in cache.probs.chunks(5) {
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert!(p.windows(2).all(|w| w[0] >= w[1]), "largest first");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("teacher.gguf");
    cache.save(&path).unwrap();
    assert_eq!(TeacherCache::load(&path, &tokens, t, &cfg).unwrap(), cache);
    let mut other = tokens.clone();
    other[3] = (other[3] + 1) % 24;
    assert!(TeacherCache::load(&path, &other, t, &cfg).is_err(), "other data");
    assert!(TeacherCache::load(&path, &tokens, 8, &cfg).is_err(), "other sequence length");
    // Another temperature is derived from the same pass: equal to building at that temperature.
    let cold = DistillConfig { temperature: 0.5, ..cfg };
    let direct = TeacherCache::build(&teacher, &pool, &tokens, t, &cold, |_, _| {}).unwrap();
    let derived = TeacherCache::load(&path, &tokens, t, &cold).unwrap();
    assert_eq!(derived.ids, direct.ids);
    let worst = derived.probs.iter().zip(&direct.probs).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(worst < 1e-5, "retempered vs built: {worst}");
}

/// Mean KL(teacher top-k ‖ student) over the cache's positions.
fn kl_to_teacher(model: &TrainModel, params: &[f32], tokens: &[u32], cache: &TeacherCache) -> f64 {
    let (t, k, v) = (cache.seq_len, cache.k, model.config().n_vocab);
    let mut ws = Workspace::new();
    let inputs = &tokens[..cache.n_windows() * t];
    model.forward(params, inputs, t, &mut ws).unwrap();
    let mut total = 0.0;
    for (r, row) in ws.logits().chunks(v).enumerate() {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let lse = row.iter().map(|&z| ((z - max) as f64).exp()).sum::<f64>().ln();
        for j in 0..k {
            let (id, p) = (cache.ids[r * k + j], cache.probs[r * k + j] as f64);
            total += p * (p.ln() - ((row[id as usize] - max) as f64 - lse));
        }
    }
    total / (ws.logits().len() / v) as f64
}

#[test]
fn distilled_student_moves_toward_the_teacher() {
    let (teacher, tokens, t) = teacher_and_tokens();
    let dcfg = DistillConfig { alpha: 1.0, temperature: 1.0, top_k: 24 };
    let pool = Pool::new(1).unwrap();
    let cache = Arc::new(TeacherCache::build(&teacher, &pool, &tokens, t, &dcfg, |_, _| {}).unwrap());
    let mut scfg = tiny_config(true);
    scfg.n_vocab = 24;
    let model = TrainModel::new(scfg).unwrap();
    let params = lively_params(model.layout(), 2);
    let before = kl_to_teacher(&model, &params, &tokens, &cache);
    let train = TrainConfig {
        seq_len: t,
        batch_size: 4,
        grad_accum: 1,
        seed: 3,
        optim: AdamWConfig::with_lr(1e-2),
        schedule: Schedule::Constant { warmup: 0 },
        clip_grad_norm: Some(1.0),
    };
    let mut trainer = Trainer::with_params(model.clone(), train, params, tokens.clone()).unwrap();
    trainer.set_teacher(cache.clone(), dcfg).unwrap();
    for _ in 0..40 {
        trainer.step().unwrap();
    }
    let after = kl_to_teacher(&model, trainer.params(), &tokens, &cache);
    assert!(after < 0.5 * before, "KL to the teacher {before:.4} → {after:.4}");
    // A cache of other data is refused.
    let mut other = tokens.clone();
    other[0] = (other[0] + 1) % 24;
    let wrong = Arc::new(TeacherCache::build(&teacher, &pool, &other, t, &dcfg, |_, _| {}).unwrap());
    assert!(trainer.set_teacher(wrong, dcfg).is_err());
}
