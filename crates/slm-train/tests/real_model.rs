//! Data packing with the real SmolLM2 tokenizer, export with its tokenizer metadata, and
//! import of the real (Q4_1) model for fine-tuning.
//!
//! Needs `SLM_TEST_MODEL=/path/to/SmolLM2-135M-Instruct.Q4_1.gguf`; without it each test prints a
//! note and passes, unless `SLM_REQUIRE_MODEL=1` (CI) makes it fail.

use slm_format::GgufFile;
use slm_kernels::Pool;
use slm_model::{Arch, Logits, Model, ModelConfig};
use slm_runtime::Tokenizer;
use slm_train::data::{pack_documents, read_documents, split_train_val};
use slm_train::{
    export_gguf_bytes, import_gguf, AdamWConfig, Schedule, TrainConfig, TrainModel, Trainer,
    Workspace,
};
use std::path::PathBuf;
use std::sync::Arc;

fn model_path() -> Option<PathBuf> {
    match std::env::var_os("SLM_TEST_MODEL") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            assert!(
                std::env::var_os("SLM_REQUIRE_MODEL").is_none(),
                "SLM_REQUIRE_MODEL is set but SLM_TEST_MODEL is not"
            );
            eprintln!("note: SLM_TEST_MODEL not set; skipping");
            None
        }
    }
}

#[test]
fn packs_documents_trains_and_exports_with_the_tokenizer() {
    let Some(path) = model_path() else { return };
    let source = GgufFile::open(&path).unwrap();
    let tok = Tokenizer::from_gguf(source.metadata()).unwrap();
    let eos = tok.eos_id().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let texts = [
        "To be, or not to be, that is the question.",
        "All the world's a stage,\nAnd all the men and women merely players.",
    ];
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("b.txt"), texts[1]).unwrap();
    std::fs::write(dir.path().join("sub").join("a.txt"), texts[0]).unwrap();
    std::fs::write(dir.path().join("ignored.bin"), [0xffu8, 0xfe]).unwrap();
    let docs = read_documents(dir.path()).unwrap();
    assert_eq!(
        docs,
        vec![texts[1].to_string(), texts[0].to_string()],
        "sorted by path, .bin skipped"
    );

    let packed = pack_documents(&tok, &docs).unwrap();
    // EOS closes each document, and each segment decodes back to its text.
    let segments: Vec<&[u32]> = packed
        .split(|&id| id == eos)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(segments.len(), 2);
    assert_eq!(packed.last(), Some(&eos));
    for (seg, text) in segments.iter().zip(&docs) {
        assert_eq!(tok.decode(seg, true), *text);
    }

    // A tiny model over the real vocabulary learns a little and exports with the tokenizer.
    let cfg = ModelConfig {
        arch: Arch::Llama,
        n_vocab: tok.vocab_size(),
        d_model: 16,
        n_layer: 1,
        n_head: 2,
        n_kv_head: 1,
        head_dim: 8,
        d_ff: 32,
        n_ctx_train: 64,
        rms_eps: 1e-5,
        rope_theta: 10_000.0,
        tied_output: true,
    };
    let repeated: Vec<u32> = packed
        .iter()
        .copied()
        .cycle()
        .take(packed.len() * 8)
        .collect();
    let (train, val) = split_train_val(&repeated, 0.2, 8).unwrap();
    let tc = TrainConfig {
        seq_len: 8,
        batch_size: 4,
        grad_accum: 1,
        seed: 5,
        optim: AdamWConfig::with_lr(3e-2),
        schedule: Schedule::Constant { warmup: 2 },
        clip_grad_norm: Some(1.0),
    };
    let mut t = Trainer::new(cfg, tc, train).unwrap();
    let before = t.evaluate(&val, 16).unwrap();
    for _ in 0..30 {
        t.step().unwrap();
    }
    let after = t.evaluate(&val, 16).unwrap();
    assert!(after < before - 1.0, "validation loss {before} -> {after}");
    // Bits per byte of the evaluated windows: their text is the decoded tokens.
    let (inputs, targets) = slm_train::data::eval_windows(&val, 8, 16);
    let bytes = slm_train::data::text_bytes(&tok, &targets);
    let decoded: usize = tok.decode(&targets, false).len();
    assert_eq!(bytes, decoded, "piece bytes = decoded bytes");
    let bpb = slm_train::data::bits_per_byte(after, targets.len(), bytes);
    assert!(
        bpb > 0.0 && bpb < before * targets.len() as f64 / bytes as f64 / std::f64::consts::LN_2
    );
    assert_eq!(inputs.len(), targets.len());

    let out = dir.path().join("trained.gguf");
    t.export_gguf(&out, Some(source.metadata())).unwrap();
    let exported = Model::from_gguf(Arc::new(GgufFile::open(&out).unwrap())).unwrap();
    let tok2 = Tokenizer::from_gguf(exported.gguf().metadata()).unwrap();
    assert_eq!(tok2.vocab_size(), tok.vocab_size());
    assert_eq!(
        tok2.encode(texts[0], false).unwrap(),
        tok.encode(texts[0], false).unwrap()
    );
}

#[test]
fn imported_quantized_model_agrees_with_the_engine() {
    let Some(path) = model_path() else { return };
    let file = Arc::new(GgufFile::open(&path).unwrap());
    let (cfg, params) = import_gguf(&file).unwrap();
    let model = TrainModel::new(cfg.clone()).unwrap();
    let tok = Tokenizer::from_gguf(file.metadata()).unwrap();
    let tokens = tok
        .encode(
            "The capital of France is Paris, and the capital of Italy is",
            false,
        )
        .unwrap();
    let t = tokens.len();
    let mut ws = Workspace::new();
    model.forward(&params, &tokens, t, &mut ws).unwrap();
    let mine = ws.logits().to_vec();

    let engine = Model::from_gguf(file).unwrap();
    let pool = Pool::new(2).unwrap();
    let mut ctx = engine.new_context(t, t).unwrap();
    let theirs = engine
        .forward(&mut ctx, &pool, &tokens, Logits::All)
        .unwrap();
    // Same Q4_1 weights; the engine also rounds activations to 8 bits (Q8_1), the trainer keeps
    // them f32, so logits differ slightly: top-1 must agree and the RMS difference stay small.
    let v = cfg.n_vocab;
    let argmax = |r: &[f32]| {
        r.iter()
            .enumerate()
            .fold((0, f32::MIN), |b, (i, &x)| if x > b.1 { (i, x) } else { b })
            .0
    };
    let mut agree = 0;
    let (mut diff2, mut norm2) = (0.0f64, 0.0f64);
    for (a, b) in mine.chunks_exact(v).zip(theirs.chunks_exact(v)) {
        agree += usize::from(argmax(a) == argmax(b));
        for (x, y) in a.iter().zip(b) {
            diff2 += ((x - y) as f64).powi(2);
            norm2 += (*y as f64).powi(2);
        }
    }
    let rel = (diff2 / norm2).sqrt();
    eprintln!("vs Q4_1 engine: top-1 agreement {agree}/{t}, relative RMS difference {rel:.2e}");
    assert!(agree * 10 >= t * 9, "top-1 agreement {agree}/{t}");

    // Exact conventions at full scale: the imported weights exported as F32 and run by the
    // engine (no activation rounding on F32 weights) give the trainer's logits to rounding.
    drop(engine);
    let bytes = export_gguf_bytes(&cfg, model.layout(), &params, None).unwrap();
    let f32_engine = Model::from_gguf(Arc::new(GgufFile::from_bytes(bytes).unwrap())).unwrap();
    let mut ctx = f32_engine.new_context(t, t).unwrap();
    let exact = f32_engine
        .forward(&mut ctx, &pool, &tokens, Logits::All)
        .unwrap();
    let scale = exact.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let max_diff = mine
        .iter()
        .zip(exact)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    eprintln!("vs F32 engine: max |Δlogit| {max_diff:.2e} (max |logit| {scale:.1})");
    assert!(max_diff <= 1e-4 * (1.0 + scale), "max |Δlogit| {max_diff}");
}
