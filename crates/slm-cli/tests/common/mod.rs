//! Shared helpers for the `slm` binary's integration tests: locating the test model, running the
//! binary in an isolated cache with a time limit, and reading the llama.cpp golden files.

#![allow(dead_code)] // Not every test file uses every helper.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The longest any single `slm` invocation may take before the test fails (a hung binary,
/// e.g. one waiting on stdin, must not hang the suite).
const TIME_LIMIT: Duration = Duration::from_secs(180);

/// The real model from `SLM_TEST_MODEL`; `None` (with a note) when unset, a panic when
/// `SLM_REQUIRE_MODEL` says CI must have it.
pub fn model_path() -> Option<PathBuf> {
    match std::env::var_os("SLM_TEST_MODEL") {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var_os("SLM_REQUIRE_MODEL").is_some() => {
            panic!("SLM_REQUIRE_MODEL is set but SLM_TEST_MODEL is not")
        }
        None => {
            eprintln!("note: SLM_TEST_MODEL not set; skipping this model-backed CLI test");
            None
        }
    }
}

/// `SLM_TEST_MODEL` as a string for `-m`, or return from the test when it is unset.
#[macro_export]
macro_rules! model_or_skip {
    () => {
        match $crate::common::model_path() {
            Some(p) => p.to_string_lossy().into_owned(),
            None => return,
        }
    };
}

/// What one run of `slm` produced.
#[derive(Debug)]
pub struct Output {
    /// The arguments, for failure messages.
    pub args: Vec<String>,
    /// Exit status.
    pub status: ExitStatus,
    /// Everything written to stdout (lossy UTF-8).
    pub stdout: String,
    /// Everything written to stderr (lossy UTF-8).
    pub stderr: String,
}

impl Output {
    /// Exit code; `None` when killed by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Asserts exit 0 and returns self.
    #[track_caller]
    pub fn ok(self) -> Self {
        self.no_panic();
        assert!(self.status.success(), "slm {:?} failed with {:?}\nstdout:\n{}\nstderr:\n{}", self.args, self.status, self.stdout, self.stderr);
        self
    }

    /// Asserts a clean failure: a non-zero exit code (not a signal, not Rust's panic code 101),
    /// no panic message, and an `error:` line on stderr. Returns self.
    #[track_caller]
    pub fn fails(self) -> Self {
        self.no_panic();
        let code = self.code();
        assert!(
            matches!(code, Some(c) if c != 0 && c != 101),
            "slm {:?}: expected a clean non-zero exit, got {:?}\nstdout:\n{}\nstderr:\n{}",
            self.args,
            self.status,
            self.stdout,
            self.stderr
        );
        assert!(self.stderr.contains("error"), "slm {:?}: no error message on stderr:\n{}", self.args, self.stderr);
        self
    }

    /// Asserts stderr mentions every one of `needles`.
    #[track_caller]
    pub fn stderr_has(self, needles: &[&str]) -> Self {
        for n in needles {
            assert!(self.stderr.contains(n), "slm {:?}: stderr lacks {n:?}:\n{}", self.args, self.stderr);
        }
        self
    }

    /// Asserts stdout mentions every one of `needles`.
    #[track_caller]
    pub fn stdout_has(self, needles: &[&str]) -> Self {
        for n in needles {
            assert!(self.stdout.contains(n), "slm {:?}: stdout lacks {n:?}:\n{}", self.args, self.stdout);
        }
        self
    }

    #[track_caller]
    fn no_panic(&self) {
        assert!(
            !self.stderr.contains("panicked") && !self.stderr.contains("RUST_BACKTRACE"),
            "slm {:?} panicked:\n{}",
            self.args,
            self.stderr
        );
    }
}

/// A fresh, empty cache directory for one test (never the user's cache).
pub fn empty_cache() -> tempfile::TempDir {
    tempfile::tempdir().expect("create a temporary cache directory")
}

/// Runs `slm args...` with `SLM_CACHE_DIR=cache`, `SLM_OFFLINE=1`, a failing pip, `stdin` piped in
/// (or empty), and a time limit.
pub fn slm_in(cache: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    slm_env(cache, args, stdin, &[])
}

/// Like [`slm_in`] with a throwaway cache.
pub fn slm(args: &[&str]) -> Output {
    let cache = empty_cache();
    slm_in(cache.path(), args, None)
}

/// Like [`slm`], feeding `stdin`.
pub fn slm_stdin(args: &[&str], stdin: &str) -> Output {
    let cache = empty_cache();
    slm_in(cache.path(), args, Some(stdin))
}

/// The general form: extra environment variables on top of the isolated defaults.
pub fn slm_env(cache: &Path, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_slm"));
    cmd.args(args)
        .env("SLM_CACHE_DIR", cache)
        .env("SLM_OFFLINE", "1")
        // Never reach PyPI from a test: the wheel fallback fails at once.
        .env("SLM_PIP", "false")
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("RUST_BACKTRACE")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn the slm binary");
    let feeder = stdin.map(|text| {
        let mut pipe = child.stdin.take().expect("piped stdin");
        let text = text.to_string();
        // Written from a thread so a child that does not read cannot block the test; dropping the
        // pipe closes it (end of input).
        std::thread::spawn(move || {
            let _ = pipe.write_all(text.as_bytes());
        })
    });
    let mut out_pipe = child.stdout.take().expect("piped stdout");
    let mut err_pipe = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for slm") {
            break s;
        }
        if start.elapsed() > TIME_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("slm {args:?} did not finish within {TIME_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    if let Some(f) = feeder {
        let _ = f.join();
    }
    let stdout = String::from_utf8_lossy(&out_reader.join().expect("stdout reader")).into_owned();
    let stderr = String::from_utf8_lossy(&err_reader.join().expect("stderr reader")).into_owned();
    Output { args: args.iter().map(|s| s.to_string()).collect(), status, stdout, stderr }
}

/// The repository's `tests/golden` directory.
pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden")
}

/// A golden JSON file.
pub fn golden_json(name: &str) -> serde_json::Value {
    let path = golden_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// llama.cpp's greedy continuation for the golden case `name` of logits_smollm2.json.
pub fn golden_greedy_text(name: &str) -> String {
    let g = golden_json("logits_smollm2.json");
    let case = g["cases"]
        .as_array()
        .expect("cases array")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no golden case {name:?}"));
    case["greedy_text"].as_str().expect("greedy_text string").to_string()
}

/// The first `n` characters of `s` (char-boundary safe).
pub fn first_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Top-1 minus top-2 logit below which llama.cpp's greedy choice counts as a near-tie (the same
/// threshold as slm-model's golden test): both engines quantize matmul inputs to 8 bits, so a
/// smaller gap is inside the rounding noise and either engine may pick either token.
pub const NEAR_TIE: f64 = 0.3;

/// llama.cpp's greedy continuation of golden case `name`, token by token: each token's text
/// (bytes) and llama.cpp's top-1 minus top-2 margin where it was chosen.
pub fn golden_greedy_tokens(model: &Path, name: &str) -> Vec<(Vec<u8>, f64)> {
    let g = golden_json("logits_smollm2.json");
    let case = g["cases"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap();
    let file = slm_format::GgufFile::open(model).expect("open SLM_TEST_MODEL");
    let tok = slm_runtime::Tokenizer::from_gguf(file.metadata()).expect("tokenizer of SLM_TEST_MODEL");
    let ids = case["greedy_ids"].as_array().unwrap();
    let margins = case["greedy_top2_margin"].as_array().unwrap();
    assert_eq!(ids.len(), margins.len());
    let tokens: Vec<(Vec<u8>, f64)> = ids
        .iter()
        .zip(margins)
        .map(|(id, m)| (tok.token_to_piece(id.as_u64().unwrap() as u32).to_vec(), m.as_f64().unwrap()))
        .collect();
    let text: Vec<u8> = tokens.iter().flat_map(|(b, _)| b.clone()).collect();
    assert_eq!(String::from_utf8_lossy(&text), case["greedy_text"].as_str().unwrap(), "pieces do not spell greedy_text");
    tokens
}

/// Checks `got` against llama.cpp's greedy tokens: identical up to the first place they differ,
/// and that place (if any) must be a token llama.cpp chose by a near-tie. Returns how many golden
/// tokens `got` reproduced in full.
#[track_caller]
pub fn assert_greedy_matches(got: &str, golden: &[(Vec<u8>, f64)]) -> usize {
    let got = got.as_bytes();
    let mut at = 0;
    for (i, (piece, margin)) in golden.iter().enumerate() {
        let end = at + piece.len();
        if got.len() >= end && got[at..end] == piece[..] {
            at = end;
            continue;
        }
        // Ran out of output (the run was shorter) or diverged inside this token.
        let diverged = got.len() > at && !piece.starts_with(&got[at..got.len().min(end)]);
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        assert!(
            !diverged || *margin < NEAR_TIE,
            "greedy output leaves llama.cpp's at token {i} (margin {margin:.3} ≥ near-tie {NEAR_TIE})\n got: {:?}\nwant: {:?}",
            text(got),
            text(&golden.iter().flat_map(|(b, _)| b.clone()).collect::<Vec<u8>>())
        );
        return i;
    }
    golden.len()
}
