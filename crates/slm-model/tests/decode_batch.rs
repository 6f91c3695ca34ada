//! Continuous batching: [`Model::forward_decode`] steps several contexts at once, and each
//! context's logits must be bit for bit those of decoding it alone, for every weight type, at
//! different positions, and whatever else is in the batch. Bad steps are refused before
//! anything is written.

use slm_format::{GgmlType, GgufFile};
use slm_kernels::Pool;
use slm_model::random_init::random_llama_gguf;
use slm_model::{Arch, Context, Logits, Model, ModelConfig, ModelError};
use std::sync::Arc;

fn config(d_model: usize, d_ff: usize) -> ModelConfig {
    ModelConfig {
        arch: Arch::Llama,
        n_vocab: 96,
        d_model,
        n_layer: 2,
        n_head: 4,
        n_kv_head: 2,
        head_dim: d_model / 4,
        d_ff,
        n_ctx_train: 128,
        rms_eps: 1e-5,
        rope_theta: 10_000.0,
        tied_output: false,
    }
}

fn model(dtype: GgmlType) -> Model {
    let cfg = if dtype.block_size() == 256 { config(256, 512) } else { config(64, 96) };
    let bytes = random_llama_gguf(&cfg, dtype, 11).unwrap();
    Model::from_gguf(Arc::new(GgufFile::from_bytes(bytes).unwrap())).unwrap()
}

/// Prompts of different lengths, so the contexts sit at different positions.
fn prompts() -> Vec<Vec<u32>> {
    vec![vec![1, 5, 9], vec![7], vec![3, 4, 5, 6, 7, 8, 2], vec![40, 41, 42, 43, 44]]
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

fn prefilled(model: &Model, pool: &Pool, prompts: &[Vec<u32>]) -> Vec<Context> {
    prompts
        .iter()
        .map(|p| {
            let mut ctx = model.new_context(64, 8).unwrap();
            model.forward_prompt(&mut ctx, pool, p, Logits::Last).unwrap();
            ctx
        })
        .collect()
}

#[test]
fn batched_decode_equals_decoding_alone_bit_for_bit() {
    let pool = Pool::new(2).unwrap();
    for dtype in [GgmlType::F32, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q4_K, GgmlType::Q6_K] {
        let model = model(dtype);
        let prompts = prompts();
        let mut alone = prefilled(&model, &pool, &prompts);
        let mut together = prefilled(&model, &pool, &prompts);
        let mut batch = model.new_decode_batch(prompts.len(), 64).unwrap();
        let v = model.config().n_vocab;
        for step in 0..6u32 {
            let tokens: Vec<u32> = (0..prompts.len() as u32).map(|i| (step * 13 + i * 7) % 96).collect();
            let want: Vec<Vec<f32>> = alone
                .iter_mut()
                .zip(&tokens)
                .map(|(ctx, &t)| model.forward(ctx, &pool, &[t], Logits::Last).unwrap().to_vec())
                .collect();
            let mut refs: Vec<&mut Context> = together.iter_mut().collect();
            let got = model.forward_decode(&mut batch, &pool, &mut refs, &tokens).unwrap();
            for (i, w) in want.iter().enumerate() {
                assert!(same_bits(&got[i * v..(i + 1) * v], w), "{dtype} step {step} sequence {i}");
            }
        }
        for (a, t) in alone.iter().zip(&together) {
            assert_eq!(a.n_past(), t.n_past());
        }
    }
}

#[test]
fn a_sequence_gives_the_same_logits_in_any_batch_company() {
    let pool = Pool::new(2).unwrap();
    let model = model(GgmlType::Q4_1);
    let prompts = prompts();
    let v = model.config().n_vocab;
    // Sequence 0 alone in a batch of one, then with the others.
    let mut solo = prefilled(&model, &pool, &prompts[..1]);
    let mut batch = model.new_decode_batch(4, 64).unwrap();
    let want = model.forward_decode(&mut batch, &pool, &mut [&mut solo[0]], &[17]).unwrap().to_vec();
    let mut all = prefilled(&model, &pool, &prompts);
    let mut refs: Vec<&mut Context> = all.iter_mut().collect();
    let got = model.forward_decode(&mut batch, &pool, &mut refs, &[17, 3, 3, 90]).unwrap();
    assert!(same_bits(&got[..v], &want));
}

#[test]
fn bad_steps_are_errors_and_leave_every_context_untouched() {
    let pool = Pool::new(1).unwrap();
    let model = model(GgmlType::F32);
    let mut batch = model.new_decode_batch(2, 64).unwrap();
    let mut ctxs = prefilled(&model, &pool, &prompts()[..2]);
    let before: Vec<usize> = ctxs.iter().map(Context::n_past).collect();
    let [a, b] = &mut ctxs[..] else { unreachable!() };
    // Token count does not match the contexts.
    assert!(matches!(
        model.forward_decode(&mut batch, &pool, &mut [&mut *a, &mut *b], &[1]),
        Err(ModelError::InvalidArgument(_))
    ));
    // A token outside the vocabulary, in the second sequence.
    assert!(matches!(
        model.forward_decode(&mut batch, &pool, &mut [&mut *a, &mut *b], &[1, 500]),
        Err(ModelError::TokenOutOfRange { id: 500, .. })
    ));
    let after: Vec<usize> = ctxs.iter().map(Context::n_past).collect();
    assert_eq!(before, after);
    // More sequences than the batch holds.
    let mut more = prefilled(&model, &pool, &prompts()[..3]);
    let mut refs: Vec<&mut Context> = more.iter_mut().collect();
    assert!(model.forward_decode(&mut batch, &pool, &mut refs, &[1, 2, 3]).is_err());
    // A full context stops the whole step before anything is written.
    let mut full = model.new_context(4, 4).unwrap();
    model.forward_prompt(&mut full, &pool, &[1, 2, 3, 4], Logits::Last).unwrap();
    let mut other = prefilled(&model, &pool, &prompts()[..1]).remove(0);
    let n_other = other.n_past();
    let r = model.forward_decode(&mut batch, &pool, &mut [&mut other, &mut full], &[1, 2]);
    assert!(matches!(r, Err(ModelError::ContextFull { .. })), "{r:?}");
    assert_eq!(other.n_past(), n_other);
    // A context larger than the batch's buffers.
    let mut big = model.new_context(128, 8).unwrap();
    model.forward_prompt(&mut big, &pool, &[1], Logits::Last).unwrap();
    assert!(model.forward_decode(&mut batch, &pool, &mut [&mut big], &[1]).is_err());
    assert!(model.new_decode_batch(0, 64).is_err());
}
