//! Whole-model gradient check: every parameter's analytic gradient against a central finite
//! difference of the mean loss, on tiny configs (tied and untied output).
//!
//! Tolerance: `|g − fd| ≤ 1e-3 + 2e-2·|g|`. The loss is a mean of f32 forward passes with
//! relative rounding ~1e-6; divided by the step `2h = 2e-3` that is ~1e-3 of absolute noise at
//! most; truncation error `O(h²)` is far smaller.

mod common;

use common::{lively_params, random_tokens, tiny_config};
use slm_train::{TrainModel, Workspace};

const H: f32 = 1e-3;

fn check_model(tied: bool, seed: u64) {
    let cfg = tiny_config(tied);
    let model = TrainModel::new(cfg.clone()).unwrap();
    let params = lively_params(model.layout(), seed);
    let (b, t) = (2, 5);
    let tokens = random_tokens(b * t, cfg.n_vocab, seed + 1);
    let targets = random_tokens(b * t, cfg.n_vocab, seed + 2);
    let n = (b * t) as f64;
    let mut ws = Workspace::new();
    let mut grads = vec![0.0f32; params.len()];
    model
        .forward_backward(
            &params,
            &mut grads,
            &tokens,
            &targets,
            t,
            1.0 / n as f32,
            &mut ws,
        )
        .unwrap();
    let mut p = params.clone();
    let mut loss = |p: &[f32]| model.eval_loss(p, &tokens, &targets, t, &mut ws).unwrap();
    let mut checked = 0;
    let mut worst = (0.0f64, String::new());
    for spec in &model.layout().tensors {
        for i in spec.range() {
            let x = p[i];
            p[i] = x + H;
            let up = p[i];
            let fp = loss(&p);
            p[i] = x - H;
            let down = p[i];
            let fm = loss(&p);
            p[i] = x;
            let num = (fp - fm) / (up - down) as f64;
            let ana = grads[i] as f64;
            let err = (num - ana).abs();
            assert!(
                err <= 1e-3 + 2e-2 * ana.abs(),
                "{} element {}: analytic {ana} vs numeric {num}",
                spec.name,
                i - spec.offset
            );
            if err > worst.0 {
                worst = (err, spec.name.clone());
            }
            checked += 1;
        }
    }
    assert_eq!(checked, params.len());
    // Gradients must not be trivially zero: the check above would then prove little.
    let norm: f64 = grads
        .iter()
        .map(|&g| g as f64 * g as f64)
        .sum::<f64>()
        .sqrt();
    assert!(norm > 1e-2, "gradient norm {norm}");
    eprintln!(
        "tied={tied}: {checked} parameters, worst abs error {:.2e} in {}",
        worst.0, worst.1
    );
}

#[test]
fn tied_model_gradients_match_finite_differences() {
    check_model(true, 10);
}

#[test]
fn untied_model_gradients_match_finite_differences() {
    check_model(false, 20);
}

#[test]
fn chunked_output_head_gives_the_same_loss_and_gradients() {
    // 10 tokens in head chunks of 3 (4 chunks, the last ragged) against one chunk.
    let cfg = tiny_config(true);
    let model = TrainModel::new(cfg.clone()).unwrap();
    let params = lively_params(model.layout(), 5);
    let (tokens, targets) = (
        random_tokens(10, cfg.n_vocab, 6),
        random_tokens(10, cfg.n_vocab, 7),
    );
    let run = |ws: &mut Workspace| {
        let mut g = vec![0.0f32; params.len()];
        let loss = model
            .forward_backward(&params, &mut g, &tokens, &targets, 5, 0.1, ws)
            .unwrap();
        (loss, g)
    };
    let (l1, g1) = run(&mut Workspace::new());
    let (l3, g3) = run(&mut Workspace::with_head_rows(3));
    assert!((l1 - l3).abs() < 1e-9 * l1.abs(), "{l1} vs {l3}");
    let scale = g1.iter().fold(0.0f32, |m, g| m.max(g.abs()));
    for (a, b) in g1.iter().zip(&g3) {
        assert!((a - b).abs() <= 1e-6 * scale, "{a} vs {b}");
    }
    let e1 = model
        .eval_loss(&params, &tokens, &targets, 5, &mut Workspace::new())
        .unwrap();
    let e3 = model
        .eval_loss(
            &params,
            &tokens,
            &targets,
            5,
            &mut Workspace::with_head_rows(3),
        )
        .unwrap();
    assert!((e1 - e3).abs() < 1e-9 && (e1 - l1 / 10.0).abs() < 1e-6);
}
