//! Spec tests of pruning whole (tiny, random) models: pruning nothing changes nothing; Wanda's
//! choice does not move under a reparametrization that leaves the function unchanged while
//! magnitude's does; structured pruning writes a smaller model with the declared shape that
//! loads and runs; removing a channel, KV group or block that contributes nothing (zero
//! weights) leaves the logits unchanged.

use slm_format::{GgmlType, GgufFile};
use slm_kernels::Pool;
use slm_model::random_init::{random_llama_gguf, SplitMix64};
use slm_model::{Arch, Logits, Model, ModelConfig};
use slm_train::prune::{
    calibrate, prune_structured, prune_unstructured, CalibStats, FloatType, Pattern, Score,
    StructuredSpec, TensorSet,
};
use std::sync::Arc;

fn config() -> ModelConfig {
    ModelConfig {
        arch: Arch::Llama,
        n_vocab: 64,
        d_model: 64,
        n_layer: 3,
        n_head: 4,
        n_kv_head: 2,
        head_dim: 16,
        d_ff: 96,
        n_ctx_train: 64,
        rms_eps: 1e-5,
        rope_theta: 10_000.0,
        tied_output: false,
    }
}

fn source_set(seed: u64) -> TensorSet {
    let bytes = random_llama_gguf(&config(), GgmlType::F32, seed).unwrap();
    TensorSet::from_gguf(&GgufFile::from_bytes(bytes).unwrap()).unwrap()
}

fn model_of(set: &TensorSet) -> Model {
    let bytes = set.to_writer(FloatType::F32).unwrap().to_bytes().unwrap();
    Model::from_gguf(Arc::new(GgufFile::from_bytes(bytes).unwrap())).unwrap()
}

fn tokens(n: usize, seed: u64) -> Vec<u32> {
    let mut rng = SplitMix64::new(seed);
    (0..n).map(|_| (rng.next_u64() % 64) as u32).collect()
}

fn logits(model: &Model, toks: &[u32]) -> Vec<f32> {
    let pool = Pool::new(1).unwrap();
    let mut ctx = model.new_context(toks.len(), toks.len()).unwrap();
    model
        .forward(&mut ctx, &pool, toks, Logits::All)
        .unwrap()
        .to_vec()
}

fn stats_of(model: &Model) -> CalibStats {
    let pool = Pool::new(1).unwrap();
    calibrate(model, &pool, &tokens(64, 7), 16, None, None).unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn pruning_zero_percent_gives_identical_logits() {
    let set = source_set(1);
    let toks = tokens(12, 3);
    let before = logits(&model_of(&set), &toks);
    for score in [Score::Magnitude, Score::Wanda] {
        let mut pruned = set.clone();
        let stats = stats_of(&model_of(&set));
        let report = prune_unstructured(
            &mut pruned,
            Some(&stats),
            score,
            Pattern::unstructured(0.0).unwrap(),
        )
        .unwrap();
        assert_eq!(report.len(), 7 * 3, "every block linear is visited");
        assert!(report.iter().all(|t| t.n_pruned == 0));
        assert_eq!(logits(&model_of(&pruned), &toks), before, "{score:?}");
    }
    // And pruning something does change them (the comparison above can fail).
    let mut pruned = set.clone();
    prune_unstructured(
        &mut pruned,
        None,
        Score::Magnitude,
        Pattern::unstructured(0.3).unwrap(),
    )
    .unwrap();
    assert!(max_diff(&logits(&model_of(&pruned), &toks), &before) > 1e-3);
}

#[test]
fn unstructured_and_two_of_four_reach_the_declared_sparsity_in_every_block_linear() {
    let set = source_set(2);
    let stats = stats_of(&model_of(&set));
    for pattern in [
        Pattern::unstructured(0.5).unwrap(),
        Pattern::parse_n_of_m("2:4").unwrap(),
    ] {
        let mut pruned = set.clone();
        let report = prune_unstructured(&mut pruned, Some(&stats), Score::Wanda, pattern).unwrap();
        for t in &report {
            assert_eq!(t.n_pruned * 2, t.n_params, "{}", t.name);
            let w = pruned.get(&t.name).unwrap();
            for row in w.data.chunks(w.cols()) {
                assert_eq!(
                    row.iter().filter(|v| **v == 0.0).count(),
                    w.cols() / 2,
                    "{}",
                    t.name
                );
            }
        }
        // Embeddings, norms and the output head are untouched.
        for name in [
            "token_embd.weight",
            "output.weight",
            "blk.0.attn_norm.weight",
            "output_norm.weight",
        ] {
            assert_eq!(pruned.get(name).unwrap(), set.get(name).unwrap(), "{name}");
        }
    }
}

/// Multiplies `attn_norm` of block 0 by `scale[j]` and divides column j of Q, K, V by it: the
/// model computes the same function, but the weights' magnitudes change.
fn rescale_attention_inputs(set: &mut TensorSet, scale: &[f32]) {
    for v in set
        .get_mut("blk.0.attn_norm.weight")
        .unwrap()
        .data
        .iter_mut()
        .zip(scale)
    {
        *v.0 *= v.1;
    }
    for name in ["attn_q.weight", "attn_k.weight", "attn_v.weight"] {
        let t = set.get_mut(&format!("blk.0.{name}")).unwrap();
        let cols = t.cols();
        for row in t.data.chunks_mut(cols) {
            for (w, s) in row.iter_mut().zip(scale) {
                *w /= s;
            }
        }
    }
}

fn zero_mask(set: &TensorSet, name: &str) -> Vec<bool> {
    set.get(name)
        .unwrap()
        .data
        .iter()
        .map(|v| *v == 0.0)
        .collect()
}

#[test]
fn wanda_is_invariant_to_input_rescaling_and_magnitude_is_not() {
    let set = source_set(3);
    let d = config().d_model;
    // Skewed: a quarter of the input channels carry 30x larger activations, with 30x smaller weights.
    let scale: Vec<f32> = (0..d)
        .map(|j| if j % 4 == 0 { 30.0 } else { 1.0 })
        .collect();
    let mut skewed = set.clone();
    rescale_attention_inputs(&mut skewed, &scale);
    let toks = tokens(12, 5);
    assert!(
        max_diff(
            &logits(&model_of(&set), &toks),
            &logits(&model_of(&skewed), &toks)
        ) < 1e-3,
        "same function"
    );

    let pattern = Pattern::unstructured(0.5).unwrap();
    let q = "blk.0.attn_q.weight";
    let prune = |s: &TensorSet, score: Score| {
        let stats = stats_of(&model_of(s));
        let mut p = s.clone();
        prune_unstructured(&mut p, Some(&stats), score, pattern).unwrap();
        zero_mask(&p, q)
    };
    let (wanda_plain, wanda_skewed) = (prune(&set, Score::Wanda), prune(&skewed, Score::Wanda));
    let (mag_plain, mag_skewed) = (
        prune(&set, Score::Magnitude),
        prune(&skewed, Score::Magnitude),
    );
    let differ = |a: &[bool], b: &[bool]| a.iter().zip(b).filter(|(x, y)| x != y).count();
    // Wanda's scores |W_ij|·‖X_j‖ do not change (up to float rounding near ties).
    assert!(
        differ(&wanda_plain, &wanda_skewed) <= 4,
        "wanda moved {} picks",
        differ(&wanda_plain, &wanda_skewed)
    );
    // Magnitude now removes almost every weight of the rescaled (small-weight, large-activation) columns.
    let cols = d;
    let pruned_in_scaled_cols = mag_skewed
        .iter()
        .enumerate()
        .filter(|(i, z)| **z && (i % cols) % 4 == 0)
        .count();
    let n_scaled = mag_skewed.len() / 4;
    assert!(
        pruned_in_scaled_cols > n_scaled * 9 / 10,
        "{pruned_in_scaled_cols} of {n_scaled}"
    );
    assert!(differ(&mag_plain, &mag_skewed) > mag_plain.len() / 10);
    // On the skewed model Wanda keeps far more of the model's function than magnitude.
    let kept = |s: &TensorSet, score: Score| {
        let stats = stats_of(&model_of(s));
        let mut p = s.clone();
        prune_unstructured(&mut p, Some(&stats), score, pattern).unwrap();
        max_diff(&logits(&model_of(&p), &toks), &logits(&model_of(s), &toks))
    };
    assert!(kept(&skewed, Score::Wanda) < kept(&skewed, Score::Magnitude));
}

#[test]
fn structured_output_has_the_declared_smaller_shape_and_runs() {
    let set = source_set(4);
    let source = model_of(&set);
    let stats = stats_of(&source);
    let mut pruned = set.clone();
    let spec = StructuredSpec {
        ffn_keep: Some(40),
        kv_groups_keep: Some(1),
        layers_drop: 1,
    };
    let summary = prune_structured(&mut pruned, Some(&stats), Score::Wanda, &spec).unwrap();
    assert_eq!(summary.n_layer, (3, 2));
    assert_eq!(summary.d_ff, (96, 40));
    assert_eq!(summary.n_head, (4, 2));
    assert_eq!(summary.n_kv_head, (2, 1));
    assert_eq!(summary.layers_dropped.len(), 1);
    assert_ne!(
        summary.layers_dropped,
        vec![2],
        "the last block is never dropped"
    );
    let bytes = pruned
        .to_writer(FloatType::F32)
        .unwrap()
        .to_bytes()
        .unwrap();
    let src_bytes = set.to_writer(FloatType::F32).unwrap().to_bytes().unwrap();
    assert!(
        bytes.len() < src_bytes.len() * 3 / 4,
        "{} vs {}",
        bytes.len(),
        src_bytes.len()
    );
    let file = GgufFile::from_bytes(bytes).unwrap();
    let dims = |n: &str| file.tensor(n).unwrap().dims.clone();
    assert_eq!(dims("blk.1.ffn_up.weight"), vec![64, 40]);
    assert_eq!(dims("blk.1.ffn_down.weight"), vec![40, 64]);
    assert_eq!(dims("blk.1.attn_q.weight"), vec![64, 32]);
    assert_eq!(dims("blk.1.attn_k.weight"), vec![64, 16]);
    assert_eq!(dims("blk.1.attn_output.weight"), vec![32, 64]);
    assert!(file.tensor("blk.2.attn_q.weight").is_none());
    let model = Model::from_gguf(Arc::new(file)).unwrap();
    let c = model.config();
    assert_eq!(
        (c.n_layer, c.d_ff, c.n_head, c.n_kv_head, c.head_dim),
        (2, 40, 2, 1, 16)
    );
    assert!(c.n_params() < source.config().n_params());
    let out = logits(&model, &tokens(10, 9));
    assert_eq!(out.len(), 10 * 64);
    assert!(out.iter().all(|v| v.is_finite()));
}

#[test]
fn removing_structures_that_contribute_nothing_keeps_the_logits() {
    let mut set = source_set(5);
    // FFN channel 17 and KV group 1 (query heads 2 and 3) write nothing in any block; block 1
    // writes nothing at all (zero output projections: an identity block).
    let (ch, q_dim) = (17, 64);
    for l in 0..3 {
        let down = set.get_mut(&format!("blk.{l}.ffn_down.weight")).unwrap();
        for row in down.data.chunks_mut(96) {
            row[ch] = 0.0;
        }
        let o = set.get_mut(&format!("blk.{l}.attn_output.weight")).unwrap();
        for row in o.data.chunks_mut(q_dim) {
            row[32..64].iter_mut().for_each(|v| *v = 0.0);
        }
    }
    for name in ["blk.1.ffn_down.weight", "blk.1.attn_output.weight"] {
        set.get_mut(name)
            .unwrap()
            .data
            .iter_mut()
            .for_each(|v| *v = 0.0);
    }
    let source = model_of(&set);
    let stats = stats_of(&source);
    assert!(
        stats.block_cosine(1).unwrap() > 0.999_999,
        "an identity block leaves the residual as it is"
    );
    let toks = tokens(12, 11);
    let before = logits(&source, &toks);
    let cases = [
        StructuredSpec {
            ffn_keep: Some(95),
            ..Default::default()
        },
        StructuredSpec {
            kv_groups_keep: Some(1),
            ..Default::default()
        },
        StructuredSpec {
            layers_drop: 1,
            ..Default::default()
        },
        StructuredSpec {
            ffn_keep: Some(95),
            kv_groups_keep: Some(1),
            layers_drop: 1,
        },
    ];
    for spec in cases {
        let mut pruned = set.clone();
        let summary = prune_structured(&mut pruned, Some(&stats), Score::Wanda, &spec).unwrap();
        if spec.layers_drop > 0 {
            assert_eq!(summary.layers_dropped, vec![1]);
        }
        let after = logits(&model_of(&pruned), &toks);
        // Removing zero terms only changes the summation order of the products.
        assert!(
            max_diff(&after, &before) < 1e-4,
            "{spec:?}: {}",
            max_diff(&after, &before)
        );
    }
    // Removing a channel that does contribute changes them (the check above can fail).
    let mut pruned = set.clone();
    prune_structured(
        &mut pruned,
        Some(&stats),
        Score::Wanda,
        &StructuredSpec {
            ffn_keep: Some(80),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(max_diff(&logits(&model_of(&pruned), &toks), &before) > 1e-3);
}

#[test]
fn structured_requests_out_of_range_are_refused() {
    let set = source_set(6);
    let stats = stats_of(&model_of(&set));
    let bad = [
        StructuredSpec {
            ffn_keep: Some(0),
            ..Default::default()
        },
        StructuredSpec {
            ffn_keep: Some(97),
            ..Default::default()
        },
        StructuredSpec {
            kv_groups_keep: Some(3),
            ..Default::default()
        },
        StructuredSpec {
            layers_drop: 3,
            ..Default::default()
        },
    ];
    for spec in bad {
        let mut s = set.clone();
        assert!(
            prune_structured(&mut s, Some(&stats), Score::Wanda, &spec).is_err(),
            "{spec:?}"
        );
    }
    let mut s = set.clone();
    let err = prune_structured(
        &mut s,
        None,
        Score::Magnitude,
        &StructuredSpec {
            layers_drop: 1,
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("--calib"), "{err}");
}

#[test]
fn encode_writes_f16_or_requantizes_and_the_result_loads() {
    use slm_model::quantize::FileType;
    use slm_train::prune::encode;
    let mut set = source_set(7);
    prune_unstructured(
        &mut set,
        None,
        Score::Magnitude,
        Pattern::unstructured(0.5).unwrap(),
    )
    .unwrap();
    let toks = tokens(8, 1);
    let exact = logits(&model_of(&set), &toks);
    for (dtype, quant, want) in [
        (FloatType::F16, None, GgmlType::F16),
        (FloatType::F32, Some(FileType::Q8_0), GgmlType::Q8_0),
    ] {
        let bytes = encode(&set, dtype, quant, 1).unwrap().to_bytes().unwrap();
        let file = Arc::new(GgufFile::from_bytes(bytes).unwrap());
        assert_eq!(file.tensor("blk.0.ffn_up.weight").unwrap().dtype, want);
        assert_eq!(
            file.tensor("blk.0.attn_norm.weight").unwrap().dtype,
            GgmlType::F32,
            "norms stay F32"
        );
        if want == GgmlType::F16 {
            // Zeros survive F16 exactly: the same per-row sparsity comes back.
            let back = TensorSet::from_gguf(&file).unwrap();
            assert_eq!(back.counts(), set.counts());
        }
        let model = Model::from_gguf(file).unwrap();
        let d = max_diff(&logits(&model, &toks), &exact);
        assert!(d < 0.05, "{want:?}: logits moved by {d}");
    }
}
