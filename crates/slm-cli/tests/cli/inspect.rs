//! `slm show`, `slm bench` and `slm perplexity` on the real model.

use crate::common::{golden_json, slm};
use crate::model_or_skip;
use serde_json::Value;

const APACHE: &str = "/usr/share/common-licenses/Apache-2.0";

#[test]
fn show_describes_the_model() {
    let m = model_or_skip!();
    let out = slm(&["show", "-m", &m]).ok().stdout_has(&["llama", "30 layers", "Q4_1", "Q8_0", "GGUF v3", "d_model 576", "vocab 49152"]);
    let params: u64 = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("parameters:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no parseable `parameters:` line:\n{}", out.stdout));
    assert!((134_000_000..=135_500_000).contains(&params), "parameter count {params} is not ~134.5M");
    assert!(!out.stdout.contains("blk.0.attn_q.weight"), "tensors listed without --tensors");
}

#[test]
fn show_tensors_and_metadata() {
    let m = model_or_skip!();
    let out = slm(&["show", "-m", &m, "--tensors", "--metadata"]).ok().stdout_has(&["blk.0.attn_q.weight", "general.architecture"]);
    let q = out.stdout.lines().find(|l| l.trim_start().starts_with("blk.0.attn_q.weight")).unwrap();
    assert!(q.contains("Q4_1"), "attn_q type not shown: {q}");
    let n_blk = out.stdout.lines().filter(|l| l.trim_start().starts_with("blk.")).count();
    assert_eq!(n_blk, 30 * 9, "expected 9 tensors in each of 30 blocks");
}

#[test]
fn bench_json_has_one_object_per_test() {
    let m = model_or_skip!();
    let out = slm(&["bench", "-m", &m, "-p", "32", "-n", "8", "-r", "1", "-t", "1", "-o", "json"]).ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("bench -o json is not JSON ({e}):\n{}", out.stdout));
    let rows = v.as_array().expect("a JSON array");
    assert_eq!(rows.len(), 2, "expected a pp and a tg row:\n{}", out.stdout);
    let expect = [(32, 0), (0, 8)];
    for (row, (np, ng)) in rows.iter().zip(expect) {
        assert_eq!(row["n_prompt"], np, "{row}");
        assert_eq!(row["n_gen"], ng, "{row}");
        assert_eq!(row["n_threads"], 1, "{row}");
        let avg = row["avg_ts"].as_f64().expect("avg_ts number");
        assert!(avg.is_finite() && avg > 0.0, "avg_ts {avg}");
        let samples = row["samples_ts"].as_array().expect("samples_ts array");
        assert_eq!(samples.len(), 1, "-r 1 gives one sample: {row}");
        assert!(samples.iter().all(|s| s.as_f64().is_some_and(|x| x > 0.0)), "{row}");
    }
}

#[test]
fn bench_markdown_has_pp_and_tg_rows() {
    let m = model_or_skip!();
    let out = slm(&["bench", "-m", &m, "-p", "32", "-n", "8", "-r", "1", "-t", "1"]).ok();
    let rows: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(rows.len(), 4, "header, rule, pp32, tg8:\n{}", out.stdout);
    assert!(rows[2].contains("| pp32 |"), "{}", rows[2]);
    assert!(rows[3].contains("| tg8 |"), "{}", rows[3]);
    for row in &rows[2..] {
        // Last cell: "<avg> ± <stddev>"
        let cell = row.trim_end_matches('|').rsplit('|').next().unwrap().trim();
        let avg: f64 = cell.split('±').next().unwrap().trim().parse().unwrap_or_else(|_| panic!("bad t/s cell {cell:?}"));
        assert!(avg > 0.0, "{row}");
    }
}

#[test]
fn perplexity_matches_llama_perplexity() {
    let m = model_or_skip!();
    let golden = golden_json("perplexity_smollm2.json");
    let run = golden["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["file"] == APACHE && r["ctx"] == 128)
        .expect("golden run for Apache-2.0 at ctx 128");
    let out = slm(&["perplexity", APACHE, "-m", &m, "-c", "128", "-t", "2", "--json"]).ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("--json output is not JSON ({e}):\n{}", out.stdout));
    assert_eq!(v["n_tokens"], run["n_tokens"], "token count differs from llama.cpp");
    assert_eq!(v["n_chunks"], run["n_chunks"]);
    assert_eq!(v["n_scored"], run["n_scored"]);
    let ppl = v["ppl"].as_f64().unwrap();
    let want = run["ppl"].as_f64().unwrap();
    assert!((ppl / want - 1.0).abs() < 0.01, "PPL {ppl} is not within 1% of llama.cpp's {want}");
    let se = v["ppl_stderr"].as_f64().unwrap();
    assert!(se > 0.0 && (se / run["ppl_stderr"].as_f64().unwrap() - 1.0).abs() < 0.05, "stderr {se}");
}

#[test]
fn perplexity_text_form_ends_with_ppl_line() {
    let m = model_or_skip!();
    let out = slm(&["perplexity", APACHE, "-m", &m, "-c", "128", "--chunks", "2"]).ok();
    let last = out.stdout.lines().last().unwrap_or_default();
    let rest = last.strip_prefix("PPL = ").unwrap_or_else(|| panic!("last line is not `PPL = …`: {last:?}"));
    let (ppl, se) = rest.split_once(" +/- ").unwrap_or_else(|| panic!("no ` +/- ` in {last:?}"));
    let ppl: f64 = ppl.parse().unwrap();
    let se: f64 = se.parse().unwrap();
    assert!(ppl > 1.0 && ppl < 100.0 && se > 0.0, "{last}");
    assert!(out.stdout.contains("2 chunks of 128 tokens"), "--chunks 2 not honoured:\n{}", out.stdout);
}

#[test]
fn perplexity_of_a_too_short_text_is_a_clear_error() {
    let m = model_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.txt");
    std::fs::write(&short, "Just a few words.\n").unwrap();
    slm(&["perplexity", short.to_str().unwrap(), "-m", &m, "-c", "128"]).fails().stderr_has(&["128", "tokens"]);
    // A context too small to score anything.
    slm(&["perplexity", APACHE, "-m", &m, "-c", "1"]).fails().stderr_has(&["context"]);
}

#[test]
fn perplexity_of_a_missing_or_binary_file_is_a_clear_error() {
    // The text is read before the model is loaded, so no model is needed here.
    let m = "/nonexistent/model.gguf";
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.txt");
    slm(&["perplexity", missing.to_str().unwrap(), "-m", m]).fails().stderr_has(&["missing.txt"]);
    let binary = dir.path().join("binary.txt");
    std::fs::write(&binary, [0xffu8, 0xfe, 0x00, 0x80, 0x81]).unwrap();
    slm(&["perplexity", binary.to_str().unwrap(), "-m", m]).fails().stderr_has(&["binary.txt", "UTF-8"]);
}
