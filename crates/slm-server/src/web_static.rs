//! `GET /web/...`: the in-browser (WebAssembly) page of slm-wasm, served from a folder built by
//! `scripts/build_wasm.sh`.
//!
//! The folder is `SLM_WEB_DIR` when set, else `web/` next to the binary's directory (so
//! `target/release/slm serve` finds `target/web`, the build script's default output). Only plain
//! names under that folder are served (no `..`, no hidden files); a missing build answers 404
//! with the command that makes it.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use std::path::PathBuf;

/// The page may run its own scripts and WebAssembly and download a model over HTTPS (Hugging
/// Face) or from this server; nothing else.
const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; \
                   style-src 'self'; connect-src 'self' https:; object-src 'none'; base-uri 'none'";

/// The folder the page is served from.
pub fn web_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SLM_WEB_DIR") {
        return Some(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.join("web"))
}

/// `/web` → `/web/` (relative URLs in the page resolve under it).
pub async fn redirect() -> Redirect {
    Redirect::permanent("/web/")
}

/// `/web/` → `index.html`.
pub async fn index() -> Response {
    serve_file("index.html".into()).await
}

/// `/web/{*path}`.
pub async fn file(Path(path): Path<String>) -> Response {
    serve_file(path).await
}

/// The safe relative path for a request path: plain components only.
fn safe_relative(path: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.split('/') {
        let plain = !part.is_empty()
            && !part.starts_with('.')
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !plain {
            return None;
        }
        out.push(part);
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

fn content_type(path: &std::path::Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        what.to_string(),
    )
        .into_response()
}

async fn serve_file(path: String) -> Response {
    let Some(rel) = safe_relative(&path) else {
        return not_found("not found: only plain file names are served under /web/");
    };
    let Some(dir) = web_dir() else {
        return not_found("the in-browser page is not available: set SLM_WEB_DIR to the folder scripts/build_wasm.sh built");
    };
    let full = dir.join(&rel);
    let read = tokio::task::spawn_blocking(move || std::fs::read(full)).await;
    match read {
        Ok(Ok(bytes)) => (
            [
                (header::CONTENT_TYPE, content_type(&rel)),
                (header::CACHE_CONTROL, "no-cache"),
                (header::CONTENT_SECURITY_POLICY, CSP),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            bytes,
        )
            .into_response(),
        _ if !dir.join("index.html").is_file() => not_found(&format!(
            "the in-browser page is not built: run `bash scripts/build_wasm.sh` (it writes {}), or set SLM_WEB_DIR",
            dir.display()
        )),
        _ => not_found(&format!("not found: /web/{}", rel.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_served() {
        assert_eq!(
            safe_relative("pkg/slm_wasm.js"),
            Some(PathBuf::from("pkg/slm_wasm.js"))
        );
        for bad in [
            "../secret",
            "a/../../b",
            ".hidden",
            "a//b",
            "",
            "/etc/passwd",
            "a\\b",
            "x%2e",
        ] {
            assert_eq!(safe_relative(bad), None, "{bad}");
        }
    }

    #[test]
    fn wasm_gets_its_mime_type() {
        assert_eq!(
            content_type(std::path::Path::new("pkg/slm_wasm_bg.wasm")),
            "application/wasm"
        );
        assert_eq!(
            content_type(std::path::Path::new("index.html")),
            "text/html; charset=utf-8"
        );
    }
}
