//! `slm quantize`, `slm imatrix` and `slm eval` on the real model: the whole "shrink it and
//! measure what it cost" loop, plus the errors a user meets on the way.

use crate::common::slm;
use crate::model_or_skip;
use serde_json::Value;
use sha2::Digest;

const APACHE: &str = "/usr/share/common-licenses/Apache-2.0";

fn eval_json(reference: &str, candidates: &[&str]) -> Value {
    let mut args = vec!["eval", APACHE, "-r", reference, "-c", "128", "--chunks", "2", "--json"];
    for c in candidates {
        args.extend(["-m", c]);
    }
    let out = slm(&args).ok();
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("eval --json is not JSON ({e}):\n{}", out.stdout))
}

#[test]
fn quantize_imatrix_and_eval_round_trip() {
    let m = model_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let (f32_path, imatrix, q4k) = (path("f32.gguf"), path("imatrix.gguf"), path("q4_k_m.gguf"));

    // The published file is already quantized: going anywhere needs consent.
    slm(&["quantize", &m, &f32_path, "--type", "F32"]).fails().stderr_has(&["already quantized", "--allow-requantize"]);
    slm(&["quantize", &m, &f32_path, "--type", "F32", "--allow-requantize"]).ok().stdout_has(&["32.00 bpw"]);

    slm(&["imatrix", "-m", &f32_path, APACHE, "-o", &imatrix, "-c", "128", "--chunks", "4"])
        .ok()
        .stdout_has(&["210 weights", "512 tokens"]);
    let out = slm(&["quantize", &f32_path, &q4k, "--type", "Q4_K_M", "--imatrix", &imatrix, "-v"]).ok();
    out.stdout_has(&["blk.0.ffn_down.weight", "F32 -> Q6_K", "[imatrix]", "Q4_K_M:"]);

    slm(&["show", "-m", &q4k, "--tensors"]).ok().stdout_has(&["Q6_K", "Q5_0", "Q8_0"]);
    slm(&["run", "-m", &q4k, "--temp", "0", "-n", "8", "Say hello."]).ok();

    // Against itself the KL divergence is exactly 0; the Q4_K_M candidate is close but not equal.
    let v = eval_json(&f32_path, &[&f32_path, &q4k]);
    let same = &v["candidates"][0]["report"];
    assert_eq!(same["mean_kld"].as_f64(), Some(0.0), "{v}");
    assert_eq!(same["same_top_pct"].as_f64(), Some(100.0), "{v}");
    let q = &v["candidates"][1]["report"];
    let kld = q["mean_kld"].as_f64().unwrap();
    assert!(kld > 0.001 && kld < 0.2, "Q4_K_M KLD {kld} out of the plausible range: {v}");
    assert!(q["same_top_pct"].as_f64().unwrap() > 70.0, "{v}");
    let bpw = v["candidates"][1]["bpw"].as_f64().unwrap();
    assert!(bpw > 4.5 && bpw < 7.0, "Q4_K_M bpw {bpw}");
}

#[test]
fn quantize_rejects_bad_requests_clearly() {
    let m = model_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.gguf").to_string_lossy().into_owned();
    slm(&["quantize", &m, &out, "--type", "Q9_9"]).fails().stderr_has(&["unknown type 'Q9_9'", "Q4_K_M"]);
    slm(&["quantize", &m, &m, "--type", "Q8_0", "--allow-requantize"]).fails().stderr_has(&["is the input file"]);
    slm(&["quantize", &m, &out, "--type", "Q8_0", "--tensor-type", "attn_v"]).fails().stderr_has(&["PATTERN=TYPE"]);
    slm(&["quantize", &m, &out, "--type", "Q8_0", "--imatrix", "/nonexistent.gguf"])
        .fails()
        .stderr_has(&["cannot read"]);
    let truncated = dir.path().join("truncated.gguf");
    std::fs::write(&truncated, &std::fs::read(&m).unwrap()[..4096]).unwrap();
    slm(&["quantize", &truncated.to_string_lossy(), &out, "--type", "Q8_0"]).fails();
    assert!(!dir.path().join("out.gguf").exists(), "no output is left behind after a failure");
    // A dry run writes nothing but shows the plan.
    slm(&["quantize", &m, &out, "--type", "Q4_0", "--allow-requantize", "--dry-run"]).ok().stdout_has(&[
        "token_embd.weight",
        "Q8_0 (kept)",
        "Q4_1 -> Q4_0",
    ]);
    assert!(!dir.path().join("out.gguf").exists());
}

/// llama.cpp's Python reader sees exactly the tensors slm wrote (installed by scripts/test.sh; the test
/// skips with a note when gguf-py is missing outside CI).
#[test]
fn quantized_files_read_back_identically_with_gguf_py() {
    let m = model_or_skip!();
    let has_gguf = std::process::Command::new("python3").args(["-c", "import gguf"]).status().is_ok_and(|s| s.success());
    if !has_gguf {
        assert!(std::env::var_os("SLM_REQUIRE_MODEL").is_none(), "CI must have gguf-py (scripts/test.sh installs it)");
        eprintln!("note: python3 -c 'import gguf' failed; skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("q5_k_m.gguf");
    slm(&["quantize", &m, &out.to_string_lossy(), "--type", "Q5_K_M", "--allow-requantize"]).ok();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cli/gguf_py_dump.py");
    let py = std::process::Command::new("python3").arg(script).arg(&out).output().unwrap();
    assert!(py.status.success(), "gguf-py failed: {}", String::from_utf8_lossy(&py.stderr));
    let v: Value = serde_json::from_slice(&py.stdout).unwrap();
    assert_eq!(v["file_type"].as_u64(), Some(17), "general.file_type is llama.cpp's Q5_K_M number");
    let file = slm_format::GgufFile::open(&out).unwrap();
    let tensors = v["tensors"].as_object().unwrap();
    assert_eq!(tensors.len(), file.tensors().len());
    for t in file.tensors() {
        let py_t = &tensors[&t.name];
        assert_eq!(py_t[0].as_str(), Some(t.dtype.name()), "{}", t.name);
        let digest: String =
            sha2::Sha256::digest(file.tensor_data(t)).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(py_t[2].as_str(), Some(digest.as_str()), "{} data", t.name);
    }
}
