//! Inputs found by the fuzz targets (fuzz/fuzz_targets/) that once broke slm-model. Each must now
//! give a typed error; see docs/RELIABILITY.md.

use std::collections::BTreeMap;

use slm_model::quantize::imatrix::ImatrixEntry;
use slm_model::quantize::{ImportanceMatrix, QuantizeError};

fn matrix(sums: Vec<f32>, counts: Vec<f32>) -> Result<ImportanceMatrix, QuantizeError> {
    let mut entries = BTreeMap::new();
    entries.insert("blk.0.attn_k.weight".to_string(), ImatrixEntry { sums, counts });
    ImportanceMatrix::from_entries(entries, vec![], 1, 64)
}

/// fuzz target `imatrix`: a file whose count is subnormal made `sum / count` infinite, and the
/// infinite importance went on to the quantizer. It must be refused as malformed.
#[test]
fn imatrix_whose_sums_over_counts_overflow_is_refused() {
    for (sums, counts) in [(vec![1.0, 2.0], vec![1e-45]), (vec![3e38, 0.0], vec![0.5])] {
        match matrix(sums.clone(), counts.clone()) {
            Err(QuantizeError::Imatrix(msg)) => assert!(msg.contains("overflows"), "{msg}"),
            other => panic!("sums {sums:?} / counts {counts:?}: expected an imatrix error, got {other:?}"),
        }
    }
    // Small but normal counts are fine, and give sums / count.
    let m = matrix(vec![1.0, 2.0], vec![0.5]).expect("a valid matrix");
    assert_eq!(m.get("blk.0.attn_k.weight"), Some(&[2.0f32, 4.0][..]));
}

/// The same through a file: a GGUF imatrix with a subnormal count is refused by `load`.
#[test]
fn imatrix_file_with_subnormal_count_is_refused() {
    let mut w = slm_format::GgufWriter::new();
    w.add_string("general.type", "imatrix");
    w.add_tensor_f32("blk.0.attn_k.weight.in_sum2", &[2, 1], &[1.0, 2.0])
        .expect("tensor");
    w.add_tensor_f32("blk.0.attn_k.weight.counts", &[1, 1], &[1e-45])
        .expect("tensor");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.imatrix");
    w.write_file(&path).expect("write");
    assert!(matches!(ImportanceMatrix::load(&path), Err(QuantizeError::Imatrix(_))));
}
