//! The official OpenAI clients against the server on 127.0.0.1: the `openai` Python SDK
//! (tests/openai_sdk_check.py) and the `openai` npm package (tests/openai_npm_check.js) — chat,
//! streaming, logprobs, completions, seeds, aborts, and errors raised as the clients' typed
//! exceptions.
//!
//! Needs `SLM_TEST_MODEL` and the pinned clients that scripts/test.sh installs (Python: `openai`
//! for `SLM_PYTHON`, default `python3`; npm: `openai` under target/test-clients/npm, or
//! `SLM_NPM_MODULES`). Without them a test prints a note and passes, unless
//! `SLM_REQUIRE_MODEL=1` (CI) makes it fail.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "sdk-test-key";

/// Skips (or fails under SLM_REQUIRE_MODEL) when a client is missing.
fn missing(what: &str) {
    assert!(
        std::env::var_os("SLM_REQUIRE_MODEL").is_none(),
        "{what} is missing; scripts/test.sh installs the pinned version"
    );
    eprintln!("note: {what} is not installed; skipping");
}

/// Runs a client script against a fresh server; returns its JSON report.
fn run_client(mut cmd: Command) -> Option<serde_json::Value> {
    let t = start(Opts {
        api_key: Some(KEY),
        n_ctx: 512,
        ..Opts::default()
    })?;
    let mut child = cmd
        .args([t.base.as_str(), KEY])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(300) {
            child.kill().unwrap();
            panic!("the client script did not finish within 300 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "client script failed:\n{stdout}\n{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["ok"], true);
    eprintln!("client report: {report}");
    Some(report)
}

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

#[test]
fn official_python_sdk_works_against_the_server() {
    let py = std::env::var("SLM_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_sdk = Command::new(&py)
        .args(["-c", "import openai"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_sdk {
        return missing(&format!("the openai Python package (for {py})"));
    }
    let mut cmd = Command::new(&py);
    cmd.arg(tests_dir().join("openai_sdk_check.py"));
    let Some(report) = run_client(cmd) else {
        return;
    };
    assert!(report["checks"].as_u64().unwrap() >= 40, "{report}");
}

#[test]
fn official_npm_package_works_against_the_server() {
    let modules = std::env::var_os("SLM_NPM_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-clients/npm/node_modules")
        });
    let has_node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_node || !modules.join("openai/package.json").is_file() {
        return missing(&format!(
            "node or the openai npm package (in {})",
            modules.display()
        ));
    }
    // Node resolves `..` lexically; give it the real directory.
    let modules = modules.canonicalize().unwrap_or(modules);
    let mut cmd = Command::new("node");
    cmd.env("NODE_PATH", &modules)
        .arg(tests_dir().join("openai_npm_check.js"));
    let Some(report) = run_client(cmd) else {
        return;
    };
    assert!(report["checks"].as_u64().unwrap() >= 15, "{report}");
}
