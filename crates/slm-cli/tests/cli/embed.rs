//! `slm embed`, `slm similarity`, `slm convert`/`quantize` of a BERT encoder, and trained
//! classifier heads (`slm classify --train / --head`), on all-MiniLM-L6-v2 (`SLM_TEST_BERT_DIR`).

use crate::common::slm;
use serde_json::Value;
use std::path::PathBuf;

/// The MiniLM directory, or return from the test (panic under SLM_REQUIRE_MODEL) when unset.
macro_rules! bert_or_skip {
    () => {
        match std::env::var_os("SLM_TEST_BERT_DIR") {
            Some(p) => PathBuf::from(p).to_string_lossy().into_owned(),
            None if std::env::var_os("SLM_REQUIRE_MODEL").is_some() => {
                panic!("SLM_REQUIRE_MODEL is set but SLM_TEST_BERT_DIR is not")
            }
            None => {
                eprintln!("note: SLM_TEST_BERT_DIR not set; skipping this encoder test");
                return;
            }
        }
    };
}

fn cos(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    dot / (a.iter().map(|x| x * x).sum::<f64>().sqrt() * b.iter().map(|x| x * x).sum::<f64>().sqrt())
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn embed_writes_json_jsonl_and_npy() {
    let m = bert_or_skip!();
    let out = slm(&["embed", "-m", &m, "--format", "json", "A man is eating food.", "A man eats bread."]).ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["dim"], 384);
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    let (a, b) = (floats(&data[0]["embedding"]), floats(&data[1]["embedding"]));
    assert!((a.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-4, "normalised");
    assert!(cos(&a, &b) > 0.5, "paraphrases are close: {}", cos(&a, &b));

    let dir = tempfile::tempdir().unwrap();
    let texts = dir.path().join("texts.txt");
    std::fs::write(&texts, "first line\n\nsecond line\nthird line\n").unwrap();
    let npy = dir.path().join("v.npy");
    let out = slm(&[
        "embed",
        "-m",
        &m,
        "-f",
        texts.to_str().unwrap(),
        "--format",
        "npy",
        "-o",
        npy.to_str().unwrap(),
        "--stats-json",
    ])
    .ok();
    let stats: Value = serde_json::from_str(out.stderr.lines().last().unwrap()).unwrap();
    assert_eq!(stats["texts"], 3, "blank lines are skipped");
    assert!(stats["texts_per_s"].as_f64().unwrap() > 0.0);
    let bytes = std::fs::read(&npy).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert!(std::str::from_utf8(&bytes[10..10 + header_len]).unwrap().contains("(3, 384)"));
    assert_eq!(bytes.len(), 10 + header_len + 3 * 384 * 4);

    let out = slm(&["embed", "-m", &m, "--format", "jsonl", "one", "two"]).ok();
    let lines: Vec<Value> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!((lines.len(), lines[1]["index"].as_u64(), lines[1]["text"].as_str()), (2, Some(1), Some("two")));

    slm(&["embed", "-m", &m]).fails().stderr_has(&["no text"]);
    slm(&["embed", "-m", &m, "x", "--format", "npy"]).fails().stderr_has(&["-o"]);
    slm(&["embed", "-m", "/no/such/model", "x"]).fails().stderr_has(&["not found"]);
    slm(&["embed", "-m", &m, "x", "--pooling", "max"]).fails().stderr_has(&["mean or cls"]);
}

#[test]
fn converted_and_quantized_encoder_matches_sentence_transformers() {
    let m = bert_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let (f32_path, q8_path) = (dir.path().join("minilm.gguf"), dir.path().join("minilm-q8_0.gguf"));
    slm(&["convert", &m, f32_path.to_str().unwrap()]).ok();
    slm(&["quantize", f32_path.to_str().unwrap(), q8_path.to_str().unwrap(), "--type", "Q8_0"]).ok();
    assert!(std::fs::metadata(&q8_path).unwrap().len() * 3 < std::fs::metadata(&f32_path).unwrap().len());
    let golden = crate::common::golden_json("minilm_embeddings.json");
    let cases: Vec<&Value> = golden["texts"].as_array().unwrap().iter().take(6).collect();
    for (path, min_cos) in [(&f32_path, 0.9999), (&q8_path, 0.99)] {
        let mut args = vec!["embed", "-m", path.to_str().unwrap(), "--format", "jsonl"];
        args.extend(cases.iter().map(|c| c["text"].as_str().unwrap()));
        let out = slm(&args).ok();
        for (line, case) in out.stdout.lines().zip(&cases) {
            let v: Value = serde_json::from_str(line).unwrap();
            let c = cos(&floats(&v["embedding"]), &floats(&case["embedding"]));
            assert!(c >= min_cos, "{}: cosine {c} < {min_cos} for {:?}", path.display(), case["text"]);
        }
    }
    // An encoder is not a chat model: a clear error, not a crash.
    slm(&["run", "-m", f32_path.to_str().unwrap(), "hi"]).fails().stderr_has(&["bert"]);
}

#[test]
fn similarity_pairs_matrix_and_search() {
    let m = bert_or_skip!();
    let pair = |a: &str, b: &str| -> f64 { slm(&["similarity", "-m", &m, a, b]).ok().stdout.trim().parse().unwrap() };
    let close = pair("How do I reset my password?", "I forgot my login password");
    let far = pair("How do I reset my password?", "The weather is sunny in Spain");
    assert!(close > far + 0.2, "{close} vs {far}");
    let out = slm(&["similarity", "-m", &m, "cat", "dog", "car"]).ok();
    assert_eq!(out.stdout.lines().count(), 3);
    let dir = tempfile::tempdir().unwrap();
    let faq = dir.path().join("faq.txt");
    std::fs::write(&faq, "Our office opens at 9 am.\nRefunds are paid within 14 days.\nWe ship to Europe and Asia.\n")
        .unwrap();
    let out =
        slm(&["similarity", "-m", &m, "when do I get my money back", "--file", faq.to_str().unwrap(), "--top", "1"])
            .ok();
    assert!(out.stdout.contains("Refunds"), "{}", out.stdout);
    slm(&["similarity", "-m", &m, "only one"]).fails().stderr_has(&["two texts"]);
}

/// A small labelled set: invoices/meetings (ham) vs prize/pill offers (spam).
fn labelled() -> Vec<(String, &'static str)> {
    let ham = ["meeting", "invoice", "report", "lunch", "budget", "schedule", "project", "review"];
    let spam = ["prize", "lottery", "pills", "casino", "loan", "crypto", "diet", "watches"];
    let mut rows = Vec::new();
    for (i, w) in ham.iter().enumerate() {
        rows.push((format!("Hi team, please find the {w} notes for Monday attached. Regards, Anna {i}"), "ham"));
        rows.push((format!("Can we move the {w} call to Thursday afternoon? Thanks, Tom"), "ham"));
    }
    for (i, w) in spam.iter().enumerate() {
        rows.push((format!("CONGRATULATIONS!!! You won free {w}, click here now to claim {i}"), "spam"));
        rows.push((format!("Cheap {w} offer, limited time only, buy now and save 90%!!!"), "spam"));
    }
    rows
}

#[test]
fn classifier_head_trains_and_classifies() {
    let m = bert_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("train.csv");
    let mut csv = String::from("label,text\n");
    for (text, label) in labelled() {
        csv += &format!("{label},\"{}\"\n", text.replace('"', "\"\""));
    }
    std::fs::write(&data, csv).unwrap();
    let head = dir.path().join("spam-head.gguf");
    let out = slm(&[
        "classify",
        "--train",
        data.to_str().unwrap(),
        "-m",
        &m,
        "-o",
        head.to_str().unwrap(),
        "--epochs",
        "40",
        "--val",
        "0.2",
    ])
    .ok();
    out.stderr_has(&["epoch", "best epoch", "labels: ham, spam"]);
    assert!(head.is_file() && head.with_extension("svg").is_file());
    let svg = std::fs::read_to_string(head.with_extension("svg")).unwrap();
    assert!(svg.starts_with("<svg") || svg.starts_with("<?xml"), "an SVG plot");

    // Unseen texts; the encoder path is read from the head when -m is not given.
    let out = slm(&[
        "classify",
        "--head",
        head.to_str().unwrap(),
        "--json",
        "You are our lucky winner! Claim your free casino bonus now!!!",
        "Hi Anna, the quarterly report review is moved to Friday. Best, Tom",
    ])
    .ok();
    let rows: Vec<Value> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows[0]["label"], "spam", "{rows:?}");
    assert_eq!(rows[1]["label"], "ham", "{rows:?}");
    let p = rows[0]["probabilities"]["spam"].as_f64().unwrap() + rows[0]["probabilities"]["ham"].as_f64().unwrap();
    assert!((p - 1.0).abs() < 1e-5);

    let one_label = dir.path().join("one.jsonl");
    std::fs::write(&one_label, "{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"b\", \"label\": \"x\"}\n").unwrap();
    slm(&["classify", "--train", one_label.to_str().unwrap(), "-m", &m, "-o", head.to_str().unwrap()])
        .fails()
        .stderr_has(&["two labels"]);
    slm(&["classify", "--train", data.to_str().unwrap(), "-m", &m]).fails().stderr_has(&["-o"]);
    slm(&["classify", "--head", data.to_str().unwrap(), "x"]).fails().stderr_has(&["head"]);
    slm(&["classify", "x"]).fails().stderr_has(&["--labels"]);
}
