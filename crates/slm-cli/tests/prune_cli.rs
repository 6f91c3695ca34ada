//! `slm prune` end to end: request errors without a model, and on the real model (SLM_TEST_MODEL,
//! skipped when unset) a 2:4 Wanda and a structured run whose outputs `slm run` loads, with the
//! report written as JSON and printed as a table. Kept small: short calibration and evaluation.

mod common;

use common::slm;
use serde_json::Value;

const APACHE: &str = "/usr/share/common-licenses/Apache-2.0";
const GPL3: &str = "/usr/share/common-licenses/GPL-3";

#[test]
fn prune_refuses_unclear_requests_before_loading_anything() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.gguf").to_string_lossy().into_owned();
    // The model name does not exist: these must fail on the flags, not on loading.
    let m = "/nonexistent/model.gguf";
    slm(&["prune", "-m", m, "-o", &out])
        .fails()
        .stderr_has(&["--sparsity", "--pattern"]);
    slm(&[
        "prune",
        "-m",
        m,
        "-o",
        &out,
        "--sparsity",
        "0.5",
        "--pattern",
        "2:4",
    ])
    .fails()
    .stderr_has(&["not several"]);
    slm(&[
        "prune",
        "-m",
        m,
        "-o",
        &out,
        "--sparsity",
        "1.5",
        "--method",
        "magnitude",
    ])
    .fails()
    .stderr_has(&["[0, 1)"]);
    slm(&[
        "prune",
        "-m",
        m,
        "-o",
        &out,
        "--pattern",
        "4:2",
        "--method",
        "magnitude",
    ])
    .fails()
    .stderr_has(&["N:M"]);
    slm(&["prune", "-m", m, "-o", &out, "--sparsity", "0.5"])
        .fails()
        .stderr_has(&["--calib FILE"]);
    slm(&[
        "prune",
        "-m",
        m,
        "-o",
        &out,
        "--sparsity",
        "0.5",
        "--method",
        "snip",
    ])
    .fails()
    .stderr_has(&["wanda"]);
    slm(&[
        "prune",
        "-m",
        m,
        "-o",
        &out,
        "--sparsity",
        "0.5",
        "--method",
        "magnitude",
        "--dtype",
        "Q4_0",
    ])
    .fails()
    .stderr_has(&["--quant"]);
    assert!(!dir.path().join("p.gguf").exists());
}

fn report(path: &str) -> Value {
    let text = std::fs::read_to_string(format!("{path}.report.json"))
        .expect("report written next to the output");
    serde_json::from_str(&text).expect("report is JSON")
}

#[test]
fn prune_real_model_two_of_four_and_structured() {
    let m = model_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let calib = [
        "--calib",
        APACHE,
        "--calib-chunks",
        "1",
        "--calib-ctx",
        "128",
    ];

    let sparse = path("wanda-2of4.gguf");
    let out = slm(&[
        "prune",
        "-m",
        &m,
        "-o",
        &sparse,
        "--method",
        "wanda",
        "--pattern",
        "2:4",
        calib[0],
        calib[1],
        calib[2],
        calib[3],
        calib[4],
        calib[5],
        "--eval",
        GPL3,
        "--eval-chunks",
        "1",
        "-c",
        "128",
    ])
    .ok();
    out.stdout_has(&["wanda 2:4", "source", "pruned", "KLD vs source"]);
    let r = report(&sparse);
    let (src, pruned) = (&r["source"], &r["pruned"]);
    assert_eq!(src["n_params"], pruned["n_params"], "2:4 keeps every shape");
    let removed = src["n_nonzero"].as_f64().unwrap() - pruned["n_nonzero"].as_f64().unwrap();
    // Half of the block linears: (q 576 + k 192 + v 192 + o 576 + 3 x 1536) x 576 per block, 30 blocks.
    let expected = 0.5 * 30.0 * 576.0 * (576.0 + 192.0 + 192.0 + 576.0 + 3.0 * 1536.0);
    assert!(
        (removed - expected).abs() / expected < 0.01,
        "removed {removed}, expected ~{expected}"
    );
    let ppl_src = r["eval"]["ppl_reference"].as_f64().unwrap();
    let ppl = r["eval"]["ppl_candidate"].as_f64().unwrap();
    assert!(
        ppl > ppl_src && ppl.is_finite(),
        "2:4 costs quality: {ppl_src} -> {ppl}"
    );
    slm(&["run", "-m", &sparse, "--temp", "0", "-n", "4", "Say hello."]).ok();

    let small = path("structured.gguf");
    slm(&[
        "prune",
        "-m",
        &m,
        "-o",
        &small,
        "--ffn-keep",
        "1024",
        "--kv-groups-keep",
        "2",
        "--drop-layers",
        "2",
        calib[0],
        calib[1],
        calib[2],
        calib[3],
        calib[4],
        calib[5],
        "--no-speed",
        "--json",
    ])
    .ok()
    .stdout_has(&["\"structured\"", "\"layers_dropped\""]);
    let r = report(&small);
    assert_eq!(r["pruned"]["n_layer"], 28);
    assert_eq!(r["pruned"]["d_ff"], 1024);
    assert_eq!(r["pruned"]["n_head"], 6);
    assert_eq!(r["pruned"]["n_kv_head"], 2);
    assert!(
        r["pruned"]["n_params"].as_u64().unwrap()
            < r["source"]["n_params"].as_u64().unwrap() * 3 / 4
    );
    slm(&["show", "-m", &small]).ok().stdout_has(&[
        "28 layers",
        "6 heads / 2 KV heads",
        "FFN 1024",
    ]);
    slm(&["run", "-m", &small, "--temp", "0", "-n", "4", "Say hello."]).ok();
}
