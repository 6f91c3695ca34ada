//! The WebAssembly build's numbers against llama.cpp: runs `golden_logits.mjs` (the built module in
//! Node's V8) on the golden chat prompt and checks the prompt length, the top-1 token and the KL
//! divergence of the next-token distribution.
//!
//! Needs the built page (target/web or `SLM_WEB_DIR`), node and `SLM_TEST_MODEL`; skips with a note
//! when the page or node is missing, unless `SLM_REQUIRE_BROWSER=1` (scripts/test.sh builds the
//! page first and sets it when Chromium is present).

mod common;

use std::path::{Path, PathBuf};

#[test]
fn wasm_logits_match_llama_cpp() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let page = std::env::var_os("SLM_WEB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("target/web"));
    let has_node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_node || !page.join("pkg/slm_wasm_bg.wasm").is_file() {
        assert!(
            std::env::var_os("SLM_REQUIRE_BROWSER").is_none(),
            "node or the built page ({}; run scripts/build_wasm.sh) is missing",
            page.display()
        );
        eprintln!("note: node or the built page is missing; skipping");
        return;
    }
    let Some(model) = common::model_path() else {
        return;
    };
    let out = std::process::Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden_logits.mjs"))
        .arg(page.join("pkg").canonicalize().unwrap())
        .arg(&model)
        .arg(repo.join("tests/golden").canonicalize().unwrap())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "golden check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("wasm vs llama.cpp: {}", stdout.trim());
}
