//! The chat page at `/`: served without a model or a key, self-contained (no external URLs, a
//! CSP that forbids them), and wired to the endpoints it needs. Needs no model.

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
