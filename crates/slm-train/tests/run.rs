//! The run loop: validation and checkpoint cadence, export, and a run stopped mid-way (as if
//! killed after a checkpoint) that resumes to the same loss sequence as an uninterrupted run.

mod common;

use common::tiny_config;
use slm_train::{
    run, AdamWConfig, EvalStats, RunConfig, RunObserver, Schedule, StepStats, TrainConfig, Trainer,
    Validation,
};
use std::path::Path;

#[derive(Default)]
struct Recorder {
    losses: Vec<(u64, f64)>,
    evals: Vec<u64>,
    checkpoints: Vec<u64>,
    stop_at: Option<u64>,
}

impl RunObserver for Recorder {
    fn on_step(&mut self, s: &StepStats) -> bool {
        self.losses.push((s.step, s.loss));
        self.stop_at != Some(s.step)
    }
    fn on_eval(&mut self, e: &EvalStats) -> bool {
        assert!(e.loss.is_finite());
        assert!(e.bits_per_byte.unwrap() > 0.0);
        self.evals.push(e.step);
        true
    }
    fn on_checkpoint(&mut self, step: u64, path: &Path) {
        assert!(path.exists());
        self.checkpoints.push(step);
    }
}

fn data() -> (Vec<u32>, Vec<u32>) {
    let tokens: Vec<u32> = (0..600u32).map(|i| (i * 7 + i / 5) % 13).collect();
    (tokens[..500].to_vec(), tokens[500..].to_vec())
}

fn trainer(train: Vec<u32>) -> Trainer {
    let tc = TrainConfig {
        seq_len: 8,
        batch_size: 2,
        grad_accum: 1,
        seed: 77,
        optim: AdamWConfig::with_lr(5e-3),
        schedule: Schedule::Wsd {
            warmup: 2,
            total: 12,
            decay: 4,
            min_ratio: 0.0,
        },
        clip_grad_norm: Some(1.0),
    };
    Trainer::new(tiny_config(true), tc, train).unwrap()
}

const CFG: RunConfig = RunConfig {
    steps: 12,
    eval_every: 4,
    eval_windows: 4,
    checkpoint_every: 5,
};

#[test]
fn run_validates_checkpoints_and_exports() {
    let (train, val) = data();
    let dir = tempfile::tempdir().unwrap();
    let mut t = trainer(train);
    let mut rec = Recorder::default();
    let v = Validation {
        tokens: &val,
        bytes_per_token: Some(3.5),
    };
    let summary = run(&mut t, &CFG, Some(v), dir.path(), None, &mut rec).unwrap();
    assert_eq!(summary.steps, 12);
    assert!(!summary.stopped);
    assert_eq!(rec.losses.len(), 12);
    assert_eq!(rec.evals, vec![4, 8, 12]);
    assert_eq!(rec.checkpoints, vec![5, 10, 12]);
    let model = summary.model.unwrap();
    slm_model::Model::load(&model).unwrap();
}

#[test]
fn stopped_run_resumes_to_the_same_losses() {
    let (train, val) = data();
    let v = Validation {
        tokens: &val,
        bytes_per_token: Some(3.5),
    };
    let full_dir = tempfile::tempdir().unwrap();
    let mut full = Recorder::default();
    run(
        &mut trainer(train.clone()),
        &CFG,
        Some(v),
        full_dir.path(),
        None,
        &mut full,
    )
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut first = Recorder {
        stop_at: Some(7),
        ..Recorder::default()
    };
    let s = run(
        &mut trainer(train.clone()),
        &CFG,
        Some(v),
        dir.path(),
        None,
        &mut first,
    )
    .unwrap();
    assert!(s.stopped && s.model.is_none());
    assert_eq!(first.checkpoints, vec![5, 7], "a stop writes a checkpoint");

    let mut resumed = Trainer::resume(&dir.path().join("checkpoint.gguf"), train).unwrap();
    let mut rest = Recorder::default();
    run(&mut resumed, &CFG, Some(v), dir.path(), None, &mut rest).unwrap();
    let joined: Vec<(u64, u64)> = first
        .losses
        .iter()
        .chain(&rest.losses)
        .map(|&(s, l)| (s, l.to_bits()))
        .collect();
    let want: Vec<(u64, u64)> = full.losses.iter().map(|&(s, l)| (s, l.to_bits())).collect();
    assert_eq!(joined, want);
    assert_eq!(
        std::fs::read(dir.path().join("model.gguf")).unwrap(),
        std::fs::read(full_dir.path().join("model.gguf")).unwrap(),
        "the final models are byte-identical"
    );
}
