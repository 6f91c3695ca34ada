//! Hub downloads against a local HTTP server: full download, interrupted +
//! resumed, server ignoring ranges, 416, redirects, wrong digest, wrong
//! Content-Length, HTTP errors falling through, offline mode, concurrent pulls.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::*;
use slm_hub::{ensure_model_in, pull, Cache, HubError, NoProgress, Registry, SourceError};

#[test]
fn full_download_verifies_and_second_pull_is_a_cache_hit() {
    let server = TestServer::start();
    let data = random_bytes(300_000, 1);
    server.route(&hub_path("org/repo", "tiny.gguf"), Route::file(&data));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.base);
    let spec = spec(&data, vec![hub("org/repo", "tiny.gguf")]);

    let rec = Recorder::default();
    let path = pull(&cfg, &spec, &rec).unwrap();
    assert_eq!(path, dir.path().join("models/tiny-test/tiny.gguf"));
    assert_eq!(fs::read(&path).unwrap(), data);
    assert_eq!(*rec.advanced.lock().unwrap(), data.len() as u64);
    assert_eq!(files_under(dir.path()), ["models/tiny-test/tiny.gguf", "models/tiny-test/tiny.gguf.lock"]);
    assert_eq!(server.seen().len(), 1);

    assert_eq!(pull(&cfg, &spec, &NoProgress).unwrap(), path);
    assert_eq!(server.seen().len(), 1, "a cached model needs no request");
}

#[test]
fn interrupted_download_leaves_only_part_and_next_pull_resumes() {
    let server = TestServer::start();
    let data = random_bytes(500_000, 2);
    let route = hub_path("org/repo", "tiny.gguf");
    let Route::File { data: d, honor_range, reject_range_once, chunk_delay, .. } = Route::file(&data) else { unreachable!() };
    server.route(&route, Route::File { data: d, drop_after: Some(200_000), honor_range, reject_range_once, chunk_delay });
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.base);
    let spec = spec(&data, vec![hub("org/repo", "tiny.gguf")]);
    let cache = Cache::new(&cfg);

    let err = pull(&cfg, &spec, &NoProgress).unwrap_err();
    let HubError::AllSourcesFailed { attempts, dest, .. } = &err else { panic!("{err:?}") };
    let SourceError::Interrupted { received, expected, .. } = attempts[0].error else { panic!("{err:?}") };
    assert_eq!(expected, 500_000);
    assert!(received > 0 && received <= 200_000, "received {received}");
    assert!(!dest.exists(), "the final name never appears for a partial file");
    assert_eq!(fs::metadata(cache.part_path(&spec)).unwrap().len(), received);
    assert!(err.to_string().contains("-m /path/to/model.gguf"), "{err}");

    let rec = Recorder::default();
    let path = pull(&cfg, &spec, &rec).unwrap();
    assert_eq!(fs::read(&path).unwrap(), data);
    assert!(!cache.part_path(&spec).exists());
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].range, Some(format!("bytes={received}-")), "the second request resumes");
    assert!(rec.all().contains(&format!("resuming tiny.gguf at byte {received}")), "{}", rec.all());
}

#[test]
fn server_ignoring_range_restarts_from_zero() {
    let server = TestServer::start();
    let data = random_bytes(100_000, 3);
    server.route(&hub_path("org/repo", "tiny.gguf"), Route::File {
        data: data.clone().into(),
        drop_after: None,
        honor_range: false,
        reject_range_once: false,
        chunk_delay: Duration::ZERO,
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.base);
    let spec = spec(&data, vec![hub("org/repo", "tiny.gguf")]);
    let part = Cache::new(&cfg).part_path(&spec);
    fs::create_dir_all(part.parent().unwrap()).unwrap();
    fs::write(&part, &data[..40_000]).unwrap();

    let path = pull(&cfg, &spec, &NoProgress).unwrap();
    assert_eq!(fs::read(path).unwrap(), data);
    assert_eq!(server.seen()[0].range.as_deref(), Some("bytes=40000-"));
}

#[test]
fn range_rejected_with_416_restarts_without_range() {
    let server = TestServer::start();
    let data = random_bytes(100_000, 4);
    server.route(&hub_path("org/repo", "tiny.gguf"), Route::File {
        data: data.clone().into(),
        drop_after: None,
        honor_range: true,
        reject_range_once: true,
        chunk_delay: Duration::ZERO,
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.base);
    let spec = spec(&data, vec![hub("org/repo", "tiny.gguf")]);
    let part = Cache::new(&cfg).part_path(&spec);
    fs::create_dir_all(part.parent().unwrap()).unwrap();
    fs::write(&part, b"stale prefix from another file").unwrap();

    let path = pull(&cfg, &spec, &NoProgress).unwrap();
    assert_eq!(fs::read(path).unwrap(), data);
    let ranges: Vec<_> = server.seen().into_iter().map(|s| s.range).collect();
    assert_eq!(ranges, [Some("bytes=30-".to_string()), None]);
}

#[test]
fn redirect_keeps_the_range_header() {
    let server = TestServer::start();
    let data = random_bytes(80_000, 5);
    server.route(&hub_path("org/repo", "tiny.gguf"), Route::Redirect("/cdn/blob".into()));
    server.route("/cdn/blob", Route::file(&data));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.base);
    let spec = spec(&data, vec![hub("org/repo", "tiny.gguf")]);
    let part = Cache::new(&cfg).part_path(&spec);
    fs::create_dir_all(part.parent().unwrap()).unwrap();
    fs::write(&part, &data[..1000]).unwrap();

    let path = pull(&cfg, &spec, &NoProgress).unwrap();
    assert_eq!(fs::read(path).unwrap(), data);
    let seen = server.seen();
    assert_eq!(seen[1], Seen { path: "/cdn/blob".into(), range: Some("bytes=1000-".into()) });
}

#[test]
fn wrong_sha_is_an_error_and_leaves_no_file() {
    let server = TestServer::start();
    let data = random_bytes(50_000, 6);
    let mut served = data.clone();
    served[123] ^= 1;
    server.route(&hub_path("org/repo", "tiny.gguf"), Route::file(&served));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.base);
    let spec = spec(&data, vec![hub("org/repo", "tiny.gguf")]);

    let err = pull(&cfg, &spec, &NoProgress).unwrap_err();
    let HubError::AllSourcesFailed { attempts, .. } = &err else { panic!("{err:?}") };
    match &attempts[0].error {
        SourceError::Sha { expected, found } => assert_eq!((expected, found), (&sha_hex(&data), &sha_hex(&served))),
        other => panic!("{other:?}"),
    }
    assert_eq!(files_under(dir.path()), ["models/tiny-test/tiny.gguf.lock"]);
}

#[test]
fn wrong_content_length_is_refused_before_writing() {
    let server = TestServer::start();
    let data = random_bytes(50_000, 7);
    server.route(&hub_path("org/repo", "tiny.gguf"), Route::file(&data[..49_000]));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.base);
    let spec = spec(&data, vec![hub("org/repo", "tiny.gguf")]);

    let err = pull(&cfg, &spec, &NoProgress).unwrap_err();
    let HubError::AllSourcesFailed { attempts, .. } = &err else { panic!("{err:?}") };
    assert!(matches!(attempts[0].error, SourceError::DeclaredSize { expected: 50_000, found: 49_000, .. }), "{err}");
    assert!(!Cache::new(&cfg).part_path(&spec).exists(), "nothing written");
}

#[test]
fn http_errors_fall_through_to_the_next_source() {
    let server = TestServer::start();
    let data = random_bytes(40_000, 8);
    server.route(&hub_path("a/missing", "tiny.gguf"), Route::Status(404));
    server.route(&hub_path("b/broken", "tiny.gguf"), Route::Status(500));
    server.route(&hub_path("c/good", "tiny.gguf"), Route::file(&data));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.base);

    let failing = spec(&data, vec![hub("a/missing", "tiny.gguf"), hub("b/broken", "tiny.gguf")]);
    let err = pull(&cfg, &failing, &NoProgress).unwrap_err();
    let HubError::AllSourcesFailed { attempts, .. } = &err else { panic!("{err:?}") };
    let statuses: Vec<_> = attempts
        .iter()
        .map(|a| match a.error {
            SourceError::HttpStatus { status, .. } => status,
            _ => 0,
        })
        .collect();
    assert_eq!(statuses, [404, 500]);
    let msg = err.to_string();
    assert!(msg.contains("1. hub http://") && msg.contains("HTTP 404") && msg.contains("2. hub"), "{msg}");
    assert!(msg.contains("place the verified file at") && msg.contains("models/tiny-test/tiny.gguf"), "{msg}");

    let mut good = failing.clone();
    good.sources.push(hub("c/good", "tiny.gguf"));
    let rec = Recorder::default();
    let path = pull(&cfg, &good, &rec).unwrap();
    assert_eq!(fs::read(path).unwrap(), data);
    assert!(rec.all().contains("HTTP 404") && rec.all().contains("HTTP 500"), "{}", rec.all());
}

#[test]
fn offline_mode_skips_the_hub_without_a_request() {
    let server = TestServer::start();
    let data = random_bytes(1000, 9);
    server.route(&hub_path("org/repo", "tiny.gguf"), Route::file(&data));
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), &server.base);
    cfg.offline = true;
    let spec = spec(&data, vec![hub("org/repo", "tiny.gguf")]);

    let err = pull(&cfg, &spec, &NoProgress).unwrap_err();
    let HubError::AllSourcesFailed { attempts, .. } = &err else { panic!("{err:?}") };
    assert!(matches!(attempts[0].error, SourceError::Skipped { .. }));
    assert!(err.to_string().contains("offline"), "{err}");
    assert!(server.seen().is_empty());
}

#[test]
fn unreachable_endpoint_fails_fast() {
    // Bind then drop a listener so the port is (almost certainly) closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let data = random_bytes(1000, 10);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &format!("http://127.0.0.1:{port}"));
    let spec = spec(&data, vec![hub("org/repo", "tiny.gguf")]);
    let t = Instant::now();
    let err = pull(&cfg, &spec, &NoProgress).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(3), "took {:?}", t.elapsed());
    let HubError::AllSourcesFailed { attempts, .. } = &err else { panic!("{err:?}") };
    assert!(matches!(attempts[0].error, SourceError::Network { .. }), "{err}");
}

#[test]
fn complete_part_from_a_crashed_run_is_committed_without_network() {
    let data = random_bytes(10_000, 11);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "http://127.0.0.1:9");
    let spec = spec(&data, vec![hub("org/repo", "tiny.gguf")]);
    let part = Cache::new(&cfg).part_path(&spec);
    fs::create_dir_all(part.parent().unwrap()).unwrap();
    fs::write(&part, &data).unwrap();
    let path = pull(&cfg, &spec, &NoProgress).unwrap();
    assert_eq!(fs::read(path).unwrap(), data);
    assert!(!part.exists());
}

#[test]
fn concurrent_pulls_download_once() {
    let server = TestServer::start();
    let data = random_bytes(1_000_000, 12);
    let Route::File { data: d, .. } = Route::file(&data) else { unreachable!() };
    server.route(&hub_path("org/repo", "tiny.gguf"), Route::File {
        data: d,
        drop_after: None,
        honor_range: true,
        reject_range_once: false,
        chunk_delay: Duration::from_millis(10),
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.base);
    let spec = spec(&data, vec![hub("org/repo", "tiny.gguf")]);

    let paths: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3).map(|_| s.spawn(|| pull(&cfg, &spec, &NoProgress))).collect();
        handles.into_iter().map(|h| h.join().unwrap().unwrap()).collect()
    });
    assert!(paths.iter().all(|p| fs::read(p).unwrap() == data));
    assert_eq!(server.seen().len(), 1, "the waiters found the finished file");
}

#[test]
fn ensure_model_paths_and_names() {
    let server = TestServer::start();
    let data = random_bytes(5_000, 13);
    server.route(&hub_path("org/repo", "tiny.gguf"), Route::file(&data));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.base);
    let s = spec(&data, vec![hub("org/repo", "tiny.gguf")]);
    let json = serde_json::json!({
        "version": 1,
        "models": [{
            "name": s.name, "aliases": s.aliases, "description": s.description, "architecture": s.architecture,
            "params": s.params, "license": s.license, "file": s.file, "size": s.size, "sha256": s.sha256,
            "quant": s.quant, "sources": [{"kind": "hub", "repo": "org/repo", "path": "tiny.gguf"}]
        }]
    });
    let registry = Registry::from_json(&json.to_string()).unwrap();

    let own = dir.path().join("mine.gguf");
    fs::write(&own, b"not even a model").unwrap();
    assert_eq!(ensure_model_in(&registry, &cfg, own.to_str().unwrap(), &NoProgress).unwrap(), own);
    assert!(server.seen().is_empty());

    let path = ensure_model_in(&registry, &cfg, "TINY", &NoProgress).unwrap();
    assert_eq!(fs::read(path).unwrap(), data);
    assert!(matches!(ensure_model_in(&registry, &cfg, "nope", &NoProgress), Err(HubError::UnknownModel { .. })));
}
