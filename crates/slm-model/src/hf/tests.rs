//! Round trips on random models and hand-made tokenizers; the real model is checked in
//! `slm-cli/tests/cli/convert.rs` (needs the tokenizer of slm-runtime).

use std::sync::Arc;

use slm_format::safetensors::{Dtype, SafetensorsFile};
use slm_format::{GgmlType, GgufFile, GgufWriter};
use slm_kernels::Pool;

use super::*;
use crate::random_init::random_llama_gguf;
use crate::{Arch, Logits, Model, ModelConfig};

fn tiny(tied: bool) -> ModelConfig {
    ModelConfig {
        arch: Arch::Llama,
        n_vocab: 96,
        d_model: 64,
        n_layer: 2,
        n_head: 4,
        n_kv_head: 2,
        head_dim: 16,
        d_ff: 96,
        n_ctx_train: 128,
        rms_eps: 1e-5,
        rope_theta: 10_000.0,
        tied_output: tied,
    }
}

fn logits(file: GgufFile, tokens: &[u32]) -> Vec<f32> {
    let model = Model::from_gguf(Arc::new(file)).unwrap();
    let pool = Pool::new(1).unwrap();
    let mut ctx = model.new_context(32, 8).unwrap();
    model.forward(&mut ctx, &pool, tokens, Logits::All).unwrap().to_vec()
}

fn no_progress() -> impl FnMut(Progress) {
    |_| {}
}

#[test]
fn permutation_matches_llama_cpp_and_inverts() {
    // 1 head of dim 4, 1 column: HF rows [a0 a1 | b0 b1] (rotate_half pairs a_j with b_j)
    // become GGUF rows [a0 b0 a1 b1] (adjacent pairs).
    let hf = [0.0, 1.0, 2.0, 3.0];
    assert_eq!(permute_qk(&hf, 1, 1).unwrap(), vec![0.0, 2.0, 1.0, 3.0]);
    let w: Vec<f32> = (0..2 * 8 * 3).map(|i| i as f32).collect();
    let p = permute_qk(&w, 2, 3).unwrap();
    assert_ne!(p, w);
    assert_eq!(unpermute_qk(&p, 2, 3).unwrap(), w);
    assert!(permute_qk(&w, 5, 3).is_none());
}

#[test]
fn names_map_both_ways() {
    for (hf, gguf) in [
        ("model.layers.7.self_attn.q_proj.weight", "blk.7.attn_q.weight"),
        ("model.layers.0.mlp.down_proj.weight", "blk.0.ffn_down.weight"),
        ("model.layers.12.post_attention_layernorm.weight", "blk.12.ffn_norm.weight"),
        ("model.embed_tokens.weight", "token_embd.weight"),
        ("lm_head.weight", "output.weight"),
    ] {
        assert_eq!(hf_to_gguf_name(hf).as_deref(), Some(gguf));
        assert_eq!(gguf_to_hf_name(gguf).as_deref(), Some(hf));
    }
    assert!(hf_to_gguf_name("model.layers.x.mlp.up_proj.weight").is_none());
    assert!(gguf_to_hf_name("rope_freqs.weight").is_none());
}

fn round_trip(tied: bool) {
    let cfg = tiny(tied);
    let bytes = random_llama_gguf(&cfg, GgmlType::F32, 7).unwrap();
    let original = GgufFile::from_bytes(bytes.clone()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hf_dir = dir.path().join("hf");
    let mut steps = 0;
    let summary = export_hf(&original, &hf_dir, &ExportOptions::default(), &mut |_| steps += 1).unwrap();
    assert_eq!(summary.n_tensors, original.tensors().len());
    assert!(steps > summary.n_tensors);
    assert!(!summary.tokenizer);

    // HF layout: PyTorch shapes, Q rows permuted back.
    let st = SafetensorsFile::open(&hf_dir.join("model.safetensors")).unwrap();
    let q = st.tensor("model.layers.0.self_attn.q_proj.weight").unwrap();
    assert_eq!((q.dtype, q.shape.clone()), (Dtype::F32, vec![64, 64]));
    assert_eq!(st.tensor("lm_head.weight").is_some(), !tied);
    let cfg_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(hf_dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg_json["num_key_value_heads"], 2);
    assert_eq!(cfg_json["rms_norm_eps"].as_f64(), Some(1e-5));
    assert_eq!(cfg_json["tie_word_embeddings"], tied);

    let out = dir.path().join("back.gguf");
    import_hf(&hf_dir, &out, &ImportOptions::default(), &mut no_progress()).unwrap();
    let back = GgufFile::open(&out).unwrap();
    assert_eq!(back.tensors().len(), original.tensors().len());
    for t in original.tensors() {
        let b = back.tensor(&t.name).unwrap_or_else(|| panic!("{} missing", t.name));
        assert_eq!((b.dtype, &b.dims), (t.dtype, &t.dims), "{}", t.name);
        assert!(original.tensor_data(t) == back.tensor_data(b), "{} differs", t.name);
    }
    assert_eq!(ModelConfig::from_gguf(&back).unwrap(), cfg);
    let tokens = [1, 5, 9, 33, 2, 95];
    let a = logits(original, &tokens);
    let b = logits(back, &tokens);
    assert_eq!(a, b, "logits differ after GGUF → HF → GGUF");
}

#[test]
fn random_model_round_trip_is_exact_tied() {
    round_trip(true);
}

#[test]
fn random_model_round_trip_is_exact_untied() {
    round_trip(false);
}

#[test]
fn f16_and_bf16_exports_read_back_within_rounding() {
    let cfg = tiny(true);
    let original = GgufFile::from_bytes(random_llama_gguf(&cfg, GgmlType::F32, 3).unwrap()).unwrap();
    for (ft, dtype, tol) in [(FloatType::F16, Dtype::F16, 1e-3f32), (FloatType::BF16, Dtype::BF16, 8e-3)] {
        let dir = tempfile::tempdir().unwrap();
        export_hf(&original, dir.path(), &ExportOptions { dtype: ft, ..ExportOptions::default() }, &mut no_progress()).unwrap();
        let st = SafetensorsFile::open(&dir.path().join("model.safetensors")).unwrap();
        let e = st.tensor("model.embed_tokens.weight").unwrap();
        assert_eq!(e.dtype, dtype);
        let want = original.tensor("token_embd.weight").unwrap();
        let want: Vec<f32> =
            original.tensor_data(want).chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        let got = st.tensor_f32(e).unwrap();
        let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(err > 0.0 && err < tol, "{dtype}: max error {err}");
        // Importing as the same type keeps matrices in it, norms in F32.
        let out = dir.path().join("m.gguf");
        import_hf(dir.path(), &out, &ImportOptions { dtype: ft, name: None }, &mut no_progress()).unwrap();
        let g = GgufFile::open(&out).unwrap();
        assert_eq!(g.tensor("blk.0.attn_q.weight").unwrap().dtype, ft.ggml());
        assert_eq!(g.tensor("blk.0.attn_norm.weight").unwrap().dtype, GgmlType::F32);
        Model::from_gguf(Arc::new(g)).unwrap();
    }
}

#[test]
fn import_reports_missing_and_unknown_pieces() {
    let cfg = tiny(false);
    let original = GgufFile::from_bytes(random_llama_gguf(&cfg, GgmlType::F32, 3).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    export_hf(&original, dir.path(), &ExportOptions::default(), &mut no_progress()).unwrap();
    // Untied config without lm_head.
    let st = SafetensorsFile::open(&dir.path().join("model.safetensors")).unwrap();
    let mut w = slm_format::safetensors::SafetensorsWriter::new();
    for t in st.tensors().iter().filter(|t| t.name != "lm_head.weight") {
        w.add_tensor(t.name.clone(), t.dtype, &t.shape, st.tensor_data(t).to_vec()).unwrap();
    }
    drop(st);
    w.write_file(&dir.path().join("model.safetensors")).unwrap();
    let err = import_hf(dir.path(), &dir.path().join("x.gguf"), &ImportOptions::default(), &mut no_progress()).unwrap_err();
    assert!(err.to_string().contains("lm_head.weight"), "{err}");
    // An unknown tensor.
    w.add_f32("model.layers.0.mlp.experts.0.w1.weight", Dtype::F32, &[64], &[0.0; 64]).unwrap();
    w.write_file(&dir.path().join("model.safetensors")).unwrap();
    let err = import_hf(dir.path(), &dir.path().join("x.gguf"), &ImportOptions::default(), &mut no_progress()).unwrap_err();
    assert!(err.to_string().contains("experts.0.w1"), "{err}");
    // No config.
    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    let err = import_hf(dir.path(), &dir.path().join("x.gguf"), &ImportOptions::default(), &mut no_progress()).unwrap_err();
    assert!(err.to_string().contains("config.json"), "{err}");
    assert!(!dir.path().join("x.gguf").exists());
}

/// A byte-level BPE vocabulary in GGUF form: 6 normal tokens, one control, one user-defined.
fn tiny_vocab(w: &mut GgufWriter, pre: &str) {
    w.add_string("tokenizer.ggml.model", "gpt2");
    w.add_string("tokenizer.ggml.pre", pre);
    w.add_str_array("tokenizer.ggml.tokens", &["a", "b", "ab", "Ġ", "Ġab", "c", "<|im_end|>", "<x>"]);
    w.add_i32_array("tokenizer.ggml.token_type", &[1, 1, 1, 1, 1, 1, 3, 4]);
    w.add_str_array("tokenizer.ggml.merges", &["a b", "Ġ ab"]);
    w.add_u32("tokenizer.ggml.bos_token_id", 6);
    w.add_u32("tokenizer.ggml.eos_token_id", 6);
    w.add_bool("tokenizer.ggml.add_bos_token", false);
    w.add_string("tokenizer.chat_template", "{{ messages }}");
}

#[test]
fn tokenizer_keys_survive_gguf_hf_gguf() {
    for pre in ["smollm", "gpt2", "llama-bpe", "qwen2"] {
        let mut w = GgufWriter::new();
        tiny_vocab(&mut w, pre);
        let file = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
        let (tok, cfg) = gguf_tokenizer_to_hf(file.metadata(), 64).unwrap();
        assert_eq!(cfg["eos_token"], "<|im_end|>");
        assert_eq!(cfg["chat_template"], "{{ messages }}");
        let files = HfTokenizerFiles { tokenizer: tok, config: Some(cfg), chat_template: None };
        let mut back = GgufWriter::new();
        hf_tokenizer_to_gguf(&files, 8, FallbackIds::default(), &mut back).unwrap();
        let back = GgufFile::from_bytes(back.to_bytes().unwrap()).unwrap();
        for key in ["tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges", "tokenizer.ggml.pre",
            "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.chat_template", "tokenizer.ggml.add_bos_token"]
        {
            assert_eq!(back.metadata().get(key), file.metadata().get(key), "{pre}: {key}");
        }
    }
}

#[test]
fn hf_tokenizer_edge_cases() {
    let mut w = GgufWriter::new();
    tiny_vocab(&mut w, "smollm");
    let file = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    let (mut tok, _) = gguf_tokenizer_to_hf(file.metadata(), 64).unwrap();
    // Padding to the embedding's row count, config.json fallback ids.
    let files = HfTokenizerFiles { tokenizer: tok.clone(), config: None, chat_template: Some("T".into()) };
    let mut out = GgufWriter::new();
    hf_tokenizer_to_gguf(&files, 10, FallbackIds { bos: Some(5), eos: None, pad: Some(6) }, &mut out).unwrap();
    let md = out.metadata();
    assert_eq!(md.get_str_array("tokenizer.ggml.tokens").unwrap()[9], "[PAD9]");
    assert_eq!(md.get_u32("tokenizer.ggml.bos_token_id").unwrap(), 5);
    assert_eq!(md.get_u32("tokenizer.ggml.padding_token_id").unwrap(), 6);
    assert_eq!(md.get_str("tokenizer.chat_template").unwrap(), "T");
    // Unknown pre-tokenizer and non-BPE model are refused with a reason.
    tok["pre_tokenizer"] = serde_json::json!({"type": "Whitespace"});
    let files = HfTokenizerFiles { tokenizer: tok.clone(), config: None, chat_template: None };
    let err = hf_tokenizer_to_gguf(&files, 8, FallbackIds::default(), &mut GgufWriter::new()).unwrap_err();
    assert!(err.to_string().contains("pre-tokenizer"), "{err}");
    tok["model"]["type"] = serde_json::json!("WordPiece");
    let files = HfTokenizerFiles { tokenizer: tok, config: None, chat_template: None };
    let err = hf_tokenizer_to_gguf(&files, 8, FallbackIds::default(), &mut GgufWriter::new()).unwrap_err();
    assert!(err.to_string().contains("WordPiece"), "{err}");
}

#[test]
fn import_checks_layer_count_against_config() {
    let cfg = tiny(true);
    let original = GgufFile::from_bytes(random_llama_gguf(&cfg, GgmlType::F32, 3).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    export_hf(&original, dir.path(), &ExportOptions::default(), &mut no_progress()).unwrap();
    let path = dir.path().join("config.json");
    let text = std::fs::read_to_string(&path).unwrap();
    for (layers, needle) in [("3", "model.layers.2.input_layernorm.weight`: is missing"), ("1", "model.layers.1.")] {
        std::fs::write(&path, text.replace("\"num_hidden_layers\": 2", &format!("\"num_hidden_layers\": {layers}"))).unwrap();
        let err = build_gguf(dir.path(), &ImportOptions::default(), &mut no_progress()).unwrap_err();
        assert!(err.to_string().contains(needle), "{layers}: {err}");
    }
}

#[test]
fn export_refuses_an_unsupported_tokenizer_before_writing() {
    let cfg = tiny(true);
    let mut file = GgufFile::from_bytes(random_llama_gguf(&cfg, GgmlType::F32, 3).unwrap()).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in file.metadata().iter() {
        w.add(k, v.clone());
    }
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_str_array("tokenizer.ggml.tokens", &["<unk>"]);
    for t in file.tensors() {
        w.add_tensor(t.name.clone(), &t.dims, t.dtype, file.tensor_data(t).to_vec()).unwrap();
    }
    file = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hf");
    let err = export_hf(&file, &out, &ExportOptions::default(), &mut no_progress()).unwrap_err();
    assert!(err.to_string().contains("\"llama\""), "{err}");
    assert!(!out.exists());
}

#[test]
fn sharded_export_writes_an_index_and_imports_identically() {
    let cfg = tiny(false);
    let bytes = random_llama_gguf(&cfg, GgmlType::F32, 11).unwrap();
    let original = GgufFile::from_bytes(bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A single file first, then shards of at most 40 kB into the same directory.
    export_hf(&original, dir.path(), &ExportOptions::default(), &mut no_progress()).unwrap();
    let opts = ExportOptions { max_shard_bytes: 40_000, ..ExportOptions::default() };
    export_hf(&original, dir.path(), &opts, &mut no_progress()).unwrap();
    assert!(!dir.path().join("model.safetensors").exists(), "the stale single file must go");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("model.safetensors.index.json")).unwrap()).unwrap();
    let map = index["weight_map"].as_object().unwrap();
    assert_eq!(map.len(), original.tensors().len());
    let mut shards: Vec<&str> = map.values().map(|v| v.as_str().unwrap()).collect();
    shards.sort_unstable();
    shards.dedup();
    assert!(shards.len() >= 3, "{shards:?}");
    for s in &shards {
        let len = std::fs::metadata(dir.path().join(s)).unwrap().len();
        // One tensor (the 96x64 f32 embedding = 24.6 kB) plus header may reach the limit alone.
        assert!(len <= 40_000 + 4096, "{s}: {len} bytes");
    }
    let total: u64 = original.tensors().iter().map(|t| t.n_bytes).sum();
    assert_eq!(index["metadata"]["total_size"].as_u64(), Some(total));

    let out = dir.path().join("back.gguf");
    import_hf(dir.path(), &out, &ImportOptions::default(), &mut no_progress()).unwrap();
    let back = GgufFile::open(&out).unwrap();
    for t in original.tensors() {
        assert!(original.tensor_data(t) == back.tensor_data(back.tensor(&t.name).unwrap()), "{}", t.name);
    }
    // And back to one file: the index goes.
    export_hf(&original, dir.path(), &ExportOptions::default(), &mut no_progress()).unwrap();
    assert!(!dir.path().join("model.safetensors.index.json").exists());
    assert!(dir.path().join("model.safetensors").exists());
}

/// A random Qwen2 GGUF: the Llama tensors plus Q/K/V biases.
fn random_qwen2() -> GgufFile {
    let cfg = ModelConfig { arch: Arch::Qwen2, ..tiny(true) };
    let base = GgufFile::from_bytes(random_llama_gguf(&cfg, GgmlType::F32, 21).unwrap()).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in base.metadata().iter() {
        w.add(k, v.clone());
    }
    for t in base.tensors() {
        w.add_tensor(t.name.clone(), &t.dims, t.dtype, base.tensor_data(t).to_vec()).unwrap();
    }
    for i in 0..cfg.n_layer {
        for (s, n) in [("attn_q", cfg.q_dim()), ("attn_k", cfg.kv_dim()), ("attn_v", cfg.kv_dim())] {
            let b: Vec<f32> = (0..n).map(|j| ((i * 31 + j) % 7) as f32 * 0.05 - 0.15).collect();
            w.add_tensor_f32(format!("blk.{i}.{s}.bias"), &[n as u64], &b).unwrap();
        }
    }
    GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap()
}

#[test]
fn qwen2_round_trip_keeps_biases_and_rope_order() {
    let original = random_qwen2();
    let dir = tempfile::tempdir().unwrap();
    export_hf(&original, dir.path(), &ExportOptions::default(), &mut no_progress()).unwrap();
    let cfg_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg_json["model_type"], "qwen2");
    assert_eq!(cfg_json["architectures"][0], "Qwen2ForCausalLM");
    // NeoX RoPE: HF rows are GGUF rows, no permutation; biases keep their order too.
    let st = SafetensorsFile::open(&dir.path().join("model.safetensors")).unwrap();
    for (hf, gguf) in [("model.layers.1.self_attn.k_proj.weight", "blk.1.attn_k.weight"), ("model.layers.0.self_attn.q_proj.bias", "blk.0.attn_q.bias")] {
        let t = original.tensor(gguf).unwrap();
        assert!(st.tensor_data(st.tensor(hf).unwrap()) == original.tensor_data(t), "{hf}");
    }
    let out = dir.path().join("back.gguf");
    import_hf(dir.path(), &out, &ImportOptions::default(), &mut no_progress()).unwrap();
    let back = GgufFile::open(&out).unwrap();
    assert_eq!(back.metadata().get_str("general.architecture").unwrap(), "qwen2");
    assert_eq!(back.tensors().len(), original.tensors().len());
    for t in original.tensors() {
        assert!(original.tensor_data(t) == back.tensor_data(back.tensor(&t.name).unwrap()), "{}", t.name);
    }
    let tokens = [3, 1, 4, 1, 5, 9, 2, 6];
    assert_eq!(logits(original, &tokens), logits(back, &tokens));
}

#[test]
fn llama_with_biases_is_refused_with_the_tensor_name() {
    let original = random_qwen2();
    let dir = tempfile::tempdir().unwrap();
    export_hf(&original, dir.path(), &ExportOptions::default(), &mut no_progress()).unwrap();
    let path = dir.path().join("config.json");
    let text = std::fs::read_to_string(&path).unwrap().replace("\"qwen2\"", "\"llama\"");
    std::fs::write(&path, text).unwrap();
    let err = build_gguf(dir.path(), &ImportOptions::default(), &mut no_progress()).unwrap_err();
    assert!(err.to_string().contains("_proj.bias"), "{err}");
}

#[test]
fn add_bos_comes_from_a_template_post_processor_when_the_config_is_silent() {
    let mut w = GgufWriter::new();
    tiny_vocab(&mut w, "llama-bpe");
    w.add_bool("tokenizer.ggml.add_bos_token", true);
    let file = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    let (tok, _) = gguf_tokenizer_to_hf(file.metadata(), 64).unwrap();
    assert_eq!(tok["post_processor"]["type"], "TemplateProcessing");
    for (post, want) in [
        (tok["post_processor"].clone(), Some(true)),
        (serde_json::json!({"type": "Sequence", "processors": [{"type": "ByteLevel"}, tok["post_processor"].clone()]}), Some(true)),
        (serde_json::json!({"type": "ByteLevel"}), None),
    ] {
        let mut t = tok.clone();
        t["post_processor"] = post;
        let files = HfTokenizerFiles { tokenizer: t, config: None, chat_template: None };
        let mut out = GgufWriter::new();
        hf_tokenizer_to_gguf(&files, 8, FallbackIds::default(), &mut out).unwrap();
        assert_eq!(out.metadata().get_bool_opt("tokenizer.ggml.add_bos_token").unwrap(), want);
    }
}
