//! The official `openai` Python SDK against the server (tests/openai_sdk_check.py): chat,
//! streaming, logprobs, completions, seeds, and errors raised as the SDK's typed exceptions.
//!
//! Needs `SLM_TEST_MODEL` and a Python with the `openai` package (scripts/test.sh installs the
//! pinned version; `SLM_PYTHON` picks the interpreter, default `python3`). Without them the test
//! prints a note and passes, unless `SLM_REQUIRE_MODEL=1` (CI) makes it fail.

mod common;

use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

fn python() -> String {
    std::env::var("SLM_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn sdk_available(py: &str) -> bool {
    Command::new(py)
        .args(["-c", "import openai"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn official_python_sdk_works_against_the_server() {
    let py = python();
    if !sdk_available(&py) {
        assert!(
            std::env::var_os("SLM_REQUIRE_MODEL").is_none(),
            "the openai Python package is missing for {py}; scripts/test.sh installs the pinned version"
        );
        eprintln!("note: the openai Python package is not installed; skipping");
        return;
    }
    let Some(t) = start(Opts {
        api_key: Some("sdk-test-key"),
        n_ctx: 512,
        ..Opts::default()
    }) else {
        return;
    };
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openai_sdk_check.py");
    let mut child = Command::new(&py)
        .arg(&script)
        .args([&t.base, "sdk-test-key"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(300) {
            child.kill().unwrap();
            panic!("the SDK script did not finish within 300 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "SDK script failed:\n{stdout}\n{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["ok"], true);
    assert!(report["checks"].as_u64().unwrap() >= 40, "{report}");
    eprintln!("openai SDK: {report}");
}
