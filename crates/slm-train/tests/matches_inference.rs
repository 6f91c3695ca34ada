//! The trainable model and slm-model's inference forward pass compute the same logits for the
//! same F32 weights (exported through GgufWriter and loaded with `Model::from_gguf`): this
//! proves the trainer uses the engine's conventions (RoPE pairing, GQA head mapping, norms,
//! tied output, tensor names and orientation).

mod common;

use common::{lively_params, random_tokens, tiny_config};
use slm_format::GgufFile;
use slm_kernels::Pool;
use slm_model::{Logits, Model};
use slm_train::{export_gguf_bytes, import_gguf, TrainModel, Workspace};
use std::sync::Arc;

fn compare(tied: bool) {
    let mut cfg = tiny_config(tied);
    // Widths the SIMD kernels take their fast paths on.
    cfg.d_model = 32;
    cfg.head_dim = 8;
    cfg.d_ff = 64;
    cfg.n_vocab = 40;
    let model = TrainModel::new(cfg.clone()).unwrap();
    let params = lively_params(model.layout(), 3);
    let t = 12;
    let tokens = random_tokens(t, cfg.n_vocab, 4);

    let mut ws = Workspace::new();
    model.forward(&params, &tokens, t, &mut ws).unwrap();
    let mine = ws.logits().to_vec();

    let bytes = export_gguf_bytes(&cfg, model.layout(), &params, None).unwrap();
    let file = Arc::new(GgufFile::from_bytes(bytes).unwrap());
    let inference = Model::from_gguf(file.clone()).unwrap();
    assert_eq!(inference.config(), &cfg, "config round trip");
    let pool = Pool::new(1).unwrap();
    let mut ctx = inference.new_context(t, t).unwrap();
    let theirs = inference
        .forward(&mut ctx, &pool, &tokens, Logits::All)
        .unwrap()
        .to_vec();

    assert_eq!(mine.len(), theirs.len());
    let scale = theirs.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let max_diff = mine
        .iter()
        .zip(&theirs)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    // f32 throughout on both sides; only summation order differs.
    assert!(
        max_diff <= 1e-5 * (1.0 + scale),
        "max |Δlogit| {max_diff} (logit scale {scale})"
    );
    eprintln!("tied={tied}: max |Δlogit| {max_diff:.2e}, max |logit| {scale:.2}");

    // And import gives back exactly the exported parameters.
    let (cfg2, params2) = import_gguf(&file).unwrap();
    assert_eq!(cfg2, cfg);
    assert_eq!(params2, params);
}

#[test]
fn tied_logits_match_slm_model_forward() {
    compare(true);
}

#[test]
fn untied_logits_match_slm_model_forward() {
    compare(false);
}
