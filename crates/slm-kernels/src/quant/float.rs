//! Plain float element types (F32, F16, BF16) as rows of little-endian bytes.

use half::{bf16, f16};

/// Reads a little-endian f16 at `b[0..2]`.
#[inline(always)]
pub(crate) fn f16_at(b0: u8, b1: u8) -> f32 {
    f16::from_bits(u16::from_le_bytes([b0, b1])).to_f32()
}

/// Decodes little-endian f32 bytes.
pub(crate) fn dequantize_f32(src: &[u8], dst: &mut [f32]) {
    for (c, y) in src.chunks_exact(4).zip(dst.iter_mut()) {
        *y = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
}

/// Decodes little-endian IEEE half bytes.
pub(crate) fn dequantize_f16(src: &[u8], dst: &mut [f32]) {
    for (c, y) in src.chunks_exact(2).zip(dst.iter_mut()) {
        *y = f16_at(c[0], c[1]);
    }
}

/// Decodes little-endian bfloat16 bytes (the top half of an f32).
pub(crate) fn dequantize_bf16(src: &[u8], dst: &mut [f32]) {
    for (c, y) in src.chunks_exact(2).zip(dst.iter_mut()) {
        *y = f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16);
    }
}

/// Encodes f32 values as little-endian bytes.
pub(crate) fn quantize_f32(src: &[f32], dst: &mut [u8]) {
    for (x, c) in src.iter().zip(dst.chunks_exact_mut(4)) {
        c.copy_from_slice(&x.to_le_bytes());
    }
}

/// Encodes f32 values as IEEE half, round-to-nearest-even (as ggml's F16C path does).
pub(crate) fn quantize_f16(src: &[f32], dst: &mut [u8]) {
    for (x, c) in src.iter().zip(dst.chunks_exact_mut(2)) {
        c.copy_from_slice(&f16::from_f32(*x).to_le_bytes());
    }
}

/// Encodes f32 values as bfloat16, round-to-nearest-even with NaNs kept quiet
/// (ggml's `ggml_compute_fp32_to_bf16`).
pub(crate) fn quantize_bf16(src: &[f32], dst: &mut [u8]) {
    for (x, c) in src.iter().zip(dst.chunks_exact_mut(2)) {
        c.copy_from_slice(&bf16::from_f32(*x).to_le_bytes());
    }
}
