//! Quantized matrix × activations: `out[t][r] = dot(w.row(r), x[t])`.
//!
//! Data flow per call: quantize `x` once into [`Scratch`] in the weight type's activation
//! format, split the output rows into chunks that the [`Pool`] threads pull, and inside a chunk
//! walk tokens in cache-sized blocks so each weight row is unpacked once per eight (or four)
//! tokens.

use crate::act::{gather_group8, quantize_q8, quantize_q8k, Group8, Scratch};
use crate::dot::{kernel, Isa, Kernel, Tiles};
use crate::error::{check_len, row_bytes_of};
use crate::matvec::{matvec, MatvecJob};
use crate::{KernelError, Pool, QMatrix};
use slm_format::QK_K;

/// `out[t * w.rows + r] = dot(w.row(r), x[t * w.cols ..][.. w.cols])` for `t in 0..n_tokens`.
///
/// # Shapes
/// - `x`: `[n_tokens][w.cols]` row-major f32.
/// - `out`: `[n_tokens][w.rows]` row-major f32, overwritten.
///
/// # Errors
/// `SizeMismatch` if `x` or `out` has the wrong length; `Unsupported` for integer weight types.
pub fn matmul(
    pool: &Pool,
    w: &QMatrix,
    x: &[f32],
    n_tokens: usize,
    out: &mut [f32],
    scratch: &mut Scratch,
) -> Result<(), KernelError> {
    matmul_with_isa(pool, w, x, n_tokens, out, scratch, best_isa())
}

/// The ISA [`matmul`] uses on this CPU (detected once).
pub fn best_isa() -> Isa {
    static BEST: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *BEST.get_or_init(Isa::detect)
}

/// [`matmul`] with an explicit kernel level, for tests and benchmarks. An `isa` this CPU lacks
/// falls back to [`Isa::Scalar`].
///
/// # Errors
/// As [`matmul`].
pub fn matmul_with_isa(
    pool: &Pool,
    w: &QMatrix,
    x: &[f32],
    n_tokens: usize,
    out: &mut [f32],
    scratch: &mut Scratch,
    isa: Isa,
) -> Result<(), KernelError> {
    matmul_fused(pool, [w], x, n_tokens, [out], scratch, isa)
}

/// Several matrices applied to the same activations, `outs[i] = ws[i] · x` (as [`matmul`] for
/// each), in one pass over the pool: the activations are quantized once and all rows are
/// spread over the threads in a single fork-join (e.g. Q/K/V, or gate and up). Matrices of
/// different types or widths fall back to one [`matmul`] each.
///
/// # Shapes
/// `x`: `[n_tokens][cols]`; `outs[i]`: `[n_tokens][ws[i].rows]`.
///
/// # Errors
/// As [`matmul`], for any of the matrices.
pub fn matmul_many<const N: usize>(
    pool: &Pool,
    ws: [&QMatrix; N],
    x: &[f32],
    n_tokens: usize,
    outs: [&mut [f32]; N],
    scratch: &mut Scratch,
) -> Result<(), KernelError> {
    let uniform = ws.iter().all(|w| w.dtype == ws[0].dtype && w.cols == ws[0].cols);
    if N == 0 || uniform {
        return matmul_fused(pool, ws, x, n_tokens, outs, scratch, best_isa());
    }
    for (w, out) in ws.into_iter().zip(outs) {
        matmul(pool, w, x, n_tokens, out, scratch)?;
    }
    Ok(())
}

/// [`matmul_many`] for matrices that share dtype and width (`ws[0]`'s are used).
fn matmul_fused<const N: usize>(
    pool: &Pool,
    ws: [&QMatrix; N],
    x: &[f32],
    n_tokens: usize,
    outs: [&mut [f32]; N],
    scratch: &mut Scratch,
    isa: Isa,
) -> Result<(), KernelError> {
    let Some(w0) = ws.first() else { return Ok(()) };
    let (dtype, cols) = (w0.dtype, w0.cols);
    let x_len = n_tokens.checked_mul(cols).ok_or(KernelError::Overflow { what: "matmul x" })?;
    check_len("matmul x (n_tokens * cols)", x_len, x.len())?;
    for (w, out) in ws.iter().zip(outs.iter()) {
        let out_len = n_tokens.checked_mul(w.rows).ok_or(KernelError::Overflow { what: "matmul out" })?;
        check_len("matmul out (n_tokens * rows)", out_len, out.len())?;
        if w.dtype != dtype || w.cols != cols {
            return Err(KernelError::SizeMismatch {
                what: "fused matmul weight (all matrices need the same type and cols)",
                expected: cols,
                found: w.cols,
            });
        }
        // QMatrix fields are public, so re-check the shape rather than trust construction.
        let rb = row_bytes_of(w.dtype, w.cols, "matmul weight cols")?;
        check_len("matmul weight bytes (rows * row_bytes)", w.rows.saturating_mul(rb), w.data.len())?;
    }
    let total_rows: usize = ws.iter().map(|w| w.rows).sum();
    if n_tokens == 0 || total_rows == 0 {
        return Ok(());
    }
    // In prompt mode, Q8_0/Q4_0/Q4_1 products go to the VNNI kernel: the same integer sums as
    // the Q8 dot kernels at 4× the multiply-adds per cycle; for every token count, so results do
    // not depend on how a prompt is split (only at the best ISA: tests that force a level get it).
    if scratch.prompt && !scratch.row_invariant && isa == best_isa() && ws.iter().all(|w| crate::dense::vnni_suits(w)) {
        for (w, out) in ws.into_iter().zip(outs) {
            if !crate::dense::vnni_product(pool, w, x, n_tokens, out)? {
                return Err(KernelError::SizeMismatch { what: "VNNI Q8_0 weight shape", expected: 32, found: w.rows });
            }
        }
        return Ok(());
    }
    let chunk = rows_per_task(total_rows, pool.n_threads());
    let mut it = outs.into_iter();
    let jobs: [Job; N] = std::array::from_fn(|i| {
        let out = it.next().unwrap_or_default();
        Job { w: ws[i], out: OutPtr { ptr: out.as_mut_ptr(), len: out.len() }, n_tasks: ws[i].rows.div_ceil(chunk) }
    });
    let isa = if isa.is_available() { isa } else { Isa::Scalar };
    // Row-invariant mode: only tiles whose per-token arithmetic is the one-token kernel's. The
    // f32 and K-quant 4-token tiles already are (one body generic over the token count; the
    // bit-for-bit test in matmul_tests covers every type).
    let kernel = match kernel(dtype, isa)? {
        k if !scratch.row_invariant => k,
        Kernel::Q8(t) => Kernel::Q8(t.row_invariant(crate::dot::exact_four_q8(dtype, isa))),
        Kernel::Q8K(t) => Kernel::Q8K(t.row_invariant(t.four)),
        Kernel::F32(t) => Kernel::F32(t.row_invariant(t.four)),
    };
    // Generation: one share of every matrix per thread (see `matvec`).
    let mut shares = std::mem::take(&mut scratch.shares);
    let mv = jobs.each_ref().map(|j| MatvecJob { w: j.w, out: j.out.ptr });
    match kernel {
        Kernel::Q8(tiles) => {
            let nb = cols / 32;
            let n_groups = if tiles.eight.is_some() { n_tokens / 8 } else { 0 };
            let (acts, groups) = scratch.q8_with_groups(nb * n_tokens, nb * n_groups);
            for (xt, at) in x.chunks_exact(cols.max(1)).zip(acts.chunks_exact_mut(nb.max(1))) {
                quantize_q8(xt, at);
            }
            if n_tokens == 1 {
                // SAFETY (here and below): each `out` was checked to hold `rows` floats and is
                // borrowed mutably for this call; `kernel` gave tiles for this CPU and dtype.
                unsafe { matvec(pool, &mv, tiles.quarters, tiles.one, acts, &mut shares) };
            } else {
                gather_group8(acts, nb, groups);
                drive(pool, &jobs, chunk, tiles, acts, groups, nb, n_tokens);
            }
        }
        Kernel::Q8K(tiles) => {
            let nb = cols / QK_K;
            let acts = scratch.q8k(nb * n_tokens);
            for (xt, at) in x.chunks_exact(cols.max(1)).zip(acts.chunks_exact_mut(nb.max(1))) {
                quantize_q8k(xt, at);
            }
            if n_tokens == 1 {
                unsafe { matvec(pool, &mv, None, tiles.one, acts, &mut shares) };
            } else {
                drive(pool, &jobs, chunk, tiles, acts, &[], nb, n_tokens);
            }
        }
        Kernel::F32(tiles) if n_tokens == 1 => unsafe { matvec(pool, &mv, None, tiles.one, x, &mut shares) },
        Kernel::F32(tiles) => drive(pool, &jobs, chunk, tiles, x, &[], cols, n_tokens),
    }
    scratch.shares = shares;
    Ok(())
}

/// One matrix of a fused call: its weights, where its output goes, and how many row chunks.
struct Job<'a, 'b> {
    w: &'a QMatrix<'b>,
    out: OutPtr,
    n_tasks: usize,
}

/// Raw output pointer shared by the tasks of one matmul; each (token, row) cell is written by
/// exactly one task.
#[derive(Clone, Copy)]
struct OutPtr {
    ptr: *mut f32,
    len: usize,
}
// SAFETY: tasks write disjoint cells (rows are partitioned between tasks) and `drive` does not
// return before all tasks finish, so the pointer never outlives the borrow it came from.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    #[inline(always)]
    fn write(self, idx: usize, v: f32) {
        if idx < self.len {
            // SAFETY: in bounds (checked); no other task writes this index (see `drive`).
            unsafe { *self.ptr.add(idx) = v };
        }
    }
}

/// Rows per task of a several-token product (one token goes to `matvec`): small enough that every
/// thread gets several chunks (load balance), large enough to amortise the task overhead.
fn rows_per_task(rows: usize, n_threads: usize) -> usize {
    if n_threads <= 1 {
        return rows;
    }
    rows.div_ceil(n_threads * 8).clamp(4, 512)
}

/// Most 8-token groups in one pass over a chunk's rows (bounds the token block of [`drive`]).
const MAX_GROUPS: usize = 8;

/// Runs `tiles` over all rows of every job and all tokens, `chunk` rows per pool task.
/// `acts` holds `n_tokens` rows of `stride` elements; `groups` the gathered scales of each full
/// group of 8 tokens (`stride` per group) when `tiles.eight` is set.
#[allow(clippy::too_many_arguments)]
fn drive<A: Sync + 'static>(
    pool: &Pool,
    jobs: &[Job],
    chunk: usize,
    tiles: Tiles<A>,
    acts: &[A],
    groups: &[Group8],
    stride: usize,
    n_tokens: usize,
) {
    let n_tasks: usize = jobs.iter().map(|j| j.n_tasks).sum();
    // Tokens per pass: keep the activations of one pass within ~32 KiB (L1) so they are reused
    // across all rows of the chunk.
    let act_bytes = (stride * std::mem::size_of::<A>()).max(1);
    let token_block = ((32 * 1024) / act_bytes).clamp(8, 8 * MAX_GROUPS) / 8 * 8;
    let act_row = |t: usize| acts.get(t * stride..(t + 1) * stride).unwrap_or(&[]);
    pool.run(n_tasks, &|task| {
        // Find the job this task belongs to (N is tiny).
        let mut task = task;
        let mut job = None;
        for j in jobs {
            if task < j.n_tasks {
                job = Some(j);
                break;
            }
            task -= j.n_tasks;
        }
        let Some(Job { w, out: out_ptr, .. }) = job else { return };
        let (rows, out_ptr) = (w.rows, *out_ptr);
        // Row bytes once per task (`QMatrix::row` recomputes them with a division per call).
        let rb = w.row_bytes();
        let row_at = |r: usize| if r < rows { w.data.get(r * rb..(r + 1) * rb) } else { None };
        let r0 = task * chunk;
        let r1 = (r0 + chunk).min(rows);
        let mut t0 = 0;
        while t0 < n_tokens {
            let t1 = (t0 + token_block).min(n_tokens);
            // The 8-token groups of this block, looked up once for all rows of the chunk.
            // `t0` is a multiple of 8, so `t / 8` is a group's index.
            let n8 = if tiles.eight.is_some() { ((t1 - t0) / 8).min(MAX_GROUPS) } else { 0 };
            let mut tiles8: [([&[A]; 8], &[Group8]); MAX_GROUPS] = [([&[]; 8], &[]); MAX_GROUPS];
            for (gi, slot) in tiles8.iter_mut().take(n8).enumerate() {
                let t = t0 + 8 * gi;
                let g = groups.get((t / 8) * stride..(t / 8 + 1) * stride).unwrap_or(&[]);
                *slot = (std::array::from_fn(|k| act_row(t + k)), g);
            }
            for r in r0..r1 {
                let Some(row) = row_at(r) else { continue };
                let mut t = t0;
                if let Some(eight) = tiles.eight {
                    for (rows8, g) in &tiles8[..n8] {
                        // SAFETY: `tiles` was built for an ISA this CPU supports (see `kernel`).
                        let v = unsafe { eight(row, *rows8, g) };
                        for (k, v) in v.into_iter().enumerate() {
                            out_ptr.write((t + k) * rows + r, v);
                        }
                        t += 8;
                    }
                }
                if let Some(four) = tiles.four {
                    while t + 4 <= t1 {
                        // SAFETY: `tiles` was built for an ISA this CPU supports (see `kernel`).
                        let v = unsafe { four(row, [act_row(t), act_row(t + 1), act_row(t + 2), act_row(t + 3)]) };
                        for (k, v) in v.into_iter().enumerate() {
                            out_ptr.write((t + k) * rows + r, v);
                        }
                        t += 4;
                    }
                }
                while t < t1 {
                    // SAFETY: as above.
                    let v = unsafe { (tiles.one)(row, act_row(t)) };
                    out_ptr.write(t * rows + r, v);
                    t += 1;
                }
            }
            t0 = t1;
        }
    });
}

#[cfg(test)]
#[path = "matmul_tests.rs"]
mod tests;

/// Same result as [`matmul`] via dequantize + f32 dot, single-threaded, plain loops: the scalar
/// reference for tests (activations are *not* quantized, so it also measures that error).
///
/// # Errors
/// As [`matmul`].
pub fn matmul_reference(w: &QMatrix, x: &[f32], n_tokens: usize, out: &mut [f32]) -> Result<(), KernelError> {
    let x_len = n_tokens.checked_mul(w.cols).ok_or(KernelError::Overflow { what: "matmul x" })?;
    let out_len = n_tokens.checked_mul(w.rows).ok_or(KernelError::Overflow { what: "matmul out" })?;
    check_len("matmul_reference x (n_tokens * cols)", x_len, x.len())?;
    check_len("matmul_reference out (n_tokens * rows)", out_len, out.len())?;
    let mut wrow = vec![0.0f32; w.cols];
    for r in 0..w.rows {
        w.dequantize_row(r, &mut wrow)?;
        for t in 0..n_tokens {
            let xt = &x[t * w.cols..(t + 1) * w.cols];
            let mut acc = 0.0f64;
            for (a, b) in wrow.iter().zip(xt) {
                acc += *a as f64 * *b as f64;
            }
            out[t * w.rows + r] = acc as f32;
        }
    }
    Ok(())
}
