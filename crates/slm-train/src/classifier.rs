//! Training a classification head ([`slm_runtime::ClassifierHead`]) on frozen sentence vectors:
//! an MLP (one ReLU hidden layer) or multinomial logistic regression, cross-entropy with optional
//! class balancing, AdamW, minibatches, and early stopping on a held-out validation split (the
//! best epoch's weights are kept). Deterministic for a seed.
//!
//! ```text
//! shapes: B batch, D input width, H hidden width, L labels
//! h = relu(x·W1ᵀ + b1) [B][H]     logits = h·W2ᵀ + b2 [B][L]     loss = Σ w_y · CE(softmax(logits), y) / Σ w_y
//! ```

use slm_runtime::ClassifierHead;

use crate::error::TrainError;
use crate::matmul::{matmul_nn, matmul_nt, matmul_tn};
use crate::metrics::Record;
use crate::optim::{AdamW, AdamWConfig};
use crate::rng::Rng;

/// Settings of [`train_head`].
#[derive(Clone, Debug, PartialEq)]
pub struct HeadConfig {
    /// Hidden width; 0 trains a linear (logistic-regression) head.
    pub hidden: usize,
    /// Most passes over the training split.
    pub epochs: usize,
    /// Examples per optimizer step.
    pub batch: usize,
    /// AdamW learning rate.
    pub lr: f32,
    /// AdamW decoupled weight decay (matrices only).
    pub weight_decay: f32,
    /// Share of the examples held out for validation and early stopping (0 = none).
    pub val_fraction: f32,
    /// Stop after this many epochs without a better validation loss.
    pub patience: usize,
    /// Weight each class by `n / (labels · n_class)` so rare classes count as much as common ones.
    pub balance: bool,
    /// Seed of the initialisation, the split and the shuffles.
    pub seed: u64,
}

impl Default for HeadConfig {
    fn default() -> Self {
        HeadConfig {
            hidden: 256,
            epochs: 100,
            batch: 32,
            lr: 1e-3,
            weight_decay: 1e-2,
            val_fraction: 0.1,
            patience: 10,
            balance: true,
            seed: 1,
        }
    }
}

/// What happened in one epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochStats {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss over the epoch.
    pub train_loss: f64,
    /// Validation loss (`None` without a validation split).
    pub val_loss: Option<f64>,
    /// Validation accuracy.
    pub val_accuracy: Option<f64>,
}

/// The result of [`train_head`].
#[derive(Clone, Debug)]
pub struct HeadReport {
    /// Every epoch run.
    pub epochs: Vec<EpochStats>,
    /// The epoch whose weights were kept.
    pub best_epoch: usize,
    /// Training examples.
    pub n_train: usize,
    /// Validation examples.
    pub n_val: usize,
}

impl HeadReport {
    /// The epochs as metric records (epoch = step), for `plot::loss_svg`.
    pub fn records(&self) -> Vec<Record> {
        let mut out = Vec::new();
        for e in &self.epochs {
            let step = e.epoch as u64;
            out.push(Record::Train { step, loss: e.train_loss, lr: 0.0, grad_norm: 0.0, tok_per_s: 0.0 });
            if let Some(loss) = e.val_loss {
                out.push(Record::Eval { step, loss, bits_per_byte: None });
            }
        }
        out
    }
}

/// Flat parameter vector `[W1 | b1 | W2 | b2]` and its shapes.
struct Shapes {
    d: usize,
    h: usize,
    l: usize,
}

impl Shapes {
    fn inner(&self) -> usize {
        if self.h == 0 {
            self.d
        } else {
            self.h
        }
    }
    fn w1(&self) -> std::ops::Range<usize> {
        0..self.h * self.d
    }
    fn b1(&self) -> std::ops::Range<usize> {
        let s = self.h * self.d;
        s..s + self.h
    }
    fn w2(&self) -> std::ops::Range<usize> {
        let s = self.b1().end;
        s..s + self.l * self.inner()
    }
    fn b2(&self) -> std::ops::Range<usize> {
        let s = self.w2().end;
        s..s + self.l
    }
    fn len(&self) -> usize {
        self.b2().end
    }
}

/// Trains a head on `features[i]` (all of one width) with label indices `labels[i]` into
/// `label_names`; `on_epoch` sees each epoch's statistics.
///
/// # Errors
/// `InvalidArgument` for empty or ragged features, labels out of range, fewer than two labels or
/// non-finite values.
pub fn train_head(
    features: &[Vec<f32>],
    labels: &[usize],
    label_names: &[String],
    cfg: &HeadConfig,
    on_epoch: &mut dyn FnMut(&EpochStats),
) -> Result<(ClassifierHead, HeadReport), TrainError> {
    let bad = |m: String| Err(TrainError::InvalidArgument(m));
    let d = features.first().map_or(0, Vec::len);
    if features.len() != labels.len() || features.len() < 2 || d == 0 {
        return bad(format!(
            "need at least 2 examples with features ({} features, {} labels)",
            features.len(),
            labels.len()
        ));
    }
    if label_names.len() < 2 {
        return bad("a classifier needs at least 2 labels".into());
    }
    if let Some(i) = features.iter().position(|f| f.len() != d || f.iter().any(|v| !v.is_finite())) {
        return bad(format!("example {i} has a vector of a different width or with non-finite values"));
    }
    if let Some(&y) = labels.iter().find(|&&y| y >= label_names.len()) {
        return bad(format!("label index {y} is outside the {} labels", label_names.len()));
    }
    if cfg.batch == 0 || cfg.epochs == 0 || !(0.0..0.9).contains(&cfg.val_fraction) || !(cfg.lr > 0.0) {
        return bad("batch and epochs must be ≥ 1, val_fraction in [0, 0.9), lr > 0".into());
    }
    let s = Shapes { d, h: cfg.hidden, l: label_names.len() };

    // Split (seeded shuffle; the tail is validation).
    let mut rng = Rng::new(cfg.seed);
    let mut order: Vec<usize> = (0..features.len()).collect();
    rng.shuffle(&mut order);
    let n_val = ((features.len() as f32 * cfg.val_fraction) as usize).min(features.len() - 1);
    let (train_idx, val_idx) = order.split_at(features.len() - n_val);
    let mut train_idx = train_idx.to_vec();

    let mut class_w = vec![1.0f32; s.l];
    if cfg.balance {
        let mut counts = vec![0usize; s.l];
        train_idx.iter().for_each(|&i| counts[labels[i]] += 1);
        for (w, &c) in class_w.iter_mut().zip(&counts) {
            *w = if c == 0 { 0.0 } else { train_idx.len() as f32 / (s.l as f32 * c as f32) };
        }
    }

    // PyTorch Linear's default initialisation: U(-1/√fan_in, 1/√fan_in).
    let mut params = vec![0.0f32; s.len()];
    let mut init = |r: std::ops::Range<usize>, fan_in: usize, rng: &mut Rng| {
        let bound = 1.0 / (fan_in as f64).sqrt();
        params[r].iter_mut().for_each(|p| *p = ((rng.next_f64() * 2.0 - 1.0) * bound) as f32);
    };
    init(s.w1(), d, &mut rng);
    init(s.b1(), d, &mut rng);
    init(s.w2(), s.inner(), &mut rng);
    init(s.b2(), s.inner(), &mut rng);

    let optim_cfg = AdamWConfig { weight_decay: cfg.weight_decay, ..AdamWConfig::with_lr(cfg.lr) };
    optim_cfg.validate()?;
    let mut adam = AdamW::new(optim_cfg, s.len());
    let groups = [(s.w1(), true), (s.b1(), false), (s.w2(), true), (s.b2(), false)];
    let mut grads = vec![0.0f32; s.len()];
    let mut best = (f64::INFINITY, 0usize, params.clone());
    let mut epochs = Vec::new();
    for epoch in 1..=cfg.epochs {
        rng.shuffle(&mut train_idx);
        let mut loss_sum = 0.0f64;
        for batch in train_idx.chunks(cfg.batch) {
            grads.fill(0.0);
            loss_sum += step_grads(&s, &params, features, labels, batch, &class_w, &mut grads) * batch.len() as f64;
            adam.step_groups(&groups, &mut params, &grads, cfg.lr)?;
        }
        let train_loss = loss_sum / train_idx.len() as f64;
        let (val_loss, val_accuracy) = if val_idx.is_empty() {
            (None, None)
        } else {
            let (loss, acc) = evaluate(&s, &params, features, labels, val_idx);
            (Some(loss), Some(acc))
        };
        let stats = EpochStats { epoch, train_loss, val_loss, val_accuracy };
        on_epoch(&stats);
        epochs.push(stats);
        let score = val_loss.unwrap_or(train_loss);
        if score < best.0 {
            best = (score, epoch, params.clone());
        } else if val_loss.is_some() && epoch - best.1 >= cfg.patience {
            break;
        }
    }
    let (_, best_epoch, params) = best;
    let head = ClassifierHead {
        labels: label_names.to_vec(),
        input_dim: d,
        hidden_dim: s.h,
        w1: params[s.w1()].to_vec(),
        b1: params[s.b1()].to_vec(),
        w2: params[s.w2()].to_vec(),
        b2: params[s.b2()].to_vec(),
        encoder: String::new(),
        encoder_path: None,
    };
    Ok((head, HeadReport { epochs, best_epoch, n_train: train_idx.len(), n_val: val_idx.len() }))
}

/// Forward pass of a batch: hidden activations `[B][H]` (empty when linear) and logits `[B][L]`.
fn forward(s: &Shapes, p: &[f32], x: &[f32], b: usize) -> (Vec<f32>, Vec<f32>) {
    let mut hidden = Vec::new();
    if s.h > 0 {
        hidden = vec![0.0f32; b * s.h];
        matmul_nt(&mut hidden, x, &p[s.w1()], b, s.h, s.d, false);
        for row in hidden.chunks_exact_mut(s.h) {
            row.iter_mut().zip(&p[s.b1()]).for_each(|(v, &bias)| *v = (*v + bias).max(0.0));
        }
    }
    let inner: &[f32] = if s.h > 0 { &hidden } else { x };
    let mut logits = vec![0.0f32; b * s.l];
    matmul_nt(&mut logits, inner, &p[s.w2()], b, s.l, s.inner(), false);
    for row in logits.chunks_exact_mut(s.l) {
        row.iter_mut().zip(&p[s.b2()]).for_each(|(v, &bias)| *v += bias);
    }
    (hidden, logits)
}

fn gather(features: &[Vec<f32>], idx: &[usize]) -> Vec<f32> {
    idx.iter().flat_map(|&i| features[i].iter().copied()).collect()
}

/// Adds the gradients of the batch's weighted mean loss to `g`; returns that loss.
fn step_grads(
    s: &Shapes,
    p: &[f32],
    features: &[Vec<f32>],
    labels: &[usize],
    idx: &[usize],
    class_w: &[f32],
    g: &mut [f32],
) -> f64 {
    let b = idx.len();
    let x = gather(features, idx);
    let (hidden, mut dlogits) = forward(s, p, &x, b);
    let total_w: f32 = idx.iter().map(|&i| class_w[labels[i]]).sum::<f32>().max(1e-12);
    let mut loss = 0.0f64;
    // d(loss)/d(logits) = w_y (softmax − onehot) / Σw.
    for (row, &i) in dlogits.chunks_exact_mut(s.l).zip(idx) {
        slm_kernels::ops::softmax_inplace(row);
        let (y, w) = (labels[i], class_w[labels[i]]);
        loss -= w as f64 * (row[y].max(1e-30) as f64).ln();
        row[y] -= 1.0;
        row.iter_mut().for_each(|v| *v *= w / total_w);
    }
    let inner: &[f32] = if s.h > 0 { &hidden } else { &x };
    let k = s.inner();
    matmul_tn(&mut g[s.w2()], &dlogits, inner, s.l, k, b, true);
    for row in dlogits.chunks_exact(s.l) {
        g[s.b2()].iter_mut().zip(row).for_each(|(a, &v)| *a += v);
    }
    if s.h > 0 {
        let mut dh = vec![0.0f32; b * s.h];
        matmul_nn(&mut dh, &dlogits, &p[s.w2()], b, s.h, s.l, false);
        // ReLU: no gradient where the activation was clipped to 0.
        dh.iter_mut().zip(&hidden).for_each(|(d, &h)| {
            if h <= 0.0 {
                *d = 0.0
            }
        });
        matmul_tn(&mut g[s.w1()], &dh, &x, s.h, s.d, b, true);
        for row in dh.chunks_exact(s.h) {
            g[s.b1()].iter_mut().zip(row).for_each(|(a, &v)| *a += v);
        }
    }
    loss / total_w as f64
}

/// Mean (unweighted) loss and accuracy over `idx`.
fn evaluate(s: &Shapes, p: &[f32], features: &[Vec<f32>], labels: &[usize], idx: &[usize]) -> (f64, f64) {
    let (mut loss, mut correct) = (0.0f64, 0usize);
    for chunk in idx.chunks(256) {
        let x = gather(features, chunk);
        let (_, mut logits) = forward(s, p, &x, chunk.len());
        for (row, &i) in logits.chunks_exact_mut(s.l).zip(chunk) {
            slm_kernels::ops::softmax_inplace(row);
            loss -= (row[labels[i]].max(1e-30) as f64).ln();
            let arg = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(j, _)| j);
            correct += usize::from(arg == labels[i]);
        }
    }
    (loss / idx.len() as f64, correct as f64 / idx.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two Gaussian-ish blobs that a linear boundary separates, plus an XOR pattern that needs
    /// the hidden layer.
    fn blobs(n: usize, xor: bool) -> (Vec<Vec<f32>>, Vec<usize>) {
        let mut rng = Rng::new(7);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let (a, b) = (rng.normal() as f32 * 0.3, rng.normal() as f32 * 0.3);
            let (sa, sb) = (if i % 2 == 0 { 1.0 } else { -1.0 }, if (i / 2) % 2 == 0 { 1.0 } else { -1.0 });
            x.push(vec![sa + a, sb + b, rng.normal() as f32 * 0.1]);
            y.push(if xor { usize::from(sa * sb > 0.0) } else { usize::from(sa > 0.0) });
        }
        (x, y)
    }

    fn accuracy(head: &ClassifierHead, x: &[Vec<f32>], y: &[usize]) -> f64 {
        let hits = x
            .iter()
            .zip(y)
            .filter(|(v, &t)| {
                let p = head.probabilities(v).unwrap();
                (p[1] > p[0]) == (t == 1)
            })
            .count();
        hits as f64 / x.len() as f64
    }

    #[test]
    fn linear_and_mlp_heads_learn() {
        let names = vec!["a".to_string(), "b".to_string()];
        let (x, y) = blobs(400, false);
        let cfg = HeadConfig { hidden: 0, epochs: 40, lr: 0.05, ..HeadConfig::default() };
        let (head, report) = train_head(&x, &y, &names, &cfg, &mut |_| {}).unwrap();
        assert!(accuracy(&head, &x, &y) > 0.97, "linear head");
        assert!(report.epochs.first().unwrap().train_loss > report.epochs.last().unwrap().train_loss);

        let (x, y) = blobs(400, true);
        let linear = train_head(&x, &y, &names, &cfg, &mut |_| {}).unwrap().0;
        let mlp_cfg = HeadConfig { hidden: 16, epochs: 200, lr: 0.01, patience: 50, ..HeadConfig::default() };
        let (mlp, _) = train_head(&x, &y, &names, &mlp_cfg, &mut |_| {}).unwrap();
        assert!(accuracy(&linear, &x, &y) < 0.75, "XOR is not linearly separable");
        assert!(accuracy(&mlp, &x, &y) > 0.95, "the hidden layer learns XOR: {}", accuracy(&mlp, &x, &y));
    }

    #[test]
    fn gradients_match_finite_differences() {
        let s = Shapes { d: 3, h: 4, l: 3 };
        let mut rng = Rng::new(3);
        let p: Vec<f32> = (0..s.len()).map(|_| rng.normal() as f32 * 0.5).collect();
        let x: Vec<Vec<f32>> = (0..5).map(|_| (0..3).map(|_| rng.normal() as f32).collect()).collect();
        let y = vec![0, 2, 1, 2, 0];
        let idx: Vec<usize> = (0..5).collect();
        let w = vec![1.0, 2.0, 0.5];
        let mut g = vec![0.0f32; s.len()];
        step_grads(&s, &p, &x, &y, &idx, &w, &mut g);
        let eps = 1e-3f32;
        for i in 0..s.len() {
            let (mut plus, mut minus) = (p.clone(), p.clone());
            plus[i] += eps;
            minus[i] -= eps;
            let mut scratch = vec![0.0f32; s.len()];
            let lp = step_grads(&s, &plus, &x, &y, &idx, &w, &mut scratch);
            let lm = step_grads(&s, &minus, &x, &y, &idx, &w, &mut scratch);
            let numeric = ((lp - lm) / (2.0 * eps as f64)) as f32;
            assert!((numeric - g[i]).abs() < 2e-3, "param {i}: analytic {} numeric {numeric}", g[i]);
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        let names = vec!["a".to_string(), "b".to_string()];
        let cfg = HeadConfig::default();
        assert!(train_head(&[vec![1.0], vec![1.0, 2.0]], &[0, 1], &names, &cfg, &mut |_| {}).is_err());
        assert!(train_head(&[vec![1.0], vec![2.0]], &[0, 2], &names, &cfg, &mut |_| {}).is_err());
        assert!(train_head(&[vec![f32::NAN], vec![2.0]], &[0, 1], &names, &cfg, &mut |_| {}).is_err());
        assert!(train_head(&[vec![1.0], vec![2.0]], &[0, 1], &names[..1], &cfg, &mut |_| {}).is_err());
    }
}
