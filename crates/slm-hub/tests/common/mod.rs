//! Test support: a minimal HTTP/1.1 file server on 127.0.0.1 (Range, 206/416,
//! injected connection drops, fixed statuses, redirects), a recording
//! `Progress`, and helpers that build specs, configs and wheels.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use sha2::{Digest, Sha256};
use slm_hub::{HubConfig, ModelSpec, Progress, Source};

/// Deterministic pseudo-random bytes (xorshift64).
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn sha_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// How the server answers one path.
#[derive(Clone)]
pub enum Route {
    /// Serve these bytes.
    File {
        data: Arc<Vec<u8>>,
        /// One-shot: close the connection after this many body bytes.
        drop_after: Option<usize>,
        /// When false, Range headers are ignored (always 200 + full body).
        honor_range: bool,
        /// One-shot: answer the next ranged request with 416.
        reject_range_once: bool,
        /// Sleep between 64 KiB chunks (to make a download slow).
        chunk_delay: Duration,
    },
    /// Answer with this status and an empty body.
    Status(u16),
    /// 302 to this path.
    Redirect(String),
}

impl Route {
    pub fn file(data: &[u8]) -> Route {
        Route::File {
            data: Arc::new(data.to_vec()),
            drop_after: None,
            honor_range: true,
            reject_range_once: false,
            chunk_delay: Duration::ZERO,
        }
    }
}

/// A request the server saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub path: String,
    pub range: Option<String>,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Route>,
    seen: Vec<Seen>,
}

pub struct TestServer {
    pub base: String,
    state: Arc<Mutex<State>>,
}

impl TestServer {
    pub fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let st = st.clone();
                thread::spawn(move || handle(stream, &st));
            }
        });
        TestServer { base, state }
    }

    pub fn route(&self, path: &str, route: Route) {
        self.state.lock().unwrap().routes.insert(path.to_string(), route);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

fn handle(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    // Decide the answer and consume one-shot flags under the lock.
    let route = {
        let mut st = state.lock().unwrap();
        st.seen.push(Seen { path: path.clone(), range: range.clone() });
        let route = st.routes.get(&path).cloned();
        if let Some(Route::File { drop_after, reject_range_once, .. }) = st.routes.get_mut(&path) {
            *drop_after = None;
            if range.is_some() {
                *reject_range_once = false;
            }
        }
        route
    };
    let mut out = stream;
    match route {
        None => respond_status(&mut out, 404),
        Some(Route::Status(code)) => respond_status(&mut out, code),
        Some(Route::Redirect(to)) => {
            let _ = write!(out, "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
        Some(Route::File { data, drop_after, honor_range, reject_range_once, chunk_delay }) => {
            let start = range
                .as_deref()
                .filter(|_| honor_range)
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|n| n.parse::<usize>().ok());
            let len = data.len();
            let (head, body) = match start {
                Some(s) if s >= len || reject_range_once => {
                    let _ = write!(out, "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    return;
                }
                Some(s) => (
                    format!("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {s}-{}/{len}\r\nContent-Length: {}\r\n", len - 1, len - s),
                    &data[s..],
                ),
                None => (format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n"), &data[..]),
            };
            let _ = write!(out, "{head}Accept-Ranges: bytes\r\nConnection: close\r\n\r\n");
            let body = match drop_after {
                Some(k) => &body[..k.min(body.len())],
                None => body,
            };
            for chunk in body.chunks(64 * 1024) {
                if out.write_all(chunk).is_err() {
                    return;
                }
                if !chunk_delay.is_zero() {
                    thread::sleep(chunk_delay);
                }
            }
            let _ = out.flush();
            let _ = out.shutdown(std::net::Shutdown::Both);
        }
    }
}

fn respond_status(out: &mut TcpStream, code: u16) {
    let _ = write!(out, "HTTP/1.1 {code} Status\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}

/// Records every Progress call.
#[derive(Default)]
pub struct Recorder {
    pub messages: Mutex<Vec<String>>,
    pub advanced: Mutex<u64>,
}

impl Progress for Recorder {
    fn start(&self, _what: &str, _total: Option<u64>) {}
    fn advance(&self, bytes: u64) {
        *self.advanced.lock().unwrap() += bytes;
    }
    fn finish(&self) {}
    fn message(&self, msg: &str) {
        self.messages.lock().unwrap().push(msg.to_string());
    }
}

impl Recorder {
    pub fn all(&self) -> String {
        self.messages.lock().unwrap().join("\n")
    }
}

/// A hub source whose URL path is `/<repo>/resolve/main/<file>`.
pub fn hub(repo: &str, file: &str) -> Source {
    Source::Hub { repo: repo.into(), revision: "main".into(), path: file.into() }
}

pub fn hub_path(repo: &str, file: &str) -> String {
    format!("/{repo}/resolve/main/{file}")
}

pub fn spec(data: &[u8], sources: Vec<Source>) -> ModelSpec {
    ModelSpec {
        name: "tiny-test".into(),
        aliases: vec!["tiny".into()],
        description: "test model".into(),
        architecture: "llama".into(),
        params: "1K".into(),
        license: "MIT".into(),
        file: "tiny.gguf".into(),
        size: data.len() as u64,
        sha256: sha_hex(data),
        quant: "F32".into(),
        sources,
    }
}

pub fn config(cache: &Path, endpoint: &str) -> HubConfig {
    let mut cfg = HubConfig::with_cache_root(cache);
    cfg.hub_endpoint = endpoint.to_string();
    cfg.connect_timeout = Duration::from_secs(3);
    cfg.read_timeout = Duration::from_secs(5);
    cfg.lock_timeout = Duration::from_secs(20);
    cfg
}

/// Writes a wheel (zip) with the given members (Deflated) at `path`.
pub fn write_wheel(path: &Path, members: &[(&str, &[u8])]) {
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in members {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap();
}

/// A fake `pip`: a shell script that logs its arguments to `log` and copies
/// `wheel` into the `-d` directory (or fails with `fail_msg`). Returns the
/// command line for `HubConfig::pip_command`.
pub fn fake_pip(dir: &Path, wheel: Option<&Path>, log: &Path) -> Vec<String> {
    let script = dir.join("fake-pip.sh");
    let action = match wheel {
        Some(w) => format!("cp '{}' \"$dest/\"", w.display()),
        None => "echo 'ERROR: No matching distribution found' >&2; exit 1".to_string(),
    };
    let body = format!(
        "#!/bin/sh\ndest=''\nwhile [ $# -gt 0 ]; do\n  case \"$1\" in\n    -d) dest=\"$2\"; shift 2;;\n    *) echo \"$1\" >> '{}'; shift;;\n  esac\ndone\n[ -d \"$dest\" ] || {{ echo 'no -d dir' >&2; exit 2; }}\n{action}\n",
        log.display()
    );
    std::fs::write(&script, body).unwrap();
    vec!["sh".into(), script.to_string_lossy().into_owned()]
}

/// All files under `dir`, recursively (relative paths with `/`), sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
