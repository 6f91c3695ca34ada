//! Spec tests of the pruning masks and scores: exact per-row sparsity, valid N:M groups, the
//! lowest scores are the ones removed, and Wanda ranks differently from magnitude when the
//! activations are skewed.

use slm_model::random_init::SplitMix64;
use slm_train::prune::{apply, pruned_per_row, weight_scores, Pattern, Score, Tensor};

fn random_tensor(rows: usize, cols: usize, seed: u64) -> Tensor {
    let mut rng = SplitMix64::new(seed);
    // Never exactly zero, so every zero afterwards was put there by pruning.
    let data = (0..rows * cols)
        .map(|_| rng.next_signed() + if rng.next_u64() % 2 == 0 { 1e-3 } else { -1e-3 })
        .collect();
    Tensor {
        name: "blk.0.ffn_up.weight".into(),
        dims: vec![cols as u64, rows as u64],
        data,
    }
}

fn random_norms(cols: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..cols)
        .map(|_| 10f32.powf(2.0 * rng.next_signed()))
        .collect()
}

#[test]
fn unstructured_removes_exactly_the_lowest_scores_of_every_row() {
    let (rows, cols) = (7, 40);
    let norms = random_norms(cols, 3);
    for score in [Score::Magnitude, Score::Wanda] {
        for sparsity in [0.0f32, 0.1, 0.25, 0.5, 0.7, 0.95] {
            let mut t = random_tensor(rows, cols, 11);
            let s = weight_scores(&t, score, Some(&norms)).unwrap();
            let removed = apply(
                &mut t.data,
                &s,
                cols,
                Pattern::unstructured(sparsity).unwrap(),
            )
            .unwrap();
            let k = pruned_per_row(cols, sparsity);
            assert_eq!(k, (cols as f32 * sparsity).round() as usize);
            assert_eq!(removed, (k * rows) as u64, "{score:?} {sparsity}");
            for (r, (row, srow)) in t.data.chunks(cols).zip(s.chunks(cols)).enumerate() {
                let zeros = row.iter().filter(|v| **v == 0.0).count();
                assert_eq!(zeros, k, "{score:?} sparsity {sparsity} row {r}");
                let max_pruned = row
                    .iter()
                    .zip(srow)
                    .filter(|(v, _)| **v == 0.0)
                    .map(|(_, s)| *s)
                    .fold(f32::MIN, f32::max);
                let min_kept = row
                    .iter()
                    .zip(srow)
                    .filter(|(v, _)| **v != 0.0)
                    .map(|(_, s)| *s)
                    .fold(f32::MAX, f32::min);
                assert!(
                    max_pruned <= min_kept,
                    "{score:?} row {r}: removed a score {max_pruned} above a kept {min_kept}"
                );
            }
        }
    }
}

#[test]
fn two_of_four_keeps_the_best_two_of_every_group() {
    let (rows, cols) = (5, 32);
    let norms = random_norms(cols, 5);
    for score in [Score::Magnitude, Score::Wanda] {
        let mut t = random_tensor(rows, cols, 13);
        let original = t.data.clone();
        let s = weight_scores(&t, score, Some(&norms)).unwrap();
        let removed = apply(&mut t.data, &s, cols, Pattern::parse_n_of_m("2:4").unwrap()).unwrap();
        assert_eq!(removed, (rows * cols / 2) as u64);
        for (g, ((group, sg), orig)) in t
            .data
            .chunks(4)
            .zip(s.chunks(4))
            .zip(original.chunks(4))
            .enumerate()
        {
            assert_eq!(
                group.iter().filter(|v| **v == 0.0).count(),
                2,
                "{score:?} group {g}: {group:?}"
            );
            let mut order: Vec<usize> = (0..4).collect();
            order.sort_by(|&a, &b| sg[b].total_cmp(&sg[a]));
            for &j in &order[..2] {
                assert_eq!(
                    group[j], orig[j],
                    "{score:?} group {g}: a top-2 weight was removed"
                );
            }
        }
    }
}

#[test]
fn wanda_and_magnitude_choose_differently_when_activations_are_skewed() {
    // Large weights on columns with tiny activations, small weights on columns with large ones.
    let t = Tensor {
        name: "blk.0.attn_q.weight".into(),
        dims: vec![4, 2],
        data: vec![1.0, -0.9, 0.2, -0.1, 0.8, 0.7, -0.3, 0.25],
    };
    let norms = [0.01, 0.02, 10.0, 20.0];
    let pattern = Pattern::unstructured(0.5).unwrap();
    let mut by_mag = t.clone();
    apply(
        &mut by_mag.data,
        &weight_scores(&t, Score::Magnitude, None).unwrap(),
        4,
        pattern,
    )
    .unwrap();
    let mut by_wanda = t.clone();
    apply(
        &mut by_wanda.data,
        &weight_scores(&t, Score::Wanda, Some(&norms)).unwrap(),
        4,
        pattern,
    )
    .unwrap();
    assert_eq!(by_mag.data, vec![1.0, -0.9, 0.0, 0.0, 0.8, 0.7, 0.0, 0.0]);
    assert_eq!(
        by_wanda.data,
        vec![0.0, 0.0, 0.2, -0.1, 0.0, 0.0, -0.3, 0.25]
    );
    // Uniform activations make Wanda magnitude pruning.
    let mut flat = t.clone();
    apply(
        &mut flat.data,
        &weight_scores(&t, Score::Wanda, Some(&[3.0; 4])).unwrap(),
        4,
        pattern,
    )
    .unwrap();
    assert_eq!(flat.data, by_mag.data);
}

#[test]
fn bad_requests_are_refused_with_a_reason() {
    for p in ["4:2", "0:4", "2:2", "2-4", "a:b", "2:"] {
        let err = Pattern::parse_n_of_m(p).unwrap_err().to_string();
        assert!(err.contains("N:M"), "{p}: {err}");
    }
    for s in [1.0f32, -0.1, f32::NAN] {
        assert!(Pattern::unstructured(s)
            .unwrap_err()
            .to_string()
            .contains("[0, 1)"));
    }
    let t = random_tensor(2, 6, 1);
    let s = weight_scores(&t, Score::Magnitude, None).unwrap();
    let mut data = t.data.clone();
    assert!(
        apply(&mut data, &s, 6, Pattern::parse_n_of_m("2:4").unwrap()).is_err(),
        "rows of 6 do not split into 4s"
    );
    let err = weight_scores(&t, Score::Wanda, Some(&[1.0; 5]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("6 input columns"), "{err}");
    assert!(weight_scores(&t, Score::Wanda, None).is_err());
}
