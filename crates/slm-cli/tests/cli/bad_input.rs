//! Bad input gives a clear error and a non-zero exit, never a panic.

use crate::common::{slm, slm_stdin};
use crate::model_or_skip;
use std::path::{Path, PathBuf};

/// Every subcommand that takes `-m`, with the arguments it needs to get as far as loading.
fn model_commands(model: &str) -> Vec<Vec<String>> {
    let apache = "/usr/share/common-licenses/Apache-2.0";
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        v(&["run", "-m", model, "-n", "2", "hi"]),
        v(&["chat", "-m", model, "-n", "2"]),
        v(&["show", "-m", model]),
        v(&["bench", "-m", model, "-p", "4", "-n", "2", "-r", "1"]),
        v(&["perplexity", apache, "-m", model, "-c", "128"]),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn missing_model_file_is_named_in_the_error() {
    for args in model_commands("/nonexistent.gguf") {
        slm(&strs(&args)).fails().stderr_has(&["/nonexistent.gguf"]);
    }
}

#[test]
fn unknown_model_name_lists_the_known_ones() {
    slm(&["run", "-m", "unknown-model-name", "hi"])
        .fails()
        .stderr_has(&["unknown-model-name", "known models", "smollm2-135m-instruct"]);
    slm(&["show", "-m", "unknown-model-name"]).fails().stderr_has(&["known models"]);
}

/// Writes `bytes` to `dir/name` and returns the path.
fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Deterministic pseudo-random bytes (SplitMix64) that do not start with "GGUF".
fn random_bytes(n: usize) -> Vec<u8> {
    let mut s: u64 = 0x5EED;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as u8
        })
        .collect()
}

#[test]
fn random_and_empty_files_are_rejected_as_not_gguf() {
    let dir = tempfile::tempdir().unwrap();
    let random = write(dir.path(), "random.gguf", &random_bytes(100_000));
    let empty = write(dir.path(), "empty.gguf", &[]);
    let gguf_header_only = write(dir.path(), "header.gguf", b"GGUF\x03\x00\x00\x00");
    for (path, needle) in [(&random, "not a GGUF file"), (&empty, "GGUF"), (&gguf_header_only, "truncated")] {
        let p = path.to_str().unwrap();
        for args in model_commands(p) {
            let out = slm(&strs(&args)).fails().stderr_has(&[needle]);
            // run/chat/show/perplexity say which file; bench is checked separately (see report).
            if args[0] != "bench" {
                assert!(out.stderr.contains(p), "slm {args:?}: error does not name the file:\n{}", out.stderr);
            }
        }
    }
}

#[test]
fn truncated_model_copies_are_rejected() {
    let m = model_or_skip!();
    let bytes = std::fs::read(&m).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // 1 MB cuts the metadata (tokenizer arrays); 50 MB cuts the tensor data.
    for (len, needle) in [(1 << 20, "remain"), (50_000_000, "truncated")] {
        let p = write(dir.path(), &format!("trunc-{len}.gguf"), &bytes[..len]);
        let p = p.to_str().unwrap();
        for args in model_commands(p) {
            let out = slm(&strs(&args)).fails().stderr_has(&[needle]);
            if args[0] != "bench" {
                assert!(out.stderr.contains(p), "slm {args:?}: error does not name the file:\n{}", out.stderr);
            }
        }
    }
}

#[test]
fn a_directory_as_model_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_str().unwrap();
    slm(&["run", "-m", p, "hi"]).fails().stderr_has(&[p]);
}

#[test]
fn zero_context_is_an_error() {
    let m = model_or_skip!();
    slm(&["run", "-m", &m, "-c", "0", "hi"]).fails().stderr_has(&["context"]);
    slm_stdin(&["chat", "-m", &m, "-c", "0"], "hi\n").fails().stderr_has(&["context"]);
    slm(&["perplexity", "/usr/share/common-licenses/Apache-2.0", "-m", &m, "-c", "0"]).fails().stderr_has(&["context"]);
}

#[test]
fn prompt_longer_than_the_context_is_a_clear_error() {
    let m = model_or_skip!();
    let long = "This is a long prompt about many different things. ".repeat(20);
    let out = slm(&["run", "-m", &m, "-c", "16", "-n", "4", &long]).fails().stderr_has(&["context", "16"]);
    assert!(out.stdout.trim().is_empty(), "something was generated: {:?}", out.stdout);
    slm(&["run", "-m", &m, "--raw", "-c", "16", "-n", "4", &long]).fails().stderr_has(&["context"]);
}

#[test]
fn invalid_sampling_settings_and_prompts_are_errors() {
    let m = model_or_skip!();
    let base = ["run", "-m", m.as_str(), "-c", "64", "-n", "2"];
    fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        base.iter().chain(extra).copied().collect()
    }
    slm(&with(&base, &["--temp", "NaN", "hi"])).fails().stderr_has(&["temperature"]);
    slm(&with(&base, &["--top-p", "NaN", "hi"])).fails().stderr_has(&["top_p"]);
    slm(&with(&base, &["--repeat-penalty", "0", "hi"])).fails().stderr_has(&["repeat_penalty"]);
    slm(&with(&base, &["--raw", ""])).fails().stderr_has(&["empty"]);
    slm_stdin(&with(&base, &["--raw"]), "").fails().stderr_has(&["empty"]);
    // Invalid UTF-8 cannot be expressed through slm_stdin's &str; a lone "-" with no input
    // is covered above. Not-UTF-8 text files are covered in the perplexity tests.
}
