//! `slm fit` on the real model: profiles, JSON shape, verdicts and user errors.

use crate::common::slm;
use crate::model_or_skip;
use serde_json::Value;

#[test]
fn fit_lists_devices_and_predicts_from_a_profile() {
    let m = model_or_skip!();
    slm(&["fit", "--list-devices"]).ok().stdout_has(&["raspberry-pi-5", "phone-4gb", "browser-tab", "auto"]);
    let out = slm(&["fit", &m, "--device", "raspberry-pi-5", "-c", "2048", "--json"]).ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", out.stdout));
    let p = &v["prediction"];
    let size = std::fs::metadata(&m).unwrap().len();
    assert_eq!(p["download_bytes"].as_u64(), Some(size), "download size is the file size");
    // KV cache: 2 (K, V) × 30 layers × 192 (3 KV heads × 64) × 2048 positions × 4 bytes.
    assert_eq!(p["kv_cache_bytes"].as_u64(), Some(2 * 30 * 192 * 2048 * 4));
    assert_eq!(p["verdict"]["verdict"], "fits");
    assert_eq!(v["all_quants"].as_array().map(|a| a.len()), Some(18));
    assert_eq!(v["best_fit"]["quant"], "F32", "a 135M model fits a Pi 5 even in F32");
}

#[test]
fn fit_says_when_a_model_does_not_fit() {
    let m = model_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("tiny.json");
    let out = slm(&["fit", "--list-devices"]).ok();
    assert!(out.stdout.contains("phone-4gb"));
    // A device with 64 MiB for the model: the 94 MiB file cannot fit, nor can any quantization.
    let json = r#"{"name":"tiny","description":"a 64 MiB microcontroller board","memory_bytes":67108864,
        "address_space_bytes":null,"threads":1,"decode_gbps":{"default":1.0},"prompt_gflops":{"default":1.0},
        "attention_gflops":1.0,"job_overhead_us":1.0,"runtime_bytes":1000000,"source":"test"}"#;
    std::fs::write(&profile, json).unwrap();
    slm(&["fit", &m, "--device", &profile.to_string_lossy(), "-c", "512"])
        .ok()
        .stdout_has(&["does not fit", "no quantization fits"]);
    slm(&["fit", &m, "--device", "toaster"]).fails().stderr_has(&["unknown device 'toaster'", "raspberry-pi-5"]);
    slm(&["fit", &m, "--device", "phone-4gb", "--quant", "Q9"]).fails().stderr_has(&["unknown type 'Q9'"]);
}

#[test]
fn fit_auto_probes_every_type_on_the_models_shapes() {
    let m = model_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("auto.json");
    let path = profile.to_string_lossy();
    let run =
        slm(&["fit", &m, "--device", "auto", "--no-calibrate", "-t", "2", "--save-profile", &path, "--json"]).ok();
    let out: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.stdout));
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&profile).unwrap()).unwrap();
    for t in ["F32", "F16", "BF16", "Q8_0", "Q6_K", "Q5_K", "Q5_1", "Q5_0", "Q4_K", "Q4_1", "Q4_0", "Q3_K", "Q2_K"] {
        for map in ["decode_gbps", "prompt_gflops"] {
            let v = saved[map][t].as_f64().unwrap_or(0.0);
            assert!(v.is_finite() && v > 0.0, "{map}[{t}] = {v}");
        }
    }
    // F32 streams 4.7x the bytes of Q4_0 per generated token: the measured rates must show it.
    let tg = |q: &str| {
        out["all_quants"].as_array().unwrap().iter().find(|x| x["quant"] == q).unwrap()["prediction"]["gen_tps"]
            .as_f64()
            .unwrap()
    };
    assert!(tg("F32") < tg("Q4_0"), "F32 {} vs Q4_0 {} tok/s", tg("F32"), tg("Q4_0"));
}
