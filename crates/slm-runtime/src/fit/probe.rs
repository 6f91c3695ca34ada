//! `--device auto`: measure this machine's kernels for a few seconds and describe it as a
//! [`DeviceProfile`]. Generation streams weights from memory, so it is measured on matrices
//! larger than any cache; prompts are compute-bound, so they are measured on a cache-sized matrix
//! with a 256-token batch (prompt kernels that repack weights per call, like the VNNI one, amortise
//! that over the batch, so a short batch would understate them).

use super::profile::DeviceProfile;
use crate::error::RuntimeError;
use slm_format::GgmlType;
use slm_kernels::quant::quantize_row;
use slm_model::quantize::WRITABLE_TYPES;
use slm_kernels::{matmul, Pool, QMatrix, Scratch};
use std::collections::BTreeMap;
use std::time::Instant;


/// Columns of the probe matrices (a multiple of every block size).
const COLS: usize = 1024;
/// Tokens of the prompt-rate measurement.
const PROMPT_TOKENS: usize = 256;
/// Weight bytes streamed per generation measurement: well above last-level caches.
const DECODE_BYTES: usize = 128 << 20;

/// A matrix of `rows × COLS` random values in `dtype` (64 distinct rows, tiled).
fn matrix_bytes(dtype: GgmlType, rows: usize) -> Result<Vec<u8>, RuntimeError> {
    let row_bytes = dtype.row_bytes(COLS as u64).unwrap_or(0) as usize;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut tile = vec![0u8; 64 * row_bytes];
    let mut row = vec![0f32; COLS];
    for dst in tile.chunks_exact_mut(row_bytes) {
        for v in row.iter_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *v = (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        }
        quantize_row(dtype, &row, dst).map_err(slm_model::ModelError::from)?;
    }
    let mut out = Vec::with_capacity(rows * row_bytes);
    while out.len() < rows * row_bytes {
        let take = (rows * row_bytes - out.len()).min(tile.len());
        out.extend_from_slice(&tile[..take]);
    }
    Ok(out)
}

/// Fastest of `reps` runs of `f`, in seconds: the run least disturbed by other processes, which is
/// what the kernels do on an otherwise idle machine.
fn best_secs(reps: usize, mut f: impl FnMut() -> Result<(), RuntimeError>) -> Result<f64, RuntimeError> {
    f()?; // warm-up: page in, grow scratch
    let mut t = Vec::with_capacity(reps);
    for _ in 0..reps {
        let start = Instant::now();
        f()?;
        t.push(start.elapsed().as_secs_f64());
    }
    Ok(t.into_iter().fold(f64::INFINITY, f64::min))
}

fn run(pool: &Pool, w: &QMatrix, x: &[f32], n: usize, out: &mut [f32], s: &mut Scratch) -> Result<(), RuntimeError> {
    matmul(pool, w, x, n, out, s).map_err(|e| RuntimeError::Model(e.into()))
}

/// Measures this machine with `pool` and returns its profile. Takes a few seconds.
pub fn measure(pool: &Pool, memory_bytes: u64, runtime_bytes: u64) -> Result<DeviceProfile, RuntimeError> {
    let (mut decode, mut prompt) = (BTreeMap::new(), BTreeMap::new());
    let mut scratch = Scratch::new();
    let x: Vec<f32> = (0..PROMPT_TOKENS * COLS).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
    // Every type `slm quantize` writes.
    for dtype in WRITABLE_TYPES {
        let row_bytes = dtype.row_bytes(COLS as u64).unwrap_or(1) as usize;
        let rows = DECODE_BYTES / row_bytes;
        let data = matrix_bytes(dtype, rows)?;
        let w = QMatrix::new(dtype, rows, COLS, &data).map_err(|e| RuntimeError::Model(e.into()))?;
        let mut out = vec![0f32; rows];
        let secs = best_secs(5, || run(pool, &w, &x[..COLS], 1, &mut out, &mut scratch))?;
        decode.insert(dtype.name().to_string(), (data.len() as f64 / secs / 1e9 * 100.0).round() / 100.0);

        let rows = 1024;
        let w =
            QMatrix::new(dtype, rows, COLS, &data[..rows * row_bytes]).map_err(|e| RuntimeError::Model(e.into()))?;
        let mut out = vec![0f32; rows * PROMPT_TOKENS];
        scratch.set_prompt(true);
        let secs = best_secs(5, || run(pool, &w, &x, PROMPT_TOKENS, &mut out, &mut scratch))?;
        scratch.set_prompt(false);
        let flops = 2.0 * (rows * COLS * PROMPT_TOKENS) as f64;
        prompt.insert(dtype.name().to_string(), (flops / secs / 1e9 * 10.0).round() / 10.0);
    }
    decode.insert("default".into(), decode.get("Q4_0").copied().unwrap_or(1.0));
    prompt.insert("default".into(), prompt.get("Q4_0").copied().unwrap_or(1.0));

    // Pool job overhead: a matmul too small to cost anything but the fork-join.
    let data = matrix_bytes(GgmlType::Q8_0, 64)?;
    let w = QMatrix::new(GgmlType::Q8_0, 64, COLS, &data).map_err(|e| RuntimeError::Model(e.into()))?;
    let mut out = vec![0f32; 64];
    let job = best_secs(201, || run(pool, &w, &x[..COLS], 1, &mut out, &mut scratch))?;
    let attention = prompt.get("F32").copied().unwrap_or(1.0);
    Ok(DeviceProfile {
        name: "auto".into(),
        description: format!("this machine, measured with {} threads", pool.n_threads()),
        memory_bytes,
        address_space_bytes: None,
        threads: pool.n_threads(),
        decode_gbps: decode,
        prompt_gflops: prompt,
        attention_gflops: attention,
        job_overhead_us: (job * 1e6 * 10.0).round() / 10.0,
        runtime_bytes,
        source: "measured by `slm fit --device auto` (kernel probe)".into(),
    })
}

/// Memory available to a new process on Linux (`MemAvailable`), if readable.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Scales a measured profile so that it predicts `model`'s own speed on this machine: runs a
/// 512-token prompt and 32 generated tokens after 64 positions (after a warm-up; prompt kernels
/// that repack weights per call need a prompt-sized batch), and multiplies every prompt rate
/// by predicted/measured prompt time and every streaming rate by predicted/measured generation
/// time. The kernel probe keeps the ratios between types; the model run supplies what the probe
/// cannot see (norms, RoPE, attention, memory layout of a real file). Other formats of the same
/// model are then predicted from this calibration.
pub fn calibrate(
    profile: &mut DeviceProfile,
    model: &slm_model::Model,
    pool: &Pool,
    name: &str,
) -> Result<(), RuntimeError> {
    use slm_model::Logits;
    let file = model.gguf();
    let fp = super::Footprint::of(file, None)?;
    let (n_p, n_g) = (512usize, 32usize);
    let n_vocab = model.config().n_vocab as u64;
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let tokens: Vec<u32> = (0..n_p + n_g)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n_vocab) as u32
        })
        .collect();
    let mut ctx = model.new_context(n_p + n_g, n_p)?;
    let mut run = || -> Result<(f64, f64), RuntimeError> {
        ctx.clear();
        let t0 = Instant::now();
        model.forward_prompt(&mut ctx, pool, &tokens[..n_p], Logits::Last)?;
        let prompt = t0.elapsed().as_secs_f64();
        // Generation after 64 positions: the middle of `slm bench`'s tg128, which starts empty.
        ctx.clear();
        model.forward_prompt(&mut ctx, pool, &tokens[..64], Logits::Last)?;
        let t1 = Instant::now();
        for &t in &tokens[n_p..] {
            model.forward(&mut ctx, pool, &[t], Logits::Last)?;
        }
        Ok((prompt, t1.elapsed().as_secs_f64()))
    };
    run()?; // warm-up: page the weights in
    let (mut prompt, mut gen) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..3 {
        let (p, g) = run()?;
        prompt = prompt.min(p);
        gen = gen.min(g);
    }
    let predicted_prompt = super::predict::prompt_secs(&fp, profile, n_p, n_p);
    let predicted_gen = super::predict::gen_secs(&fp, profile, n_g);
    let (sp, sg) = (predicted_prompt / prompt, predicted_gen / gen);
    for v in profile.prompt_gflops.values_mut() {
        *v *= sp;
    }
    profile.attention_gflops *= sp;
    for v in profile.decode_gbps.values_mut() {
        *v *= sg;
    }
    profile.source = format!("{}; calibrated on {name} (prompt ×{sp:.2}, generation ×{sg:.2})", profile.source);
    Ok(())
}
