//! The real SmolLM2-135M-Instruct Q4_1 model against llama.cpp's logits (golden files from
//! reference/gen_logits_golden.py): teacher-forced mean KL divergence < 0.01, top-1 agreement
//! ≥ 99% wherever llama.cpp's choice is not a near-tie (and ≥ 95% everywhere), plus greedy
//! continuations identical up to the first near-tie.
//!
//! Why near-ties are set apart: both engines quantize every matmul input to 8 bits, so the
//! logits carry rounding noise. Two emulations of ggml's activation rounding that differ only in
//! how they compute the block scale and round halves (1/d with round-half-away vs 127/amax with
//! round-half-even) already differ by up to 0.23 in the final logits of this model; a top-1 vs
//! top-2 gap below [`NEAR_TIE`] is inside that noise, and either engine may pick either token.
//!
//! Needs the model: `SLM_TEST_MODEL=/path/to/SmolLM2-135M-Instruct.Q4_1.gguf`. Without it the
//! test prints a note and passes, unless `SLM_REQUIRE_MODEL=1` (set by CI) makes it fail.

use slm_kernels::Pool;
use slm_model::{Logits, Model};
use std::path::{Path, PathBuf};

/// Top-1 minus top-2 logit below which llama.cpp's greedy choice counts as a near-tie.
const NEAR_TIE: f64 = 0.3;

fn model_path() -> Option<PathBuf> {
    match std::env::var_os("SLM_TEST_MODEL") {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var_os("SLM_REQUIRE_MODEL").is_some() => {
            panic!("SLM_REQUIRE_MODEL is set but SLM_TEST_MODEL is not")
        }
        None => {
            eprintln!("note: SLM_TEST_MODEL not set; skipping the llama.cpp golden comparison");
            None
        }
    }
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden")
}

fn log_softmax(x: &[f32]) -> Vec<f64> {
    let m = x.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let z: f64 = x.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln() + m;
    x.iter().map(|&v| v as f64 - z).collect()
}

fn argmax(x: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in x.iter().enumerate() {
        if *v > x[best] {
            best = i;
        }
    }
    best
}

fn top2_margin(x: &[f32]) -> f32 {
    let (mut a, mut b) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
    for &v in x {
        if v > a {
            b = a;
            a = v;
        } else if v > b {
            b = v;
        }
    }
    a - b
}

#[test]
fn logits_match_llama_cpp() {
    let Some(path) = model_path() else { return };
    let golden: serde_json::Value =
        serde_json::from_slice(&std::fs::read(golden_dir().join("logits_smollm2.json")).unwrap()).unwrap();
    let model = Model::load(&path).unwrap();
    let n_vocab = model.config().n_vocab;
    assert_eq!(golden["n_vocab"].as_u64(), Some(n_vocab as u64));
    let pool = Pool::new(2).unwrap();
    let (mut kl_sum, mut n_pos, mut top1_same) = (0.0f64, 0usize, 0usize);
    let (mut clear_pos, mut clear_same) = (0usize, 0usize);
    for case in golden["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let ids: Vec<u32> = case["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let raw = std::fs::read(golden_dir().join(case["logits_file"].as_str().unwrap())).unwrap();
        let want: Vec<f32> = raw.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect();
        assert_eq!(want.len(), ids.len() * n_vocab, "{name}: golden size");

        let mut ctx = model.new_context(512, 64).unwrap();
        let got = model.forward(&mut ctx, &pool, &ids, Logits::All).unwrap().to_vec();
        let mut case_kl = 0.0;
        for p in 0..ids.len() {
            let (w, g) = (&want[p * n_vocab..(p + 1) * n_vocab], &got[p * n_vocab..(p + 1) * n_vocab]);
            let (lw, lg) = (log_softmax(w), log_softmax(g));
            let kl: f64 = lw.iter().zip(&lg).map(|(a, b)| a.exp() * (a - b)).sum();
            case_kl += kl;
            let same = argmax(w) == argmax(g);
            top1_same += usize::from(same);
            if top2_margin(w) >= NEAR_TIE as f32 {
                clear_pos += 1;
                clear_same += usize::from(same);
            }
        }
        eprintln!("{name}: {} positions, mean KL {:.5}", ids.len(), case_kl / ids.len() as f64);
        kl_sum += case_kl;
        n_pos += ids.len();

        // Greedy continuation from the prompt, token by token through the KV cache.
        if let Some(greedy) = case["greedy_ids"].as_array() {
            let greedy: Vec<usize> = greedy.iter().map(|v| v.as_u64().unwrap() as usize).collect();
            let mut ctx = model.new_context(512, 64).unwrap();
            let mut next = argmax(model.forward(&mut ctx, &pool, &ids, Logits::Last).unwrap());
            let mut ours = vec![next];
            while ours.len() < greedy.len() {
                next = argmax(model.forward(&mut ctx, &pool, &[next as u32], Logits::Last).unwrap());
                ours.push(next);
            }
            let same = ours.iter().zip(&greedy).take_while(|(a, b)| a == b).count();
            // Both engines quantize activations to 8 bits, so a near-tie between llama.cpp's two
            // best tokens may legitimately flip; the streams must agree up to the first such step.
            let margins: Vec<f64> =
                case["greedy_top2_margin"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            let required = margins.iter().position(|m| *m < NEAR_TIE).unwrap_or(greedy.len());
            eprintln!("{name}: greedy continuation identical for {same}/{} tokens (required {required})", greedy.len());
            assert!(same >= required, "{name}: greedy diverges at token {same}: ours {ours:?} vs llama.cpp {greedy:?}");
        }
    }
    let mean_kl = kl_sum / n_pos as f64;
    let top1 = top1_same as f64 / n_pos as f64;
    let clear = clear_same as f64 / clear_pos as f64;
    eprintln!(
        "overall: {n_pos} positions, mean KL {mean_kl:.5}, top-1 agreement {:.2}% ({:.2}% of the {clear_pos} positions that are not near-ties)",
        top1 * 100.0,
        clear * 100.0
    );
    assert!(mean_kl < 0.01, "mean KL divergence vs llama.cpp {mean_kl} >= 0.01");
    assert!(clear >= 0.99, "top-1 agreement with llama.cpp outside near-ties {clear} < 0.99");
    assert!(top1 >= 0.95, "top-1 agreement with llama.cpp {top1} < 0.95");
}
