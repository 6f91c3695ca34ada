//! `slm quantize` as a library: every preset produces a model that loads and stays close to
//! the source, metadata is kept, re-quantizing needs consent, importance matrices round-trip.

use slm_format::{GgmlType, GgufFile};
use slm_kernels::Pool;
use slm_model::quantize::{
    plan, quantize_gguf, FileType, ImatrixCollector, ImportanceMatrix, QuantizeError, QuantizeOptions,
};
use slm_model::random_init::{golden_config, random_imatrix, random_llama_gguf, GOLDEN_SEED};
use slm_model::{Logits, Model};
use std::sync::Arc;

fn options(ftype: FileType) -> QuantizeOptions {
    QuantizeOptions::preset(ftype, 2)
}

fn source(dtype: GgmlType) -> GgufFile {
    GgufFile::from_bytes(random_llama_gguf(&golden_config(), dtype, GOLDEN_SEED).unwrap()).unwrap()
}

fn logits(file: GgufFile) -> Vec<f32> {
    let model = Model::from_gguf(Arc::new(file)).unwrap();
    let mut ctx = model.new_context(64, 64).unwrap();
    let tokens: Vec<u32> = (0..24).map(|i| (i * 53 + 7) % 320).collect();
    model.forward(&mut ctx, &Pool::new(1).unwrap(), &tokens, Logits::All).unwrap().to_vec()
}

fn quantized(src: &GgufFile, opts: &QuantizeOptions) -> GgufFile {
    let (writer, _) = quantize_gguf(src, opts, &mut |_, _, _| {}).unwrap();
    GgufFile::from_bytes(writer.to_bytes().unwrap()).unwrap()
}

/// RMS of (a − b) over RMS of b.
fn relative_rms(a: &[f32], b: &[f32]) -> f64 {
    let err: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
    let norm: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
    (err / norm).sqrt()
}

#[test]
fn every_preset_loads_runs_and_stays_within_its_error_budget() {
    let src = source(GgmlType::F32);
    let reference = logits(source(GgmlType::F32));
    // Budgets: ~3× the relative logit error measured on this random model (uniform weights are a
    // hard case for low-bit formats, so these are looser than on trained models).
    let budgets = [
        (FileType::F32, 0.0),
        (FileType::F16, 0.001),
        (FileType::BF16, 0.01),
        (FileType::Q8_0, 0.02),
        (FileType::Q6_K, 0.05),
        (FileType::Q5_1, 0.1),
        (FileType::Q5_K_M, 0.1),
        (FileType::Q5_K_S, 0.1),
        (FileType::Q5_0, 0.1),
        (FileType::Q4_1, 0.2),
        (FileType::Q4_K_M, 0.2),
        (FileType::Q4_K_S, 0.2),
        (FileType::Q4_0, 0.2),
        (FileType::Q3_K_L, 0.4),
        (FileType::Q3_K_M, 0.4),
        (FileType::Q3_K_S, 0.4),
        (FileType::Q2_K, 0.8),
        (FileType::Q2_K_S, 0.8),
    ];
    assert_eq!(budgets.len(), FileType::all().count(), "every preset has a budget");
    for (ftype, budget) in budgets {
        let out = quantized(&src, &options(ftype));
        assert_eq!(out.metadata().get_u32("general.file_type").unwrap(), ftype.id());
        assert_eq!(out.metadata().get_str("general.name").unwrap(), "random", "metadata is copied");
        let err = relative_rms(&logits(out), &reference);
        eprintln!("{ftype:>7}: relative logit error {err:.5}");
        assert!(err <= budget, "{ftype}: relative logit error {err} above budget {budget}");
    }
}

#[test]
fn dry_run_plan_matches_the_written_file() {
    let src = source(GgmlType::F32);
    let opts = options(FileType::Q4_K_M);
    let report = plan(&src, &opts).unwrap();
    let out = quantized(&src, &opts);
    for t in &report.tensors {
        let written = out.tensor(&t.name).unwrap();
        assert_eq!(written.dtype, t.to, "{}", t.name);
        assert_eq!(written.n_bytes, t.bytes_out, "{}", t.name);
    }
    // ffn_down rows are 384 wide: Q4_K/Q6_K cannot hold them, so they fall back.
    assert_eq!(report.n_fallback, golden_config().n_layer);
    assert!(report.bits_per_weight() > 4.0 && report.bits_per_weight() < 6.5, "{}", report.bits_per_weight());
}

#[test]
fn requantizing_needs_consent_and_then_works() {
    let src = source(GgmlType::Q4_0);
    let mut opts = options(FileType::Q8_0);
    let err = quantize_gguf(&src, &opts, &mut |_, _, _| {}).err().expect("must refuse");
    assert!(matches!(err, QuantizeError::RequantizeDisabled { .. }), "{err}");
    assert!(err.to_string().contains("--allow-requantize"));
    opts.allow_requantize = true;
    let out = quantized(&src, &opts);
    assert_eq!(out.tensor("blk.0.attn_q.weight").unwrap().dtype, GgmlType::Q8_0);
    // Same type in and out: the bytes are copied, not re-encoded.
    let same = quantized(&src, &QuantizeOptions { allow_requantize: true, ..options(FileType::Q4_0) });
    let t = src.tensor("blk.1.ffn_up.weight").unwrap();
    assert_eq!(same.tensor_data(same.tensor(&t.name).unwrap()), src.tensor_data(t));
}

#[test]
fn imatrix_files_round_trip_and_reject_mismatches() {
    let cfg = golden_config();
    let m = random_imatrix(&cfg, 7).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("imatrix.gguf");
    m.save(&path).unwrap();
    let back = ImportanceMatrix::load(&path).unwrap();
    assert_eq!(back.entries(), m.entries());
    assert_eq!((back.chunk_count, back.chunk_size, back.datasets.clone()), (1, 64, vec!["random".to_string()]));
    let v = back.for_tensor("blk.0.ffn_down.weight", &[384, 256]).unwrap().unwrap();
    assert_eq!(v.len(), 384);
    assert!(back.for_tensor("blk.0.ffn_down.weight", &[256, 384]).is_err(), "shape mismatch is an error");
    assert!(back.for_tensor("output.weight", &[256, 320]).unwrap().is_none());

    // Truncated and garbage files fail cleanly.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert!(ImportanceMatrix::load(&path).is_err());
    std::fs::write(&path, [0xff, 0xff, 0xff, 0x7f, 1, 2]).unwrap();
    assert!(ImportanceMatrix::load(&path).unwrap_err().to_string().contains("out of range"));
}

#[test]
fn legacy_imatrix_format_is_read() {
    // i32 n; (i32 len, name, i32 ncall, i32 nval, f32[nval]); i32 chunks; i32 len; dataset.
    let mut b = Vec::new();
    b.extend(1i32.to_le_bytes());
    let name = b"blk.0.attn_q.weight";
    b.extend((name.len() as i32).to_le_bytes());
    b.extend(name);
    b.extend(4i32.to_le_bytes());
    b.extend(2i32.to_le_bytes());
    b.extend(8.0f32.to_le_bytes());
    b.extend(2.0f32.to_le_bytes());
    b.extend(10i32.to_le_bytes());
    b.extend(4i32.to_le_bytes());
    b.extend(b"wiki");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("imatrix.dat");
    std::fs::write(&path, &b).unwrap();
    let m = ImportanceMatrix::load(&path).unwrap();
    assert_eq!(m.get("blk.0.attn_q.weight").unwrap(), &[2.0, 0.5]);
    assert_eq!((m.chunk_count, m.datasets.clone()), (10, vec!["wiki".to_string()]));
}

#[test]
fn collector_sums_squared_activations_of_every_block_linear() {
    let cfg = golden_config();
    let file = Arc::new(source(GgmlType::F32));
    let model = Model::from_gguf(file.clone()).unwrap();
    let mut ctx = model.new_context(64, 16).unwrap();
    let tokens: Vec<u32> = (0..40).map(|i| (i * 31 + 3) % 320).collect();
    let mut collector = ImatrixCollector::new();
    model.forward_observed(&mut ctx, &Pool::new(2).unwrap(), &tokens, Logits::Last, Some(&mut collector)).unwrap();
    assert_eq!(collector.n_tokens(), 40);
    let m = collector.finish(vec!["test".into()], 1, 40).unwrap();
    assert_eq!(m.len(), cfg.n_layer * 7);
    assert_eq!(m.get("blk.3.attn_q.weight"), m.get("blk.3.attn_v.weight"), "Q/K/V read one input");

    // Layer 0's attention input is rms_norm(embedding) ⊙ attn_norm: check it directly.
    let f32s = |name: &str| -> Vec<f32> {
        let t = file.tensor(name).unwrap();
        file.tensor_data(t).chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
    };
    let (embd, norm, d) = (f32s("token_embd.weight"), f32s("blk.0.attn_norm.weight"), cfg.d_model);
    let mut expected = vec![0f64; d];
    for &t in &tokens {
        let row = &embd[t as usize * d..(t as usize + 1) * d];
        let ms = row.iter().map(|v| v * v).sum::<f32>() / d as f32;
        let scale = 1.0 / (ms + cfg.rms_eps).sqrt();
        for (e, (x, w)) in expected.iter_mut().zip(row.iter().zip(&norm)) {
            *e += f64::from(x * scale * w).powi(2);
        }
    }
    let got = m.get("blk.0.attn_k.weight").unwrap();
    for (g, e) in got.iter().zip(&expected) {
        let mean = e / 40.0;
        assert!((f64::from(*g) - mean).abs() <= 1e-4 * mean.max(1e-3), "{g} vs {mean}");
    }
}
