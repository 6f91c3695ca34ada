//! LoRA adapters in the forward pass and merged into models, on small random models:
//! B = 0 changes nothing, applied == merged, several adapters add up, errors leave the model
//! untouched, and a merge into a re-quantized model stays close.

use slm_format::{GgmlType, GgufFile};
use slm_kernels::Pool;
use slm_model::arch::Arch;
use slm_model::lora::{merge_file, merge_gguf, LoraAdapter, LoraError, LoraTarget};
use slm_model::quantize::{FileType, QuantizeOptions};
use slm_model::random_init::random_llama_gguf;
use slm_model::{Logits, Model, ModelConfig};
use std::sync::Arc;

fn cfg() -> ModelConfig {
    ModelConfig {
        arch: Arch::Llama,
        n_vocab: 96,
        d_model: 64,
        n_layer: 2,
        n_head: 4,
        n_kv_head: 2,
        head_dim: 16,
        d_ff: 96,
        n_ctx_train: 64,
        rms_eps: 1e-5,
        rope_theta: 10000.0,
        tied_output: false,
    }
}

fn base_bytes(dtype: GgmlType) -> Vec<u8> {
    random_llama_gguf(&cfg(), dtype, 42).unwrap()
}

fn model(bytes: Vec<u8>) -> Model {
    Model::from_gguf(Arc::new(GgufFile::from_bytes(bytes).unwrap())).unwrap()
}

const TOKENS: [u32; 9] = [1, 17, 5, 88, 42, 3, 60, 60, 9];

/// Logits of a 7-token prompt (all rows) followed by two single-token decode steps.
fn logits(m: &Model) -> Vec<f32> {
    let pool = Pool::new(2).unwrap();
    let mut ctx = m.new_context(32, 4).unwrap();
    let mut out = m.forward_prompt(&mut ctx, &pool, &TOKENS[..7], Logits::All).unwrap().to_vec();
    for &t in &TOKENS[7..] {
        out.extend_from_slice(m.forward(&mut ctx, &pool, &[t], Logits::Last).unwrap());
    }
    out
}

fn adapter(targets: &[LoraTarget], rank: usize, seed: u64) -> LoraAdapter {
    let mut a = LoraAdapter::init(&cfg(), targets, rank, 2.0 * rank as f32, seed).unwrap();
    a.randomize_b(0.1, seed ^ 0xb);
    a
}

/// Largest |x - y| relative to the largest |y|.
fn rel_diff(x: &[f32], y: &[f32]) -> f32 {
    assert_eq!(x.len(), y.len());
    let scale = y.iter().fold(0f32, |m, v| m.max(v.abs()));
    x.iter().zip(y).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale
}

#[test]
fn zero_b_gives_identical_logits() {
    for dtype in [GgmlType::F32, GgmlType::Q8_0] {
        let base = logits(&model(base_bytes(dtype)));
        let fresh = LoraAdapter::init(&cfg(), &LoraTarget::ALL, 4, 8.0, 1).unwrap();
        let m = model(base_bytes(dtype)).with_adapters(&[(fresh, 1.0)]).unwrap();
        assert!(m.adapters().is_some());
        assert_eq!(logits(&m), base, "{dtype}: an adapter with B = 0 must not change any logit");
    }
}

#[test]
fn adapter_changes_logits_and_clearing_restores_base() {
    let mut m = model(base_bytes(GgmlType::F32));
    let base = logits(&m);
    m.set_adapters(&[(adapter(&LoraTarget::ALL, 4, 2), 1.0)]).unwrap();
    let adapted = logits(&m);
    assert!(rel_diff(&adapted, &base) > 1e-2, "the adapter should visibly change the logits");
    m.set_adapters(&[]).unwrap();
    assert!(m.adapters().is_none());
    assert_eq!(logits(&m), base);
}

#[test]
fn applied_equals_merged_for_every_target() {
    let bytes = base_bytes(GgmlType::F32);
    let file = GgufFile::from_bytes(bytes.clone()).unwrap();
    for targets in [vec![LoraTarget::Q], vec![LoraTarget::K, LoraTarget::O], LoraTarget::ALL.to_vec()] {
        let a = adapter(&targets, 3, 7);
        let applied = logits(&model(bytes.clone()).with_adapters(&[(a.clone(), 0.7)]).unwrap());
        let (w, report) = merge_gguf(&file, &[(a, 0.7)], None).unwrap();
        assert_eq!(report.n_merged, 2 * targets.len());
        let merged = logits(&model(w.to_bytes().unwrap()));
        let base = logits(&model(bytes.clone()));
        let d = rel_diff(&applied, &merged);
        assert!(d < 1e-4, "{targets:?}: applied vs merged differ by {d} (relative)");
        assert!(rel_diff(&applied, &base) > 1e-3, "{targets:?}: the adapter must matter for this test");
    }
}

#[test]
fn two_adapters_add_up() {
    let bytes = base_bytes(GgmlType::F32);
    let file = GgufFile::from_bytes(bytes.clone()).unwrap();
    let (a, b) = (adapter(&[LoraTarget::Q, LoraTarget::V, LoraTarget::Up], 2, 3), adapter(&LoraTarget::ALL, 5, 4));
    let both = [(a.clone(), 1.0), (b.clone(), -0.5)];
    let applied = logits(&model(bytes.clone()).with_adapters(&both).unwrap());
    let merged = logits(&model(merge_gguf(&file, &both, None).unwrap().0.to_bytes().unwrap()));
    let d = rel_diff(&applied, &merged);
    assert!(d < 1e-4, "two adapters applied vs merged: {d}");
    // Merging one, then applying the other, is the same model again.
    let only_a = model(merge_gguf(&file, &[(a.clone(), 1.0)], None).unwrap().0.to_bytes().unwrap());
    let d = rel_diff(&logits(&only_a.with_adapters(&[(b, -0.5)]).unwrap()), &applied);
    assert!(d < 1e-4, "merge a + apply b vs apply both: {d}");
    // A scale splits across copies of the same adapter.
    let halves = logits(&model(bytes.clone()).with_adapters(&[(a.clone(), 0.5), (a.clone(), 0.5)]).unwrap());
    let whole = logits(&model(bytes).with_adapters(&[(a, 1.0)]).unwrap());
    assert!(rel_diff(&halves, &whole) < 1e-5);
}

#[test]
fn bad_adapters_are_refused_and_leave_the_model_unchanged() {
    let mut m = model(base_bytes(GgmlType::F32));
    let good = adapter(&[LoraTarget::Q], 2, 5);
    m.set_adapters(&[(good.clone(), 1.0)]).unwrap();
    let before = logits(&m);
    let other = ModelConfig { d_model: 32, ..cfg() };
    let wrong = LoraAdapter::init(&other, &[LoraTarget::Q], 2, 4.0, 1).unwrap();
    assert!(matches!(m.set_adapters(&[(good.clone(), 1.0), (wrong, 1.0)]), Err(LoraError::Shape { .. })));
    let mut qwen = good.clone();
    qwen.arch = "qwen2".into();
    assert!(matches!(m.set_adapters(&[(qwen, 1.0)]), Err(LoraError::ArchMismatch { .. })));
    assert!(m.set_adapters(&[(good, f32::INFINITY)]).is_err());
    assert_eq!(logits(&m), before);
}

#[test]
fn merge_file_keeps_types_or_requantizes() {
    let dir = tempfile::tempdir().unwrap();
    let base_path = dir.path().join("base.gguf");
    std::fs::write(&base_path, base_bytes(GgmlType::F32)).unwrap();
    let a = adapter(&LoraTarget::ALL, 4, 9);
    let applied = logits(&model(base_bytes(GgmlType::F32)).with_adapters(&[(a.clone(), 1.0)]).unwrap());

    let q8 = dir.path().join("merged-q8.gguf");
    let opts =
        QuantizeOptions { allow_requantize: true, ..QuantizeOptions::preset(FileType::parse("Q8_0").unwrap(), 2) };
    let report = merge_file(&base_path, &[(a.clone(), 1.0)], &q8, Some(&opts)).unwrap();
    assert_eq!(report.n_merged, 14);
    assert!(report.quantize.is_some());
    let file = GgufFile::open(&q8).unwrap();
    assert_eq!(file.tensor("blk.1.ffn_down.weight").unwrap().dtype, GgmlType::Q8_0);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "the F32 intermediate must be removed: {names:?}");
    let d = rel_diff(&logits(&model(std::fs::read(&q8).unwrap())), &applied);
    assert!(d < 0.05, "Q8_0 merge vs applied: {d}");

    let same = dir.path().join("merged.gguf");
    merge_file(&base_path, &[(a, 1.0)], &same, None).unwrap();
    assert_eq!(GgufFile::open(&same).unwrap().tensor("blk.0.attn_q.weight").unwrap().dtype, GgmlType::F32);
    assert!(merge_file(&base_path, &[], &base_path, None).is_err(), "writing over the base is refused");
}
