//! `slm tokenizer train` and `slm train` on tiny configs and generated text: a tokenizer that
//! encodes whole special tokens, a run whose loss falls and whose files (metrics, SVG plot, final
//! model) are valid, a resume after SIGKILL that ends bit-identical to an uninterrupted run, and
//! clear errors for bad configs. No model download needed.

use crate::common::slm;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Deterministic English-like text with learnable structure (a small grammar over a word list).
fn corpus(sentences: usize) -> String {
    let subjects = ["the cat", "a dog", "the old king", "my friend", "the bird", "a child"];
    let verbs = ["sees", "likes", "follows", "finds", "hears", "calls"];
    let objects = ["the moon", "a red ball", "the river", "her mother", "the small house", "a song"];
    let mut s = String::new();
    let mut x: u64 = 7;
    for i in 0..sentences {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let pick = |n: usize, shift: u32| (x >> shift) as usize % n;
        s.push_str(&format!("{} {} {}.", subjects[pick(6, 33)], verbs[pick(6, 41)], objects[pick(6, 49)]));
        s.push(if i % 5 == 4 { '\n' } else { ' ' });
    }
    s
}

fn write_data(dir: &Path) -> String {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a.txt"), corpus(400)).unwrap();
    std::fs::write(data.join("b.txt"), corpus(150)).unwrap();
    data.to_string_lossy().into_owned()
}

fn config(steps: u64, checkpoint_every: u64, model: &str) -> String {
    format!(
        "{model}\n[train]\nsteps = {steps}\nbatch_size = 4\nseed = 3\neval_every = 10\neval_windows = 8\ncheckpoint_every = {checkpoint_every}\n\
         [optim]\nlr = 1e-2\n[schedule]\nkind = \"cosine\"\nwarmup = 3\n"
    )
}

const MODEL: &str = "[model]\nd_model = 32\nn_layer = 2\nn_head = 4\nn_kv_head = 2\ncontext = 32";

/// Trains a tokenizer under `dir` and returns its path.
fn tokenizer(dir: &Path, data: &str) -> String {
    let out = dir.join("tok").join("tokenizer.json");
    let o = out.to_string_lossy().into_owned();
    slm(&["tokenizer", "train", "--data", data, "--vocab-size", "320", "--out", &o]).ok();
    o
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[test]
fn tokenizer_train_writes_a_byte_level_bpe_with_special_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_data(dir.path());
    let tok = tokenizer(dir.path(), &data);
    let json: Value = serde_json::from_slice(&std::fs::read(&tok).unwrap()).unwrap();
    assert_eq!(json["model"]["type"], "BPE");
    let vocab = json["model"]["vocab"].as_object().unwrap();
    assert!(vocab.len() > 256 + 3 && vocab.len() <= 320, "{} tokens", vocab.len());
    let added: Vec<(&str, u64)> = json["added_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["content"].as_str().unwrap(), t["id"].as_u64().unwrap()))
        .collect();
    assert_eq!(added, [("<|endoftext|>", 0), ("<|im_start|>", 1), ("<|im_end|>", 2)]);
    let cfg: Value =
        serde_json::from_slice(&std::fs::read(Path::new(&tok).with_file_name("tokenizer_config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["eos_token"], "<|endoftext|>");
    // Errors name the problem.
    let o = s(&dir.path().join("t2.json"));
    slm(&["tokenizer", "train", "--data", &data, "--vocab-size", "10", "--out", &o])
        .fails()
        .stderr_has(&["vocabulary size 10"]);
    slm(&["tokenizer", "train", "--data", "/nonexistent/x", "--vocab-size", "300", "--out", &o])
        .fails()
        .stderr_has(&["/nonexistent/x"]);
}

#[test]
fn train_tiny_model_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_data(dir.path());
    let tok = tokenizer(dir.path(), &data);
    let cfg = dir.path().join("model.toml");
    std::fs::write(&cfg, config(30, 10, MODEL)).unwrap();
    let out = dir.path().join("run");
    let r =
        slm(&["train", "--config", &s(&cfg), "--data", &data, "--out", &s(&out), "--tokenizer", &tok, "-t", "2"]).ok();
    assert!(r.stdout.contains("model.gguf"), "{}", r.stdout);
    r.stderr_has(&["validation loss", "bits/byte", "tok/s"]);

    // Metrics: 30 train lines and 3 evaluations; the loss falls.
    let lines: Vec<Value> = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let train: Vec<f64> = lines.iter().filter(|v| v["kind"] == "train").map(|v| v["loss"].as_f64().unwrap()).collect();
    let evals: Vec<&Value> = lines.iter().filter(|v| v["kind"] == "eval").collect();
    assert_eq!(train.len(), 30);
    assert_eq!(evals.iter().map(|v| v["step"].as_u64().unwrap()).collect::<Vec<_>>(), [10, 20, 30]);
    let head: f64 = train[..5].iter().sum::<f64>() / 5.0;
    let tail: f64 = train[25..].iter().sum::<f64>() / 5.0;
    assert!(tail < head - 0.5, "training loss {head:.3} -> {tail:.3}");
    let (v0, v1) = (evals[0]["loss"].as_f64().unwrap(), evals[2]["loss"].as_f64().unwrap());
    assert!(v1 < v0, "validation loss {v0:.3} -> {v1:.3}");
    let bpb = evals[2]["bits_per_byte"].as_f64().unwrap();
    assert!(bpb > 0.0 && bpb < 8.0, "bits/byte {bpb}");
    // The run's report agrees with the log and the files.
    let report: Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["steps"], 30);
    assert_eq!(report["val_loss"].as_f64(), Some(v1));
    assert_eq!(report["model_bytes"].as_u64(), Some(std::fs::metadata(out.join("model.gguf")).unwrap().len()));
    assert!(report["teacher"].is_null());

    // The plot is well-formed XML with the two curves.
    let svg = std::fs::read_to_string(out.join("loss.svg")).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("loss.svg is not XML: {e}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    assert_eq!(doc.descendants().filter(|n| n.tag_name().name() == "path").count(), 2);

    // The model runs with its embedded tokenizer.
    let model = s(&out.join("model.gguf"));
    let gen = slm(&["run", "-m", &model, "--raw", "-n", "12", "--temp", "0.8", "--seed", "1", "the cat"]).ok();
    assert!(!gen.stdout.trim().is_empty(), "no text generated: {gen:?}");
    // Fine-tuning the result (--init: its shape and tokenizer; no [model] section needed).
    let ft_cfg = dir.path().join("finetune.toml");
    std::fs::write(&ft_cfg, config(12, 0, "")).unwrap();
    let ft = dir.path().join("ft");
    slm(&["train", "--config", &s(&ft_cfg), "--data", &data, "--out", &s(&ft), "--init", &model, "-t", "2"]).ok();
    let lines: Vec<Value> = std::fs::read_to_string(ft.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let first = lines.iter().find(|v| v["kind"] == "eval").unwrap()["loss"].as_f64().unwrap();
    assert!(first < v0, "fine-tuning starts from the trained weights: {first:.3} vs {v0:.3} at step 10 from scratch");
    slm(&["run", "-m", &s(&ft.join("model.gguf")), "--raw", "-n", "4", "the"]).ok();
    // A second run into the same folder must not clobber it silently.
    slm(&["train", "--config", &s(&cfg), "--data", &data, "--out", &s(&out), "--tokenizer", &tok])
        .fails()
        .stderr_has(&["--resume"]);
}

#[test]
fn resume_after_sigkill_matches_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_data(dir.path());
    let tok = tokenizer(dir.path(), &data);
    let cfg = dir.path().join("model.toml");
    // Big enough per step that the kill lands mid-run; checkpoints every 5 steps.
    let model = "[model]\nd_model = 64\nn_layer = 2\nn_head = 4\ncontext = 64";
    std::fs::write(&cfg, config(150, 5, model)).unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let base = |out: &Path| {
        vec![
            "train".to_string(),
            "--config".into(),
            s(&cfg),
            "--data".into(),
            data.clone(),
            "--out".into(),
            s(out),
            "-t".into(),
            "2".into(),
        ]
    };
    let mut args_a = base(&a);
    args_a.extend(["--tokenizer".into(), tok.clone()]);
    slm(&args_a.iter().map(String::as_str).collect::<Vec<_>>()).ok();

    let mut args_b = base(&b);
    args_b.extend(["--tokenizer".into(), tok.clone()]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_slm"))
        .args(&args_b)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ckpt = b.join("checkpoint.gguf");
    let t0 = Instant::now();
    while !ckpt.exists() && t0.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(ckpt.exists(), "no checkpoint within 2 minutes");
    assert!(!b.join("model.gguf").exists(), "the run finished before the kill; make it longer");

    let mut resume = base(&b);
    resume.push("--resume".into());
    slm(&resume.iter().map(String::as_str).collect::<Vec<_>>()).ok().stderr_has(&["resuming at step"]);
    let (ma, mb) = (std::fs::read(a.join("model.gguf")).unwrap(), std::fs::read(b.join("model.gguf")).unwrap());
    assert!(ma == mb, "the resumed model differs from the uninterrupted one");
    // The metrics log was continued, not restarted: one train record per step.
    let log = std::fs::read_to_string(b.join("metrics.jsonl")).unwrap();
    let count = |kind: &str| log.lines().filter(|l| l.contains(&format!("\"kind\":\"{kind}\""))).count();
    assert_eq!((count("train"), count("eval")), (150, 15), "{log}");
    // Same losses step by step as the uninterrupted run (throughput differs, so not the bytes).
    let losses = |p: &Path| -> Vec<(String, u64, f64)> {
        std::fs::read_to_string(p.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|v| {
                (v["kind"].as_str().unwrap().to_string(), v["step"].as_u64().unwrap(), v["loss"].as_f64().unwrap())
            })
            .collect()
    };
    assert_eq!(losses(&a), losses(&b));
}

#[test]
fn bad_configs_and_paths_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_data(dir.path());
    let tok = tokenizer(dir.path(), &data);
    let out = s(&dir.path().join("run"));
    let run = |toml: &str, data: &str| {
        let cfg = dir.path().join("bad.toml");
        std::fs::write(&cfg, toml).unwrap();
        slm(&["train", "--config", &s(&cfg), "--data", data, "--out", &out, "--tokenizer", &tok])
    };
    run(&config(10, 0, &MODEL.replace("n_layer = 2", "n_layer = 0")), &data).fails().stderr_has(&["n_layer (0)"]);
    run(&config(10, 0, &MODEL.replace("n_head = 4", "n_head = 3")), &data)
        .fails()
        .stderr_has(&["n_head 3 does not divide d_model 32"]);
    run(&config(10, 0, MODEL), "/nonexistent/texts").fails().stderr_has(&["/nonexistent/texts", "does not exist"]);
    run(&config(10, 0, MODEL).replace("batch_size", "batch_sise"), &data).fails().stderr_has(&["batch_sise"]);
    run(&config(10, 0, ""), &data).fails().stderr_has(&["[model]", "--init"]);
    let cfg = s(&dir.path().join("bad.toml"));
    std::fs::write(&cfg, config(10, 0, MODEL)).unwrap();
    slm(&["train", "--config", &cfg, "--data", &data, "--out", &out]).fails().stderr_has(&["--tokenizer"]);
    slm(&["train", "--config", &cfg, "--data", &data, "--out", &out, "--resume"])
        .fails()
        .stderr_has(&["does not exist"]);
    assert!(!dir.path().join("run").join("model.gguf").exists());
}
