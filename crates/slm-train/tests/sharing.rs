//! Parameter sharing across layers (`BlockMap`): a shared model's gradients match finite
//! differences; it computes exactly what the unshared model with copied blocks computes (the
//! shared block's gradient is the sum over the layers that run it); its files store each shared
//! block once with `slm.block_map`, slm-model loads them to the same logits, and checkpoints
//! resume bit for bit.

mod common;

use common::{lively_params, random_tokens, tiny_config};
use slm_format::GgufFile;
use slm_kernels::Pool;
use slm_model::{Logits, Model, ModelConfig};
use slm_train::export::{export_gguf_bytes, import_gguf, import_gguf_model, unshare};
use slm_train::layout::BlockMap;
use slm_train::{AdamWConfig, Schedule, TrainConfig, TrainModel, Trainer, Workspace};
use std::sync::Arc;

/// Four layers on two stored blocks.
fn config() -> ModelConfig {
    let mut cfg = tiny_config(true);
    cfg.n_layer = 4;
    cfg
}

fn grads_of(
    model: &TrainModel,
    params: &[f32],
    tokens: &[u32],
    targets: &[u32],
    t: usize,
) -> (f64, Vec<f32>) {
    let mut g = vec![0.0f32; params.len()];
    let mut ws = Workspace::new();
    let scale = 1.0 / tokens.len() as f32;
    let loss = model
        .forward_backward(params, &mut g, tokens, targets, t, scale, &mut ws)
        .unwrap();
    (loss, g)
}

#[test]
fn shared_gradients_match_finite_differences() {
    for spec in ["repeat:2", "cycle:2", "all"] {
        let cfg = config();
        let model =
            TrainModel::with_sharing(cfg.clone(), BlockMap::parse(spec, 4).unwrap()).unwrap();
        let params = lively_params(model.layout(), 5);
        let (b, t) = (2, 5);
        let tokens = random_tokens(b * t, cfg.n_vocab, 6);
        let targets = random_tokens(b * t, cfg.n_vocab, 7);
        let (_, grads) = grads_of(&model, &params, &tokens, &targets, t);
        let mut ws = Workspace::new();
        let mut p = params.clone();
        let h = 1e-3f32;
        let mut checked = 0;
        for spec_t in model
            .layout()
            .tensors
            .iter()
            .filter(|s| s.name.starts_with("blk."))
        {
            // Every 3rd element keeps the test quick; all tensors of the shared blocks are hit.
            for i in spec_t.range().step_by(3) {
                let x = p[i];
                p[i] = x + h;
                let (up, fp) = (
                    p[i],
                    model.eval_loss(&p, &tokens, &targets, t, &mut ws).unwrap(),
                );
                p[i] = x - h;
                let (down, fm) = (
                    p[i],
                    model.eval_loss(&p, &tokens, &targets, t, &mut ws).unwrap(),
                );
                p[i] = x;
                let num = (fp - fm) / (up - down) as f64;
                let ana = grads[i] as f64;
                assert!(
                    (num - ana).abs() <= 1e-3 + 2e-2 * ana.abs(),
                    "{spec}: {} element {}: analytic {ana} vs numeric {num}",
                    spec_t.name,
                    i - spec_t.offset
                );
                checked += 1;
            }
        }
        assert!(checked > 600, "{spec}: {checked}");
    }
}

#[test]
fn shared_model_equals_the_unshared_model_with_copied_blocks() {
    let cfg = config();
    let map = BlockMap::parse("cycle:2", 4).unwrap();
    let shared = TrainModel::with_sharing(cfg.clone(), map.clone()).unwrap();
    let flat_model = TrainModel::new(cfg.clone()).unwrap();
    let params = lively_params(shared.layout(), 8);
    let (layout, copied) = unshare(&cfg, shared.layout(), &params).unwrap();
    assert_eq!(&layout, flat_model.layout());
    assert!(shared.layout().len() < flat_model.layout().len());
    let t = 6;
    let tokens = random_tokens(3 * t, cfg.n_vocab, 9);
    let targets = random_tokens(3 * t, cfg.n_vocab, 10);
    let (loss_s, g_s) = grads_of(&shared, &params, &tokens, &targets, t);
    let (loss_u, g_u) = grads_of(&flat_model, &copied, &tokens, &targets, t);
    assert_eq!(
        loss_s.to_bits(),
        loss_u.to_bits(),
        "same forward, same loss"
    );
    // Each stored block's gradient is the sum of its layers' gradients in the copy.
    let (sl, ul) = (shared.layout(), flat_model.layout());
    for ts in &sl.tensors {
        let sum: Vec<f64> = match ts.name.strip_prefix("blk.").and_then(|r| r.split_once('.')) {
            Some((j, rest)) => {
                let j: usize = j.parse().unwrap();
                let layers: Vec<usize> = (0..4).filter(|&i| map.layers()[i] == j).collect();
                assert_eq!(layers.len(), 2);
                (0..ts.len())
                    .map(|k| {
                        layers
                            .iter()
                            .map(|i| {
                                g_u[ul.tensor(&format!("blk.{i}.{rest}")).unwrap().offset + k]
                                    as f64
                            })
                            .sum()
                    })
                    .collect()
            }
            None => g_u[ul.tensor(&ts.name).unwrap().range()]
                .iter()
                .map(|&g| g as f64)
                .collect(),
        };
        for (k, (&a, b)) in g_s[ts.range()].iter().zip(sum).enumerate() {
            assert!(
                (a as f64 - b).abs() <= 1e-6 + 1e-5 * b.abs(),
                "{} [{k}]: shared {a} vs summed {b}",
                ts.name
            );
        }
    }
}

#[test]
fn shared_files_store_blocks_once_and_load_in_slm_model() {
    let mut cfg = config();
    // Widths the SIMD kernels take their fast paths on.
    cfg.d_model = 32;
    cfg.head_dim = 8;
    cfg.d_ff = 64;
    cfg.n_vocab = 40;
    let map = BlockMap::parse("repeat:2", 4).unwrap();
    let model = TrainModel::with_sharing(cfg.clone(), map.clone()).unwrap();
    let params = lively_params(model.layout(), 11);
    let t = 10;
    let tokens = random_tokens(t, cfg.n_vocab, 12);
    let mut ws = Workspace::new();
    model.forward(&params, &tokens, t, &mut ws).unwrap();
    let mine = ws.logits().to_vec();

    let shared_bytes = export_gguf_bytes(&cfg, model.layout(), &params, None).unwrap();
    let (flat_layout, flat_params) = unshare(&cfg, model.layout(), &params).unwrap();
    let flat_bytes = export_gguf_bytes(&cfg, &flat_layout, &flat_params, None).unwrap();
    assert!(
        shared_bytes.len() < flat_bytes.len() * 3 / 4,
        "{} vs {} bytes",
        shared_bytes.len(),
        flat_bytes.len()
    );
    let pool = Pool::new(1).unwrap();
    for bytes in [shared_bytes, flat_bytes] {
        let file = Arc::new(GgufFile::from_bytes(bytes).unwrap());
        let blocks = file
            .tensors()
            .iter()
            .filter(|t| t.name.ends_with("attn_q.weight"))
            .count();
        let shared = file.metadata().contains_key("slm.block_map");
        assert_eq!(blocks, if shared { 2 } else { 4 });
        let inference = Model::from_gguf(file.clone()).unwrap();
        assert_eq!(inference.config(), &cfg);
        let mut ctx = inference.new_context(t, t).unwrap();
        let theirs = inference
            .forward(&mut ctx, &pool, &tokens, Logits::All)
            .unwrap()
            .to_vec();
        let scale = theirs.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let diff = mine
            .iter()
            .zip(&theirs)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            diff <= 1e-5 * (1.0 + scale),
            "shared={shared}: max |Δlogit| {diff}"
        );
        // Import keeps the sharing (import_gguf_model) or unshares (import_gguf).
        let (m2, p2) = import_gguf_model(&file).unwrap();
        if shared {
            assert_eq!((&m2.layout().block_map, &p2), (&map, &params));
        } else {
            assert_eq!(p2, flat_params);
        }
        assert_eq!(import_gguf(&file).unwrap().1, flat_params);
    }
}

#[test]
fn bad_block_maps_in_files_are_clear_errors() {
    let cfg = config();
    let model =
        TrainModel::with_sharing(cfg.clone(), BlockMap::parse("repeat:2", 4).unwrap()).unwrap();
    let params = lively_params(model.layout(), 1);
    let bytes = export_gguf_bytes(&cfg, model.layout(), &params, None).unwrap();
    let file = GgufFile::from_bytes(bytes).unwrap();
    for (map, want) in [
        (vec![0, 0, 1], "3 entries for 4 layers"),
        (vec![0, 0, 2, 2], "stored block 1 is run by no layer"),
        (vec![0, -1, 1, 1], "negative"),
        (vec![0, 0, 1, 2], "blk.2."),
    ] {
        let mut md = file.metadata().clone();
        md.set(
            "slm.block_map",
            slm_format::Value::Array(slm_format::Array::I32(map.clone())),
        );
        let mut w = slm_format::GgufWriter::new();
        for (k, v) in md.iter() {
            w.add(k, v.clone());
        }
        for t in file.tensors() {
            let data: Vec<f32> = file
                .tensor_data(t)
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            w.add_tensor_f32(t.name.clone(), &t.dims, &data).unwrap();
        }
        let bad = Arc::new(GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap());
        let e = Model::from_gguf(bad.clone()).unwrap_err().to_string();
        assert!(e.contains(want), "{map:?}: {e}");
        let e = import_gguf_model(&bad).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains(want), "{map:?}: {e}");
    }
}

#[test]
fn shared_checkpoints_resume_bit_for_bit() {
    let cfg = config();
    let tc = TrainConfig {
        seq_len: 8,
        batch_size: 2,
        grad_accum: 1,
        seed: 4,
        optim: AdamWConfig::with_lr(1e-2),
        schedule: Schedule::Cosine {
            warmup: 2,
            total: 12,
            min_ratio: 0.1,
        },
        clip_grad_norm: Some(1.0),
    };
    let tokens = random_tokens(600, cfg.n_vocab, 13);
    let model =
        || TrainModel::with_sharing(cfg.clone(), BlockMap::parse("all", 4).unwrap()).unwrap();
    let mut a = Trainer::from_scratch(model(), tc.clone(), tokens.clone()).unwrap();
    for _ in 0..5 {
        a.step().unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.gguf");
    a.save_checkpoint(&path).unwrap();
    let file = GgufFile::open(&path).unwrap();
    assert_eq!(
        file.metadata().get_i32_array("slm.block_map").unwrap(),
        [0, 0, 0, 0]
    );
    assert_eq!(
        file.tensors()
            .iter()
            .filter(|t| t.name.contains("blk."))
            .count(),
        9 * 3
    );
    let mut b = Trainer::resume(&path, tokens).unwrap();
    assert_eq!(b.model().layout().block_map, a.model().layout().block_map);
    for _ in 0..5 {
        assert_eq!(
            a.step().unwrap().loss.to_bits(),
            b.step().unwrap().loss.to_bits()
        );
    }
    assert_eq!(a.params(), b.params());
}
