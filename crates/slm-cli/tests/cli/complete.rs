//! `slm complete` and `slm summarize` on the real model.

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
