//! AVX-512 f32 GEMM for [`crate::matmul_f32_dense`]: `out[t][r] = Σ_c w[r][c] · x[t][c]` over
//! panels of 32 weight rows.
//!
//! A panel is packed k-major (`[cols][32]`: one k step is two zmm loads), then multiplied in
//! K blocks that stay in L1 against tiles of 6 tokens: 12 zmm accumulators, 2 loads and 6
//! broadcasts per 12 FMAs. The `gemm` crate has such kernels only behind a nightly feature.

use std::arch::x86_64::*;

/// Weight rows per panel (two zmm registers).
pub(crate) const PANEL: usize = 32;
/// Tokens per register tile.
const TILE: usize = 6;
/// K values per cache block: a packed block is `KC × 32 × 4` = 32 KB.
const KC: usize = 256;

/// Whether this CPU runs the kernel (detected once).
pub(crate) fn available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| is_x86_feature_detected!("avx512f"))
}

/// Packs rows `r0..r0 + 32` of the row-major `[rows][cols]` weight into `packed[k * 32 + j]`.
pub(crate) fn pack_panel(w: &[f32], cols: usize, r0: usize, packed: &mut Vec<f32>) {
    packed.clear();
    packed.resize(cols * PANEL, 0.0);
    for j in 0..PANEL {
        let row = &w[(r0 + j) * cols..][..cols];
        for (k, &v) in row.iter().enumerate() {
            packed[k * PANEL + j] = v;
        }
    }
}

/// Computes the 32 output columns `r0..r0 + 32` of every token from a packed panel.
///
/// # Safety
/// AVX-512F must be available; `x` holds `n_tokens × cols` values, `packed` `cols × 32`, and
/// `out` points at a row-major `[n_tokens][rows]` buffer with `r0 + 32 <= rows`, whose columns
/// `r0..r0 + 32` no other thread touches during the call.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn panel_product(
    x: &[f32],
    n_tokens: usize,
    cols: usize,
    packed: &[f32],
    out: *mut f32,
    rows: usize,
    r0: usize,
) {
    let mut k0 = 0;
    while k0 < cols {
        let k1 = (k0 + KC).min(cols);
        let first = k0 == 0;
        let mut t = 0;
        while t + TILE <= n_tokens {
            tile::<TILE>(x, cols, packed, out, rows, r0, t, k0, k1, first);
            t += TILE;
        }
        match n_tokens - t {
            0 => {}
            1 => tile::<1>(x, cols, packed, out, rows, r0, t, k0, k1, first),
            2 => tile::<2>(x, cols, packed, out, rows, r0, t, k0, k1, first),
            3 => tile::<3>(x, cols, packed, out, rows, r0, t, k0, k1, first),
            4 => tile::<4>(x, cols, packed, out, rows, r0, t, k0, k1, first),
            _ => tile::<5>(x, cols, packed, out, rows, r0, t, k0, k1, first),
        }
        k0 = k1;
    }
}

/// `NT` tokens from `t0`, k in `k0..k1`, accumulated into (or, when `first`, written to) `out`.
#[inline]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const NT: usize>(
    x: &[f32],
    cols: usize,
    packed: &[f32],
    out: *mut f32,
    rows: usize,
    r0: usize,
    t0: usize,
    k0: usize,
    k1: usize,
    first: bool,
) {
    let mut acc = [[_mm512_setzero_ps(); 2]; NT];
    // SAFETY (all pointer arithmetic): the caller guarantees the buffer sizes; t0 + NT <= n_tokens,
    // k < cols, and the output columns r0..r0 + 32 lie inside a row of `rows`.
    unsafe {
        if !first {
            for (i, a) in acc.iter_mut().enumerate() {
                let o = out.add((t0 + i) * rows + r0);
                a[0] = _mm512_loadu_ps(o);
                a[1] = _mm512_loadu_ps(o.add(16));
            }
        }
        let xp = x.as_ptr().add(t0 * cols);
        let wp = packed.as_ptr();
        for k in k0..k1 {
            let w0 = _mm512_loadu_ps(wp.add(k * PANEL));
            let w1 = _mm512_loadu_ps(wp.add(k * PANEL + 16));
            for (i, a) in acc.iter_mut().enumerate() {
                let xv = _mm512_set1_ps(*xp.add(i * cols + k));
                a[0] = _mm512_fmadd_ps(xv, w0, a[0]);
                a[1] = _mm512_fmadd_ps(xv, w1, a[1]);
            }
        }
        for (i, a) in acc.iter().enumerate() {
            let o = out.add((t0 + i) * rows + r0);
            _mm512_storeu_ps(o, a[0]);
            _mm512_storeu_ps(o.add(16), a[1]);
        }
    }
}
