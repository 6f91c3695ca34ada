//! Portable scalar dot products: one weight row (raw block bytes) against one quantized or f32
//! activation row. These are the reference every SIMD kernel is tested against, and the path
//! used on targets without SIMD kernels (wasm32 today).
//!
//! Each function takes the row's bytes and the activation blocks for the same columns; the
//! caller guarantees `w.len() == n_blocks * type_size` and `a.len() == n_blocks` (extra blocks
//! on either side are ignored by the zips).

use crate::act::{Q8Block, Q8KBlock};
use crate::quant::float::f16_at;
use crate::quant::kquants::{self, Unpacked};

pub(crate) fn q4_0_q8(w: &[u8], a: &[Q8Block]) -> f32 {
    let mut acc = 0.0f32;
    for (b, a) in w.chunks_exact(18).zip(a) {
        let mut isum = 0i32;
        for (j, q) in b[2..18].iter().enumerate() {
            isum += ((q & 0x0F) as i32 - 8) * a.qs[j] as i32 + ((q >> 4) as i32 - 8) * a.qs[j + 16] as i32;
        }
        acc += f16_at(b[0], b[1]) * a.d * isum as f32;
    }
    acc
}

pub(crate) fn q4_1_q8(w: &[u8], a: &[Q8Block]) -> f32 {
    let mut acc = 0.0f32;
    for (b, a) in w.chunks_exact(20).zip(a) {
        let mut isum = 0i32;
        for (j, q) in b[4..20].iter().enumerate() {
            isum += (q & 0x0F) as i32 * a.qs[j] as i32 + (q >> 4) as i32 * a.qs[j + 16] as i32;
        }
        acc += f16_at(b[0], b[1]) * a.d * isum as f32 + f16_at(b[2], b[3]) * a.s;
    }
    acc
}

pub(crate) fn q5_0_q8(w: &[u8], a: &[Q8Block]) -> f32 {
    let mut acc = 0.0f32;
    for (b, a) in w.chunks_exact(22).zip(a) {
        let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
        let mut isum = 0i32;
        for (j, q) in b[6..22].iter().enumerate() {
            let x0 = ((q & 0x0F) as u32 | (((qh >> j) << 4) & 0x10)) as i32 - 16;
            let x1 = ((q >> 4) as u32 | ((qh >> (j + 12)) & 0x10)) as i32 - 16;
            isum += x0 * a.qs[j] as i32 + x1 * a.qs[j + 16] as i32;
        }
        acc += f16_at(b[0], b[1]) * a.d * isum as f32;
    }
    acc
}

pub(crate) fn q5_1_q8(w: &[u8], a: &[Q8Block]) -> f32 {
    let mut acc = 0.0f32;
    for (b, a) in w.chunks_exact(24).zip(a) {
        let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        let mut isum = 0i32;
        for (j, q) in b[8..24].iter().enumerate() {
            let x0 = ((q & 0x0F) as u32 | (((qh >> j) << 4) & 0x10)) as i32;
            let x1 = ((q >> 4) as u32 | ((qh >> (j + 12)) & 0x10)) as i32;
            isum += x0 * a.qs[j] as i32 + x1 * a.qs[j + 16] as i32;
        }
        acc += f16_at(b[0], b[1]) * a.d * isum as f32 + f16_at(b[2], b[3]) * a.s;
    }
    acc
}

pub(crate) fn q8_0_q8(w: &[u8], a: &[Q8Block]) -> f32 {
    let mut acc = 0.0f32;
    for (b, a) in w.chunks_exact(34).zip(a) {
        let isum: i32 = b[2..34].iter().zip(&a.qs).map(|(&q, &y)| (q as i8) as i32 * y as i32).sum();
        acc += f16_at(b[0], b[1]) * a.d * isum as f32;
    }
    acc
}

pub(crate) fn q8_1_q8(w: &[u8], a: &[Q8Block]) -> f32 {
    let mut acc = 0.0f32;
    for (b, a) in w.chunks_exact(36).zip(a) {
        let isum: i32 = b[4..36].iter().zip(&a.qs).map(|(&q, &y)| (q as i8) as i32 * y as i32).sum();
        acc += f16_at(b[0], b[1]) * a.d * isum as f32;
    }
    acc
}

/// K-quant row · Q8_K row via the shared [`Unpacked`] form: per group of 16,
/// `scale * d_a * sum(q * a) - min * d_a * bsum`.
fn k_q8k(w: &[u8], a: &[Q8KBlock], type_size: usize, unpack: kquants::Unpacker) -> f32 {
    let mut u = Unpacked::default();
    let mut acc = 0.0f32;
    for (b, a) in w.chunks_exact(type_size).zip(a) {
        unpack(b, &mut u);
        let mut blk = 0.0f32;
        for g in 0..16 {
            let isum: i32 =
                u.q[16 * g..16 * g + 16].iter().zip(&a.qs[16 * g..16 * g + 16]).map(|(&q, &y)| q as i32 * y as i32).sum();
            blk += u.scale[g] * isum as f32 - u.min[g] * a.bsums[g] as f32;
        }
        acc += a.d * blk;
    }
    acc
}

pub(crate) fn q2_k_q8k(w: &[u8], a: &[Q8KBlock]) -> f32 {
    k_q8k(w, a, 84, kquants::unpack_q2_k)
}
pub(crate) fn q3_k_q8k(w: &[u8], a: &[Q8KBlock]) -> f32 {
    k_q8k(w, a, 110, kquants::unpack_q3_k)
}
pub(crate) fn q4_k_q8k(w: &[u8], a: &[Q8KBlock]) -> f32 {
    k_q8k(w, a, 144, kquants::unpack_q4_k)
}
pub(crate) fn q5_k_q8k(w: &[u8], a: &[Q8KBlock]) -> f32 {
    k_q8k(w, a, 176, kquants::unpack_q5_k)
}
pub(crate) fn q6_k_q8k(w: &[u8], a: &[Q8KBlock]) -> f32 {
    k_q8k(w, a, 210, kquants::unpack_q6_k)
}

pub(crate) fn q8_k_q8k(w: &[u8], a: &[Q8KBlock]) -> f32 {
    let mut acc = 0.0f32;
    for (b, a) in w.chunks_exact(292).zip(a) {
        let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let isum: i32 = b[4..260].iter().zip(&a.qs).map(|(&q, &y)| (q as i8) as i32 * y as i32).sum();
        acc += d * a.d * isum as f32;
    }
    acc
}

/// Sums `f(i) * x[i]` with 8 independent accumulators so the compiler can vectorize it.
#[inline(always)]
fn dot_lanes(n: usize, x: &[f32], f: impl Fn(usize) -> f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let n8 = n.min(x.len()) / 8 * 8;
    for base in (0..n8).step_by(8) {
        for (l, a) in acc.iter_mut().enumerate() {
            *a += f(base + l) * x[base + l];
        }
    }
    let tail: f32 = x.iter().enumerate().take(n).skip(n8).map(|(i, v)| f(i) * v).sum();
    acc.iter().sum::<f32>() + tail
}

pub(crate) fn f32_f32(w: &[u8], x: &[f32]) -> f32 {
    dot_lanes(w.len() / 4, x, |i| {
        let c = &w[4 * i..4 * i + 4];
        f32::from_le_bytes([c[0], c[1], c[2], c[3]])
    })
}

pub(crate) fn f16_f32(w: &[u8], x: &[f32]) -> f32 {
    dot_lanes(w.len() / 2, x, |i| f16_at(w[2 * i], w[2 * i + 1]))
}

pub(crate) fn bf16_f32(w: &[u8], x: &[f32]) -> f32 {
    dot_lanes(w.len() / 2, x, |i| f32::from_bits((u16::from_le_bytes([w[2 * i], w[2 * i + 1]]) as u32) << 16))
}
