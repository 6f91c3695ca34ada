//! The 32-element "legacy" block formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1.
//!
//! Layouts (little-endian, no padding), `d`/`m`/`s` are f16:
//! - Q4_0 (18 B): `d`, `qs[16]`; element `j` is the low nibble of `qs[j]`, element `j+16` the high
//!   nibble; value = (q - 8) * d.
//! - Q4_1 (20 B): `d`, `m`, `qs[16]`; value = q * d + m.
//! - Q5_0 (22 B): `d`, `qh` (u32: bit j = 5th bit of element j), `qs[16]`; value = (q - 16) * d.
//! - Q5_1 (24 B): `d`, `m`, `qh`, `qs[16]`; value = q * d + m.
//! - Q8_0 (34 B): `d`, `qs[32]` (i8); value = q * d.
//! - Q8_1 (36 B): `d`, `s` (= d * sum(qs)), `qs[32]`; value = q * d.
//!
//! The encoders reproduce ggml's `quantize_row_*_ref` arithmetic, including its truncating
//! `(int8_t)(x + 0.5)` casts, so files written here match files written by llama.cpp.

use super::float::f16_at;
use half::f16;

/// Elements per legacy block.
pub const QK: usize = 32;

fn put_f16(dst: &mut [u8], v: f32) {
    dst.copy_from_slice(&f16::from_f32(v).to_le_bytes());
}

/// C's `(int8_t)f` for the in-range values these encoders produce: truncation toward zero.
#[inline]
fn trunc_i8(f: f32) -> i32 {
    f as i8 as i32
}

pub(crate) fn dequantize_q4_0(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(18).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(b[0], b[1]);
        let (lo, hi) = y.split_at_mut(16);
        for ((q, y0), y1) in b[2..18].iter().zip(lo).zip(hi) {
            *y0 = ((q & 0x0F) as i32 - 8) as f32 * d;
            *y1 = ((q >> 4) as i32 - 8) as f32 * d;
        }
    }
}

pub(crate) fn dequantize_q4_1(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(20).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(b[0], b[1]);
        let m = f16_at(b[2], b[3]);
        let (lo, hi) = y.split_at_mut(16);
        for ((q, y0), y1) in b[4..20].iter().zip(lo).zip(hi) {
            *y0 = (q & 0x0F) as f32 * d + m;
            *y1 = (q >> 4) as f32 * d + m;
        }
    }
}

pub(crate) fn dequantize_q5_0(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(22).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(b[0], b[1]);
        let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
        let (lo, hi) = y.split_at_mut(16);
        for (j, ((q, y0), y1)) in b[6..22].iter().zip(lo).zip(hi).enumerate() {
            let h0 = ((qh >> j) << 4) & 0x10;
            let h1 = (qh >> (j + 12)) & 0x10;
            *y0 = (((q & 0x0F) as u32 | h0) as i32 - 16) as f32 * d;
            *y1 = (((q >> 4) as u32 | h1) as i32 - 16) as f32 * d;
        }
    }
}

pub(crate) fn dequantize_q5_1(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(24).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(b[0], b[1]);
        let m = f16_at(b[2], b[3]);
        let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        let (lo, hi) = y.split_at_mut(16);
        for (j, ((q, y0), y1)) in b[8..24].iter().zip(lo).zip(hi).enumerate() {
            let h0 = ((qh >> j) << 4) & 0x10;
            let h1 = (qh >> (j + 12)) & 0x10;
            *y0 = ((q & 0x0F) as u32 | h0) as f32 * d + m;
            *y1 = ((q >> 4) as u32 | h1) as f32 * d + m;
        }
    }
}

pub(crate) fn dequantize_q8_0(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(34).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(b[0], b[1]);
        for (q, y) in b[2..34].iter().zip(y) {
            *y = (*q as i8) as f32 * d;
        }
    }
}

pub(crate) fn dequantize_q8_1(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(36).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(b[0], b[1]);
        for (q, y) in b[4..36].iter().zip(y) {
            *y = (*q as i8) as f32 * d;
        }
    }
}

/// (absolute max, the signed value that has it) — ties keep the first, like ggml.
fn signed_absmax(x: &[f32]) -> (f32, f32) {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    (amax, max)
}

fn min_max(x: &[f32]) -> (f32, f32) {
    let (mut min, mut max) = (f32::MAX, -f32::MAX);
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

pub(crate) fn quantize_q4_0(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(18)) {
        let (_, max) = signed_absmax(x);
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(&mut b[0..2], d);
        for j in 0..16 {
            let xi0 = trunc_i8(x[j] * id + 8.5).min(15);
            let xi1 = trunc_i8(x[j + 16] * id + 8.5).min(15);
            b[2 + j] = (xi0 as u8) | ((xi1 as u8) << 4);
        }
    }
}

pub(crate) fn quantize_q4_1(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(20)) {
        let (min, max) = min_max(x);
        let d = (max - min) / 15.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(&mut b[0..2], d);
        put_f16(&mut b[2..4], min);
        for j in 0..16 {
            let xi0 = trunc_i8((x[j] - min) * id + 0.5).min(15);
            let xi1 = trunc_i8((x[j + 16] - min) * id + 0.5).min(15);
            b[4 + j] = (xi0 as u8) | ((xi1 as u8) << 4);
        }
    }
}

pub(crate) fn quantize_q5_0(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(22)) {
        let (_, max) = signed_absmax(x);
        let d = max / -16.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(&mut b[0..2], d);
        let mut qh = 0u32;
        for j in 0..16 {
            let xi0 = trunc_i8(x[j] * id + 16.5).min(31) as u32;
            let xi1 = trunc_i8(x[j + 16] * id + 16.5).min(31) as u32;
            b[6 + j] = ((xi0 & 0x0F) | ((xi1 & 0x0F) << 4)) as u8;
            qh |= ((xi0 & 0x10) >> 4) << j;
            qh |= ((xi1 & 0x10) >> 4) << (j + 16);
        }
        b[2..6].copy_from_slice(&qh.to_le_bytes());
    }
}

pub(crate) fn quantize_q5_1(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(24)) {
        let (min, max) = min_max(x);
        let d = (max - min) / 31.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(&mut b[0..2], d);
        put_f16(&mut b[2..4], min);
        let mut qh = 0u32;
        for j in 0..16 {
            // ggml casts straight to uint8_t here (no clamp); values are in 0..=31.
            let xi0 = (((x[j] - min) * id + 0.5) as u8) as u32;
            let xi1 = (((x[j + 16] - min) * id + 0.5) as u8) as u32;
            b[8 + j] = ((xi0 & 0x0F) | ((xi1 & 0x0F) << 4)) as u8;
            qh |= ((xi0 & 0x10) >> 4) << j;
            qh |= ((xi1 & 0x10) >> 4) << (j + 16);
        }
        b[4..8].copy_from_slice(&qh.to_le_bytes());
    }
}

pub(crate) fn quantize_q8_0(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(34)) {
        let amax = x.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(&mut b[0..2], d);
        for (q, v) in b[2..34].iter_mut().zip(x) {
            *q = (v * id).round() as i8 as u8;
        }
    }
}

pub(crate) fn quantize_q8_1(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(36)) {
        let amax = x.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(&mut b[0..2], d);
        let mut sum = 0i32;
        for (q, v) in b[4..36].iter_mut().zip(x) {
            let qi = (v * id).round() as i8;
            sum += qi as i32;
            *q = qi as u8;
        }
        put_f16(&mut b[2..4], sum as f32 * d);
    }
}
