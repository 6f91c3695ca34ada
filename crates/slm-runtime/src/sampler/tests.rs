//! Sampler chain tests.

use super::*;

fn ln(ps: &[f32]) -> Vec<f32> {
    ps.iter().map(|p| p.ln()).collect()
}

/// A sampler that samples straight from softmax(logits / temperature).
fn plain(temperature: f32, seed: u64) -> Sampler {
    Sampler::new(SamplerConfig {
        temperature,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        seed: Some(seed),
        ..SamplerConfig::default()
    })
    .unwrap()
}

fn frequencies(s: &mut Sampler, logits: &[f32], n: usize) -> Vec<f64> {
    let mut counts = vec![0usize; logits.len()];
    for _ in 0..n {
        counts[s.sample(logits) as usize] += 1;
    }
    counts.iter().map(|&c| c as f64 / n as f64).collect()
}

#[test]
fn defaults_match_llama_cpp() {
    let c = SamplerConfig::default();
    assert_eq!((c.temperature, c.top_k, c.top_p, c.min_p), (0.8, 40, 0.95, 0.05));
    assert_eq!((c.repeat_penalty, c.repeat_last_n, c.presence_penalty, c.frequency_penalty), (1.0, 64, 0.0, 0.0));
    assert_eq!(c.seed, None);
    // Missing fields take the defaults; unknown ones are refused.
    let parsed: SamplerConfig = serde_json::from_str(r#"{"temperature": 0.2, "seed": 7}"#).unwrap();
    assert_eq!(parsed, SamplerConfig { temperature: 0.2, seed: Some(7), ..SamplerConfig::default() });
    assert!(serde_json::from_str::<SamplerConfig>(r#"{"temprature": 0.2}"#).is_err());
}

#[test]
fn invalid_settings_are_rejected_with_the_field_name() {
    for (cfg, field) in [
        (SamplerConfig { top_p: 1.5, ..Default::default() }, "top_p"),
        (SamplerConfig { min_p: -0.1, ..Default::default() }, "min_p"),
        (SamplerConfig { temperature: f32::NAN, ..Default::default() }, "temperature"),
        (SamplerConfig { repeat_penalty: 0.0, ..Default::default() }, "repeat_penalty"),
        (SamplerConfig { repeat_last_n: usize::MAX, ..Default::default() }, "repeat_last_n"),
    ] {
        let err = Sampler::new(cfg).unwrap_err().to_string();
        assert!(err.contains(field), "{err}");
    }
}

#[test]
fn greedy_is_argmax_with_lowest_id_on_ties() {
    let mut s = Sampler::new(SamplerConfig::greedy()).unwrap();
    assert_eq!(s.sample(&[0.1, 2.0, -1.0, 1.9]), 1);
    assert_eq!(s.sample(&[1.0, 3.0, 3.0, 3.0]), 1);
    assert_eq!(s.sample(&[f32::NAN, -5.0, f32::NAN]), 1);
    assert_eq!(s.sample(&[f32::NEG_INFINITY; 3]), 0);
    assert_eq!(s.sample(&[]), 0);
    let mut s = Sampler::new(SamplerConfig::default().with_temperature(-1.0)).unwrap();
    assert!(s.is_greedy());
    assert_eq!(s.sample(&[0.0, 0.5, 0.2]), 1);
}

#[test]
fn top_k_one_is_greedy() {
    let logits: Vec<f32> = (0..1000).map(|i| ((i * 37) % 101) as f32 * 0.1).collect();
    let argmax = Sampler::new(SamplerConfig::greedy()).unwrap().sample(&logits);
    let mut s = Sampler::new(SamplerConfig::default().with_top_k(1).with_temperature(1.5).with_seed(3)).unwrap();
    for _ in 0..50 {
        assert_eq!(s.sample(&logits), argmax);
    }
}

#[test]
fn same_seed_same_sequence_and_reset_replays() {
    let logits = ln(&[0.3, 0.25, 0.2, 0.15, 0.1]);
    let run = |seed| {
        let mut s = Sampler::new(SamplerConfig::default().with_seed(seed).with_top_k(0).with_min_p(0.0)).unwrap();
        (0..64).map(|_| s.sample(&logits)).collect::<Vec<_>>()
    };
    assert_eq!(run(11), run(11));
    assert_ne!(run(11), run(12));
    let mut s = Sampler::new(SamplerConfig::default().with_seed(11).with_top_k(0).with_min_p(0.0)).unwrap();
    let first: Vec<u32> = (0..64).map(|_| s.sample(&logits)).collect();
    s.reset();
    let again: Vec<u32> = (0..64).map(|_| s.sample(&logits)).collect();
    assert_eq!(first, again);
    assert_eq!(first, run(11));
}

#[test]
fn unseeded_samplers_pick_different_seeds() {
    let a = Sampler::new(SamplerConfig::default()).unwrap();
    let b = Sampler::new(SamplerConfig::default()).unwrap();
    assert_ne!(a.seed(), b.seed());
}

#[test]
fn distribution_matches_softmax() {
    let probs = [0.5, 0.3, 0.15, 0.05];
    let f = frequencies(&mut plain(1.0, 1), &ln(&probs), 10_000);
    for (got, want) in f.iter().zip(probs) {
        // 4 standard deviations of a binomial proportion at n = 10k is at most 0.02.
        assert!((got - f64::from(want)).abs() < 0.02, "{f:?} vs {probs:?}");
    }
}

#[test]
fn temperature_sharpens_and_flattens() {
    let probs = [0.5f32, 0.3, 0.2];
    // T = 0.5 squares the probabilities: 0.25 : 0.09 : 0.04.
    let sharp = frequencies(&mut plain(0.5, 2), &ln(&probs), 10_000);
    let z = 0.25 + 0.09 + 0.04;
    for (got, want) in sharp.iter().zip([0.25 / z, 0.09 / z, 0.04 / z]) {
        assert!((got - want).abs() < 0.02, "{sharp:?}");
    }
    // A very high temperature is close to uniform.
    let flat = frequencies(&mut plain(1000.0, 3), &ln(&probs), 10_000);
    for got in flat {
        assert!((got - 1.0 / 3.0).abs() < 0.02);
    }
}

#[test]
fn top_p_and_min_p_restrict_the_support() {
    let probs = [0.5, 0.3, 0.15, 0.05];
    // top_p 0.75 keeps {0, 1}; the draw renormalizes to 0.625 : 0.375.
    let mut s = Sampler::new(SamplerConfig { temperature: 1.0, top_k: 0, top_p: 0.75, min_p: 0.0, seed: Some(4), ..Default::default() }).unwrap();
    let f = frequencies(&mut s, &ln(&probs), 10_000);
    assert_eq!((f[2], f[3]), (0.0, 0.0));
    assert!((f[0] - 0.625).abs() < 0.02, "{f:?}");
    // min_p 0.2 keeps p >= 0.1: {0, 1, 2}.
    let mut s = Sampler::new(SamplerConfig { temperature: 1.0, top_k: 0, top_p: 1.0, min_p: 0.2, seed: Some(5), ..Default::default() }).unwrap();
    let f = frequencies(&mut s, &ln(&probs), 10_000);
    assert_eq!(f[3], 0.0);
    assert!(f[2] > 0.1, "{f:?}");
    assert_eq!(s.candidates().len(), 3);
}

#[test]
fn repetition_penalty_lowers_repeated_tokens() {
    let mut s = Sampler::new(SamplerConfig::greedy().with_repeat_penalty(2.0, 8)).unwrap();
    let logits = [3.0, 2.0, -1.0];
    assert_eq!(s.sample(&logits), 0);
    s.accept(0);
    // 3.0 / 2 = 1.5 < 2.0: token 1 wins now.
    assert_eq!(s.sample(&logits), 1);
    let penalized: Vec<f32> = s.candidates().iter().map(|c| c.logit).collect();
    assert_eq!(penalized, [1.5, 2.0, -1.0]);
    s.accept(1);
    s.accept(2);
    s.sample(&logits);
    let penalized: Vec<f32> = s.candidates().iter().map(|c| c.logit).collect();
    assert_eq!(penalized, [1.5, 1.0, -2.0], "negative logits are multiplied");
    s.reset();
    assert_eq!(s.sample(&logits), 0, "reset forgets the history");
}

#[test]
fn no_allocation_growth_after_warm_up() {
    let logits: Vec<f32> = (0..49_152).map(|i| ((i * 7919) % 1000) as f32 / 100.0).collect();
    let mut s = Sampler::new(SamplerConfig::default().with_seed(9).with_repeat_penalty(1.1, 64)).unwrap();
    let t = s.sample(&logits);
    s.accept(t);
    let cap = s.candidates.as_slice().as_ptr();
    for _ in 0..100 {
        let t = s.sample(&logits);
        s.accept(t);
    }
    assert_eq!(s.candidates.as_slice().as_ptr(), cap, "the candidate buffer was reallocated");
}
