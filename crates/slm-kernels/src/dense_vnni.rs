//! Q8_0 weights × many tokens with AVX-512 VNNI (`vpdpbusd`, four int8 products per 32-bit lane):
//! the batched products of 8-bit encoders. On this project's CPU a `vpdpbusd` does 4× the
//! multiply-adds per cycle of an f32 FMA, so this beats decoding to f32 and running a GEMM.
//!
//! Activations are quantized per 32-value block exactly as for the dot kernels ([`quantize_q8`]),
//! then offset to unsigned bytes (`q + 128`; the `128 · Σw` this adds is subtracted per block).
//! Weights are repacked per panel of 32 rows so that one k step of four bytes is two zmm loads
//! (16 rows each) and every lane accumulates one row: per block, `Σ_k x·w` in int32, then
//! `out += (acc − 128·Σw) · d_w · d_x` in f32. Results equal the reference's Q8_0 × Q8 sum up
//! to f32 rounding order.

use std::arch::x86_64::*;

use half::f16;

use crate::act::{quantize_q8, Q8Block};

/// Weight rows per panel.
pub(crate) const PANEL: usize = 32;
/// Tokens per register tile.
const TILE: usize = 4;
/// Bytes of one Q8_0 block (f16 scale + 32 int8).
const BLOCK_BYTES: usize = 34;

/// Whether this CPU has AVX-512 F/BW/VNNI (detected once).
pub(crate) fn available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
    })
}

/// Activations as unsigned bytes (`q + 128`, `[tokens][cols]`) and their block scales
/// (`[tokens][cols / 32]`).
pub(crate) struct Activations {
    bytes: Vec<u8>,
    scales: Vec<f32>,
    cols: usize,
}

impl Activations {
    /// Quantizes `x` (`[n_tokens][cols]`, `cols` a multiple of 32), token rows spread over the pool.
    pub(crate) fn new(pool: &crate::Pool, x: &[f32], n_tokens: usize, cols: usize) -> Activations {
        let nb = cols / 32;
        let mut bytes = vec![0u8; n_tokens * cols];
        let mut scales = vec![0.0f32; n_tokens * nb];
        let per_task = n_tokens.div_ceil(pool.n_threads() * 4).max(1);
        let quantize = |t0: usize, bytes: &mut [u8], scales: &mut [f32]| {
            let mut blocks = vec![Q8Block::default(); nb];
            for (i, (bs, ss)) in bytes.chunks_exact_mut(cols).zip(scales.chunks_exact_mut(nb)).enumerate() {
                quantize_q8(&x[(t0 + i) * cols..][..cols], &mut blocks);
                for ((b, dst), s) in blocks.iter().zip(bs.chunks_exact_mut(32)).zip(ss.iter_mut()) {
                    dst.iter_mut().zip(&b.qs).for_each(|(o, &q)| *o = (q as u8) ^ 0x80);
                    *s = b.d;
                }
            }
        };
        let n_full = n_tokens / per_task;
        let (full_b, rest_b) = bytes.split_at_mut(n_full * per_task * cols);
        let (full_s, rest_s) = scales.split_at_mut(n_full * per_task * nb);
        pool.run_chunks(full_b, per_task * cols, full_s, per_task * nb, &|i, b, s| quantize(i * per_task, b, s));
        quantize(n_full * per_task, rest_b, rest_s);
        Activations { bytes, scales, cols }
    }
}

/// One panel of 32 weight rows, repacked.
pub(crate) struct Panel {
    /// `[block][k4 0..8][half 0..2][row 0..16][4 bytes]`.
    q: Vec<i8>,
    /// `[block][32 rows]` weight scales.
    d: Vec<f32>,
    /// `[block][32 rows]` `128 · Σ` of the block's weights.
    bias: Vec<i32>,
}

impl Panel {
    /// Packs rows `r0..r0 + 32` of a Q8_0 matrix of `cols` columns (`data`: rows × cols/32 blocks).
    pub(crate) fn pack(data: &[u8], cols: usize, r0: usize) -> Panel {
        let nb = cols / 32;
        let mut q = vec![0i8; nb * 32 * PANEL];
        let mut d = vec![0.0f32; nb * PANEL];
        let mut bias = vec![0i32; nb * PANEL];
        for j in 0..PANEL {
            let row = &data[(r0 + j) * nb * BLOCK_BYTES..][..nb * BLOCK_BYTES];
            for (b, block) in row.chunks_exact(BLOCK_BYTES).enumerate() {
                d[b * PANEL + j] = f16::from_le_bytes([block[0], block[1]]).to_f32();
                let qs = &block[2..];
                bias[b * PANEL + j] = 128 * qs.iter().map(|&v| v as i8 as i32).sum::<i32>();
                let (half, lane) = (j / 16, j % 16);
                for k4 in 0..8 {
                    let dst = ((b * 8 + k4) * 2 + half) * 64 + lane * 4;
                    for (o, &v) in q[dst..dst + 4].iter_mut().zip(&qs[k4 * 4..k4 * 4 + 4]) {
                        *o = v as i8;
                    }
                }
            }
        }
        Panel { q, d, bias }
    }
}

/// Writes output columns `r0..r0 + 32` of every token.
///
/// # Safety
/// AVX-512 F/BW/VNNI must be available; `acts` covers `n_tokens` rows; `out` points at a
/// row-major `[n_tokens][rows]` buffer with `r0 + 32 <= rows` whose columns `r0..r0 + 32` no
/// other thread touches during the call.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(crate) unsafe fn panel_product(
    acts: &Activations,
    n_tokens: usize,
    panel: &Panel,
    out: *mut f32,
    rows: usize,
    r0: usize,
) {
    let mut t = 0;
    // SAFETY: forwarded contract; every tile stays below n_tokens.
    unsafe {
        while t + TILE <= n_tokens {
            tile::<TILE>(acts, panel, out, rows, r0, t);
            t += TILE;
        }
        match n_tokens - t {
            0 => {}
            1 => tile::<1>(acts, panel, out, rows, r0, t),
            2 => tile::<2>(acts, panel, out, rows, r0, t),
            _ => tile::<3>(acts, panel, out, rows, r0, t),
        }
    }
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile<const NT: usize>(acts: &Activations, panel: &Panel, out: *mut f32, rows: usize, r0: usize, t0: usize) {
    let cols = acts.cols;
    let nb = cols / 32;
    let mut accf = [[_mm512_setzero_ps(); 2]; NT];
    // SAFETY (all pointer arithmetic): the packed panel holds nb blocks; the activations hold
    // n_tokens ≥ t0 + NT rows of `cols` bytes and nb scales each; `out` as the caller promised.
    unsafe {
        let wq = panel.q.as_ptr();
        let xb = acts.bytes.as_ptr();
        for b in 0..nb {
            let mut acci = [[_mm512_setzero_si512(); 2]; NT];
            for k4 in 0..8 {
                let w = wq.add((b * 8 + k4) * 128);
                let w0 = _mm512_loadu_si512(w as *const __m512i);
                let w1 = _mm512_loadu_si512(w.add(64) as *const __m512i);
                for (i, a) in acci.iter_mut().enumerate() {
                    let x4 = (xb.add((t0 + i) * cols + b * 32 + k4 * 4) as *const i32).read_unaligned();
                    let xv = _mm512_set1_epi32(x4);
                    a[0] = _mm512_dpbusd_epi32(a[0], xv, w0);
                    a[1] = _mm512_dpbusd_epi32(a[1], xv, w1);
                }
            }
            let c0 = _mm512_loadu_si512(panel.bias.as_ptr().add(b * PANEL) as *const __m512i);
            let c1 = _mm512_loadu_si512(panel.bias.as_ptr().add(b * PANEL + 16) as *const __m512i);
            let d0 = _mm512_loadu_ps(panel.d.as_ptr().add(b * PANEL));
            let d1 = _mm512_loadu_ps(panel.d.as_ptr().add(b * PANEL + 16));
            for (i, (a, f)) in acci.iter().zip(accf.iter_mut()).enumerate() {
                let s = _mm512_set1_ps(*acts.scales.get_unchecked((t0 + i) * nb + b));
                let v0 = _mm512_cvtepi32_ps(_mm512_sub_epi32(a[0], c0));
                let v1 = _mm512_cvtepi32_ps(_mm512_sub_epi32(a[1], c1));
                f[0] = _mm512_fmadd_ps(v0, _mm512_mul_ps(d0, s), f[0]);
                f[1] = _mm512_fmadd_ps(v1, _mm512_mul_ps(d1, s), f[1]);
            }
        }
        for (i, f) in accf.iter().enumerate() {
            let o = out.add((t0 + i) * rows + r0);
            _mm512_storeu_ps(o, f[0]);
            _mm512_storeu_ps(o.add(16), f[1]);
        }
    }
}
