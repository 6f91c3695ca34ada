//! `--device auto`: measure this machine's kernels for a few seconds and describe it as a
//! [`DeviceProfile`]. Generation streams weights from memory, so it is measured on matrices
//! larger than any cache; prompts are compute-bound, so they are measured on a cache-sized matrix
//! with a 64-token batch.

use super::profile::DeviceProfile;
use crate::error::RuntimeError;
use slm_format::GgmlType;
use slm_kernels::quant::quantize_row;
use slm_kernels::{matmul, Pool, QMatrix, Scratch};
use std::collections::BTreeMap;
use std::time::Instant;

/// Types the probe measures (every type `slm quantize` writes).
const TYPES: [GgmlType; 13] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q6_K,
    GgmlType::Q5_1,
    GgmlType::Q5_0,
    GgmlType::Q5_K,
    GgmlType::Q4_1,
    GgmlType::Q4_0,
    GgmlType::Q4_K,
    GgmlType::Q3_K,
    GgmlType::Q2_K,
];

/// Columns of the probe matrices (a multiple of every block size).
const COLS: usize = 1024;
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
    let x: Vec<f32> = (0..64 * COLS).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
    for dtype in TYPES {
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
        let mut out = vec![0f32; rows * 64];
        let secs = best_secs(5, || run(pool, &w, &x, 64, &mut out, &mut scratch))?;
        let flops = 2.0 * (rows * COLS * 64) as f64;
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
