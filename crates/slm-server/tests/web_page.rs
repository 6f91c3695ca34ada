//! The chat page at `/`: served without a model or a key, self-contained (no external URLs, a
//! CSP that forbids them), and wired to the endpoints it needs. Needs no model.

mod common;

use std::time::Duration;

#[test]
fn page_is_served_self_contained() {
    let server = slm_server::Server::start(slm_server::ServerConfig {
        addr: "127.0.0.1:0".into(),
        api_key: Some("k".into()),
        ..slm_server::ServerConfig::default()
    })
    .unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut r = agent
        .get(format!("http://{}/", server.local_addr()))
        .call()
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "the page needs no key and no model"
    );
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert!(header("content-type").starts_with("text/html"));
    let csp = header("content-security-policy");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    let html = r.body_mut().read_to_string().unwrap();
    for external in ["http://", "https://", "//cdn", "<link", "src=\""] {
        assert!(
            !html.contains(external),
            "the page must not load anything external ({external})"
        );
    }
    for needed in [
        "/v1/chat/completions",
        "/v1/models",
        "stream: true",
        "AbortController",
        "tok/s",
        "id=\"stop\"",
    ] {
        assert!(html.contains(needed), "the page lacks {needed}");
    }
    server.shutdown().unwrap();
}

/// Where scripts/test.sh installs the pinned npm packages (or `SLM_NPM_MODULES`).
fn npm_modules() -> std::path::PathBuf {
    let p = std::env::var_os("SLM_NPM_MODULES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/test-clients/npm/node_modules")
        });
    p.canonicalize().unwrap_or(p)
}

/// The page in headless Chromium with the real model: a streamed answer, then Stop. Needs
/// SLM_TEST_MODEL, node, playwright-core (scripts/test.sh) and a Chromium (/usr/bin/chromium or
/// SLM_CHROMIUM); skips with a note when the browser pieces are missing, unless
/// SLM_REQUIRE_BROWSER=1. The screenshot is kept at target/test-artifacts/web_page.png.
#[test]
fn page_chats_and_stops_in_headless_chromium() {
    let chromium = std::env::var("SLM_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let modules = npm_modules();
    let has_node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !(has_node
        && std::path::Path::new(&chromium).is_file()
        && modules.join("playwright-core/package.json").is_file())
    {
        assert!(
            std::env::var_os("SLM_REQUIRE_BROWSER").is_none(),
            "node, {chromium} or playwright-core (in {}) is missing",
            modules.display()
        );
        eprintln!("note: node, a Chromium at {chromium} or playwright-core is missing; skipping the browser test");
        return;
    }
    let Some(loaded) = common::load() else { return };
    let server = slm_server::Server::start(slm_server::ServerConfig {
        addr: "127.0.0.1:0".into(),
        ..Default::default()
    })
    .unwrap();
    server.install(common::engine(&loaded, 1024), 4).unwrap();
    let base = format!("http://{}", server.local_addr());
    let artifacts =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.canonicalize().unwrap().join("web_page.png");
    let _ = std::fs::remove_file(&shot);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web_page_browser.js");
    let out = std::process::Command::new("node")
        .env("NODE_PATH", &modules)
        .env("SLM_CHROMIUM", &chromium)
        .arg(script)
        .arg(&base)
        .arg(&shot)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("browser: {}", stdout.trim());
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
    let metrics = common::get(&base, "/metrics", None).body;
    let cancelled = metrics
        .lines()
        .find_map(|l| l.strip_prefix("slm_requests_cancelled_total "))
        .unwrap_or("0");
    assert!(
        cancelled.trim().parse::<u64>().unwrap() >= 1,
        "Stop must cancel the generation on the server:\n{metrics}"
    );
    server.shutdown().unwrap();
}

#[test]
fn binding_a_used_port_says_what_to_do() {
    let first = slm_server::Server::start(slm_server::ServerConfig {
        addr: "127.0.0.1:0".into(),
        ..Default::default()
    })
    .unwrap();
    let addr = first.local_addr().to_string();
    let err = slm_server::Server::start(slm_server::ServerConfig {
        addr: addr.clone(),
        ..Default::default()
    })
    .err()
    .expect("the port is taken");
    let msg = err.to_string();
    assert!(msg.contains(&addr) && msg.contains("--port"), "{msg}");
    assert!(
        std::error::Error::source(&err).is_none(),
        "the OS error is in the message, not repeated as a source"
    );
    let bad = slm_server::Server::start(slm_server::ServerConfig {
        addr: "127.0.0.1:0".into(),
        queue_capacity: 0,
        ..Default::default()
    });
    assert!(bad.is_err(), "a zero queue capacity is refused");
    first.shutdown().unwrap();
}

#[test]
fn connections_beyond_the_limit_wait_for_a_free_one() {
    let server = slm_server::Server::start(slm_server::ServerConfig {
        addr: "127.0.0.1:0".into(),
        max_connections: 2,
        ..Default::default()
    })
    .unwrap();
    let addr = server.local_addr();
    let health = |timeout: u64| {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(timeout)))
            .build()
            .into();
        agent
            .get(format!("http://{addr}/metrics"))
            .call()
            .map(|mut r| r.body_mut().read_to_string().unwrap_or_default())
    };
    // Two idle connections (a slow client that never sends a request) take both places.
    let idle: Vec<_> = (0..2)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        health(1).is_err(),
        "a third connection must wait while two are open"
    );
    drop(idle);
    let metrics = health(10).expect("served once a connection closed");
    // This one, maybe with the timed-out attempt still being closed: never more than the cap.
    let open: usize = metrics
        .lines()
        .find_map(|l| l.strip_prefix("slm_connections_open "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the connection gauge is reported");
    assert!(
        (1..=2).contains(&open),
        "{open} connections open with a cap of 2"
    );
    server.shutdown().unwrap();
}
