//! Dense f32 weights × many tokens on the `gemm` crate: the prompt-sized products of
//! full-precision models (e.g. a BERT encoder's batch of a few thousand tokens), where a
//! cache-blocked GEMM beats the per-row dot-product kernels of [`crate::matmul`].
//!
//! The output columns (weight rows) are split over the [`Pool`]; each task runs a single-threaded
//! `gemm` over all tokens for its block, so the pool stays the only source of threads.

use crate::{KernelError, Pool};

/// Tokens from which [`matmul_f32_dense`] is worth it (below, the dot kernels are as fast).
pub const DENSE_MIN_TOKENS: usize = 16;

/// `out[t][r] = Σ_c w[r][c] · x[t][c]` for f32 weights stored as little-endian bytes.
///
/// Returns `Ok(false)` without touching `out` when this path does not apply (weight bytes not
/// 4-byte aligned, a big-endian or wasm target): the caller then uses [`crate::matmul`].
///
/// # Shapes
/// `w`: `[rows][cols]` f32 (as bytes); `x`: `[n_tokens][cols]`; `out`: `[n_tokens][rows]`.
///
/// # Errors
/// `SizeMismatch` when a buffer's length does not match the shapes.
pub fn matmul_f32_dense(
    pool: &Pool,
    w: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    n_tokens: usize,
    out: &mut [f32],
) -> Result<bool, KernelError> {
    need("dense matmul weight bytes", rows.checked_mul(cols).and_then(|n| n.checked_mul(4)), w.len())?;
    need("dense matmul x", n_tokens.checked_mul(cols), x.len())?;
    need("dense matmul out", n_tokens.checked_mul(rows), out.len())?;
    imp::run(pool, w, rows, cols, x, n_tokens, out)
}

/// `Ok` when `found` equals `expected` (`None`: the expected size overflowed).
fn need(what: &'static str, expected: Option<usize>, found: usize) -> Result<(), KernelError> {
    match expected {
        Some(e) if e == found => Ok(()),
        Some(e) => Err(KernelError::SizeMismatch { what, expected: e, found }),
        None => Err(KernelError::Overflow { what }),
    }
}

/// Whether [`vnni_product`] takes `w` (Q8_0/Q4_0/Q4_1, rows and cols multiples of 32, a CPU with
/// AVX-512 VNNI).
pub(crate) fn vnni_suits(w: &crate::QMatrix) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        crate::dense_vnni::Kind::of(w.dtype).is_some()
            && w.rows.is_multiple_of(crate::dense_vnni::PANEL)
            && w.cols.is_multiple_of(32)
            && crate::dense_vnni::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = w;
        false
    }
}

/// A Q8_0/Q4_0/Q4_1 product on the VNNI kernel (see `dense_vnni.rs`); `Ok(false)` when it does
/// not apply.
pub(crate) fn vnni_product(
    pool: &Pool,
    w: &crate::QMatrix,
    x: &[f32],
    n_tokens: usize,
    out: &mut [f32],
) -> Result<bool, KernelError> {
    imp::vnni_product(pool, w, x, n_tokens, out)
}

/// [`matmul_f32_dense`] for a weight of any type: F32 weights are used in place; others (and
/// misaligned F32) are first decoded into `decoded` (grown as needed, rows spread over the pool).
/// For large batches the decode costs `rows × cols` against `n_tokens × rows × cols` multiply-adds.
///
/// Returns `Ok(false)` on targets without the dense path (wasm32, big-endian).
///
/// # Errors
/// As [`matmul_f32_dense`]; `Unsupported` for integer weight types.
pub fn matmul_dense(
    pool: &Pool,
    w: &crate::QMatrix,
    x: &[f32],
    n_tokens: usize,
    out: &mut [f32],
    decoded: &mut Vec<f32>,
) -> Result<bool, KernelError> {
    if !cfg!(all(target_endian = "little", not(target_arch = "wasm32"))) {
        return Ok(false);
    }
    let (rows, cols) = (w.rows, w.cols);
    if imp::vnni_product(pool, w, x, n_tokens, out)? {
        return Ok(true);
    }
    if w.dtype == slm_format::GgmlType::F32 && matmul_f32_dense(pool, w.data, rows, cols, x, n_tokens, out)? {
        return Ok(true);
    }
    let n = rows.checked_mul(cols).ok_or(KernelError::Overflow { what: "dense matmul weight" })?;
    if decoded.len() < n {
        decoded.resize(n, 0.0);
    }
    let dst = &mut decoded[..n];
    if let Some(first) = dst.get_mut(..cols) {
        // Surfaces a type the decoder does not handle (integer types) before spreading work.
        w.dequantize_row(0, first)?;
    }
    let failed = std::sync::atomic::AtomicBool::new(false);
    pool.run_rows(dst, cols, &mut [] as &mut [()], 0, &|first, block, _| {
        for (j, row) in block.chunks_exact_mut(cols).enumerate() {
            if w.dequantize_row(first + j, row).is_err() {
                failed.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    if failed.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(KernelError::SizeMismatch {
            what: "dense matmul weight bytes (rows × row bytes)",
            expected: rows.saturating_mul(w.row_bytes()),
            found: w.data.len(),
        });
    }
    // SAFETY: a Vec<f32> is 4-byte aligned and `n * 4` bytes long.
    let bytes = unsafe { std::slice::from_raw_parts(decoded.as_ptr() as *const u8, n * 4) };
    matmul_f32_dense(pool, bytes, rows, cols, x, n_tokens, out)
}

#[cfg(all(target_endian = "little", not(target_arch = "wasm32")))]
mod imp {
    use super::*;

    /// Q8_0/Q4_0/Q4_1 weights on the AVX-512 VNNI kernel (`dense_vnni.rs`); `Ok(false)` when the
    /// CPU or the shape (rows and cols multiples of 32) does not suit it.
    pub(super) fn vnni_product(
        pool: &Pool,
        w: &crate::QMatrix,
        x: &[f32],
        n_tokens: usize,
        out: &mut [f32],
    ) -> Result<bool, KernelError> {
        #[cfg(target_arch = "x86_64")]
        {
            use crate::dense_vnni::{panel_product, Activations, Kind, Panel, PANEL};
            if !vnni_suits(w) {
                return Ok(false);
            }
            let Some(kind) = Kind::of(w.dtype) else { return Ok(false) };
            let (rows, cols) = (w.rows, w.cols);
            need("quantized weight bytes", rows.checked_mul(cols / 32 * w.dtype.type_size()), w.data.len())?;
            need("dense matmul x", n_tokens.checked_mul(cols), x.len())?;
            need("dense matmul out", n_tokens.checked_mul(rows), out.len())?;
            if n_tokens == 0 || rows == 0 {
                return Ok(true);
            }
            let acts = Activations::new(pool, kind, x, n_tokens, cols);
            let dst = OutPtr(out.as_mut_ptr());
            pool.run(rows / PANEL, &|p| {
                let panel = Panel::pack(kind, w.data, cols, p * PANEL);
                // SAFETY: the CPU features were detected; sizes were checked above; panel p writes
                // only output columns p*32..p*32+32 of each token, disjoint from other tasks', and
                // `out` is exclusively borrowed for the whole run.
                unsafe { panel_product(kind, &acts, n_tokens, &panel, dst.get(), rows, p * PANEL) };
            });
            Ok(true)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (pool, w, x, n_tokens, out);
            Ok(false)
        }
    }

    /// The output pointer, shared by tasks that write disjoint column blocks.
    struct OutPtr(*mut f32);
    // SAFETY: tasks write disjoint column ranges of the output (see `run`).
    unsafe impl Sync for OutPtr {}
    impl OutPtr {
        fn get(&self) -> *mut f32 {
            self.0
        }
    }

    pub(super) fn run(
        pool: &Pool,
        w: &[u8],
        rows: usize,
        cols: usize,
        x: &[f32],
        n_tokens: usize,
        out: &mut [f32],
    ) -> Result<bool, KernelError> {
        // SAFETY: every bit pattern is a valid f32; `align_to` only yields the aligned middle.
        let (head, w, tail) = unsafe { w.align_to::<f32>() };
        if !head.is_empty() || !tail.is_empty() {
            return Ok(false);
        }
        if n_tokens == 0 || rows == 0 {
            return Ok(true);
        }
        // Blocks of whole 64-column panels, a few per thread so uneven progress balances out.
        let n_tasks = (pool.n_threads() * 3).clamp(1, rows.div_ceil(64));
        let block = rows.div_ceil(n_tasks).next_multiple_of(16).min(rows);
        let n_tasks = rows.div_ceil(block);
        let dst = OutPtr(out.as_mut_ptr());
        pool.run(n_tasks, &|i| {
            let r0 = i * block;
            let n = block.min(rows - r0);
            // SAFETY: lengths were checked against rows/cols/n_tokens above. Task i reads weight
            // rows r0..r0+n (w[r0*cols..]) and all of x, and writes out[t*rows + r0..][..n] for
            // every t: column blocks of different tasks are disjoint, so no element is written
            // twice, and `out` is exclusively borrowed for the whole `pool.run`.
            unsafe {
                gemm::gemm(
                    n_tokens,
                    n,
                    cols,
                    dst.get().add(r0),
                    1,
                    rows as isize,
                    false,
                    x.as_ptr(),
                    1,
                    cols as isize,
                    w.as_ptr().add(r0 * cols),
                    cols as isize,
                    1,
                    0.0f32,
                    1.0f32,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        });
        Ok(true)
    }
}

#[cfg(not(all(target_endian = "little", not(target_arch = "wasm32"))))]
mod imp {
    use super::*;

    pub(super) fn vnni_product(
        _: &Pool,
        _: &crate::QMatrix,
        _: &[f32],
        _: usize,
        _: &mut [f32],
    ) -> Result<bool, KernelError> {
        Ok(false)
    }

    pub(super) fn run(
        _: &Pool,
        _: &[u8],
        _: usize,
        _: usize,
        _: &[f32],
        _: usize,
        _: &mut [f32],
    ) -> Result<bool, KernelError> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_plain_product_for_odd_shapes() {
        for (rows, cols, n) in [(1, 1, 1), (70, 33, 17), (384, 384, 40), (130, 64, 3)] {
            let w: Vec<f32> = (0..rows * cols).map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0).collect();
            let x: Vec<f32> = (0..n * cols).map(|i| ((i * 104729) % 97) as f32 / 48.0 - 1.0).collect();
            // A Vec<f32>'s bytes are 4-byte aligned, so the dense path applies.
            let bytes: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
            let mut aligned = vec![0f32; rows * cols];
            // SAFETY: same length in bytes; f32 has no invalid bit patterns.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), aligned.as_mut_ptr() as *mut u8, bytes.len()) };
            let wb = unsafe { std::slice::from_raw_parts(aligned.as_ptr() as *const u8, bytes.len()) };
            let pool = Pool::new(2).unwrap();
            let mut out = vec![f32::NAN; n * rows];
            assert!(matmul_f32_dense(&pool, wb, rows, cols, &x, n, &mut out).unwrap());
            for t in 0..n {
                for r in 0..rows {
                    let want: f32 = (0..cols).map(|c| w[r * cols + c] * x[t * cols + c]).sum();
                    let got = out[t * rows + r];
                    assert!(
                        (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                        "({rows},{cols},{n}) t{t} r{r}: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn quantized_weights_are_decoded_then_multiplied() {
        let (rows, cols, n) = (48, 64, 20);
        let w: Vec<f32> = (0..rows * cols).map(|i| ((i * 31) % 61) as f32 / 30.0 - 1.0).collect();
        let x: Vec<f32> = (0..n * cols).map(|i| ((i * 17) % 23) as f32 / 11.0 - 1.0).collect();
        let mut q = vec![0u8; rows * cols / 32 * 34];
        crate::quant::quantize_row(slm_format::GgmlType::Q8_0, &w, &mut q).unwrap();
        let m = crate::QMatrix::new(slm_format::GgmlType::Q8_0, rows, cols, &q).unwrap();
        let pool = Pool::new(2).unwrap();
        let mut dense = vec![0.0; n * rows];
        let mut buf = Vec::new();
        assert!(matmul_dense(&pool, &m, &x, n, &mut dense, &mut buf).unwrap());
        let mut reference = vec![0.0; n * rows];
        crate::matmul_reference(&m, &x, n, &mut reference).unwrap();
        for (a, b) in dense.iter().zip(&reference) {
            // The reference quantizes activations to 8 bits; the dense path keeps them f32.
            assert!((a - b).abs() < 0.05 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }

    #[test]
    fn q8_0_q4_0_q4_1_products_match_the_dot_kernels() {
        // Multiples of 32 take the VNNI kernel where the CPU has it; token counts cover the tails.
        use slm_format::GgmlType::{Q4_0, Q4_1, Q8_0};
        for (dtype, rows, cols, n) in [
            (Q8_0, 64, 96, 17),
            (Q8_0, 32, 32, 1),
            (Q8_0, 96, 288, 6),
            (Q8_0, 40, 64, 5),
            (Q4_0, 64, 96, 17),
            (Q4_1, 64, 96, 18),
            (Q4_1, 32, 64, 3),
        ] {
            let w: Vec<f32> = (0..rows * cols).map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0).collect();
            let x: Vec<f32> = (0..n * cols).map(|i| ((i * 13) % 29) as f32 / 14.0 - 1.0).collect();
            let mut q = vec![0u8; rows * cols / 32 * dtype.type_size()];
            crate::quant::quantize_row(dtype, &w, &mut q).unwrap();
            let m = crate::QMatrix::new(dtype, rows, cols, &q).unwrap();
            let pool = Pool::new(2).unwrap();
            let mut got = vec![0.0; n * rows];
            let mut buf = Vec::new();
            assert!(matmul_dense(&pool, &m, &x, n, &mut got, &mut buf).unwrap());
            let mut want = vec![0.0; n * rows];
            let vnni = cfg!(target_arch = "x86_64") && rows % 32 == 0 && is_vnni();
            // With VNNI the arithmetic is the dot kernels' (8-bit activations, the same integer
            // sums); the decode + f32 GEMM path keeps f32 activations, like the scalar reference.
            let tol = if vnni {
                // AVX2 is below the best level on a VNNI CPU, so this runs the dot kernels.
                crate::matmul_with_isa(&pool, &m, &x, n, &mut want, &mut crate::Scratch::new(), crate::Isa::Avx2)
                    .unwrap();
                1e-5
            } else {
                crate::matmul_reference(&m, &x, n, &mut want).unwrap();
                0.05
            };
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() <= tol * (1.0 + b.abs()), "{dtype} ({rows},{cols},{n}): {a} vs {b}");
            }
        }
    }

    fn is_vnni() -> bool {
        #[cfg(target_arch = "x86_64")]
        return crate::dense_vnni::available();
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    #[test]
    fn wrong_sizes_are_errors() {
        let pool = Pool::new(1).unwrap();
        let w = vec![0u8; 4 * 6];
        let mut out = vec![0.0; 4];
        assert!(matmul_f32_dense(&pool, &w, 2, 3, &[0.0; 5], 2, &mut out).is_err());
        assert!(matmul_f32_dense(&pool, &w[..20], 2, 3, &[0.0; 6], 2, &mut out).is_err());
    }
}
