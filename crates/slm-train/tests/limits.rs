//! Boundary tests of slm-train's input limits (issue 11, docs/RELIABILITY.md "Limits as code"):
//! the size of one training text file, the BPE vocabulary size and the training memory estimate,
//! each accepted at its value and refused one past it with a typed error that says the limit.

mod common;

use slm_model::ModelConfig;
use slm_train::bpe::{train_bpe, BpeOptions, MAX_VOCAB, MIN_VOCAB};
use slm_train::data::{read_documents, MAX_FILE_BYTES};
use slm_train::trainer::MAX_TRAIN_BYTES;
use slm_train::{init_params, AdamWConfig, Schedule, TrainConfig, TrainError, TrainModel, Trainer};

#[test]
fn training_file_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.txt");
    // Sparse files: 1 GiB of NUL bytes (valid UTF-8) costs no disk, only the read.
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(MAX_FILE_BYTES).unwrap();
    let docs = read_documents(&path).expect("a file of exactly MAX_FILE_BYTES is read");
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].len() as u64, MAX_FILE_BYTES);
    drop(docs);
    f.set_len(MAX_FILE_BYTES + 1).unwrap();
    match read_documents(&path) {
        Err(e @ TrainError::Data(_)) => {
            let msg = e.to_string();
            assert!(msg.contains(&format!("{MAX_FILE_BYTES}-byte limit")) && msg.contains("big.txt"), "{msg}");
        }
        other => panic!("expected TrainError::Data, got {:?}", other.map(|d| d.len())),
    }
}

#[test]
fn bpe_vocabulary_size_limits() {
    let docs = ["the cat sees the moon. the dog sees the cat. ".repeat(20)];
    for size in [MIN_VOCAB, MAX_VOCAB] {
        // At the maximum, training stops when no pair is frequent enough: a smaller vocabulary.
        let tok = train_bpe(&docs, &BpeOptions::new(size)).unwrap_or_else(|e| panic!("vocab {size}: {e}"));
        assert!(tok.vocab_size <= size && tok.vocab_size > 256, "vocab {size}: {}", tok.vocab_size);
    }
    for size in [MIN_VOCAB - 1, MAX_VOCAB + 1] {
        match train_bpe(&docs, &BpeOptions::new(size)) {
            Err(e @ TrainError::Setting(_)) => {
                let msg = e.to_string();
                assert!(msg.contains(&size.to_string()) && msg.contains(&MAX_VOCAB.to_string()), "{msg}");
            }
            other => panic!("vocab {size}: expected TrainError::Setting, got {:?}", other.map(|_| ())),
        }
    }
}

/// The trainer refuses a model and micro-batch whose memory estimate exceeds `MAX_TRAIN_BYTES`
/// (256 GiB) before allocating anything for it. A tiny model with a huge `batch_size` crosses the
/// limit cheaply: the estimate grows with it, the trainer's own buffers do not.
#[test]
fn training_memory_estimate_limit() {
    let cfg = ModelConfig { n_vocab: 32, n_ctx_train: 64, ..common::tiny_config(true) };
    let model = TrainModel::new(cfg).unwrap();
    let seq_len = 16;
    // The largest batch whose estimate is within the limit (the estimate grows with the batch).
    let (mut lo, mut hi) = (1usize, 1usize << 40);
    assert!(model.memory_estimate(lo, seq_len) <= MAX_TRAIN_BYTES);
    assert!(model.memory_estimate(hi, seq_len) > MAX_TRAIN_BYTES);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if model.memory_estimate(mid, seq_len) <= MAX_TRAIN_BYTES {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    assert!(model.memory_estimate(lo, seq_len) > MAX_TRAIN_BYTES - (1 << 20), "not a boundary");
    let params = init_params(model.layout(), 1);
    let tokens: Vec<u32> = (0..200).map(|i| i % 32).collect();
    let train = |batch_size| TrainConfig {
        seq_len,
        batch_size,
        grad_accum: 1,
        seed: 1,
        optim: AdamWConfig::with_lr(1e-3),
        schedule: Schedule::Constant { warmup: 0 },
        clip_grad_norm: None,
    };
    // At the limit: accepted (nothing of that size is allocated until a step runs).
    Trainer::with_params(model.clone(), train(lo), params.clone(), tokens.clone())
        .unwrap_or_else(|e| panic!("batch {lo} ({} bytes) refused: {e}", model.memory_estimate(lo, seq_len)));
    match Trainer::with_params(model.clone(), train(lo + 1), params, tokens) {
        Err(e @ TrainError::Setting(_)) => {
            let msg = e.to_string();
            assert!(msg.contains("GiB") && msg.contains("batch_size"), "{msg}");
        }
        other => panic!("batch {}: expected TrainError::Setting, got {:?}", lo + 1, other.map(|_| ())),
    }
}
