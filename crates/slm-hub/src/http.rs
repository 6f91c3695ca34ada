//! Hub source: HTTP(S) download into `<file>.part` with resume.
//!
//! If a `.part` exists its bytes are re-hashed and `Range: bytes=N-` is sent;
//! 206 appends, 200 restarts from zero, 416 (the prefix no longer fits the
//! remote file) restarts once without a range. Declared lengths are checked
//! before anything is written, and a transfer never grows past the registry
//! size. Connect and per-read timeouts make an offline machine fail fast.

use std::fs;
use std::path::Path;

use crate::config::HubConfig;
use crate::error::SourceError;
use crate::progress::Progress;
use crate::registry::ModelSpec;
use crate::verify::{CopyError, PartFile};

/// Downloads `url` into `part_path` and, once verified, renames it to `dest`.
pub(crate) fn fetch(
    cfg: &HubConfig,
    url: &str,
    spec: &ModelSpec,
    part_path: &Path,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<(), SourceError> {
    let result = fetch_into_part(cfg, url, spec, part_path, dest, progress);
    // A failure before the first byte (404, refused, bad headers) leaves no empty .part behind.
    if result.is_err() && fs::metadata(part_path).is_ok_and(|m| m.len() == 0) {
        let _ = fs::remove_file(part_path);
    }
    result
}

fn fetch_into_part(
    cfg: &HubConfig,
    url: &str,
    spec: &ModelSpec,
    part_path: &Path,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<(), SourceError> {
    let mut part = PartFile::resume(part_path, spec.size, progress)?;
    if part.len() == spec.size {
        // A complete .part from a run that died before the rename.
        if part.matches(spec.size, &spec.sha256) {
            return part.commit(spec.size, &spec.sha256, dest);
        }
        part.restart()?;
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_resolve(Some(cfg.connect_timeout))
        .timeout_connect(Some(cfg.connect_timeout))
        .timeout_per_read(Some(cfg.read_timeout))
        .user_agent(concat!("slm-hub/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let network = |e: ureq::Error| SourceError::Network { url: url.to_string(), detail: e.to_string() };
    let bad = |detail: String| SourceError::BadResponse { url: url.to_string(), detail };

    // Two rounds at most: the second only after a 416 dropped the local prefix.
    for _ in 0..2 {
        let offset = part.len();
        // identity: a compressed body would make Content-Length and ranges refer to other bytes.
        let mut req = agent.get(url).header("Accept-Encoding", "identity");
        if offset > 0 {
            progress.message(&format!("resuming {} at byte {offset}", spec.file));
            req = req.header("Range", format!("bytes={offset}-"));
        }
        let resp = req.call().map_err(network)?;
        let status = resp.status().as_u16();
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let content_length = header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
        match status {
            200 => {
                if offset > 0 {
                    progress.message("server ignored the range request; downloading from the start");
                    part.restart()?;
                }
                check_declared(url, content_length, spec.size)?;
            }
            206 if offset > 0 => {
                let range = header("content-range").unwrap_or_default();
                match parse_content_range(&range) {
                    Some((start, total)) if start == offset && total.is_none_or(|t| t == spec.size) => {}
                    _ => return Err(bad(format!("Content-Range '{range}' does not continue at byte {offset} of {}", spec.size))),
                }
                check_declared(url, content_length, spec.size.saturating_sub(offset))?;
            }
            416 if offset > 0 => {
                progress.message("server rejected the resume range; downloading from the start");
                part.restart()?;
                continue;
            }
            _ => return Err(SourceError::HttpStatus { url: url.to_string(), status }),
        }

        progress.start(&format!("downloading {} from {}", spec.file, host_of(url)), Some(spec.size));
        progress.advance(part.len());
        let mut reader = resp.into_body().into_reader();
        let copied = part.copy_from(&mut reader, spec.size, progress);
        progress.finish();
        return match copied {
            Ok(()) if part.len() < spec.size => {
                let received = part.len();
                part.keep()?;
                Err(SourceError::Interrupted { received, expected: spec.size, detail: "connection closed early".into() })
            }
            Ok(()) => part.commit(spec.size, &spec.sha256, dest),
            Err(CopyError::Read(e)) => {
                let received = part.len();
                part.keep()?;
                Err(SourceError::Interrupted { received, expected: spec.size, detail: e.to_string() })
            }
            Err(CopyError::TooLong) => {
                part.discard();
                Err(bad(format!("server sent more than the expected {} bytes", spec.size)))
            }
            Err(CopyError::Write(e)) => Err(e),
        };
    }
    Err(bad("server answered 416 to a request without a range".into()))
}

/// A declared Content-Length must equal what we still need; absent is allowed
/// (the copy loop still refuses to grow past the registry size).
fn check_declared(url: &str, declared: Option<u64>, expected: u64) -> Result<(), SourceError> {
    match declared {
        Some(found) if found != expected => {
            Err(SourceError::DeclaredSize { what: format!("Content-Length of {url}"), expected, found })
        }
        _ => Ok(()),
    }
}

/// Parses `bytes START-END/TOTAL` (TOTAL may be `*`) into `(START, TOTAL)`.
fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    if end < start {
        return None;
    }
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse::<u64>().ok()?),
    };
    Some((start, total))
}

/// `https://host:port/path` → `host:port`, for progress labels.
fn host_of(url: &str) -> &str {
    let no_scheme = url.split_once("://").map_or(url, |(_, r)| r);
    no_scheme.split('/').next().unwrap_or(no_scheme)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parsing() {
        assert_eq!(parse_content_range("bytes 100-199/200"), Some((100, Some(200))));
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("bytes */200"), None);
        assert_eq!(parse_content_range("bytes 9-5/200"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(parse_content_range(""), None);
    }

    #[test]
    fn hosts_and_declared_sizes() {
        assert_eq!(host_of("https://huggingface.co/a/b"), "huggingface.co");
        assert_eq!(host_of("http://127.0.0.1:8080/x"), "127.0.0.1:8080");
        assert!(check_declared("u", None, 5).is_ok());
        assert!(check_declared("u", Some(5), 5).is_ok());
        assert!(matches!(check_declared("u", Some(6), 5), Err(SourceError::DeclaredSize { expected: 5, found: 6, .. })));
    }
}
