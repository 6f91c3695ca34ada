//! `slm finetune --lora` end to end on the real model (SLM_TEST_MODEL, skipped when unset): one
//! short step on four chat examples writes an adapter that loads, a PEFT directory, the metrics
//! log, the plot and a report; bad requests and bad data fail cleanly.

mod common;

use common::slm;
use serde_json::Value;
use std::path::Path;

fn write_chat_jsonl(path: &Path) {
    let mut lines = String::new();
    for (q, a) in [("2+2?", "4"), ("Capital of France?", "Paris"), ("Opposite of hot?", "cold"), ("3*3?", "9")] {
        let line = serde_json::json!({"messages": [
            {"role": "user", "content": q},
            {"role": "assistant", "content": a},
        ]});
        lines.push_str(&format!("{line}\n"));
    }
    std::fs::write(path, lines).unwrap();
}

#[test]
fn finetune_refuses_bad_requests_and_bad_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d.jsonl");
    write_chat_jsonl(&data);
    let out = dir.path().join("run");
    let (d, o) = (data.to_string_lossy().into_owned(), out.to_string_lossy().into_owned());
    slm(&["finetune", "/nonexistent/model.gguf", "--data", &d, "--out", &o]).fails().stderr_has(&["--lora"]);
    slm(&["finetune", "/nonexistent/model.gguf", "--lora", "--data", &d, "--out", &o, "--targets", "q,nope"])
        .fails()
        .stderr_has(&["nope"]);
    let model = model_or_skip!();
    std::fs::write(&data, "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n{not json\n").unwrap();
    slm(&["finetune", &model, "--lora", "--data", &d, "--out", &o]).fails().stderr_has(&["d.jsonl:1", "assistant"]);
    std::fs::write(&data, "{\"prompt\": \"a\"}\n").unwrap();
    slm(&["finetune", &model, "--lora", "--data", &d, "--out", &o]).fails().stderr_has(&["d.jsonl:1", "completion"]);
}

#[test]
fn one_lora_step_writes_a_loadable_adapter_and_a_report() {
    let model = model_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("chat.jsonl");
    write_chat_jsonl(&data);
    let out = dir.path().join("run");
    let (d, o) = (data.to_string_lossy().into_owned(), out.to_string_lossy().into_owned());
    let run = slm(&[
        "finetune", &model, "--lora", "--data", &d, "--out", &o, "--steps", "2", "--batch", "2", "--rank", "4",
        "--targets", "q,v", "--val-fraction", "0.25", "-t", "2",
    ])
    .ok();
    assert!(run.stdout.trim().ends_with("adapter.gguf"), "stdout: {}", run.stdout);
    for f in ["adapter.gguf", "metrics.jsonl", "loss.svg", "report.json", "peft/adapter_config.json", "peft/adapter_model.safetensors"] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let report: Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["steps"], 2);
    assert_eq!(report["rank"], 4);
    assert_eq!(report["train_examples"], 3);
    assert_eq!(report["val_examples"], 1);
    // q and v of 30 layers at rank 4: (576 + 576)·4 + (576 + 192)·4 per layer.
    assert_eq!(report["trainable_parameters"], 30 * ((576 + 576) * 4 + (576 + 192) * 4));
    assert!(report["val_loss_before"].as_f64().unwrap() > 0.0);
    let adapter = slm_model::lora::LoraAdapter::load_gguf(&out.join("adapter.gguf")).unwrap();
    assert_eq!(adapter.pairs.len(), 60);
    assert!(adapter.pairs.values().any(|p| p.b.iter().any(|&x| x != 0.0)), "training must move B");
}
