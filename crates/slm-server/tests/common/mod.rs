//! Shared fixture of the server's integration tests: the real model (SLM_TEST_MODEL), a server on
//! 127.0.0.1 port 0 started in-process, and small HTTP helpers (ureq for well-formed requests,
//! raw TCP for hostile ones).
#![allow(dead_code)]

use serde_json::Value;
use slm_kernels::Pool;
use slm_model::Model;
use slm_runtime::{ChatTemplate, Tokenizer};
use slm_server::{Engine, EngineOptions, RequestLimits, Server, ServerConfig};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The model, tokenizer and template, loaded once per test.
pub struct Loaded {
    pub model: Arc<Model>,
    pub tokenizer: Arc<Tokenizer>,
    pub template: ChatTemplate,
    pub pool: Arc<Pool>,
}

/// Loads SLM_TEST_MODEL; `None` (with a note) when it is unset, unless SLM_REQUIRE_MODEL is set.
pub fn load() -> Option<Loaded> {
    let path = match std::env::var_os("SLM_TEST_MODEL") {
        Some(p) => PathBuf::from(p),
        None => {
            assert!(
                std::env::var_os("SLM_REQUIRE_MODEL").is_none(),
                "SLM_REQUIRE_MODEL is set but SLM_TEST_MODEL is not"
            );
            eprintln!("note: SLM_TEST_MODEL not set; skipping");
            return None;
        }
    };
    let model = Arc::new(Model::load(&path).unwrap());
    let tokenizer = Arc::new(Tokenizer::from_gguf(model.gguf().metadata()).unwrap());
    let template = ChatTemplate::for_tokenizer(&tokenizer).unwrap();
    Some(Loaded {
        model,
        tokenizer,
        template,
        pool: Arc::new(Pool::new(2).unwrap()),
    })
}

/// Server settings for a test.
#[derive(Clone, Copy)]
pub struct Opts {
    pub api_key: Option<&'static str>,
    pub n_ctx: usize,
    pub queue: usize,
    pub max_body: usize,
    pub slots: usize,
}

impl Default for Opts {
    fn default() -> Opts {
        Opts {
            api_key: None,
            n_ctx: 1024,
            queue: 8,
            max_body: 1 << 20,
            slots: 1,
        }
    }
}

/// A running server with the model installed.
pub struct TestServer {
    pub server: Option<Server>,
    pub base: String,
    pub key: Option<&'static str>,
    pub loaded: Loaded,
}

impl TestServer {
    /// Stops the server gracefully.
    pub fn shutdown(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().unwrap();
        }
    }
}

/// Starts a server without a model (the caller installs it).
pub fn start_empty(opts: Opts) -> Server {
    Server::start(ServerConfig {
        addr: "127.0.0.1:0".into(),
        api_key: opts.api_key.map(str::to_string),
        queue_capacity: opts.queue,
        max_body_bytes: opts.max_body,
        limits: RequestLimits::default(),
        handle_signals: false,
        http_threads: 2,
        max_connections: 64,
        header_read_timeout: slm_server::connections::HEADER_READ_TIMEOUT,
        body_read_timeout: slm_server::connections::BODY_READ_TIMEOUT,
    })
    .unwrap()
}

/// The engine for `loaded`.
pub fn engine(loaded: &Loaded, n_ctx: usize) -> Engine {
    engine_with_slots(loaded, n_ctx, 1)
}

/// The engine for `loaded` with `slots` contexts.
pub fn engine_with_slots(loaded: &Loaded, n_ctx: usize, slots: usize) -> Engine {
    Engine::new(
        loaded.model.clone(),
        loaded.tokenizer.clone(),
        ChatTemplate::for_tokenizer(&loaded.tokenizer).unwrap(),
        loaded.pool.clone(),
        EngineOptions {
            model_id: "smollm2-test".into(),
            n_ctx,
            n_batch: 64,
            n_slots: slots,
        },
    )
    .unwrap()
}

/// Loads the model and starts a server with it, or `None` when the model is not configured.
pub fn start(opts: Opts) -> Option<TestServer> {
    let loaded = load()?;
    let server = start_empty(opts);
    server
        .install(
            engine_with_slots(&loaded, opts.n_ctx, opts.slots),
            opts.queue,
        )
        .unwrap();
    let base = format!("http://{}", server.local_addr());
    Some(TestServer {
        server: Some(server),
        base,
        key: opts.api_key,
        loaded,
    })
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// A response: status, headers we care about, body.
pub struct Resp {
    pub status: u16,
    pub retry_after: Option<String>,
    pub content_type: String,
    pub body: String,
}

impl Resp {
    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// Asserts an OpenAI-shaped error with this status; returns the error object.
    pub fn error(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "body: {}", self.body);
        let v = self.json();
        let e = v["error"].clone();
        assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "no error message: {v}"
        );
        assert!(e["type"].as_str().is_some(), "no error type: {v}");
        e
    }
}

fn finish(mut r: ureq::http::Response<ureq::Body>) -> Resp {
    let status = r.status().as_u16();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let retry_after = header("retry-after");
    let content_type = header("content-type").unwrap_or_default();
    let body = r.body_mut().read_to_string().unwrap_or_default();
    Resp {
        status,
        retry_after,
        content_type,
        body,
    }
}

/// `GET base + path`.
pub fn get(base: &str, path: &str, key: Option<&str>) -> Resp {
    let mut req = agent().get(format!("{base}{path}"));
    if let Some(k) = key {
        req = req.header("Authorization", format!("Bearer {k}"));
    }
    finish(req.call().unwrap())
}

/// `POST base + path` with a raw body.
pub fn post_raw(base: &str, path: &str, body: &str, key: Option<&str>) -> Resp {
    let mut req = agent()
        .post(format!("{base}{path}"))
        .header("Content-Type", "application/json");
    if let Some(k) = key {
        req = req.header("Authorization", format!("Bearer {k}"));
    }
    finish(req.send(body).unwrap())
}

/// `POST base + path` with a JSON body.
pub fn post(base: &str, path: &str, body: &Value, key: Option<&str>) -> Resp {
    post_raw(base, path, &body.to_string(), key)
}

/// A streamed request: the JSON payload of every `data:` line (asserting that each one but the
/// final `[DONE]` is JSON, and that `[DONE]` ends the stream).
pub fn sse(base: &str, path: &str, body: &Value, key: Option<&str>) -> Vec<Value> {
    let mut req = agent()
        .post(format!("{base}{path}"))
        .header("Content-Type", "application/json");
    if let Some(k) = key {
        req = req.header("Authorization", format!("Bearer {k}"));
    }
    let mut r = req.send(body.to_string()).unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(ct.starts_with("text/event-stream"), "content-type {ct}");
    let reader = BufReader::new(r.body_mut().as_reader());
    let mut out = Vec::new();
    let mut done = false;
    for line in reader.lines() {
        let line = line.unwrap();
        let Some(data) = line.strip_prefix("data: ") else {
            assert!(
                line.is_empty() || line.starts_with(':'),
                "unexpected SSE line {line:?}"
            );
            continue;
        };
        assert!(!done, "data after [DONE]: {data}");
        if data == "[DONE]" {
            done = true;
            continue;
        }
        out.push(
            serde_json::from_str(data)
                .unwrap_or_else(|e| panic!("data line is not JSON ({e}): {data}")),
        );
    }
    assert!(done, "the stream did not end with data: [DONE]");
    out
}

/// Opens a raw connection and sends `request` (a full HTTP/1.1 request).
pub fn raw(addr: &str, request: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(request).unwrap();
    s
}

/// A raw POST with a JSON body.
pub fn raw_post(addr: &str, path: &str, body: &str) -> TcpStream {
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    raw(addr, req.as_bytes())
}

/// Reads from `s` until `needle` has been seen (or EOF/timeout); returns what was read.
pub fn read_until(s: &mut TcpStream, needle: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        if String::from_utf8_lossy(&got).contains(needle) {
            break;
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// The value of a metric line `name value` in `/metrics`.
pub fn metric(base: &str, name: &str) -> f64 {
    let text = get(base, "/metrics", None).body;
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("metric {name} missing from:\n{text}"))
}

/// A one-message chat request body.
pub fn chat_body(user: &str, max_tokens: u64) -> Value {
    serde_json::json!({
        "model": "any",
        "messages": [{"role": "user", "content": user}],
        "max_tokens": max_tokens,
        "temperature": 0
    })
}
