//! Boundary tests of slm-train's input limits (issue 11, docs/RELIABILITY.md "Limits as code"):
//! the size of one training text file and the BPE vocabulary size, each accepted at its value and
//! refused one past it with a typed error that says the limit.

use slm_train::bpe::{train_bpe, BpeOptions, MAX_VOCAB, MIN_VOCAB};
use slm_train::data::{read_documents, MAX_FILE_BYTES};
use slm_train::TrainError;

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
