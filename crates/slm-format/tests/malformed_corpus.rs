//! The malformed-file matrix in one place (issue 11: ≥ 30 malformed GGUF and safetensors files,
//! each a typed, readable error): every committed seed of the `gguf` and `safetensors` fuzz
//! corpora (`fuzz/corpus/*/seed-*`, written by `fuzz/seedgen`) is parsed; the few valid seeds
//! must load, every other one must give a typed error (`GgufError` / `SafetensorsError`) whose
//! message is a readable sentence — never a panic. Prints the table of cases and error kinds.

use std::path::{Path, PathBuf};

use slm_format::safetensors::SafetensorsFile;
use slm_format::GgufFile;

/// Seeds that load: the valid files the fuzzers start from, and odd but harmless ones the readers
/// accept on purpose. `seed-bad-utf8-key` holds U+FFFD, a valid key despite its name;
/// `seed-truncated-959` only loses the end-of-file alignment padding.
const VALID_GGUF: &[&str] =
    &["seed-valid", "seed-tiny-model", "seed-empty-align64", "seed-bad-utf8-key", "seed-truncated-959"];
/// Also accepted by slm's safetensors reader, as harmless: a header with leading spaces, unused
/// bytes between or after tensors (every tensor still lies inside the file, none overlap).
const VALID_SAFETENSORS: &[&str] = &[
    "seed-valid",
    "seed-all-dtypes",
    "seed-padded",
    "seed-empty",
    "seed-header-no-brace",
    "seed-offsets-hole",
    "seed-trailing-bytes",
];

fn seeds(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("seed-")))
        .collect();
    v.sort();
    v
}

/// The variant name of an error's `Debug` form (`Truncated { .. }` → `Truncated`).
fn kind(debug: &str) -> String {
    debug.split([' ', '(', '{']).next().unwrap_or_default().to_string()
}

/// Parses every seed of `target`; returns (name, error kind) of the malformed ones.
fn check<E: std::fmt::Debug + std::fmt::Display>(
    target: &str,
    valid: &[&str],
    parse: impl Fn(Vec<u8>) -> Result<(), E>,
) -> Vec<(String, String)> {
    let mut malformed = Vec::new();
    for path in seeds(target) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(std::fs::read(&path).unwrap())))
            .unwrap_or_else(|_| panic!("{target}/{name}: the parser panicked"));
        match (valid.contains(&name.as_str()), result) {
            (true, Ok(())) => {}
            (true, Err(e)) => panic!("{target}/{name} is a valid seed but failed: {e}"),
            (false, Ok(())) => panic!("{target}/{name} is malformed but was accepted"),
            (false, Err(e)) => {
                let msg = e.to_string();
                assert!(msg.len() >= 15 && msg.contains(' '), "{target}/{name}: unreadable message {msg:?}");
                malformed.push((name, format!("{} — {msg}", kind(&format!("{e:?}")))));
            }
        }
    }
    malformed
}

#[test]
fn every_malformed_seed_is_a_typed_readable_error() {
    let gguf = check("gguf", VALID_GGUF, |b| GgufFile::from_bytes(b).map(|_| ()));
    let st = check("safetensors", VALID_SAFETENSORS, |b| SafetensorsFile::from_bytes(b).map(|_| ()));
    for (target, cases) in [("gguf", &gguf), ("safetensors", &st)] {
        for (name, error) in cases.iter() {
            eprintln!("{target:12} {name:28} {error}");
        }
    }
    eprintln!("{} malformed GGUF + {} malformed safetensors = {}", gguf.len(), st.len(), gguf.len() + st.len());
    assert!(gguf.len() >= 30 && st.len() >= 10, "{} GGUF, {} safetensors cases", gguf.len(), st.len());
}
