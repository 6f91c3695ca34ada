//! Importance-matrix files (GGUF imatrix or llama.cpp's legacy `.dat`): `ImportanceMatrix::load` on
//! arbitrary bytes must give `Ok` or a typed `Err`, allocating no more than the file justifies. An
//! accepted matrix must round-trip through `save` → `load` with the same entries.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use slm_model::quantize::ImportanceMatrix;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("slm-fuzz-imatrix-")
            .tempdir()
            .expect("temp dir")
            .keep()
    })
}

fuzz_target!(|data: &[u8]| {
    let input = dir().join("input.imatrix");
    std::fs::write(&input, data).expect("write the input");
    let Ok(m) = ImportanceMatrix::load(&input) else {
        return;
    };
    for (name, e) in m.entries() {
        let v = m.get(name).expect("every entry has a normalized vector");
        assert!(v.iter().all(|x| x.is_finite()), "{name}: non-finite importance");
        assert!(!e.counts.is_empty());
    }
    let output = dir().join("output.imatrix");
    if m.save(&output).is_err() {
        return; // e.g. a name the GGUF writer refuses (≥ 64 bytes)
    }
    let again = ImportanceMatrix::load(&output).expect("a saved matrix loads again");
    assert_eq!(m.entries(), again.entries(), "entries changed in the round trip");
    assert_eq!(m.datasets, again.datasets);
});
