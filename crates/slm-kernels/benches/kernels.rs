//! Kernel micro-benchmarks: `cargo bench -p slm-kernels` (add `-- matvec` to filter).
//!
//! Shapes are SmolLM2-135M's (hidden 576, FFN 1536, 3 query heads per key-value head of 64).
//! Each product reports the weight bytes it reads per second, the figure to hold against the
//! machine's memory bandwidth:
//! - `matvec_in_cache`: one token through a gate-projection-sized matrix that stays in cache (kernel speed);
//! - `matvec_streaming`: one token through 128 copies of it in turn (~60–240 MB, more than
//!   any cache), on one thread and on two (generation's situation);
//! - `prompt_64`: 64 tokens through the matrix in prompt mode (the VNNI kernel where it exists).

use divan::counter::BytesCount;
use divan::{black_box, Bencher};
use slm_kernels::ops::{attend, rms_norm};
use slm_kernels::quant::quantize_row;
use slm_kernels::{matmul, quantize_q8, GgmlType, Pool, Q8Block, QMatrix, Scratch};

fn main() {
    divan::main();
}

/// The weight types generation runs on most.
const TYPES: [GgmlType; 8] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q8_0,
    GgmlType::Q4_K,
    GgmlType::Q6_K,
    GgmlType::F16,
    GgmlType::F32,
];
const COPIES: usize = 128;

/// `(rows, cols)`: the gate projection (1536 × 576), or for the K-quants, whose 256-blocks do
/// not divide 576, the down projection (576 × 1536).
fn shape(dtype: GgmlType) -> (usize, usize) {
    if dtype.block_size() == 256 {
        (576, 1536)
    } else {
        (1536, 576)
    }
}

/// Deterministic values in [-1, 1) (a small LCG: benchmarks need no statistical quality).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// The matrix of `dtype` (see [`shape`]), as raw bytes.
fn weight_bytes(dtype: GgmlType) -> Vec<u8> {
    let (rows, cols) = shape(dtype);
    let row_bytes = dtype.row_bytes(cols as u64).expect("cols is a whole number of blocks") as usize;
    let src = values(rows * cols, 7);
    let mut data = vec![0u8; rows * row_bytes];
    for (row, out) in src.chunks_exact(cols).zip(data.chunks_exact_mut(row_bytes)) {
        quantize_row(dtype, row, out).expect("every benchmarked type encodes");
    }
    data
}

fn matrix(dtype: GgmlType, data: &[u8]) -> QMatrix<'_> {
    let (rows, cols) = shape(dtype);
    QMatrix::new(dtype, rows, cols, data).expect("shape matches the bytes")
}

#[divan::bench(args = TYPES)]
fn matvec_in_cache(b: Bencher, dtype: GgmlType) {
    let data = weight_bytes(dtype);
    let (rows, cols) = shape(dtype);
    let (pool, w, x) = (Pool::new(1).expect("pool"), matrix(dtype, &data), values(cols, 1));
    let (mut out, mut scratch) = (vec![0.0f32; rows], Scratch::new());
    b.counter(BytesCount::new(data.len())).bench_local(|| {
        matmul(&pool, &w, black_box(&x), 1, &mut out, &mut scratch).expect("matmul");
    });
}

/// One token through each of `COPIES` distinct copies of the matrix in turn.
fn streaming(b: Bencher, dtype: GgmlType, threads: usize) {
    let one = weight_bytes(dtype);
    let data: Vec<u8> = (0..COPIES).flat_map(|_| one.iter().copied()).collect();
    let mats: Vec<QMatrix> = data.chunks_exact(one.len()).map(|d| matrix(dtype, d)).collect();
    let (rows, cols) = shape(dtype);
    let (pool, x) = (Pool::new(threads).expect("pool"), values(cols, 1));
    let (mut out, mut scratch) = (vec![0.0f32; rows], Scratch::new());
    b.counter(BytesCount::new(data.len())).bench_local(|| {
        for w in &mats {
            matmul(&pool, w, black_box(&x), 1, &mut out, &mut scratch).expect("matmul");
        }
    });
}

#[divan::bench(args = TYPES, sample_count = 20)]
fn matvec_streaming_1_thread(b: Bencher, dtype: GgmlType) {
    streaming(b, dtype, 1);
}

#[divan::bench(args = TYPES, sample_count = 20)]
fn matvec_streaming_2_threads(b: Bencher, dtype: GgmlType) {
    streaming(b, dtype, 2);
}

#[divan::bench(args = TYPES, sample_count = 20)]
fn prompt_64(b: Bencher, dtype: GgmlType) {
    const TOKENS: usize = 64;
    let data = weight_bytes(dtype);
    let (rows, cols) = shape(dtype);
    let (pool, w, x) = (Pool::new(1).expect("pool"), matrix(dtype, &data), values(TOKENS * cols, 1));
    let (mut out, mut scratch) = (vec![0.0f32; TOKENS * rows], Scratch::new());
    scratch.set_prompt(true);
    b.counter(BytesCount::new(data.len() * TOKENS)).bench_local(|| {
        matmul(&pool, &w, black_box(&x), TOKENS, &mut out, &mut scratch).expect("matmul");
    });
}

#[divan::bench]
fn quantize_activations_q8(b: Bencher) {
    let x = values(576, 3);
    let mut out = vec![Q8Block::default(); 576 / 32];
    b.bench_local(|| quantize_q8(black_box(&x), &mut out));
}

#[divan::bench]
fn rms_norm_576(b: Bencher) {
    let (x, w) = (values(576, 4), values(576, 5));
    let mut out = vec![0.0f32; 576];
    b.bench_local(|| rms_norm(black_box(&x), &w, 1e-5, &mut out));
}

/// The three query heads of one key/value head against `n_keys` cached positions.
#[divan::bench(args = [64, 512, 4096])]
fn attend_gqa_group(b: Bencher, n_keys: usize) {
    const D: usize = 64;
    let (q, keys, values_) = (values(3 * D, 6), values(n_keys * D, 7), values(n_keys * D, 8));
    let (mut scores, mut out) = (vec![0.0f32; 3 * n_keys], vec![0.0f32; 3 * D]);
    b.bench_local(|| attend(black_box(&q), D, &keys, &values_, n_keys, 0.125, &mut scores, &mut out));
}
