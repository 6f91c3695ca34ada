//! Regression tests for CLI bugs found while writing this suite (each was a failing test first).

use crate::common::{empty_cache, slm, slm_in};
use crate::model_or_skip;

/// `slm list` (cmd/models.rs) marks a model "cached" when *any* file sits in its cache
/// directory, whatever its `VerifyStatus`: a wrong-size file (which `run -m NAME` refuses and
/// re-fetches) or an unrelated file both show as "cached".
#[test]
fn list_does_not_call_a_wrong_size_file_cached() {
    let cache = empty_cache();
    let dir = cache.path().join("models/smollm2-135m-instruct");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("SmolLM2-135M-Instruct.Q4_1.gguf"), b"x").unwrap();
    let out = slm_in(cache.path(), &["list"], None).ok();
    let line = out.stdout.lines().find(|l| l.starts_with("smollm2-135m-instruct")).unwrap();
    assert!(!line.contains("cached"), "a 1-byte file is listed as cached: {line}");
}

/// `slm bench` (cmd/bench.rs) calls `Model::load(&path)?` without context, so a bad file's
/// error does not say which file it is (run/show/perplexity do).
#[test]
fn bench_names_the_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.gguf");
    std::fs::write(&p, b"").unwrap();
    let p = p.to_str().unwrap();
    slm(&["bench", "-m", p, "-p", "4", "-n", "0", "-r", "1"]).fails().stderr_has(&[p]);
}

/// `-c` is not checked against the model's training context or memory (load.rs
/// `context_size`): `-c 1000000` allocates two 23 GB KV buffers and, where that fails, the
/// process aborts ("memory allocation of 23040000000 bytes failed", SIGABRT) instead of
/// reporting an error. Simulated here with a 4 GB address-space limit.
#[cfg(unix)]
#[test]
fn oversized_context_is_an_error_not_an_abort() {
    let m = model_or_skip!();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 4000000 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_slm"))
        .args(["run", "-m", &m, "-c", "1000000", "-n", "2", "hi"])
        .env("SLM_OFFLINE", "1")
        .env("SLM_CACHE_DIR", empty_cache().path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(c) if c != 0 && c != 101), "status {:?}:\n{stderr}", out.status);
    assert!(stderr.contains("context") && !stderr.contains("memory allocation"), "{stderr}");
}

/// A closed stdout (`slm run … | head -c 3`) must end the command quietly (DESIGN rule: broken
/// pipe is not an error). The token sink (sink.rs) handles it, but the `println!()` after
/// generation (cmd/run.rs:32, likewise cmd/chat.rs, show.rs, list, bench, perplexity) panics:
/// "failed printing to stdout: Broken pipe", exit code 101.
#[test]
fn closed_stdout_is_not_a_panic() {
    let m = model_or_skip!();
    let cache = empty_cache();
    for args in [
        vec!["run", "-m", m.as_str(), "--temp", "0", "-n", "16", "-c", "128", "What is the capital of France?"],
        vec!["show", "-m", m.as_str(), "--tensors"],
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_slm"))
            .args(&args)
            .env("SLM_OFFLINE", "1")
            .env("SLM_CACHE_DIR", cache.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before the command has written anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "slm {args:?} panicked on a closed stdout:\n{stderr}");
        assert_ne!(out.status.code(), Some(101), "slm {args:?}");
    }
}
