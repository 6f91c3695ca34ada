//! Crash safety (issue 11): `slm` commands that write files are SIGKILLed at random (seeded)
//! points, 100 times in all, and every file at an output path must then be either the old complete
//! file or the new complete one — never a half-written file. `slm quantize` (70 kills, half of them
//! aimed at the write itself: the kill follows the temporary file's appearance) and `slm train`
//! checkpoints (30 kills of one run, each followed by `--resume`, ending bit-identical to an
//! uninterrupted run). Every writer goes through `slm_format::atomic` (temp file in the same
//! directory, fsync, rename); see docs/RELIABILITY.md.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::slm;
use slm_format::{GgmlType, GgufFile};
use slm_model::random_init::{random_llama_gguf, SplitMix64};
use slm_model::{Arch, ModelConfig};

/// Seed of the kill points (fixed: a failure reproduces).
const SEED: u64 = 0x5eed_0011;
const QUANTIZE_KILLS: usize = 70;
const TRAIN_KILLS: usize = 30;

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Starts `slm args...` in the background, isolated like the other CLI tests.
fn spawn(cache: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_slm"))
        .args(args)
        .env("SLM_CACHE_DIR", cache)
        .env("SLM_OFFLINE", "1")
        .env("SLM_PIP", "false")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the slm binary")
}

/// Files in `dir` other than `keep`, i.e. temporary files left by a killed writer (hidden
/// `.NAME.tmp-PID-N`).
fn temp_files(dir: &Path, keep: &[&str]) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new(); // not created yet
    };
    entries
        .map(|e| e.unwrap().path())
        .filter(|p| !keep.iter().any(|k| p.file_name().is_some_and(|n| n == *k)))
        .collect()
}

/// File names of `paths`.
fn names_of(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect()
}

/// `keep` plus `more`, as the `&[&str]` the helpers take.
fn with<'a>(keep: &[&'a str], more: &'a [String]) -> Vec<&'a str> {
    keep.iter().copied().chain(more.iter().map(String::as_str)).collect()
}

/// Checks the temporary files in `dir` after a kill: each is a hidden temp file of one of `keep`;
/// the ones in `stale` (left by earlier kills) are gone if the killed run began a write, because
/// every atomic write first removes dead writers' temp files.
fn check_temps(dir: &Path, keep: &[&str], stale: &[String], began_write: bool, what: &str) {
    let left = names_of(&temp_files(dir, keep));
    for name in &left {
        assert!(keep.iter().any(|f| name.starts_with(&format!(".{f}.tmp-"))), "{what}: unexpected file {name}");
    }
    if began_write {
        let kept: Vec<&String> = stale.iter().filter(|n| left.contains(n)).collect();
        assert!(kept.is_empty(), "{what}: a write began but the dead writers' {kept:?} are still there");
    }
}

/// Where a kill landed, for the tally.
#[derive(Debug, Default)]
struct Tally {
    /// The old file was still in place.
    old: usize,
    /// The new file was in place (the kill came after the rename).
    new: usize,
    /// The kill hit while a temporary file existed (i.e. during the write).
    mid_write: usize,
    /// The process had already exited.
    finished: usize,
}

/// Kills `child` after `delay`, or as soon as a temporary file appears in `dir` plus `delay` when
/// `aim_at_write`. Returns whether a temporary file existed at the moment of the kill and whether
/// the process had already exited.
fn kill_after(child: &mut Child, dir: &Path, keep: &[&str], delay: Duration, aim_at_write: bool) -> (bool, bool) {
    let t0 = Instant::now();
    if aim_at_write {
        while temp_files(dir, keep).is_empty() && t0.elapsed() < Duration::from_secs(60) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    std::thread::sleep(delay);
    let had_temp = !temp_files(dir, keep).is_empty();
    let finished = child.try_wait().unwrap().is_some();
    let _ = child.kill(); // SIGKILL on Unix
    child.wait().unwrap();
    (had_temp, finished)
}

/// A few-MB F32 model (d = 256, 2 layers, 1024-token vocabulary: 6.5 MB).
fn model_config() -> ModelConfig {
    ModelConfig {
        arch: Arch::Llama,
        n_vocab: 1024,
        d_model: 256,
        n_layer: 2,
        n_head: 4,
        n_kv_head: 2,
        head_dim: 64,
        d_ff: 768,
        n_ctx_train: 256,
        rms_eps: 1e-5,
        rope_theta: 10000.0,
        tied_output: false,
    }
}

#[test]
fn quantize_killed_at_random_points_leaves_the_old_or_the_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let cache = common::empty_cache();
    let input = dir.path().join("in.gguf");
    std::fs::write(&input, random_llama_gguf(&model_config(), GgmlType::F32, 1).unwrap()).unwrap();
    // Known-good outputs: the "old" file (Q8_0) and the "new" one (Q4_0), from uninterrupted runs.
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("model.gguf");
    let t0 = Instant::now();
    slm(&["quantize", &s(&input), &s(&out), "--type", "Q4_0"]).ok();
    let full_run = t0.elapsed();
    let new = std::fs::read(&out).unwrap();
    slm(&["quantize", &s(&input), &s(&out), "--type", "Q8_0"]).ok();
    let old = std::fs::read(&out).unwrap();
    assert_ne!(old, new);
    for bytes in [&old, &new] {
        GgufFile::from_bytes(bytes.clone()).expect("the reference outputs parse");
    }
    assert_eq!(temp_files(&out_dir, &["model.gguf"]), Vec::<PathBuf>::new(), "a finished run leaves no temp file");

    let mut rng = SplitMix64::new(SEED);
    let mut tally = Tally::default();
    let max_delay_us = (full_run.as_micros() as u64 * 5 / 4).max(1);
    let mut most_stale = 0;
    for i in 0..QUANTIZE_KILLS {
        std::fs::write(&out, &old).unwrap();
        // Temp files of earlier kills: not a sign of this run's write.
        let stale = names_of(&temp_files(&out_dir, &["model.gguf"]));
        most_stale = most_stale.max(stale.len());
        // Odd iterations aim at the write: kill within 3 ms of the temp file appearing; even ones
        // anywhere in (a bit more than) a whole run.
        let aim = i % 2 == 1;
        let delay = Duration::from_micros(rng.next_u64() % if aim { 3_000 } else { max_delay_us });
        let mut child = spawn(cache.path(), &["quantize", &s(&input), &s(&out), "--type", "Q4_0"]);
        let (had_temp, finished) = kill_after(&mut child, &out_dir, &with(&["model.gguf"], &stale), delay, aim);
        let now = std::fs::read(&out).unwrap_or_else(|e| panic!("iteration {i}: the output vanished: {e}"));
        if now == old {
            tally.old += 1;
        } else if now == new {
            tally.new += 1;
        } else {
            panic!(
                "iteration {i} (kill after {delay:?}, aimed at the write: {aim}): {} holds {} bytes that are \
                 neither the old ({}) nor the new ({}) file",
                out.display(),
                now.len(),
                old.len(),
                new.len()
            );
        }
        tally.mid_write += usize::from(had_temp);
        tally.finished += usize::from(finished);
        // A killed writer may leave its hidden temporary file, never anything else, and a run
        // that began its write removed the ones of earlier kills.
        check_temps(&out_dir, &["model.gguf"], &stale, had_temp || finished, &format!("iteration {i}"));
    }
    eprintln!("quantize: {QUANTIZE_KILLS} kills: {tally:?}, at most {most_stale} stale temp files (one full run: {full_run:?})");
    // The test must have exercised both outcomes and kills during the write itself.
    assert!(tally.old > 0 && tally.new > 0, "{tally:?}");
    assert!(tally.mid_write >= 5, "too few kills landed during the write: {tally:?}");
    // The next uninterrupted write leaves nothing behind.
    slm(&["quantize", &s(&input), &s(&out), "--type", "Q4_0"]).ok();
    assert_eq!(std::fs::read(&out).unwrap(), new);
    assert_eq!(temp_files(&out_dir, &["model.gguf"]), Vec::<PathBuf>::new(), "stale temp files after a clean run");
}

/// Deterministic English-like text (a small grammar over a word list).
fn corpus(sentences: usize) -> String {
    let subjects = ["the cat", "a dog", "the old king", "my friend", "the bird", "a child"];
    let verbs = ["sees", "likes", "follows", "finds", "hears", "calls"];
    let objects = ["the moon", "a red ball", "the river", "her mother", "the small house", "a song"];
    let mut rng = SplitMix64::new(7);
    let mut text = String::new();
    for i in 0..sentences {
        let mut pick = |words: &[&'static str]| words[(rng.next_u64() % words.len() as u64) as usize];
        let sentence = format!("{} {} {}.", pick(&subjects), pick(&verbs), pick(&objects));
        text.push_str(&sentence);
        text.push(if i % 5 == 4 { '\n' } else { ' ' });
    }
    text
}

/// Files one training run writes (at its end or at every checkpoint).
const TRAIN_FILES: [&str; 4] = ["checkpoint.gguf", "metrics.jsonl", "loss.svg", "model.gguf"];

/// Checks that each file the run has written so far is complete (every GGUF parses, every
/// metrics line is JSON, the plot is XML).
fn check_train_files(out: &Path, i: usize) {
    for entry in std::fs::read_dir(out).into_iter().flatten() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".gguf") && !name.starts_with('.') {
            let bytes = std::fs::read(&path).unwrap();
            GgufFile::from_bytes(bytes).unwrap_or_else(|e| panic!("kill {i}: {name} is not a complete GGUF: {e}"));
        }
    }
    if let Ok(text) = std::fs::read_to_string(out.join("metrics.jsonl")) {
        assert!(text.is_empty() || text.ends_with('\n'), "kill {i}: metrics.jsonl ends mid-line");
        for line in text.lines() {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|e| panic!("kill {i}: metrics.jsonl line {line:?}: {e}"));
        }
    }
    if let Ok(svg) = std::fs::read_to_string(out.join("loss.svg")) {
        roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("kill {i}: loss.svg is not XML: {e}"));
    }
}

#[test]
fn train_killed_repeatedly_keeps_complete_checkpoints_and_resumes_bit_identically() {
    let dir = tempfile::tempdir().unwrap();
    let cache = common::empty_cache();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("a.txt"), corpus(500)).unwrap();
    let tok = dir.path().join("tok").join("tokenizer.json");
    slm(&["tokenizer", "train", "--data", &s(&data), "--vocab-size", "300", "--out", &s(&tok)]).ok();
    let cfg = dir.path().join("model.toml");
    std::fs::write(
        &cfg,
        "[model]\nd_model = 64\nn_layer = 2\nn_head = 4\ncontext = 32\n\
         [train]\nsteps = 120\nbatch_size = 2\nseed = 5\neval_every = 20\neval_windows = 2\ncheckpoint_every = 2\n\
         [optim]\nlr = 1e-2\n",
    )
    .unwrap();
    let args = |out: &Path| -> Vec<String> {
        ["train", "--config", &s(&cfg), "--data", &s(&data), "--out", &s(out), "-t", "1"]
            .iter()
            .map(|a| a.to_string())
            .collect()
    };
    // The uninterrupted reference run.
    let reference = dir.path().join("reference");
    let mut a = args(&reference);
    a.extend(["--tokenizer".into(), s(&tok)]);
    let t0 = Instant::now();
    slm(&strs(&a)).ok();
    let full_run = t0.elapsed();

    let out = dir.path().join("killed");
    let mut first = args(&out);
    first.extend(["--tokenizer".into(), s(&tok)]);
    let mut resume = args(&out);
    resume.push("--resume".into());
    // Every file the uninterrupted run wrote; a killed run may add only their hidden temp files.
    let names: Vec<String> = std::fs::read_dir(&reference)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for f in TRAIN_FILES {
        assert!(names.iter().any(|n| n == f), "the run wrote no {f}: {names:?}");
    }
    let keep: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut rng = SplitMix64::new(SEED ^ 1);
    let (mut mid_write, mut kills, mut resumed) = (0, 0, 0);
    // Each kill comes at most a tenth of a full run after its start, so 30 kills still leave work.
    let max_delay_us = (full_run.as_micros() as u64 / 10).max(1);
    while kills < TRAIN_KILLS {
        let started = out.join("checkpoint.gguf").exists();
        let run = if started { &resume } else { &first };
        if out.join("model.gguf").exists() {
            break; // finished early (a very fast machine): the checks below still apply
        }
        let aim = kills % 2 == 1 && started;
        let delay = Duration::from_micros(rng.next_u64() % if aim { 3_000 } else { max_delay_us });
        let stale = names_of(&temp_files(&out, &keep));
        let mut child = spawn(cache.path(), &strs(run));
        let (had_temp, finished) = kill_after(&mut child, &out, &with(&keep, &stale), delay, aim);
        mid_write += usize::from(had_temp);
        resumed += usize::from(started);
        kills += 1;
        check_train_files(&out, kills);
        check_temps(&out, &keep, &stale, had_temp || finished, &format!("kill {kills}"));
        if !out.join("checkpoint.gguf").exists() {
            // Killed before the first checkpoint: start afresh (a new run refuses a folder
            // holding another run's files).
            let _ = std::fs::remove_dir_all(&out);
        }
    }
    // Finish the run and compare with the uninterrupted one.
    if !out.join("model.gguf").exists() {
        let run = if out.join("checkpoint.gguf").exists() { &resume } else { &first };
        slm(&strs(run)).ok();
    }
    eprintln!("train: {kills} kills, {resumed} of resumed runs, {mid_write} during a write (one full run: {full_run:?})");
    assert_eq!(kills, TRAIN_KILLS, "the run finished before {TRAIN_KILLS} kills; make it longer");
    assert!(resumed >= 10 && mid_write >= 5, "too few kills of resumed runs ({resumed}) or during writes ({mid_write})");
    let (ma, mb) = (std::fs::read(reference.join("model.gguf")).unwrap(), std::fs::read(out.join("model.gguf")).unwrap());
    assert!(ma == mb, "the model resumed through {kills} kills differs from the uninterrupted one");
    check_train_files(&out, kills + 1);
    assert_eq!(temp_files(&out, &keep), Vec::<PathBuf>::new(), "stale temp files after the finished run");
}
