//! `POST /v1/embeddings` with all-MiniLM-L6-v2 through the official `openai` Python SDK
//! (tests/openai_embeddings_check.py): default base64 and float encodings, batches, vectors equal
//! to sentence-transformers' (tests/golden/minilm_embeddings.json), errors as typed exceptions.
//!
//! Needs `SLM_TEST_BERT_DIR` and the `openai` package for `SLM_PYTHON` (both from scripts/test.sh);
//! without them it prints a note and passes, unless `SLM_REQUIRE_MODEL=1` (CI) makes it fail.

use std::path::{Path, PathBuf};
use std::process::Command;

use slm_runtime::embed::Embedder;
use slm_server::{EmbeddingService, Server, ServerConfig};

const KEY: &str = "embed-test-key";

fn missing(what: &str) {
    assert!(std::env::var_os("SLM_REQUIRE_MODEL").is_none(), "{what} is missing; scripts/test.sh provides it");
    eprintln!("note: {what} is not available; skipping");
}

#[test]
fn python_sdk_embeddings() {
    let Some(dir) = std::env::var_os("SLM_TEST_BERT_DIR").map(PathBuf::from) else {
        return missing("SLM_TEST_BERT_DIR (all-MiniLM-L6-v2)");
    };
    let py = std::env::var("SLM_PYTHON").unwrap_or_else(|_| "python3".into());
    if !Command::new(&py).args(["-c", "import openai"]).output().is_ok_and(|o| o.status.success()) {
        return missing(&format!("the openai Python package (for {py})"));
    }
    let config = ServerConfig { addr: "127.0.0.1:0".into(), api_key: Some(KEY.into()), ..ServerConfig::default() };
    let server = Server::start(config).unwrap();
    let embedder = Embedder::open(&dir, 2).unwrap();
    server.install_embeddings(EmbeddingService::new(embedder, "all-MiniLM-L6-v2")).unwrap();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(&py)
        .arg(manifest.join("tests/openai_embeddings_check.py"))
        .arg(format!("http://{}", server.local_addr()))
        .arg(KEY)
        .arg(manifest.join("../../tests/golden/minilm_embeddings.json"))
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "client script failed:\n{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["ok"], true);
    assert!(report["checks"].as_u64().unwrap() >= 25, "{report}");
    server.shutdown().unwrap();
}
