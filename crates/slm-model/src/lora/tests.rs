//! Format tests: GGUF and PEFT round trips, the Q/K row order, hostile and mismatched files.

use super::*;
use crate::arch::Arch;
use slm_format::safetensors::{Dtype, SafetensorsWriter};
use slm_format::{GgufFile, GgufWriter};

pub(super) fn tiny() -> ModelConfig {
    ModelConfig {
        arch: Arch::Llama,
        n_vocab: 64,
        d_model: 32,
        n_layer: 2,
        n_head: 4,
        n_kv_head: 2,
        head_dim: 8,
        d_ff: 48,
        n_ctx_train: 64,
        rms_eps: 1e-5,
        rope_theta: 10000.0,
        tied_output: true,
    }
}

pub(super) fn random_adapter(cfg: &ModelConfig, rank: usize, seed: u64) -> LoraAdapter {
    let mut a = LoraAdapter::init(cfg, &LoraTarget::ALL, rank, 2.0 * rank as f32, seed).unwrap();
    a.randomize_b(0.05, seed + 1);
    a
}

fn gguf_round_trip(a: &LoraAdapter) -> Result<LoraAdapter, LoraError> {
    LoraAdapter::from_gguf(&GgufFile::from_bytes(a.to_gguf_writer()?.to_bytes()?)?)
}

#[test]
fn gguf_round_trip_is_exact_and_uses_llama_cpp_names() {
    let cfg = tiny();
    let a = random_adapter(&cfg, 4, 1);
    let bytes = a.to_gguf_writer().unwrap().to_bytes().unwrap();
    let file = GgufFile::from_bytes(bytes).unwrap();
    let md = file.metadata();
    assert_eq!(md.get_str("general.type").unwrap(), "adapter");
    assert_eq!(md.get_str("adapter.type").unwrap(), "lora");
    assert_eq!(md.get_f32("adapter.lora.alpha").unwrap(), 8.0);
    let ta = file.tensor("blk.1.attn_output.weight.lora_a").unwrap();
    let tb = file.tensor("blk.1.attn_output.weight.lora_b").unwrap();
    assert_eq!((ta.dims.as_slice(), tb.dims.as_slice()), (&[32u64, 4][..], &[4u64, 32][..]));
    let tb = file.tensor("blk.0.ffn_down.weight.lora_b").unwrap();
    assert_eq!(tb.dims, vec![4, 32]);
    assert_eq!(file.tensors().len(), 2 * 7 * 2);
    let back = LoraAdapter::from_gguf(&file).unwrap();
    assert_eq!(back, a);
    assert_eq!(back.scale(), 2.0);
}

#[test]
fn gguf_file_save_load_and_f16_accepted() {
    let cfg = tiny();
    let a = random_adapter(&cfg, 2, 3);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.gguf");
    a.save_gguf(&path).unwrap();
    assert_eq!(load_any(&path, &cfg).unwrap(), a);

    // An F16 copy (what convert_lora_to_gguf.py writes by default) decodes to the rounded values.
    let p = &a.pairs[&(0, LoraTarget::Q)];
    let mut w = GgufWriter::new();
    w.add_string("general.architecture", "llama")
        .add_string("general.type", "adapter")
        .add_string("adapter.type", "lora");
    let f16 = |v: &[f32]| v.iter().flat_map(|x| half::f16::from_f32(*x).to_le_bytes()).collect::<Vec<u8>>();
    w.add_tensor("blk.0.attn_q.weight.lora_a", &[32, 2], slm_format::GgmlType::F16, f16(&p.a)).unwrap();
    w.add_tensor("blk.0.attn_q.weight.lora_b", &[2, 32], slm_format::GgmlType::F16, f16(&p.b)).unwrap();
    let back = LoraAdapter::from_gguf(&GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap()).unwrap();
    let q = &back.pairs[&(0, LoraTarget::Q)];
    assert_eq!(back.alpha, 0.0, "absent alpha reads as 0 (llama.cpp)");
    assert_eq!(back.scale(), 1.0);
    for (x, y) in q.a.iter().zip(&p.a) {
        assert!((x - y).abs() <= 1e-3 * y.abs().max(1e-2), "{x} vs {y}");
    }
}

#[test]
fn peft_round_trip_permutes_only_qk_b_for_llama() {
    let cfg = tiny();
    let a = random_adapter(&cfg, 3, 5);
    let dir = tempfile::tempdir().unwrap();
    a.save_peft(dir.path(), "HuggingFaceTB/SmolLM2-135M-Instruct", &cfg).unwrap();
    let back = LoraAdapter::load_peft(dir.path(), &cfg).unwrap();
    assert_eq!(back, a);

    let st = slm_format::safetensors::SafetensorsFile::open(&dir.path().join(PEFT_WEIGHTS)).unwrap();
    let get = |n: &str| st.tensor_f32(st.tensor(n).unwrap()).unwrap();
    let pre = "base_model.model.model.layers.0";
    let q = &a.pairs[&(0, LoraTarget::Q)];
    assert_eq!(get(&format!("{pre}.self_attn.q_proj.lora_A.weight")), q.a);
    assert_eq!(get(&format!("{pre}.self_attn.q_proj.lora_B.weight")), crate::hf::unpermute_qk(&q.b, 4, 3).unwrap());
    assert_ne!(crate::hf::unpermute_qk(&q.b, 4, 3).unwrap(), q.b, "the permutation must matter for this test");
    let v = &a.pairs[&(0, LoraTarget::V)];
    assert_eq!(get(&format!("{pre}.self_attn.v_proj.lora_B.weight")), v.b);
    assert_eq!(st.tensor(&format!("{pre}.mlp.down_proj.lora_A.weight")).unwrap().shape, vec![3, 48]);

    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(PEFT_CONFIG)).unwrap()).unwrap();
    assert_eq!(config["r"], 3);
    assert_eq!(config["lora_alpha"], 6.0);
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["task_type"], "CAUSAL_LM");
    assert_eq!(config["target_modules"].as_array().unwrap().len(), 7);

    // Qwen2 (NeoX RoPE) keeps HF order.
    let qcfg = ModelConfig { arch: Arch::Qwen2, ..cfg };
    let mut qa = a.clone();
    qa.arch = "qwen2".into();
    let qdir = tempfile::tempdir().unwrap();
    qa.save_peft(qdir.path(), "x", &qcfg).unwrap();
    let st = slm_format::safetensors::SafetensorsFile::open(&qdir.path().join(PEFT_WEIGHTS)).unwrap();
    assert_eq!(st.tensor_f32(st.tensor(&format!("{pre}.self_attn.q_proj.lora_B.weight")).unwrap()).unwrap(), q.b);
}

#[test]
fn peft_rslora_folds_into_alpha() {
    let cfg = tiny();
    let a = random_adapter(&cfg, 4, 9);
    let dir = tempfile::tempdir().unwrap();
    a.save_peft(dir.path(), "x", &cfg).unwrap();
    let path = dir.path().join(PEFT_CONFIG);
    let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["use_rslora"] = true.into();
    std::fs::write(&path, config.to_string()).unwrap();
    let back = LoraAdapter::load_peft(dir.path(), &cfg).unwrap();
    assert!((back.scale() - 8.0 / 2.0).abs() < 1e-6, "rsLoRA scale alpha/sqrt(r) = 8/2, got {}", back.scale());
    config["use_dora"] = true.into();
    std::fs::write(&path, config.to_string()).unwrap();
    assert!(matches!(LoraAdapter::load_peft(dir.path(), &cfg), Err(LoraError::PeftConfig { .. })));
}

#[test]
fn mismatched_adapters_are_typed_errors() {
    let cfg = tiny();
    let a = random_adapter(&cfg, 2, 7);
    let wider = ModelConfig { d_model: 64, ..cfg.clone() };
    assert!(matches!(a.check_against(&wider), Err(LoraError::Shape { .. })));
    let shallower = ModelConfig { n_layer: 1, ..cfg.clone() };
    assert!(matches!(a.check_against(&shallower), Err(LoraError::LayerOutOfRange { layer: 1, n_layer: 1 })));
    let qwen = ModelConfig { arch: Arch::Qwen2, ..cfg.clone() };
    assert!(matches!(a.check_against(&qwen), Err(LoraError::ArchMismatch { .. })));
    let dir = tempfile::tempdir().unwrap();
    a.save_peft(dir.path(), "x", &cfg).unwrap();
    assert!(matches!(LoraAdapter::load_peft(dir.path(), &wider), Err(LoraError::Shape { .. })));
    let mut nan = a.clone();
    nan.pairs.get_mut(&(0, LoraTarget::K)).unwrap().b[0] = f32::NAN;
    assert!(matches!(nan.check_against(&cfg), Err(LoraError::Invalid(_))));
}

/// A GGUF adapter with the given metadata strings and F32 tensors `(name, dims)`.
fn gguf_with(meta: &[(&str, &str)], tensors: &[(&str, &[u64])]) -> Result<LoraAdapter, LoraError> {
    let mut w = GgufWriter::new();
    for (k, v) in meta {
        w.add_string(*k, *v);
    }
    for (name, dims) in tensors {
        let n: u64 = dims.iter().product();
        w.add_tensor_f32(*name, dims, &vec![0.5; n as usize]).unwrap();
    }
    LoraAdapter::from_gguf(&GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap())
}

#[test]
fn hostile_gguf_adapters_are_typed_errors() {
    let ok = [("general.architecture", "llama"), ("general.type", "adapter"), ("adapter.type", "lora")];
    let pair: [(&str, &[u64]); 2] =
        [("blk.0.attn_q.weight.lora_a", &[32, 2]), ("blk.0.attn_q.weight.lora_b", &[2, 32])];
    assert!(gguf_with(&ok, &pair).is_ok());
    let model = [("general.architecture", "llama")];
    assert!(matches!(gguf_with(&model, &pair), Err(LoraError::NotAnAdapter { what: "general.type", .. })));
    let cvec = [("general.architecture", "llama"), ("general.type", "adapter"), ("adapter.type", "cvec")];
    assert!(matches!(gguf_with(&cvec, &pair), Err(LoraError::NotAnAdapter { what: "adapter.type", .. })));
    assert!(matches!(gguf_with(&ok, &pair[..1]), Err(LoraError::MissingHalf { missing: "lora_b", .. })));
    assert!(matches!(gguf_with(&ok, &pair[1..]), Err(LoraError::MissingHalf { missing: "lora_a", .. })));
    assert!(matches!(gguf_with(&ok, &[]), Err(LoraError::Invalid(_))));
    let untransposed: [(&str, &[u64]); 2] =
        [("blk.0.attn_q.weight.lora_a", &[2, 32]), ("blk.0.attn_q.weight.lora_b", &[2, 32])];
    assert!(matches!(gguf_with(&ok, &untransposed), Err(LoraError::Shape { .. })));
    let three_d: [(&str, &[u64]); 2] =
        [("blk.0.attn_q.weight.lora_a", &[32, 2, 1]), ("blk.0.attn_q.weight.lora_b", &[2, 32])];
    assert!(matches!(gguf_with(&ok, &three_d), Err(LoraError::Shape { .. })));
    for bad in [
        "token_embd.weight.lora_a",
        "blk.0.attn_qkv.weight.lora_a",
        "blk.x.attn_q.weight.lora_a",
        "blk.+1.attn_q.weight.lora_a",
        "blk.99999999.attn_q.weight.lora_a",
        "blk.0.attn_q.weight.lora_c",
        "output.weight",
    ] {
        let r = gguf_with(&ok, &[(bad, &[32, 2])]);
        assert!(matches!(r, Err(LoraError::UnknownTensor { .. })), "{bad}: {r:?}");
    }
    // Norm vectors (mergekit) are skipped like llama.cpp does.
    let with_norm = [pair[0], pair[1], ("blk.0.attn_norm.weight", &[32][..])];
    assert_eq!(gguf_with(&ok, &with_norm).unwrap().pairs.len(), 1);
    // A quantized factor is refused.
    let mut w = GgufWriter::new();
    for (k, v) in ok {
        w.add_string(k, v);
    }
    w.add_tensor("blk.0.attn_q.weight.lora_a", &[32, 2], slm_format::GgmlType::Q8_0, vec![0u8; 2 * 34]).unwrap();
    w.add_tensor_f32("blk.0.attn_q.weight.lora_b", &[2, 32], &[0.0; 64]).unwrap();
    let r = LoraAdapter::from_gguf(&GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap());
    assert!(matches!(r, Err(LoraError::TensorType { .. })), "{r:?}");
    // Truncated files fail in the reader, never panic.
    let bytes = random_adapter(&tiny(), 2, 1).to_gguf_writer().unwrap().to_bytes().unwrap();
    for cut in [0, 7, 100, bytes.len() / 2, bytes.len() - 1] {
        assert!(GgufFile::from_bytes(bytes[..cut].to_vec()).is_err());
    }
    assert!(gguf_round_trip(&random_adapter(&tiny(), 1, 2)).is_ok());
}

#[test]
fn hostile_peft_adapters_are_typed_errors() {
    let cfg = tiny();
    let dir = tempfile::tempdir().unwrap();
    let write = |tensors: &[(&str, &[u64])], config: &str| {
        let mut w = SafetensorsWriter::new();
        for (name, shape) in tensors {
            let n: u64 = shape.iter().product();
            w.add_f32(*name, Dtype::F32, shape, &vec![0.1; n as usize]).unwrap();
        }
        w.write_file(&dir.path().join(PEFT_WEIGHTS)).unwrap();
        std::fs::write(dir.path().join(PEFT_CONFIG), config).unwrap();
        LoraAdapter::load_peft(dir.path(), &cfg)
    };
    let cfg_json = r#"{"r": 2, "lora_alpha": 4, "peft_type": "LORA"}"#;
    let q: [(&str, &[u64]); 2] = [
        ("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight", &[2, 32]),
        ("base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight", &[32, 2]),
    ];
    let ok = write(&q, cfg_json).unwrap();
    assert_eq!((ok.rank, ok.alpha, ok.pairs.len()), (2, 4.0, 1));
    assert!(matches!(write(&q, "[1]"), Err(LoraError::PeftConfig { .. })));
    assert!(matches!(write(&q, "{"), Err(LoraError::PeftConfig { .. })));
    assert!(matches!(write(&q, r#"{"peft_type": "IA3"}"#), Err(LoraError::PeftConfig { .. })));
    assert!(matches!(write(&q, r#"{"r": -1}"#), Err(LoraError::PeftConfig { .. })));
    assert!(matches!(write(&q, r#"{"alpha_pattern": {"q_proj": 3}}"#), Err(LoraError::PeftConfig { .. })));
    let transposed: [(&str, &[u64]); 2] = [(q[0].0, &[32, 2]), (q[1].0, &[2, 32])];
    assert!(matches!(write(&transposed, cfg_json), Err(LoraError::Shape { .. })));
    let deep: [(&str, &[u64]); 2] = [
        ("base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight", &[2, 32]),
        ("base_model.model.model.layers.7.self_attn.q_proj.lora_B.weight", &[32, 2]),
    ];
    assert!(matches!(write(&deep, cfg_json), Err(LoraError::LayerOutOfRange { .. })));
    let embed: [(&str, &[u64]); 1] = [("base_model.model.model.embed_tokens.weight", &[64, 32])];
    assert!(matches!(write(&embed, cfg_json), Err(LoraError::UnknownTensor { .. })));
    assert!(matches!(write(&q[..1], cfg_json), Err(LoraError::MissingHalf { .. })));
    std::fs::remove_file(dir.path().join(PEFT_CONFIG)).unwrap();
    assert!(matches!(LoraAdapter::load_peft(dir.path(), &cfg), Err(LoraError::Io { .. })));
}

#[test]
fn targets_and_arguments_parse() {
    assert_eq!(LoraTarget::parse_list("q,k,v,o,gate,up,down").unwrap(), LoraTarget::ALL.to_vec());
    assert_eq!(LoraTarget::parse_list("all").unwrap().len(), 7);
    assert_eq!(LoraTarget::parse_list("v_proj, q,attn_q").unwrap(), vec![LoraTarget::Q, LoraTarget::V]);
    assert!(matches!(LoraTarget::parse_list("q,lm_head"), Err(LoraError::UnknownTarget(_))));
    assert_eq!(LoraTarget::Down.peft_module(), "mlp.down_proj");
    assert_eq!(LoraTarget::O.gguf_name(), "attn_output");
    assert_eq!(parse_lora_arg("a.gguf").unwrap(), ("a.gguf".into(), 1.0));
    assert_eq!(parse_lora_arg("dir/a.gguf:0.5").unwrap(), ("dir/a.gguf".into(), 0.5));
    assert_eq!(parse_lora_arg("x:y").unwrap(), ("x:y".into(), 1.0));
    assert!(parse_lora_arg(":2").is_err());
    assert!(parse_lora_arg("a:inf").is_err());
    assert!(parse_lora_arg("").is_err());
}

#[test]
fn stack_concatenates_adapters_with_scales() {
    let cfg = tiny();
    let (a, b) = (random_adapter(&cfg, 2, 11), random_adapter(&cfg, 3, 12));
    let stack = LoraStack::new(&cfg, &[(a.clone(), 0.5), (b.clone(), 2.0)]).unwrap();
    assert_eq!((stack.max_rank(), stack.n_adapters()), (5, 2));
    let t = stack.term(1, LoraTarget::Up).unwrap();
    let (pa, pb) = (&a.pairs[&(1, LoraTarget::Up)], &b.pairs[&(1, LoraTarget::Up)]);
    // ΔW of the stack = 0.5·sa·Ba·Aa + 2·sb·Bb·Ab.
    let dense = |p: &LoraPair, s: f32| {
        let mut w = vec![0.0f32; p.n_out * p.n_in];
        for o in 0..p.n_out {
            for i in 0..p.n_in {
                w[o * p.n_in + i] = s * (0..p.rank).map(|r| p.b[o * p.rank + r] * p.a[r * p.n_in + i]).sum::<f32>();
            }
        }
        w
    };
    let expected: Vec<f32> =
        dense(pa, 0.5 * a.scale()).iter().zip(dense(pb, 2.0 * b.scale())).map(|(x, y)| x + y).collect();
    let mut got = vec![0.0f32; expected.len()];
    t.add_delta_to(&mut got);
    for (g, e) in got.iter().zip(&expected) {
        assert!((g - e).abs() < 1e-5, "{g} vs {e}");
    }
    // add_to agrees with the dense ΔW·x.
    let pool = slm_kernels::Pool::new(2).unwrap();
    let x: Vec<f32> = (0..2 * t.n_in).map(|i| (i as f32 * 0.37).sin()).collect();
    let mut out = vec![1.0f32; 2 * t.n_out];
    let mut tmp = vec![0.0f32; 2 * t.rank];
    t.add_to(&pool, &x, 2, &mut out, &mut tmp);
    for tok in 0..2 {
        for o in 0..t.n_out {
            let e = 1.0 + (0..t.n_in).map(|i| expected[o * t.n_in + i] * x[tok * t.n_in + i]).sum::<f32>();
            assert!((out[tok * t.n_out + o] - e).abs() < 1e-5);
        }
    }
    assert!(LoraStack::new(&cfg, &[(a.clone(), 0.0)]).unwrap().is_empty());
    assert!(LoraStack::new(&cfg, &[(a, f32::NAN)]).is_err());
}

#[test]
fn mutated_adapter_files_never_panic() {
    // Deterministic byte flips all over a valid file: every outcome is Ok or a typed error.
    let bytes = random_adapter(&tiny(), 2, 4).to_gguf_writer().unwrap().to_bytes().unwrap();
    let mut rng = crate::random_init::SplitMix64::new(99);
    let (mut parsed, mut loaded) = (0, 0);
    for _ in 0..2000 {
        let mut b = bytes.clone();
        for _ in 0..1 + rng.next_u64() % 4 {
            let i = (rng.next_u64() % b.len() as u64) as usize;
            b[i] = rng.next_u64() as u8;
        }
        if let Ok(file) = GgufFile::from_bytes(b) {
            parsed += 1;
            if let Ok(a) = LoraAdapter::from_gguf(&file) {
                loaded += 1;
                let _ = a.check_against(&tiny());
            }
        }
    }
    assert!(parsed > 100 && loaded > 50, "mutations should mostly hit tensor data: {parsed} parsed, {loaded} loaded");
}
