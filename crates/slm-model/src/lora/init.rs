//! Fresh adapters: the standard LoRA initialisation (what training starts from) and fully
//! random ones (tests and golden files).

use super::{LoraAdapter, LoraError, LoraPair, LoraTarget, MAX_RANK};
use crate::config::ModelConfig;
use crate::random_init::SplitMix64;

impl LoraAdapter {
    /// PEFT's default initialisation for `targets` of every layer: `A` uniform in
    /// `±1/√n_in` (Kaiming-uniform with a = √5), `B = 0`, so the adapted model starts equal to
    /// the base model.
    pub fn init(
        cfg: &ModelConfig,
        targets: &[LoraTarget],
        rank: usize,
        alpha: f32,
        seed: u64,
    ) -> Result<LoraAdapter, LoraError> {
        if rank == 0 || rank > MAX_RANK {
            return Err(LoraError::Invalid(format!("rank {rank} is outside 1..={MAX_RANK}")));
        }
        if !alpha.is_finite() {
            return Err(LoraError::Invalid(format!("alpha {alpha} is not finite")));
        }
        let mut rng = SplitMix64::new(seed);
        let mut adapter = LoraAdapter::new(cfg.arch.gguf_name(), rank, alpha);
        for layer in 0..cfg.n_layer {
            for &target in targets {
                let (n_in, n_out) = target.dims(cfg);
                let mut p = LoraPair::zeros(n_in, n_out, rank);
                let bound = 1.0 / (n_in as f32).sqrt();
                p.a.iter_mut().for_each(|v| *v = bound * rng.next_signed());
                adapter.pairs.insert((layer, target), p);
            }
        }
        Ok(adapter)
    }

    /// [`LoraAdapter::init`] from `seed`, then `B` uniform in `±b_amplitude` from `seed + 1`: a
    /// deterministic adapter that changes the model (tests and golden files against llama.cpp).
    pub fn random(
        cfg: &ModelConfig,
        targets: &[LoraTarget],
        rank: usize,
        alpha: f32,
        seed: u64,
        b_amplitude: f32,
    ) -> Result<LoraAdapter, LoraError> {
        let mut a = LoraAdapter::init(cfg, targets, rank, alpha, seed)?;
        a.randomize_b(b_amplitude, seed.wrapping_add(1));
        Ok(a)
    }

    /// Fills every `B` with uniform values in `±amplitude` (tests and golden adapters: a
    /// freshly initialised adapter changes nothing).
    pub fn randomize_b(&mut self, amplitude: f32, seed: u64) {
        let mut rng = SplitMix64::new(seed);
        for p in self.pairs.values_mut() {
            p.b.iter_mut().for_each(|v| *v = amplitude * rng.next_signed());
        }
    }
}
