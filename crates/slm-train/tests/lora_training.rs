//! LoRA training: the adapter's gradients against finite differences, B = 0 changes nothing,
//! the adapted training forward equals the merged model and slm-model's run-time adapters, and
//! training on a quantized base learns.

mod common;

use common::{lively_params, random_tokens, tiny_config};
use slm_format::{GgmlType, GgufFile};
use slm_kernels::Pool;
use slm_model::lora::{LoraAdapter, LoraTarget};
use slm_model::{Logits, Model, ModelConfig};
use slm_train::lora::{AdapterLayout, FrozenBase, LoraTrainer, LoraWeights, SftConfig};
use slm_train::ops::IGNORE_TARGET;
use slm_train::sft_data::SftExample;
use slm_train::{export_gguf_bytes, AdamWConfig, Schedule, TrainModel, Workspace};
use std::sync::Arc;

fn config() -> ModelConfig {
    let mut cfg = tiny_config(true);
    cfg.d_model = 32;
    cfg.head_dim = 8;
    cfg.d_ff = 64;
    cfg.n_vocab = 40;
    cfg
}

/// An F32 base model file with lively weights, and those weights.
fn f32_base(cfg: &ModelConfig) -> (Arc<GgufFile>, Vec<f32>) {
    let model = TrainModel::new(cfg.clone()).unwrap();
    let params = lively_params(model.layout(), 11);
    let bytes = export_gguf_bytes(cfg, model.layout(), &params, None).unwrap();
    (Arc::new(GgufFile::from_bytes(bytes).unwrap()), params)
}

fn adapter(cfg: &ModelConfig, random_b: bool) -> LoraAdapter {
    let mut a = LoraAdapter::init(cfg, &LoraTarget::ALL, 4, 8.0, 5).unwrap();
    if random_b {
        a.randomize_b(0.3, 6);
    }
    a
}

fn lora_logits(base: &FrozenBase, adapter: &LoraAdapter, tokens: &[u32]) -> Vec<f32> {
    let (layout, values) = AdapterLayout::from_adapter(adapter);
    let w = LoraWeights { base, layout: &layout, values: &values };
    let mut ws = Workspace::new();
    base.model().forward_with(&w, tokens, tokens.len(), &mut ws).unwrap();
    ws.logits().to_vec()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn zero_b_gives_the_base_model_exactly() {
    let cfg = config();
    let (file, params) = f32_base(&cfg);
    let base = FrozenBase::open(file).unwrap();
    let tokens = random_tokens(10, cfg.n_vocab, 1);
    let mine = lora_logits(&base, &adapter(&cfg, false), &tokens);
    let mut ws = Workspace::new();
    base.model().forward(&params, &tokens, tokens.len(), &mut ws).unwrap();
    assert_eq!(mine, ws.logits(), "B = 0 must leave every logit bit-identical");
}

#[test]
fn applied_adapter_equals_the_merged_model_and_slm_models_runtime_adapter() {
    let cfg = config();
    let (file, params) = f32_base(&cfg);
    let base = FrozenBase::open(file.clone()).unwrap();
    let ad = adapter(&cfg, true);
    let tokens = random_tokens(12, cfg.n_vocab, 2);
    let mine = lora_logits(&base, &ad, &tokens);

    // Merge W' = W + s·B·A into a copy of the full parameters.
    let model = TrainModel::new(cfg.clone()).unwrap();
    let mut merged = params.clone();
    for (&(layer, target), pair) in &ad.pairs {
        let spec = model.layout().tensor(&target.weight_name(layer)).unwrap();
        let s = ad.pair_scale(pair);
        for o in 0..pair.n_out {
            for i in 0..pair.n_in {
                let delta: f32 = (0..pair.rank).map(|r| pair.b[o * pair.rank + r] * pair.a[r * pair.n_in + i]).sum();
                merged[spec.offset + o * pair.n_in + i] += s * delta;
            }
        }
    }
    let mut ws = Workspace::new();
    model.forward(&merged, &tokens, tokens.len(), &mut ws).unwrap();
    let scale = ws.logits().iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let d_merged = max_diff(&mine, ws.logits());
    assert!(d_merged <= 1e-4 * (1.0 + scale), "applied vs merged: max |Δ| {d_merged} (scale {scale})");
    assert!(max_diff(&mine, &lora_logits(&base, &adapter(&cfg, false), &tokens)) > 1e-3, "the adapter must change logits");

    // slm-model applies the same adapter at run time (after a GGUF round trip).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("adapter.gguf");
    ad.save_gguf(&path).unwrap();
    let loaded = LoraAdapter::load_gguf(&path).unwrap();
    let runtime = Model::from_gguf(file).unwrap().with_adapters(&[(loaded, 1.0)]).unwrap();
    let pool = Pool::new(1).unwrap();
    let mut ctx = runtime.new_context(tokens.len(), tokens.len()).unwrap();
    let theirs = runtime.forward(&mut ctx, &pool, &tokens, Logits::All).unwrap().to_vec();
    let d_runtime = max_diff(&mine, &theirs);
    assert!(d_runtime <= 1e-4 * (1.0 + scale), "training vs slm-model adapters: max |Δ| {d_runtime}");
}

/// Loss of `examples` (one sequence) for adapter `values`.
fn loss_at(base: &FrozenBase, layout: &AdapterLayout, values: &[f32], tokens: &[u32], targets: &[u32]) -> f64 {
    let w = LoraWeights { base, layout, values };
    let mut ws = Workspace::new();
    base.model().eval_loss_with(&w, tokens, targets, tokens.len(), &mut ws).unwrap()
}

#[test]
fn adapter_gradients_match_finite_differences() {
    let cfg = config();
    let (file, _) = f32_base(&cfg);
    let base = FrozenBase::open(file).unwrap();
    let ad = adapter(&cfg, true);
    let (layout, values) = AdapterLayout::from_adapter(&ad);
    let tokens = random_tokens(9, cfg.n_vocab, 3);
    // Train on the second half only, as instruction tuning does.
    let mut targets = random_tokens(9, cfg.n_vocab, 4);
    targets[..4].fill(IGNORE_TARGET);
    let counted = 5.0;
    let w = LoraWeights { base: &base, layout: &layout, values: &values };
    let mut grads = vec![0.0f32; layout.len()];
    let mut ws = Workspace::new();
    base.model()
        .forward_backward_with(&w, &mut grads, &tokens, &targets, tokens.len(), 1.0 / counted, &mut ws)
        .unwrap();
    // Coordinates in A and in B of the first and last pairs.
    let first = layout.slot(0, LoraTarget::Q).unwrap();
    let last = layout.slot(1, LoraTarget::Down).unwrap();
    let probes = [first.a, first.a + 7, first.b + 3, last.a + 5, last.b, last.b + 11];
    let eps = 1e-2f32;
    for &i in &probes {
        let mut plus = values.clone();
        plus[i] += eps;
        let mut minus = values.clone();
        minus[i] -= eps;
        let numeric = (loss_at(&base, &layout, &plus, &tokens, &targets)
            - loss_at(&base, &layout, &minus, &tokens, &targets))
            / (2.0 * eps as f64);
        let analytic = grads[i] as f64;
        assert!(
            (numeric - analytic).abs() <= 2e-3 + 2e-2 * analytic.abs(),
            "coordinate {i}: numeric {numeric:.6} vs analytic {analytic:.6}"
        );
    }
    assert!(grads.iter().any(|g| g.abs() > 1e-6));
}

#[test]
fn training_on_a_quantized_base_learns_the_answers_and_leaves_prompts_alone() {
    let cfg = config();
    let model = TrainModel::new(cfg.clone()).unwrap();
    let params = lively_params(model.layout(), 21);
    let f32_bytes = export_gguf_bytes(&cfg, model.layout(), &params, None).unwrap();
    // A Q8_0 base (different random weights): the frozen matrices stay quantized.
    let q8 = slm_model::random_init::random_llama_gguf(&cfg, GgmlType::Q8_0, 9).unwrap();
    for bytes in [f32_bytes, q8] {
        let base = FrozenBase::open(Arc::new(GgufFile::from_bytes(bytes).unwrap())).unwrap();
        // Four "prompts" with a fixed two-token answer each.
        let examples: Vec<SftExample> = (0..4u32)
            .map(|k| {
                let tokens = vec![1 + k, 5 + k, 9, 30 + k, 20 + k];
                let mut targets = vec![IGNORE_TARGET; 5];
                targets[3] = 20 + k;
                targets[4] = 2;
                SftExample { tokens, targets }
            })
            .collect();
        let cfg_train = SftConfig {
            batch_size: 4,
            micro_batch_tokens: 64,
            seed: 1,
            optim: AdamWConfig { weight_decay: 0.0, ..AdamWConfig::with_lr(2e-2) },
            schedule: Schedule::Constant { warmup: 0 },
            clip_grad_norm: Some(1.0),
        };
        let ad = LoraAdapter::init(&cfg, &[LoraTarget::Q, LoraTarget::V, LoraTarget::Down], 4, 8.0, 3).unwrap();
        let mut trainer = LoraTrainer::new(base, &ad, cfg_train, examples.clone()).unwrap();
        let before = trainer.evaluate(&examples).unwrap();
        let first = trainer.step().unwrap();
        assert_eq!(first.trained, 8);
        assert!((first.loss - before).abs() < 1e-6, "step loss {} vs eval {}", first.loss, before);
        for _ in 0..60 {
            trainer.step().unwrap();
        }
        let after = trainer.evaluate(&examples).unwrap();
        assert!(after < 0.3 * before, "loss {before:.3} → {after:.3}");
        let trained = trainer.adapter().unwrap();
        assert_eq!(trained.pairs.len(), 3 * cfg.n_layer);
        assert!(trained.pairs.values().any(|p| p.b.iter().any(|&x| x != 0.0)), "B must have moved");
    }
}
