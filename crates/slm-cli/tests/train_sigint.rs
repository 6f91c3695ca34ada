//! `slm train` and Ctrl-C: SIGINT mid-run finishes the current step, writes the checkpoint (even
//! with `checkpoint_every = 0`), says how to continue and exits with status 130; `--resume` then
//! ends with the same model and the same losses as an uninterrupted run. Also a run with blocks
//! shared across layers (`sharing = "repeat:2"`) whose model.gguf `slm run` loads. No model
//! download needed.

mod common;

use common::slm;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Deterministic sentences from a small grammar (learnable structure).
fn corpus(sentences: usize) -> String {
    let words = ["the cat", "a dog", "the king", "my friend", "sees", "likes", "calls", "the moon", "a song"];
    let mut s = String::new();
    let mut x: u64 = 11;
    for i in 0..sentences {
        for shift in [33u32, 41, 49] {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            s.push_str(words[(x >> shift) as usize % words.len()]);
            s.push(' ');
        }
        s.push_str(if i % 5 == 4 { ".\n" } else { ". " });
    }
    s
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Data folder and tokenizer under `dir`.
fn setup(dir: &Path) -> (String, String) {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a.txt"), corpus(600)).unwrap();
    let tok = s(&dir.join("tokenizer.json"));
    slm(&["tokenizer", "train", "--data", &s(&data), "--vocab-size", "300", "--out", &tok]).ok();
    (s(&data), tok)
}

fn config(dir: &Path, name: &str, model_extra: &str, steps: u64) -> String {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "[model]\nd_model = 64\nn_layer = 4\nn_head = 4\ncontext = 64\n{model_extra}\n\
             [train]\nsteps = {steps}\nbatch_size = 4\nseed = 5\neval_every = 10\neval_windows = 4\ncheckpoint_every = 0\n\
             [optim]\nlr = 1e-2\n[schedule]\nwarmup = 5\n"
        ),
    )
    .unwrap();
    s(&path)
}

/// (kind, step, loss) of every metrics line.
fn losses(out: &Path) -> Vec<(String, u64, f64)> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| (v["kind"].as_str().unwrap().into(), v["step"].as_u64().unwrap(), v["loss"].as_f64().unwrap()))
        .collect()
}

#[test]
#[cfg(unix)]
fn ctrl_c_checkpoints_and_resume_matches_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let (data, tok) = setup(dir.path());
    let cfg = config(dir.path(), "m.toml", "", 400);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let args = |out: &Path| -> Vec<String> {
        ["train", "--config", &cfg, "--data", &data, "--out", &s(out), "-t", "2"].iter().map(|x| x.to_string()).collect()
    };
    let mut args_a = args(&a);
    args_a.extend(["--tokenizer".into(), tok.clone()]);
    slm(&args_a.iter().map(String::as_str).collect::<Vec<_>>()).ok();

    let mut args_b = args(&b);
    args_b.extend(["--tokenizer".into(), tok.clone()]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_slm"))
        .args(&args_b)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Stderr lines arrive on a channel (read to the end, so the child never blocks on it).
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The first validation line means the handler is installed and training is under way.
    let mut seen = Vec::new();
    loop {
        let line = rx.recv_timeout(Duration::from_secs(120)).expect("no validation line within 2 minutes");
        let started = line.starts_with("step 10: validation");
        seen.push(line);
        if started {
            break;
        }
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    reader.join().unwrap();
    seen.extend(rx.try_iter());
    let log = seen.join("\n");
    assert_eq!(status.code(), Some(130), "{log}");
    assert!(log.contains("interrupted: stopped after step") && log.contains("--resume"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(b.join("checkpoint.gguf").is_file(), "no checkpoint after Ctrl-C (checkpoint_every = 0)");
    assert!(!b.join("model.gguf").exists(), "the run finished before the signal; make it longer");
    let done = losses(&b).iter().filter(|l| l.0 == "train").count();
    assert!((10..400).contains(&done), "{done} steps logged before the stop");

    let mut resume = args(&b);
    resume.push("--resume".into());
    slm(&resume.iter().map(String::as_str).collect::<Vec<_>>()).ok().stderr_has(&[&format!("resuming at step {done}")]);
    let (ma, mb) = (std::fs::read(a.join("model.gguf")).unwrap(), std::fs::read(b.join("model.gguf")).unwrap());
    assert!(ma == mb, "the resumed model differs from the uninterrupted one");
    assert_eq!(losses(&a), losses(&b));
}

#[test]
fn shared_blocks_train_export_smaller_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let (data, tok) = setup(dir.path());
    let run = |name: &str, extra: &str| {
        let cfg = config(dir.path(), &format!("{name}.toml"), extra, 20);
        let out = dir.path().join(name);
        let r = slm(&["train", "--config", &cfg, "--data", &data, "--out", &s(&out), "--tokenizer", &tok, "-t", "2"]).ok();
        (r.stderr, out.join("model.gguf"))
    };
    let (log_flat, flat) = run("flat", "[export]\nunshared = true");
    let (log_shared, shared) = run("shared", "sharing = \"repeat:2\"\n[export]\nunshared = true");
    assert!(!log_flat.contains("stored blocks"), "{log_flat}");
    assert!(log_shared.contains("2 stored blocks run as 4 layers: [0, 0, 1, 1]"), "{log_shared}");
    let (nf, ns) = (std::fs::metadata(&flat).unwrap().len(), std::fs::metadata(&shared).unwrap().len());
    assert!(ns < nf * 3 / 4, "shared file {ns} bytes vs {nf}");
    let gen = slm(&["run", "-m", &s(&shared), "--raw", "-n", "8", "--seed", "1", "the cat"]).ok();
    assert!(!gen.stdout.trim().is_empty(), "no text: {gen:?}");
    let show = slm(&["show", "-m", &s(&shared), "--metadata"]).ok();
    assert!(show.stdout.contains("slm.block_map"), "{}", show.stdout);
    // The unshared copy (for llama.cpp): no map, four blocks, the same greedy text.
    let copy = shared.with_file_name("model.unshared.gguf");
    let show = slm(&["show", "-m", &s(&copy), "--metadata"]).ok();
    assert!(!show.stdout.contains("slm.block_map"), "{}", show.stdout);
    assert!(std::fs::metadata(&copy).unwrap().len() > ns * 5 / 4);
    let greedy = |m: &Path| slm(&["run", "-m", &s(m), "--raw", "-n", "12", "--temp", "0", "the cat"]).ok().stdout;
    assert_eq!(greedy(&shared), greedy(&copy));
    assert!(!flat.with_file_name("model.unshared.gguf").exists(), "unshared copy written without sharing");
    // A bad spec is a clear error.
    let bad = config(dir.path(), "bad.toml", "sharing = \"repeat:3\"", 5);
    slm(&["train", "--config", &bad, "--data", &data, "--out", &s(&dir.path().join("bad")), "--tokenizer", &tok])
        .fails()
        .stderr_has(&["repeat:3", "dividing n_layer"]);
}
