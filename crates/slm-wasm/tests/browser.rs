//! The in-browser page end to end, in headless Chromium (playwright-core driving the system's
//! /usr/bin/chromium): `slm serve`'s `/web` route serves the page built by
//! `scripts/build_wasm.sh`; the page downloads SmolLM2-135M-Instruct (Q4_1) with progress, answers
//! a question in a Web Worker with streamed tokens whose greedy ids and text equal the native
//! engine's, stops a long answer with Stop, and on a reload reads the model from the browser cache.
//!
//! Needs the built page (target/web, or `SLM_WEB_DIR`), `SLM_TEST_MODEL`, node, playwright-core
//! (scripts/test.sh installs it) and Chromium; skips with a note when one is missing, unless
//! `SLM_REQUIRE_BROWSER=1` (then missing pieces fail). Writes target/test-artifacts/wasm_page.png
//! and prints tokens/s and memory.

mod common;

use slm_runtime::ChatMessage;
use std::path::{Path, PathBuf};

// A question the 135M model answers with confidence: near-ties (where float rounding in the
// kernels may pick either token) come late, so the first 16 greedy tokens are comparable.
const QUESTION: &str = "Who wrote Romeo and Juliet?";
const N_TOKENS: usize = 32;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn npm_modules() -> PathBuf {
    let p = std::env::var_os("SLM_NPM_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/test-clients/npm/node_modules"));
    p.canonicalize().unwrap_or(p)
}

fn built_page() -> PathBuf {
    std::env::var_os("SLM_WEB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/web"))
}

#[test]
fn page_runs_the_model_in_headless_chromium() {
    let chromium = std::env::var("SLM_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let modules = npm_modules();
    let page_dir = built_page();
    let has_node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let missing: Vec<String> = [
        (!has_node).then(|| "node".to_string()),
        (!Path::new(&chromium).is_file()).then(|| chromium.clone()),
        (!modules.join("playwright-core/package.json").is_file())
            .then(|| format!("playwright-core in {}", modules.display())),
        (!page_dir.join("pkg/slm_wasm_bg.wasm").is_file()).then(|| {
            format!(
                "the built page in {} (run scripts/build_wasm.sh)",
                page_dir.display()
            )
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !missing.is_empty() {
        assert!(
            std::env::var_os("SLM_REQUIRE_BROWSER").is_none(),
            "missing: {}",
            missing.join(", ")
        );
        eprintln!(
            "note: skipping the wasm browser test; missing: {}",
            missing.join(", ")
        );
        return;
    }
    let Some(model) = common::model_path() else {
        return;
    };

    // The reference: native greedy text, and the ids the same engine samples on the host.
    let native_text = common::native_greedy(&model, QUESTION, N_TOKENS);
    let native_16 = common::native_greedy(&model, QUESTION, 16);
    let mut engine =
        slm_wasm::Engine::from_gguf_bytes(std::fs::read(&model).unwrap(), 1024).unwrap();
    let ids = engine
        .encode_chat(&[ChatMessage::new("user", QUESTION)])
        .unwrap();
    engine.start(&ids, &common::greedy(N_TOKENS)).unwrap();
    let (_, native_ids, _) = common::run_to_end(&mut engine);
    drop(engine);

    // A page folder with the model next to it (same origin, as the CSP wants).
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&page_dir).unwrap() {
        let entry = entry.unwrap();
        std::os::unix::fs::symlink(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    std::os::unix::fs::symlink(&model, dir.path().join("model.gguf")).unwrap();
    // This test binary has a single test, so setting the variable races with nothing.
    std::env::set_var("SLM_WEB_DIR", dir.path());
    let server = slm_server::Server::start(slm_server::ServerConfig {
        addr: "127.0.0.1:0".into(),
        ..Default::default()
    })
    .unwrap();
    let base = format!("http://{}", server.local_addr());

    let artifacts = repo().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.canonicalize().unwrap().join("wasm_page.png");
    let _ = std::fs::remove_file(&shot);
    let expected = serde_json::json!({
        "question": QUESTION,
        "n_tokens": N_TOKENS,
        "ids": native_ids,
        "text": native_text,
        "text16": native_16,
        "model_bytes": std::fs::metadata(&model).unwrap().len(),
        "model_path": model,
    });
    let out = std::process::Command::new("node")
        .env("NODE_PATH", &modules)
        .env("SLM_CHROMIUM", &chromium)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser_check.js"))
        .arg(&base)
        .arg(&shot)
        .arg(expected.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("browser: {}", stdout.trim());
    assert!(
        std::fs::read(&shot).unwrap().starts_with(b"\x89PNG"),
        "the screenshot is a PNG"
    );
    server.shutdown().unwrap();
}
