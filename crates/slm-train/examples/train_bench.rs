//! Training throughput on random tokens (no data loading): tokens/s of full optimizer steps
//! (forward, backward, clipping, AdamW).
//!
//! ```text
//! cargo run --release -p slm-train --example train_bench -- [d_model n_layer n_head n_kv_head d_ff n_vocab seq_len batch steps]
//! ```
//! Defaults: a 4.9M-parameter model (256, 6, 8, 4, 688, 2048) at T = 256, B = 8, 5 timed steps.
//! Threads: rayon's pool (`RAYON_NUM_THREADS`, default all cores).

use slm_model::{Arch, ModelConfig};
use slm_train::{AdamWConfig, Rng, Schedule, TrainConfig, Trainer};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let arg = |i: usize, default: usize| args.get(i).copied().unwrap_or(default);
    let (d, layers, heads, kv_heads, ff, vocab) = (
        arg(0, 256),
        arg(1, 6),
        arg(2, 8),
        arg(3, 4),
        arg(4, 688),
        arg(5, 2048),
    );
    let (seq_len, batch, steps) = (arg(6, 256), arg(7, 8), arg(8, 5));
    let cfg = ModelConfig {
        arch: Arch::Llama,
        n_vocab: vocab,
        d_model: d,
        n_layer: layers,
        n_head: heads,
        n_kv_head: kv_heads,
        head_dim: d / heads,
        d_ff: ff,
        n_ctx_train: seq_len,
        rms_eps: 1e-5,
        rope_theta: 10_000.0,
        tied_output: true,
    };
    let mut rng = Rng::new(1);
    let tokens: Vec<u32> = (0..seq_len * batch * (steps + 2) + 1)
        .map(|_| rng.below(vocab as u64) as u32)
        .collect();
    let tc = TrainConfig {
        seq_len,
        batch_size: batch,
        grad_accum: 1,
        seed: 1,
        optim: AdamWConfig::with_lr(1e-3),
        schedule: Schedule::Constant { warmup: 0 },
        clip_grad_norm: Some(1.0),
    };
    let mut t = Trainer::new(cfg.clone(), tc, tokens)?;
    println!(
        "model: {} params (d {d}, {layers} layers, {heads}/{kv_heads} heads, ff {ff}, vocab {vocab}); T {seq_len}, B {batch}; {} threads",
        cfg.n_params(),
        rayon::current_num_threads()
    );
    t.step()?; // warm-up: allocates the workspace
    let start = Instant::now();
    let mut tokens_done = 0;
    for _ in 0..steps {
        let s = t.step()?;
        tokens_done += s.tokens;
        println!(
            "step {}: loss {:.4}, grad norm {:.3}",
            s.step, s.loss, s.grad_norm
        );
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{:.0} tok/s ({:.3} s/step)",
        tokens_done as f64 / secs,
        secs / steps as f64
    );
    Ok(())
}
