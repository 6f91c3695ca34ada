//! Compute core of the slm inference engine: ggml block formats, quantized matrix
//! multiplication, and the f32 row ops a transformer needs, with a scalar reference for every
//! kernel and SIMD versions chosen at run time.
//!
//! # Data flow of one linear layer
//! ```text
//!  GGUF tensor bytes ──► QMatrix { dtype, rows, cols, data }      (borrowed, size-checked)
//!  x: [n_tokens][cols] f32
//!     │  quantize once per call into Scratch, in the weight type's activation format
//!     │  (Q4_0/Q5_0/Q8_0 → Q8 blocks, Q4_1/Q5_1 → Q8 blocks with sums, K-quants → Q8_K,
//!     │   F32/F16/BF16 → the f32 rows as they are)
//!     ▼
//!  Pool threads pull chunks of output rows; per row, a `vec_dot` kernel (scalar / AVX2 /
//!  AVX-512 VNNI / NEON) computes integer block dot products for 1 or 4 tokens at a time
//!     ▼
//!  out: [n_tokens][rows] f32
//! ```
//! [`matmul_reference`] computes the same product by dequantizing to f32; tests hold every fast
//! path to it. [`quant`] encodes and decodes rows of every supported type (ggml-compatible),
//! [`ops`] has RMSNorm, softmax, SiLU, RoPE and small BLAS-1 / attention helpers.
//!
//! # Kernel coverage
//! | weights | activations | scalar | AVX2 1 token | AVX2 multi-token tile | AVX-512 VNNI |
//! |---|---|---|---|---|---|
//! | Q4_0, Q4_1 | Q8 | yes | yes | 4 and 8 tokens | 4 rows × 1 token; prompt GEMM |
//! | Q5_0, Q5_1, Q8_1 | Q8 | yes | yes | 4 and 8 tokens | 4 rows × 1 token |
//! | Q8_0 | Q8 | yes | yes | 4 and 8 tokens | 4 rows × 1 token; prompt GEMM |
//! | Q4_K, Q5_K, Q6_K | Q8_K | yes | yes | 4 tokens | (AVX2) |
//! | Q2_K, Q3_K | Q8_K | yes | yes | 4 tokens | (AVX2) |
//! | Q8_K | Q8_K | yes | scalar | - | - |
//! | F32, F16, BF16 | f32 | yes | yes | 4 tokens | (AVX2) |
//!
//! The AVX-512 VNNI level runs the AVX2 kernels plus its own: a one-token kernel over four
//! weight rows (generation) and a repacking GEMM for prompt-sized batches (`dense_vnni`). NEON
//! runs the scalar kernels; wasm32 with SIMD128 has its own Q4_0/Q4_1/Q8_0 kernels.
//! Micro-benchmarks: `cargo bench -p slm-kernels` (benches/kernels.rs).
//!
//! # Numerics
//! Encoders reproduce ggml's `quantize_row_*_ref` byte for byte, activation quantization
//! reproduces ggml-cpu's (f16 scales, round-half-even), and the kernels reproduce ggml's
//! `vec_dot` up to float summation order; `src/ggml_golden_tests.rs` checks all three against
//! libggml output.
//! [`quant::quantize_row_weighted`] reproduces llama-quantize's importance-matrix ("imatrix")
//! encoders (`ggml_quantize_chunk` with an imatrix) byte for byte, checked the same way.
//!
//! The crate builds for `wasm32-unknown-unknown` (scalar kernels, `Pool::new(1)`).

mod act;
#[cfg(target_arch = "x86_64")]
mod act_avx2;
mod dense;
#[cfg(target_arch = "x86_64")]
mod dense_vnni;
pub mod dot;
mod error;
#[cfg(test)]
mod ggml_golden_tests;
mod matmul;
mod matrix;
mod matvec;
pub mod ops;
mod pool;
pub mod quant;

pub use act::{quantize_q8, quantize_q8k, Q8Block, Q8KBlock, Scratch};
pub use dense::{matmul_dense, matmul_f32_dense, DENSE_MIN_TOKENS};
pub use dot::Isa;
pub use error::KernelError;
pub use matmul::{best_isa, matmul, matmul_many, matmul_reference, matmul_with_isa};
pub use matrix::QMatrix;
pub use pool::{ChunkTask, Pool};
pub use slm_format::GgmlType;
