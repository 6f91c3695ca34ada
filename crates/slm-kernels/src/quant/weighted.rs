//! Importance-weighted ("imatrix") encoders, byte-identical to what ggml writes when
//! llama-quantize is given an importance matrix (`ggml_quantize_chunk` with a non-NULL
//! `imatrix`, i.e. the `quantize_row_<type>_impl` functions of ggml-quants.c).
//!
//! See [`quantize_row_weighted`] for what each type does with the importance; the searches
//! are in `weighted_search.rs`, the K-quant block encoders in `weighted_kquants.rs`.

use super::weighted_kquants as kq;
use super::weighted_search::{
    grid, make_qkx3_quants, make_qx_quants, put_fp16, sigma_weights, sum_sq,
};
use super::{legacy::QK, quantize_row};
use crate::error::{check_len, row_bytes_of};
use crate::{GgmlType, KernelError};

/// Encodes one row `src` as `dtype` into `dst` (exactly `row_bytes(src.len())` bytes), using
/// `importance` (one value per element of `src`: the importance-matrix entries of the row's
/// input columns) the way ggml's `ggml_quantize_chunk` does; the bytes are ggml's.
///
/// `src` must be a whole row of the tensor: Q4_0/Q4_1/Q5_0/Q5_1 normalize by the row's mean
/// square, so encoding a row in pieces gives different bytes.
///
/// Supported: F32, F16, BF16, Q8_0 (importance ignored, as in ggml), Q4_0, Q4_1, Q5_0, Q5_1,
/// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K.
///
/// The importance vector holds one non-negative value per input column of the weight matrix
/// (llama.cpp's imatrix: the mean of the squared activations that column multiplies), so it
/// has the length of one row and is the same for every row of a tensor. It only changes which
/// scales and levels are chosen; the block layout is the ordinary one, so the result decodes
/// with [`dequantize_row`](super::dequantize_row) and runs through every matmul kernel unchanged.
///
/// How each type uses it (`qw` = importance, `x` = the row, per-element weight `w`):
/// - **Q4_0, Q5_0**: `sigma2 = Σx²/n` over the *whole row*; `w = qw·sqrt(sigma2 + x²)`; per
///   32-block a symmetric scale search over 19 trial scales minimizing Σ w·(x − d·q)²
///   (`make_qx_quants`).
/// - **Q4_1, Q5_1**: same `w`; per 32-block an asymmetric scale+min least-squares search over
///   37 trial scales (`make_qkx3_quants`).
/// - **Q2_K**: `sigma2 = Σx²/256` per super-block, `w = qw·sqrt(sigma2 + x²)`; 16-element
///   asymmetric search (`make_qkx3_quants`); the 16 scales and 16 mins are then quantized to
///   4 bits with weights Σw of each group (`make_qp_quants`).
/// - **Q3_K**: `sigma2 = 2·Σx²/256`, same `w`; 16-element symmetric search (`make_qx_quants`);
///   the 16 scales quantized to 6 bits by another `make_qx_quants` weighted by Σw.
/// - **Q4_K, Q5_K**: `sigma2 = 2·Σx²/256`, same `w`; 32-element asymmetric search, 6-bit scales
///   and mins by `make_qp_quants` weighted by Σw.
/// - **Q6_K**: `qw` used directly as the weight of the 16-element symmetric search (no
///   sigma2 term); the 8-bit scales are chosen as in the reference encoder.
/// - **Q8_0, F32, F16, BF16**: ggml ignores the importance; same bytes as
///   [`quantize_row`](super::quantize_row).
///
/// Inputs are not validated beyond sizes, as in ggml: NaN/inf in `src` or `importance`, or
/// negative importance, give the same (meaningless but well-formed) bytes ggml would write, and
/// never a panic. A constant importance is not the same as no importance: it still selects the
/// weighted searches above (ggml only uses the reference encoders when there is no imatrix).
///
/// # Errors
/// `NotBlockAligned` if `src.len()` is not a whole number of blocks; `SizeMismatch` if
/// `importance.len() != src.len()` or `dst` has the wrong length; `Unsupported` for types
/// ggml cannot quantize with an importance matrix (Q8_1, Q8_K, integer and F64 types).
pub fn quantize_row_weighted(
    dtype: GgmlType,
    src: &[f32],
    importance: &[f32],
    dst: &mut [u8],
) -> Result<(), KernelError> {
    use GgmlType::*;
    let op = "quantize_row_weighted";
    let f: fn(&[f32], &[f32], &mut [u8]) = match dtype {
        F32 | F16 | BF16 | Q8_0 => {
            check_len(
                "quantize_row_weighted importance length (one value per element)",
                src.len(),
                importance.len(),
            )?;
            return quantize_row(dtype, src, dst);
        }
        Q4_0 => quantize_q4_0,
        Q4_1 => quantize_q4_1,
        Q5_0 => quantize_q5_0,
        Q5_1 => quantize_q5_1,
        Q2_K => kq::quantize_q2_k,
        Q3_K => kq::quantize_q3_k,
        Q4_K => kq::quantize_q4_k,
        Q5_K => kq::quantize_q5_k,
        Q6_K => kq::quantize_q6_k,
        Q8_1 | Q8_K | I8 | I16 | I32 | I64 | F64 => {
            return Err(KernelError::Unsupported { dtype, op })
        }
    };
    let expected = row_bytes_of(dtype, src.len(), "quantize_row_weighted element count")?;
    check_len(
        "quantize_row_weighted importance length (one value per element)",
        src.len(),
        importance.len(),
    )?;
    check_len(
        "quantize_row_weighted destination bytes",
        expected,
        dst.len(),
    )?;
    f(src, importance, dst);
    Ok(())
}

/// `sigma2` of the legacy types: the mean square of the whole row (ggml `sum_x2/n_per_row`).
fn row_sigma2(x: &[f32]) -> f32 {
    sum_sq(x) / x.len() as f32
}

/// Packs 32 levels (0..=15 low nibbles, bit 4 into `qh` when `qh` is given) the ggml way:
/// element `j` in the low nibble of byte `j`, element `j + 16` in the high nibble.
fn pack_32(l: &[u8; QK], qs: &mut [u8]) -> u32 {
    let mut qh = 0u32;
    for (j, q) in qs.iter_mut().enumerate().take(16) {
        let (x0, x1) = (l[j] as u32, l[j + 16] as u32);
        *q = ((x0 & 0x0F) | ((x1 & 0x0F) << 4)) as u8;
        qh |= ((x0 & 0x10) >> 4) << j;
        qh |= ((x1 & 0x10) >> 4) << (j + 16);
    }
    qh
}

/// Symmetric legacy types: `make_qx_quants(32, nmax)` per block; returns levels `l + nmax`.
fn symmetric_block(xb: &[f32], qw: &[f32], sigma2: f32, nmax: i32, l: &mut [u8; QK]) -> f32 {
    let mut w = [0.0f32; QK];
    let mut li = [0i8; QK];
    sigma_weights(qw, xb, sigma2, &mut w);
    let d = make_qx_quants(nmax, xb, &mut li, &w);
    for (o, &v) in l.iter_mut().zip(&li) {
        *o = v as u8;
    }
    d
}

/// Asymmetric legacy types: `make_qkx3_quants(32, nmax)` per block; returns `(d, the_min)`.
fn asymmetric_block(
    xb: &[f32],
    qw: &[f32],
    sigma2: f32,
    nmax: i32,
    l: &mut [u8; QK],
) -> (f32, f32) {
    let mut w = [0.0f32; QK];
    let mut l_aux = [0u8; QK];
    sigma_weights(qw, xb, sigma2, &mut w);
    make_qkx3_quants(&grid(nmax), xb, &w, l, &mut l_aux)
}

fn quantize_q4_0(src: &[f32], qw: &[f32], dst: &mut [u8]) {
    let sigma2 = row_sigma2(src);
    let mut l = [0u8; QK];
    for ((xb, wb), b) in src
        .chunks_exact(QK)
        .zip(qw.chunks_exact(QK))
        .zip(dst.chunks_exact_mut(18))
    {
        let d = symmetric_block(xb, wb, sigma2, 8, &mut l);
        put_fp16(&mut b[0..2], d);
        for j in 0..16 {
            b[2 + j] = l[j] | (l[j + 16] << 4);
        }
    }
}

fn quantize_q4_1(src: &[f32], qw: &[f32], dst: &mut [u8]) {
    let sigma2 = row_sigma2(src);
    let mut l = [0u8; QK];
    for ((xb, wb), b) in src
        .chunks_exact(QK)
        .zip(qw.chunks_exact(QK))
        .zip(dst.chunks_exact_mut(20))
    {
        let (d, min) = asymmetric_block(xb, wb, sigma2, 15, &mut l);
        put_fp16(&mut b[0..2], d);
        put_fp16(&mut b[2..4], -min);
        for j in 0..16 {
            b[4 + j] = l[j] | (l[j + 16] << 4);
        }
    }
}

fn quantize_q5_0(src: &[f32], qw: &[f32], dst: &mut [u8]) {
    let sigma2 = row_sigma2(src);
    let mut l = [0u8; QK];
    for ((xb, wb), b) in src
        .chunks_exact(QK)
        .zip(qw.chunks_exact(QK))
        .zip(dst.chunks_exact_mut(22))
    {
        let d = symmetric_block(xb, wb, sigma2, 16, &mut l);
        put_fp16(&mut b[0..2], d);
        let qh = pack_32(&l, &mut b[6..22]);
        b[2..6].copy_from_slice(&qh.to_le_bytes());
    }
}

fn quantize_q5_1(src: &[f32], qw: &[f32], dst: &mut [u8]) {
    let sigma2 = row_sigma2(src);
    let mut l = [0u8; QK];
    for ((xb, wb), b) in src
        .chunks_exact(QK)
        .zip(qw.chunks_exact(QK))
        .zip(dst.chunks_exact_mut(24))
    {
        let (d, min) = asymmetric_block(xb, wb, sigma2, 31, &mut l);
        put_fp16(&mut b[0..2], d);
        put_fp16(&mut b[2..4], -min);
        let qh = pack_32(&l, &mut b[8..24]);
        b[4..8].copy_from_slice(&qh.to_le_bytes());
    }
}
