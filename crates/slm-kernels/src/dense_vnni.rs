//! Q8_0 / Q4_0 / Q4_1 weights × many tokens with AVX-512 VNNI (`vpdpbusd`: four u8·i8 products
//! per 32-bit lane): the prompt-sized products. On this project's CPU a `vpdpbusd` does 4× the
//! multiply-adds per cycle of an f32 FMA, and the dot kernels of `matmul` are bound by unpacking.
//!
//! Activations are quantized per 32-value block exactly as for the dot kernels ([`quantize_q8`]).
//! Weights are repacked per panel of 32 rows so that one k step of four bytes is two zmm loads
//! (16 rows each) and every lane accumulates one row; per block the int32 sum is scaled in f32:
//! - Q8_0: weights are the signed operand, activations offset to unsigned (`q + 128`):
//!   `out += (Σ − 128·Σw) · d_w · d_x`;
//! - Q4_0: weights are the unsigned nibbles `q ∈ [0, 16)`, activations signed:
//!   `out += (Σ − 8·Σx) · d_w · d_x` (ggml's `q − 8`);
//! - Q4_1: `out += Σ · d_w · d_x + m_w · s_x` (`s_x`: the activation block's f16 `d·Σx`, as ggml's Q8_1).
//!
//! The integer sums are the dot kernels', so results equal theirs up to f32 rounding order.

use std::arch::x86_64::*;

use half::f16;
use slm_format::GgmlType;

use crate::act::{quantize_q8, Q8Block};

/// Weight rows per panel.
pub(crate) const PANEL: usize = 32;
/// Tokens per register tile.
const TILE: usize = 4;

/// Whether this CPU has AVX-512 F/BW/VNNI (detected once).
pub(crate) fn available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
    })
}

/// The weight types the kernel takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Q8_0,
    Q4_0,
    Q4_1,
}

impl Kind {
    /// The kind of a weight type, if the kernel takes it.
    pub(crate) fn of(dtype: GgmlType) -> Option<Kind> {
        match dtype {
            GgmlType::Q8_0 => Some(Kind::Q8_0),
            GgmlType::Q4_0 => Some(Kind::Q4_0),
            GgmlType::Q4_1 => Some(Kind::Q4_1),
            _ => None,
        }
    }

    fn block_bytes(self) -> usize {
        match self {
            Kind::Q8_0 => 34,
            Kind::Q4_0 => 18,
            Kind::Q4_1 => 20,
        }
    }
}

/// Per activation block: the scale `d`, the Q8_1-style `s = f16(d·Σq)` and the integer `Σq`.
#[derive(Clone, Copy, Default)]
struct BlockMeta {
    d: f32,
    s: f32,
    sum: i32,
}

/// Quantized activations: bytes `[tokens][cols]` (offset to unsigned for Q8_0 weights) and one
/// [`BlockMeta`] per block.
pub(crate) struct Activations {
    bytes: Vec<u8>,
    meta: Vec<BlockMeta>,
    cols: usize,
}

impl Activations {
    /// Quantizes `x` (`[n_tokens][cols]`, `cols` a multiple of 32), token rows spread over the pool.
    pub(crate) fn new(pool: &crate::Pool, kind: Kind, x: &[f32], n_tokens: usize, cols: usize) -> Activations {
        let nb = cols / 32;
        let flip = if kind == Kind::Q8_0 { 0x80 } else { 0 };
        let mut bytes = vec![0u8; n_tokens * cols];
        let mut meta = vec![BlockMeta::default(); n_tokens * nb];
        pool.run_rows(&mut bytes, cols, &mut meta, nb, &|t0, bytes, meta| {
            let mut blocks = vec![Q8Block::default(); nb];
            for (i, (bs, ms)) in bytes.chunks_exact_mut(cols).zip(meta.chunks_exact_mut(nb)).enumerate() {
                quantize_q8(&x[(t0 + i) * cols..][..cols], &mut blocks);
                for ((b, dst), m) in blocks.iter().zip(bs.chunks_exact_mut(32)).zip(ms.iter_mut()) {
                    dst.iter_mut().zip(&b.qs).for_each(|(o, &q)| *o = (q as u8) ^ flip);
                    *m = BlockMeta { d: b.d, s: b.s, sum: b.qs.iter().map(|&q| q as i32).sum() };
                }
            }
        });
        Activations { bytes, meta, cols }
    }
}

/// One panel of 32 weight rows, repacked.
pub(crate) struct Panel {
    /// `[block][k4 0..8][half 0..2][row 0..16][4 bytes]`: i8 for Q8_0, nibbles 0..15 for Q4.
    q: Vec<u8>,
    /// `[block][32 rows]` weight scales.
    d: Vec<f32>,
    /// `[block][32 rows]`: Q8_0 `128·Σw` (as f32 bits of an i32), Q4_1 the block minimum `m`.
    extra: Vec<f32>,
}

impl Panel {
    /// Packs rows `r0..r0 + 32` of a matrix of `kind` with `cols` columns (`data` holds them).
    pub(crate) fn pack(kind: Kind, data: &[u8], cols: usize, r0: usize) -> Panel {
        if available() {
            // SAFETY: the CPU features were just detected (AVX-512 F/BW implies AVX2 and F16C
            // on every CPU that has them; `available` is only true on such CPUs).
            unsafe { Panel::pack_simd(kind, data, cols, r0) }
        } else {
            Panel::pack_scalar(kind, data, cols, r0)
        }
    }

    /// [`Panel::pack`] with SIMD unpacking: a prompt's products repack every weight row, which
    /// took two thirds of a 16-token prompt with the scalar loops. Output identical to
    /// [`Panel::pack_scalar`] (tested).
    #[target_feature(enable = "avx2,f16c,avx512f,avx512bw")]
    unsafe fn pack_simd(kind: Kind, data: &[u8], cols: usize, r0: usize) -> Panel {
        let nb = cols / 32;
        let bb = kind.block_bytes();
        let mut q = vec![0u8; nb * 32 * PANEL];
        let mut d16 = vec![0u16; nb * PANEL];
        let mut m16 = vec![0u16; nb * PANEL];
        let mut extra = vec![0.0f32; nb * PANEL];
        let mut vals = [0u32; 8];
        for j in 0..PANEL {
            let Some(row) = data.get((r0 + j) * nb * bb..(r0 + j + 1) * nb * bb) else { continue };
            let (half, lane) = (j / 16, j % 16);
            for (b, block) in row.chunks_exact(bb).enumerate() {
                let p = block.as_ptr();
                d16[b * PANEL + j] = u16::from_le_bytes([block[0], block[1]]);
                let v = match kind {
                    Kind::Q8_0 => {
                        let v = _mm256_loadu_si256(p.add(2) as *const __m256i);
                        // Σ of the signed bytes: byte sums of (w ^ 0x80) = w + 128, less 32·128.
                        let sad = _mm256_sad_epu8(_mm256_xor_si256(v, _mm256_set1_epi8(-128)), _mm256_setzero_si256());
                        let s = _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
                        let sum = (_mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1)) as i32 - 32 * 128;
                        extra[b * PANEL + j] = f32::from_bits((128 * sum) as u32);
                        v
                    }
                    Kind::Q4_0 | Kind::Q4_1 => {
                        let off = if kind == Kind::Q4_0 { 2 } else { 4 };
                        if kind == Kind::Q4_1 {
                            m16[b * PANEL + j] = u16::from_le_bytes([block[2], block[3]]);
                        }
                        // Low nibbles are values 0..16, high nibbles 16..32.
                        let lo = _mm_loadu_si128(p.add(off) as *const __m128i);
                        let both = _mm256_set_m128i(_mm_srli_epi16(lo, 4), lo);
                        _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
                    }
                };
                _mm256_storeu_si256(vals.as_mut_ptr() as *mut __m256i, v);
                for (k4, &word) in vals.iter().enumerate() {
                    let dst = ((b * 8 + k4) * 2 + half) * 64 + lane * 4;
                    q.get_unchecked_mut(dst..dst + 4).copy_from_slice(&word.to_ne_bytes());
                }
            }
        }
        let mut d = vec![0.0f32; nb * PANEL];
        let halves_to_f32 = |src: &[u16], dst: &mut [f32]| {
            for (s8, d8) in src.chunks_exact(8).zip(dst.chunks_exact_mut(8)) {
                let h = _mm_loadu_si128(s8.as_ptr() as *const __m128i);
                _mm256_storeu_ps(d8.as_mut_ptr(), _mm256_cvtph_ps(h));
            }
        };
        halves_to_f32(&d16, &mut d);
        if kind == Kind::Q4_1 {
            halves_to_f32(&m16, &mut extra);
        }
        Panel { q, d, extra }
    }

    /// The plain-Rust packing, the reference for [`Panel::pack_simd`].
    fn pack_scalar(kind: Kind, data: &[u8], cols: usize, r0: usize) -> Panel {
        let nb = cols / 32;
        let bb = kind.block_bytes();
        let mut q = vec![0u8; nb * 32 * PANEL];
        let mut d = vec![0.0f32; nb * PANEL];
        let mut extra = vec![0.0f32; nb * PANEL];
        let mut vals = [0u8; 32];
        for j in 0..PANEL {
            let row = &data[(r0 + j) * nb * bb..][..nb * bb];
            for (b, block) in row.chunks_exact(bb).enumerate() {
                d[b * PANEL + j] = f16::from_le_bytes([block[0], block[1]]).to_f32();
                match kind {
                    Kind::Q8_0 => {
                        vals.copy_from_slice(&block[2..34]);
                        let sum: i32 = vals.iter().map(|&v| v as i8 as i32).sum();
                        extra[b * PANEL + j] = f32::from_bits((128 * sum) as u32);
                    }
                    Kind::Q4_0 | Kind::Q4_1 => {
                        let qs = if kind == Kind::Q4_0 { &block[2..18] } else { &block[4..20] };
                        for (k, &byte) in qs.iter().enumerate() {
                            vals[k] = byte & 0x0F;
                            vals[k + 16] = byte >> 4;
                        }
                        if kind == Kind::Q4_1 {
                            extra[b * PANEL + j] = f16::from_le_bytes([block[2], block[3]]).to_f32();
                        }
                    }
                }
                let (half, lane) = (j / 16, j % 16);
                for k4 in 0..8 {
                    let dst = ((b * 8 + k4) * 2 + half) * 64 + lane * 4;
                    q[dst..dst + 4].copy_from_slice(&vals[k4 * 4..k4 * 4 + 4]);
                }
            }
        }
        Panel { q, d, extra }
    }
}

/// Writes output columns `r0..r0 + 32` of every token.
///
/// # Safety
/// AVX-512 F/BW/VNNI must be available; `acts` (quantized for `kind`) covers `n_tokens` rows;
/// `panel` was packed for `kind` with the same `cols`; `out` points at a row-major
/// `[n_tokens][rows]` buffer with `r0 + 32 <= rows` whose columns `r0..r0 + 32` no other thread
/// touches during the call.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(crate) unsafe fn panel_product(
    kind: Kind,
    acts: &Activations,
    n_tokens: usize,
    panel: &Panel,
    out: *mut f32,
    rows: usize,
    r0: usize,
) {
    // SAFETY: forwarded contract.
    unsafe {
        match kind {
            Kind::Q8_0 => tiles::<0>(acts, n_tokens, panel, out, rows, r0),
            Kind::Q4_0 => tiles::<1>(acts, n_tokens, panel, out, rows, r0),
            Kind::Q4_1 => tiles::<2>(acts, n_tokens, panel, out, rows, r0),
        }
    }
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tiles<const K: u8>(
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
            tile::<K, TILE>(acts, panel, out, rows, r0, t);
            t += TILE;
        }
        match n_tokens - t {
            0 => {}
            1 => tile::<K, 1>(acts, panel, out, rows, r0, t),
            2 => tile::<K, 2>(acts, panel, out, rows, r0, t),
            _ => tile::<K, 3>(acts, panel, out, rows, r0, t),
        }
    }
}

/// `NT` tokens from `t0` against the panel; `K`: 0 = Q8_0, 1 = Q4_0, 2 = Q4_1.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile<const K: u8, const NT: usize>(
    acts: &Activations,
    panel: &Panel,
    out: *mut f32,
    rows: usize,
    r0: usize,
    t0: usize,
) {
    let cols = acts.cols;
    let nb = cols / 32;
    let mut accf = [[_mm512_setzero_ps(); 2]; NT];
    // SAFETY (all pointer arithmetic): the packed panel holds nb blocks; the activations hold
    // n_tokens ≥ t0 + NT rows of `cols` bytes and nb block values each; `out` as promised.
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
                    if K == 0 {
                        // Unsigned activations (q + 128) × signed weights.
                        a[0] = _mm512_dpbusd_epi32(a[0], xv, w0);
                        a[1] = _mm512_dpbusd_epi32(a[1], xv, w1);
                    } else {
                        // Unsigned nibbles × signed activations.
                        a[0] = _mm512_dpbusd_epi32(a[0], w0, xv);
                        a[1] = _mm512_dpbusd_epi32(a[1], w1, xv);
                    }
                }
            }
            let pd = panel.d.as_ptr().add(b * PANEL);
            let pe = panel.extra.as_ptr().add(b * PANEL);
            let (d0, d1) = (_mm512_loadu_ps(pd), _mm512_loadu_ps(pd.add(16)));
            let (e0, e1) = (_mm512_loadu_ps(pe), _mm512_loadu_ps(pe.add(16)));
            for (i, (a, f)) in acci.iter().zip(accf.iter_mut()).enumerate() {
                let blk = (t0 + i) * nb + b;
                let m = *acts.meta.get_unchecked(blk);
                let dx = _mm512_set1_ps(m.d);
                let (s0, s1) = match K {
                    0 => (
                        _mm512_sub_epi32(a[0], _mm512_castps_si512(e0)),
                        _mm512_sub_epi32(a[1], _mm512_castps_si512(e1)),
                    ),
                    1 => {
                        let c = _mm512_set1_epi32(8 * m.sum);
                        (_mm512_sub_epi32(a[0], c), _mm512_sub_epi32(a[1], c))
                    }
                    _ => (a[0], a[1]),
                };
                f[0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), _mm512_mul_ps(d0, dx), f[0]);
                f[1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1), _mm512_mul_ps(d1, dx), f[1]);
                if K == 2 {
                    let sx = _mm512_set1_ps(m.s);
                    f[0] = _mm512_fmadd_ps(e0, sx, f[0]);
                    f[1] = _mm512_fmadd_ps(e1, sx, f[1]);
                }
            }
        }
        for (i, f) in accf.iter().enumerate() {
            let o = out.add((t0 + i) * rows + r0);
            _mm512_storeu_ps(o, f[0]);
            _mm512_storeu_ps(o.add(16), f[1]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simd_packing_equals_the_scalar_packing() {
        if !available() {
            eprintln!("skipped: no AVX-512 VNNI on this CPU");
            return;
        }
        let (rows, cols) = (64, 160);
        for (kind, dtype) in [(Kind::Q8_0, GgmlType::Q8_0), (Kind::Q4_0, GgmlType::Q4_0), (Kind::Q4_1, GgmlType::Q4_1)]
        {
            let src = crate::quant::tests::test_data(rows * cols, 41);
            let row_bytes = dtype.row_bytes(cols as u64).unwrap() as usize;
            let mut data = vec![0u8; rows * row_bytes];
            for (x, out) in src.chunks_exact(cols).zip(data.chunks_exact_mut(row_bytes)) {
                crate::quant::quantize_row(dtype, x, out).unwrap();
            }
            for r0 in [0, 32] {
                let want = Panel::pack_scalar(kind, &data, cols, r0);
                let got = unsafe { Panel::pack_simd(kind, &data, cols, r0) };
                assert_eq!(got.q, want.q, "{kind:?} r0 {r0}");
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got.d), bits(&want.d), "{kind:?} r0 {r0}");
                assert_eq!(bits(&got.extra), bits(&want.extra), "{kind:?} r0 {r0}");
            }
        }
    }
}
