//! K-quant super-block formats (256 elements): decoding of Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K.
//!
//! Every K-quant block is decoded through one intermediate form, [`Unpacked`]: 256 small signed
//! integers plus a float scale and min per group of 16 elements, so that
//! `value[e] = scale[e / 16] * q[e] - min[e / 16]`. The dequantizer and the scalar dot products
//! both use it, which keeps the bit-twiddling for each format in exactly one place.
//!
//! Layouts (byte offsets; `d`, `dmin` are f16 unless noted):
//! - Q2_K (84 B): `scales[16]` (low nibble scale, high nibble min) @0, `qs[64]` @16, `d` @80, `dmin` @82.
//! - Q3_K (110 B): `hmask[32]` @0, `qs[64]` @32, `scales[12]` (16 × 6-bit) @96, `d` @108.
//! - Q4_K (144 B): `d` @0, `dmin` @2, `scales[12]` (8 × 6-bit scale + 8 × 6-bit min) @4, `qs[128]` @16.
//! - Q5_K (176 B): `d` @0, `dmin` @2, `scales[12]` @4, `qh[32]` @16, `qs[128]` @48.
//! - Q6_K (210 B): `ql[128]` @0, `qh[64]` @128, `scales[16]` (i8) @192, `d` @208.
//! - Q8_K (292 B): `d` (f32) @0, `qs[256]` (i8) @4, `bsums[16]` (i16, sums of 16 qs) @260.

use super::float::f16_at;
use slm_format::QK_K;

/// One K-quant super-block decoded to integers and per-16-element float scale/min.
#[derive(Clone, Debug)]
pub(crate) struct Unpacked {
    /// Signed quant values, already offset (e.g. Q6_K's `q - 32`).
    pub q: [i8; QK_K],
    /// Per group of 16: multiplier.
    pub scale: [f32; 16],
    /// Per group of 16: subtracted after scaling (zero for symmetric formats).
    pub min: [f32; 16],
}

impl Default for Unpacked {
    fn default() -> Self {
        Unpacked { q: [0; QK_K], scale: [0.0; 16], min: [0.0; 16] }
    }
}

/// ggml's `get_scale_min_k4`: the 6-bit scale and min of sub-block `j` (0..8) of Q4_K/Q5_K.
#[inline]
pub(crate) fn scale_min_k4(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        ((s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
    }
}

/// The 16 signed 6-bit scales of a Q3_K block (already minus 32).
#[inline]
pub(crate) fn q3k_scales(s: &[u8]) -> [i8; 16] {
    let mut out = [0i8; 16];
    for (j, o) in out.iter_mut().enumerate() {
        let low = if j < 8 { s[j] & 0x0F } else { s[j - 8] >> 4 };
        let high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        *o = ((low | (high << 4)) as i32 - 32) as i8;
    }
    out
}

pub(crate) fn unpack_q2_k(b: &[u8], u: &mut Unpacked) {
    let (scales, qs) = (&b[0..16], &b[16..80]);
    let d = f16_at(b[80], b[81]);
    let dmin = f16_at(b[82], b[83]);
    for (e, q) in u.q.iter_mut().enumerate() {
        let (n, j, k) = (e / 128, (e / 32) % 4, e % 32);
        *q = ((qs[n * 32 + k] >> (2 * j)) & 3) as i8;
    }
    for (g, sc) in scales.iter().enumerate() {
        u.scale[g] = d * (sc & 0x0F) as f32;
        u.min[g] = dmin * (sc >> 4) as f32;
    }
}

pub(crate) fn unpack_q3_k(b: &[u8], u: &mut Unpacked) {
    let (hmask, qs) = (&b[0..32], &b[32..96]);
    let sc = q3k_scales(&b[96..108]);
    let d = f16_at(b[108], b[109]);
    for (e, q) in u.q.iter_mut().enumerate() {
        let (n, j, k) = (e / 128, (e / 32) % 4, e % 32);
        let low = ((qs[n * 32 + k] >> (2 * j)) & 3) as i8;
        let high_set = hmask[k] & (1u8 << (n * 4 + j)) != 0;
        *q = low - if high_set { 0 } else { 4 };
    }
    for ((s, m), c) in u.scale.iter_mut().zip(u.min.iter_mut()).zip(sc) {
        *s = d * c as f32;
        *m = 0.0;
    }
}

fn unpack_q45_k(b: &[u8], u: &mut Unpacked, five_bit: bool) {
    let d = f16_at(b[0], b[1]);
    let dmin = f16_at(b[2], b[3]);
    let scales = &b[4..16];
    let (qh, qs) = if five_bit { (&b[16..48], &b[48..176]) } else { (&b[0..0], &b[16..144]) };
    for (e, q) in u.q.iter_mut().enumerate() {
        let (c, k) = (e / 64, e % 64);
        let byte = qs[c * 32 + k % 32];
        let mut v = if k < 32 { byte & 0x0F } else { byte >> 4 };
        if five_bit {
            let sb = e / 32;
            v |= ((qh[e % 32] >> sb) & 1) << 4;
        }
        *q = v as i8;
    }
    for sb in 0..8 {
        let (sc, m) = scale_min_k4(sb, scales);
        let (s, mn) = (d * sc as f32, dmin * m as f32);
        u.scale[2 * sb] = s;
        u.scale[2 * sb + 1] = s;
        u.min[2 * sb] = mn;
        u.min[2 * sb + 1] = mn;
    }
}

pub(crate) fn unpack_q4_k(b: &[u8], u: &mut Unpacked) {
    unpack_q45_k(b, u, false)
}

pub(crate) fn unpack_q5_k(b: &[u8], u: &mut Unpacked) {
    unpack_q45_k(b, u, true)
}

pub(crate) fn unpack_q6_k(b: &[u8], u: &mut Unpacked) {
    let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
    let d = f16_at(b[208], b[209]);
    for (e, q) in u.q.iter_mut().enumerate() {
        let (n, quarter, l) = (e / 128, (e / 32) % 4, e % 32);
        let lbyte = ql[n * 64 + (quarter % 2) * 32 + l];
        let low = if quarter < 2 { lbyte & 0x0F } else { lbyte >> 4 };
        let high = (qh[n * 32 + l] >> (2 * quarter)) & 3;
        *q = ((low | (high << 4)) as i32 - 32) as i8;
    }
    for (g, s) in sc.iter().enumerate() {
        u.scale[g] = d * (*s as i8) as f32;
        u.min[g] = 0.0;
    }
}

/// Block byte size and unpacker for a K-quant weight type.
pub(crate) type Unpacker = fn(&[u8], &mut Unpacked);

fn dequantize_k(src: &[u8], dst: &mut [f32], type_size: usize, unpack: Unpacker) {
    let mut u = Unpacked::default();
    for (b, y) in src.chunks_exact(type_size).zip(dst.chunks_exact_mut(QK_K)) {
        unpack(b, &mut u);
        for ((yg, qg), (s, m)) in y.chunks_exact_mut(16).zip(u.q.chunks_exact(16)).zip(u.scale.iter().zip(&u.min)) {
            for (y, q) in yg.iter_mut().zip(qg) {
                *y = s * *q as f32 - m;
            }
        }
    }
}

pub(crate) fn dequantize_q2_k(src: &[u8], dst: &mut [f32]) {
    dequantize_k(src, dst, 84, unpack_q2_k)
}
pub(crate) fn dequantize_q3_k(src: &[u8], dst: &mut [f32]) {
    dequantize_k(src, dst, 110, unpack_q3_k)
}
pub(crate) fn dequantize_q4_k(src: &[u8], dst: &mut [f32]) {
    dequantize_k(src, dst, 144, unpack_q4_k)
}
pub(crate) fn dequantize_q5_k(src: &[u8], dst: &mut [f32]) {
    dequantize_k(src, dst, 176, unpack_q5_k)
}
pub(crate) fn dequantize_q6_k(src: &[u8], dst: &mut [f32]) {
    dequantize_k(src, dst, 210, unpack_q6_k)
}

pub(crate) fn dequantize_q8_k(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(292).zip(dst.chunks_exact_mut(QK_K)) {
        let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        for (q, y) in b[4..260].iter().zip(y) {
            *y = d * (*q as i8) as f32;
        }
    }
}

/// ggml's `nearest_int`: round half to even (exact for |f| < 2^22, which is all ggml uses).
#[inline]
pub(crate) fn nearest_int(f: f32) -> i32 {
    f.round_ties_even() as i32
}

/// Q8_K encoding of 256 values into `(d, qs, bsums)`, as ggml's `quantize_row_q8_K_ref`
/// (scale chosen so the largest-magnitude value maps to -127).
pub(crate) fn quantize_q8_k_block(x: &[f32], qs: &mut [i8], bsums: &mut [i16]) -> f32 {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax == 0.0 {
        qs.iter_mut().for_each(|q| *q = 0);
        bsums.iter_mut().for_each(|s| *s = 0);
        return 0.0;
    }
    let iscale = -127.0 / max;
    for (q, v) in qs.iter_mut().zip(x) {
        *q = nearest_int(iscale * v).min(127) as i8;
    }
    for (s, g) in bsums.iter_mut().zip(qs.chunks_exact(16)) {
        *s = g.iter().map(|&q| q as i16).sum();
    }
    1.0 / iscale
}

pub(crate) fn quantize_q8_k(src: &[f32], dst: &mut [u8]) {
    let mut qs = [0i8; QK_K];
    let mut bsums = [0i16; 16];
    for (x, b) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(292)) {
        let d = quantize_q8_k_block(x, &mut qs, &mut bsums);
        b[0..4].copy_from_slice(&d.to_le_bytes());
        for (o, q) in b[4..260].iter_mut().zip(&qs) {
            *o = *q as u8;
        }
        for (o, s) in b[260..292].chunks_exact_mut(2).zip(&bsums) {
            o.copy_from_slice(&s.to_le_bytes());
        }
    }
}
