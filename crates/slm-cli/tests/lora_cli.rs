//! LoRA from the command line: `--lora` on the real model against llama.cpp's own
//! llama-perplexity with the same adapters (tests/golden/lora_perplexity_smollm2.json, made by
//! reference/gen_lora_golden.sh), `slm lora merge` / `slm lora convert` on a small random model,
//! and clear errors for missing or mismatched adapters.

mod common;

use common::{golden_json, slm};
use serde_json::Value;
use sha2::{Digest, Sha256};
use slm_format::{GgmlType, GgufFile};
use slm_kernels::Pool;
use slm_model::arch::Arch;
use slm_model::lora::{LoraAdapter, LoraTarget};
use slm_model::random_init::random_llama_gguf;
use slm_model::{Logits, Model, ModelConfig};
use std::path::Path;
use std::sync::Arc;

const APACHE: &str = "/usr/share/common-licenses/Apache-2.0";

/// The golden adapters, regenerated from their recorded recipe and checked against their hashes.
fn golden_adapters(model: &Path, golden: &Value, dir: &Path) {
    let cfg = ModelConfig::from_gguf(&GgufFile::open(model).unwrap()).unwrap();
    for (name, spec) in golden["adapters"].as_object().unwrap() {
        let targets = LoraTarget::parse_list(spec["targets"].as_str().unwrap()).unwrap();
        let adapter = LoraAdapter::random(
            &cfg,
            &targets,
            spec["rank"].as_u64().unwrap() as usize,
            spec["alpha"].as_f64().unwrap() as f32,
            spec["seed"].as_u64().unwrap(),
            spec["b_amplitude"].as_f64().unwrap() as f32,
        )
        .unwrap();
        let bytes = adapter.to_gguf_writer().unwrap().to_bytes().unwrap();
        let sha = format!("{:x}", Sha256::digest(&bytes));
        assert_eq!(sha, spec["sha256"].as_str().unwrap(), "{name} differs from the adapter llama.cpp was given");
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

#[test]
fn lora_perplexity_matches_llama_perplexity() {
    let m = model_or_skip!();
    let golden = golden_json("lora_perplexity_smollm2.json");
    let base = golden_json("perplexity_smollm2.json");
    let base_ppl = base["runs"].as_array().unwrap().iter().find(|r| r["file"] == APACHE && r["ctx"] == 128).unwrap()
        ["ppl"]
        .as_f64()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    golden_adapters(Path::new(&m), &golden, dir.path());
    for run in golden["runs"].as_array().unwrap() {
        let mut args = vec!["perplexity", APACHE, "-m", &m, "-c", "128", "-t", "2", "--json"];
        let loras: Vec<String> = run["lora"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| dir.path().join(l.as_str().unwrap()).to_string_lossy().into_owned())
            .collect();
        for l in &loras {
            args.extend(["--lora", l]);
        }
        let out = slm(&args).ok();
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        let (ppl, want) = (v["ppl"].as_f64().unwrap(), run["ppl"].as_f64().unwrap());
        let name = run["name"].as_str().unwrap();
        // Same tolerance as the base model's golden: both sides quantize activations to Q8
        // for the Q4_1 products and run the adapters in f32.
        assert!((ppl / want - 1.0).abs() < 0.005, "{name}: PPL {ppl} is not within 0.5% of llama.cpp's {want}");
        assert!(ppl / base_ppl > 1.2, "{name}: the adapter must change PPL clearly ({ppl} vs base {base_ppl})");
        assert_eq!(out.stderr.matches("lora: ").count(), loras.len(), "{}", out.stderr);
    }
}

#[test]
fn run_with_a_lora_adapter_and_clear_errors() {
    let m = model_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let cfg = ModelConfig::from_gguf(&GgufFile::open(Path::new(&m)).unwrap()).unwrap();
    let adapter = LoraAdapter::random(&cfg, &[LoraTarget::V, LoraTarget::Down], 2, 4.0, 5, 0.3).unwrap();
    let path = dir.path().join("a.gguf");
    adapter.save_gguf(&path).unwrap();
    let p = path.to_string_lossy().into_owned();
    let args = ["run", "-m", &m, "--temp", "0", "-n", "8", "--raw", "Once upon a time"];
    let plain = slm(&args).ok();
    let zero = slm(&[&args[..], &["--lora", &format!("{p}:0")]].concat()).ok();
    assert_eq!(zero.stdout, plain.stdout, "scale 0 must leave the model as it is");
    slm(&[&args[..], &["--lora", &p]].concat()).ok().stderr_has(&["lora: ", "a.gguf", "scale 1", "rank 2"]);

    let missing = dir.path().join("missing.gguf").to_string_lossy().into_owned();
    slm(&["run", "-m", &m, "--lora", &missing, "hi"]).fails().stderr_has(&["missing.gguf"]);
    // An adapter for another model: named, with the shapes, before any generation.
    let other = ModelConfig { d_model: 64, n_head: 4, n_kv_head: 2, head_dim: 16, d_ff: 96, ..cfg };
    let wrong = dir.path().join("wrong.gguf");
    LoraAdapter::random(&other, &[LoraTarget::Q], 2, 4.0, 1, 0.1).unwrap().save_gguf(&wrong).unwrap();
    slm(&["perplexity", APACHE, "-m", &m, "--lora", &wrong.to_string_lossy()])
        .fails()
        .stderr_has(&["wrong.gguf", "another base model"]);
    // The base model is not an adapter.
    slm(&["run", "-m", &m, "--lora", &m, "hi"]).fails().stderr_has(&["not a LoRA adapter"]);
}

fn tiny(d_model: usize) -> ModelConfig {
    ModelConfig {
        arch: Arch::Llama,
        n_vocab: 96,
        d_model,
        n_layer: 2,
        n_head: 4,
        n_kv_head: 2,
        head_dim: d_model / 4,
        d_ff: 96,
        n_ctx_train: 64,
        rms_eps: 1e-5,
        rope_theta: 10000.0,
        tied_output: false,
    }
}

fn logits(m: &Model) -> Vec<f32> {
    let pool = Pool::new(1).unwrap();
    let mut ctx = m.new_context(16, 8).unwrap();
    m.forward_prompt(&mut ctx, &pool, &[3, 14, 15, 92, 65], Logits::All).unwrap().to_vec()
}

#[test]
fn merge_and_convert_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let at = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    let base_bytes = random_llama_gguf(&tiny(64), GgmlType::F32, 7).unwrap();
    std::fs::write(at("base.gguf"), &base_bytes).unwrap();
    let adapter = LoraAdapter::random(&tiny(64), &LoraTarget::ALL, 3, 6.0, 11, 0.2).unwrap();
    adapter.save_gguf(Path::new(&at("a.gguf"))).unwrap();

    slm(&[
        "lora",
        "merge",
        "--base",
        &at("base.gguf"),
        "--lora",
        &format!("{}:0.5", at("a.gguf")),
        "-o",
        &at("m.gguf"),
    ])
    .ok()
    .stdout_has(&["merged 1 adapter(s) into 14 of"]);
    let applied = Model::from_gguf(Arc::new(GgufFile::from_bytes(base_bytes).unwrap()))
        .unwrap()
        .with_adapters(&[(adapter.clone(), 0.5)])
        .unwrap();
    let merged = Model::load(Path::new(&at("m.gguf"))).unwrap();
    let (x, y) = (logits(&applied), logits(&merged));
    let scale = y.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = x.iter().zip(&y).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(diff / scale < 1e-4, "merged vs applied: {diff} of {scale}");

    slm(&[
        "lora",
        "merge",
        "--base",
        &at("base.gguf"),
        "--lora",
        &at("a.gguf"),
        "-o",
        &at("q.gguf"),
        "--quant",
        "Q8_0",
    ])
    .ok()
    .stdout_has(&["re-quantized to Q8_0"]);
    let q = GgufFile::open(Path::new(&at("q.gguf"))).unwrap();
    assert_eq!(q.tensor("blk.0.attn_q.weight").unwrap().dtype, GgmlType::Q8_0);

    // GGUF → PEFT → GGUF is lossless.
    slm(&["lora", "convert", &at("a.gguf"), "-o", &at("peft"), "--base", &at("base.gguf")]).ok();
    assert!(dir.path().join("peft/adapter_config.json").is_file());
    slm(&["lora", "convert", &at("peft"), "-o", &at("b.gguf"), "--base", &at("base.gguf")]).ok();
    assert_eq!(LoraAdapter::load_gguf(Path::new(&at("b.gguf"))).unwrap(), adapter);

    // Wrong base, unknown type, missing adapter: clear errors, no output file.
    std::fs::write(at("other.gguf"), random_llama_gguf(&tiny(32), GgmlType::F32, 7).unwrap()).unwrap();
    slm(&["lora", "merge", "--base", &at("other.gguf"), "--lora", &at("a.gguf"), "-o", &at("x.gguf")])
        .fails()
        .stderr_has(&["a.gguf", "another base model"]);
    slm(&["lora", "merge", "--base", &at("base.gguf"), "--lora", &at("a.gguf"), "-o", &at("x.gguf"), "--quant", "Q9"])
        .fails()
        .stderr_has(&["unknown type 'Q9'"]);
    slm(&["lora", "merge", "--base", &at("base.gguf"), "--lora", &at("nope.gguf"), "-o", &at("x.gguf")])
        .fails()
        .stderr_has(&["nope.gguf"]);
    assert!(!dir.path().join("x.gguf").exists());
}

#[test]
fn lora_flags_are_documented() {
    for cmd in ["run", "chat", "perplexity", "serve"] {
        slm(&[cmd, "--help"]).ok().stdout_has(&["--lora <FILE[:SCALE]>"]);
    }
    slm(&["lora", "merge", "--help"]).ok().stdout_has(&["--base", "--quant", "W' = W"]);
}
