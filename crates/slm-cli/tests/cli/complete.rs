//! `slm complete`, `slm summarize` and `slm classify` on the real model.

use crate::common::{slm, slm_stdin};
use crate::model_or_skip;
use serde_json::Value;

#[test]
fn complete_offers_ranked_suggestions() {
    let m = model_or_skip!();
    let out =
        slm(&["complete", "-m", &m, "Thank you for your email. I will get back to you", "-n", "3", "--json"]).ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", out.stdout));
    let s = v["suggestions"].as_array().unwrap();
    assert_eq!(s.len(), 3);
    let p: Vec<f64> = s.iter().map(|x| x["probability"].as_f64().unwrap()).collect();
    assert!(p.windows(2).all(|w| w[0] >= w[1]) && p[0] > 0.01, "{p:?}");
    assert!(s.iter().all(|x| x["tokens"].as_array().unwrap().len() <= 5));
    slm(&["complete", "-m", &m, "hello", "-n", "0"]).fails().stderr_has(&["suggestions"]);
}

#[test]
fn summarize_reads_stdin_and_streams_a_summary() {
    let m = model_or_skip!();
    let text = "The meeting is moved from Tuesday to Thursday at 10am because the projector is broken. \
                Please bring your laptop and the quarterly figures. Lunch will be provided.";
    let out = slm_stdin(&["summarize", "-", "-m", &m, "--sentences", "1", "-n", "48"], text).ok();
    assert!(out.stdout.split_whitespace().count() >= 3, "summary: {:?}", out.stdout);
    out.stderr_has(&["input tokens", "1 chunks"]);
    slm_stdin(&["summarize", "-", "-m", &m], "   ").fails().stderr_has(&["no text"]);
}

#[test]
fn classify_gives_calibrated_probabilities() {
    let m = model_or_skip!();
    let spam = "WIN A FREE CRUISE!!! Click here now to claim your prize, limited offer";
    let ham = "Hi Bob, are we still meeting tomorrow at 10 to go over the budget? Thanks, Alice";
    let args = [
        "classify",
        "-m",
        &m,
        "--labels",
        "spam,ham",
        "--instruction",
        "Is this e-mail spam or ham (a normal e-mail)?",
        "--json",
        spam,
        ham,
    ];
    let out = slm(&args).ok();
    let rows: Vec<Value> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2);
    let p_spam = |r: &Value| r["probabilities"]["spam"].as_f64().unwrap();
    for r in &rows {
        let total = p_spam(r) + r["probabilities"]["ham"].as_f64().unwrap();
        assert!((total - 1.0).abs() < 1e-9, "{r}");
    }
    assert!(p_spam(&rows[0]) > p_spam(&rows[1]), "the spam text scores more spam-like: {rows:?}");
    slm(&["classify", "-m", &m, "--labels", "spam", "x"]).fails().stderr_has(&["labels"]);
    slm(&["classify", "-m", &m, "--labels", "a,b"]).fails().stderr_has(&["nothing to classify"]);
}
