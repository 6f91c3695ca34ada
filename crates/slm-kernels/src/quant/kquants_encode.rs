//! Reference encoders for the K-quants (Q2_K .. Q6_K), ported from ggml's `quantize_row_*_ref`
//! (no importance matrix). The search heuristics (`make_qx_quants`, `make_q3_quants`,
//! `make_qkx2_quants`) are kept step for step so that our files decode like llama.cpp's.

use super::kquants::{nearest_int, scale_min_k4};
use half::f16;
use slm_format::QK_K;

/// ggml's GROUP_MAX_EPS: groups whose absmax is below this are stored as zeros.
const GROUP_MAX_EPS: f32 = 1e-15;

fn f16_round(v: f32) -> f32 {
    f16::from_f32(v).to_f32()
}

/// Symmetric quantization of `x` to integers in `-nmax..nmax` with a scale search
/// (ggml `make_qx_quants`). Writes `L[i] = q + nmax` and returns the scale.
/// `rmse_type` 1 weights errors by x², as ggml does for Q6_K without an imatrix.
fn make_qx_quants(nmax: i32, x: &[f32], l_out: &mut [i8], rmse_type: i32) -> f32 {
    let (mut max, mut amax) = (0.0f32, 0.0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l_out.iter_mut().for_each(|l| *l = 0);
        return 0.0;
    }
    let nmaxf = nmax as f32;
    let mut iscale = -nmaxf / max;
    let clamp = |l: i32| l.clamp(-nmax, nmax - 1);
    if rmse_type == 0 {
        for (l, v) in l_out.iter_mut().zip(x) {
            *l = (nmax + clamp(nearest_int(iscale * v))) as i8;
        }
        return 1.0 / iscale;
    }
    let weight = |v: f32| match rmse_type {
        1 => v * v,
        2 => 1.0,
        3 => v.abs(),
        _ => v.abs().sqrt(),
    };
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for (lo, &v) in l_out.iter_mut().zip(x) {
        let l = clamp(nearest_int(iscale * v));
        *lo = (l + nmax) as i8;
        let w = weight(v);
        sumlx += w * v * l as f32;
        suml2 += w * l as f32 * l as f32;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmaxf + 0.1 * is as f32) / max;
        let (mut slx, mut sl2) = (0.0f32, 0.0f32);
        for &v in x {
            let l = clamp(nearest_int(iscale * v));
            let w = weight(v);
            slx += w * v * l as f32;
            sl2 += w * l as f32 * l as f32;
        }
        if sl2 > 0.0 && slx * slx > best * sl2 {
            for (lo, &v) in l_out.iter_mut().zip(x) {
                *lo = (nmax + clamp(nearest_int(iscale * v))) as i8;
            }
            scale = slx / sl2;
            best = scale * slx;
        }
    }
    scale
}

/// ggml `make_q3_quants` with `do_rmse = true`: iterative refinement weighted by x².
/// Writes `L[i] = q + nmax`.
fn make_q3_quants(nmax: i32, x: &[f32], l_out: &mut [i8]) -> f32 {
    let (mut max, mut amax) = (0.0f32, 0.0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l_out.iter_mut().for_each(|l| *l = 0);
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    let clamp = |l: i32| l.clamp(-nmax, nmax - 1);
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for (lo, &v) in l_out.iter_mut().zip(x) {
        let l = clamp(nearest_int(iscale * v));
        *lo = l as i8;
        let w = v * v;
        sumlx += w * v * l as f32;
        suml2 += w * l as f32 * l as f32;
    }
    for _ in 0..5 {
        let mut n_changed = 0;
        for (lo, &v) in l_out.iter_mut().zip(x) {
            let w = v * v;
            let li = *lo as f32;
            let mut slx = sumlx - w * v * li;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * li * li;
                let new_l = clamp(nearest_int(v * sl2 / slx));
                if new_l != *lo as i32 {
                    slx += w * v * new_l as f32;
                    sl2 += w * new_l as f32 * new_l as f32;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        *lo = new_l as i8;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed += 1;
                    }
                }
            }
        }
        if n_changed == 0 {
            break;
        }
    }
    for lo in l_out.iter_mut() {
        *lo += nmax as i8;
    }
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}

/// Search parameters of ggml's `make_qkx2_quants`.
struct Qkx2 {
    nmax: i32,
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
}

/// Asymmetric quantization `x ≈ scale * L - min` with `L` in `0..=nmax` (ggml `make_qkx2_quants`).
/// Returns `(scale, min)` where `min >= 0` is subtracted.
fn make_qkx2_quants(p: &Qkx2, x: &[f32], weights: &[f32], l_out: &mut [u8], l_aux: &mut [u8]) -> (f32, f32) {
    let n = x.len().min(weights.len());
    if n == 0 {
        return (0.0, 0.0);
    }
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        min = if x[i] < min { x[i] } else { min };
        max = if x[i] > max { x[i] } else { max };
        sum_w += weights[i];
        sum_x += weights[i] * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l_out.iter_mut().for_each(|l| *l = 0);
        return (0.0, -min);
    }
    let nmaxf = p.nmax as f32;
    let err = |d: f32| if p.use_mad { d.abs() } else { d * d };
    let mut iscale = nmaxf / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for i in 0..n {
        let l = nearest_int(iscale * (x[i] - min)).clamp(0, p.nmax);
        l_out[i] = l as u8;
        best_error += weights[i] * err(scale * l as f32 + min - x[i]);
    }
    if p.nstep < 1 {
        return (scale, -min);
    }
    for is in 0..=p.nstep {
        iscale = (p.rmin + p.rdelta * is as f32 + nmaxf) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for i in 0..n {
            let l = nearest_int(iscale * (x[i] - min)).clamp(0, p.nmax);
            l_aux[i] = l as u8;
            let (w, lf) = (weights[i], l as f32);
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0.0f32;
            for i in 0..n {
                cur_error += weights[i] * err(this_scale * l_aux[i] as f32 + this_min - x[i]);
            }
            if cur_error < best_error {
                l_out[..n].copy_from_slice(&l_aux[..n]);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// Packs 256 2-bit values the way Q2_K/Q3_K store them.
fn pack_2bit(l: &[u8], qs: &mut [u8]) {
    for j in (0..QK_K).step_by(128) {
        for i in 0..32 {
            qs[j / 4 + i] = l[j + i] | (l[j + i + 32] << 2) | (l[j + i + 64] << 4) | (l[j + i + 96] << 6);
        }
    }
}

pub(crate) fn quantize_q2_k(src: &[f32], dst: &mut [u8]) {
    let p = Qkx2 { nmax: 3, rmin: -0.5, rdelta: 0.1, nstep: 15, use_mad: true };
    let mut l = [0u8; QK_K];
    let mut l_aux = [0u8; 16];
    let mut weights = [0.0f32; 16];
    let mut scales = [0.0f32; 16];
    let mut mins = [0.0f32; 16];
    const Q4SCALE: f32 = 15.0;
    for (x, b) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(84)) {
        let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
        for j in 0..16 {
            let xs = &x[16 * j..16 * j + 16];
            for (w, v) in weights.iter_mut().zip(xs) {
                *w = v.abs();
            }
            let (s, m) = make_qkx2_quants(&p, xs, &weights, &mut l[16 * j..16 * j + 16], &mut l_aux);
            scales[j] = s;
            mins[j] = m;
            if s > max_scale {
                max_scale = s;
            }
            if m > max_min {
                max_min = m;
            }
        }
        let (sc, rest) = b.split_at_mut(16);
        let (qs, dd) = rest.split_at_mut(64);
        if max_scale > 0.0 {
            let iscale = Q4SCALE / max_scale;
            for (o, s) in sc.iter_mut().zip(&scales) {
                *o = nearest_int(iscale * s) as u8;
            }
            dd[0..2].copy_from_slice(&f16::from_f32(max_scale / Q4SCALE).to_le_bytes());
        } else {
            sc.iter_mut().for_each(|o| *o = 0);
            dd[0..2].copy_from_slice(&f16::from_f32(0.0).to_le_bytes());
        }
        if max_min > 0.0 {
            let iscale = Q4SCALE / max_min;
            for (o, m) in sc.iter_mut().zip(&mins) {
                *o |= (nearest_int(iscale * m) << 4) as u8;
            }
            dd[2..4].copy_from_slice(&f16::from_f32(max_min / Q4SCALE).to_le_bytes());
        } else {
            dd[2..4].copy_from_slice(&f16::from_f32(0.0).to_le_bytes());
        }
        let d_all = f16::from_le_bytes([dd[0], dd[1]]).to_f32();
        let dmin_all = f16::from_le_bytes([dd[2], dd[3]]).to_f32();
        for j in 0..16 {
            let d = d_all * (sc[j] & 0x0F) as f32;
            if d == 0.0 {
                continue;
            }
            let dm = dmin_all * (sc[j] >> 4) as f32;
            for ii in 0..16 {
                l[16 * j + ii] = nearest_int((x[16 * j + ii] + dm) / d).clamp(0, 3) as u8;
            }
        }
        pack_2bit(&l, qs);
    }
}

pub(crate) fn quantize_q3_k(src: &[f32], dst: &mut [u8]) {
    let mut l = [0i8; QK_K];
    let mut scales = [0.0f32; 16];
    for (x, b) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(110)) {
        let (mut max_scale, mut amax) = (0.0f32, 0.0f32);
        for j in 0..16 {
            scales[j] = make_q3_quants(4, &x[16 * j..16 * j + 16], &mut l[16 * j..16 * j + 16]);
            if scales[j].abs() > amax {
                amax = scales[j].abs();
                max_scale = scales[j];
            }
        }
        let (hmask, rest) = b.split_at_mut(32);
        let (qs, rest) = rest.split_at_mut(64);
        let (sc, dd) = rest.split_at_mut(12);
        sc.iter_mut().for_each(|s| *s = 0);
        if max_scale != 0.0 {
            let iscale = -32.0 / max_scale;
            for (j, s) in scales.iter().enumerate() {
                // ggml stores nearest_int into an int8_t before clamping.
                let lv = (nearest_int(iscale * s) as i8 as i32).clamp(-32, 31) + 32;
                if j < 8 {
                    sc[j] = (lv & 0x0F) as u8;
                } else {
                    sc[j - 8] |= ((lv & 0x0F) << 4) as u8;
                }
                sc[j % 4 + 8] |= ((lv >> 4) << (2 * (j / 4))) as u8;
            }
            dd.copy_from_slice(&f16::from_f32(1.0 / iscale).to_le_bytes());
        } else {
            dd.copy_from_slice(&f16::from_f32(0.0).to_le_bytes());
        }
        let d_all = f16::from_le_bytes([dd[0], dd[1]]).to_f32();
        let sc6 = super::kquants::q3k_scales(sc);
        for j in 0..16 {
            let d = d_all * sc6[j] as f32;
            if d == 0.0 {
                continue;
            }
            for ii in 0..16 {
                l[16 * j + ii] = (nearest_int(x[16 * j + ii] / d).clamp(-4, 3) + 4) as i8;
            }
        }
        hmask.iter_mut().for_each(|h| *h = 0);
        let mut lu = [0u8; QK_K];
        for (j, (u, &v)) in lu.iter_mut().zip(&l).enumerate() {
            let mut v = v as u8;
            if v > 3 {
                hmask[j % 32] |= 1 << (j / 32);
                v -= 4;
            }
            *u = v;
        }
        pack_2bit(&lu, qs);
    }
}

/// Shared by Q4_K (nmax 15) and Q5_K (nmax 31): per-32 asymmetric scales, 6-bit packed.
/// Returns the final 0..=nmax levels in `l` and writes `d`, `dmin`, `scales[12]` into `head`.
fn quantize_q45_k_block(x: &[f32], p: &Qkx2, head: &mut [u8], l: &mut [u8; QK_K]) {
    let mut l_aux = [0u8; 32];
    let mut weights = [0.0f32; 32];
    let mut scales = [0.0f32; 8];
    let mut mins = [0.0f32; 8];
    let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        let sum_x2: f32 = xs.iter().fold(0.0, |a, v| a + v * v);
        let av_x = (sum_x2 / 32.0).sqrt();
        for (w, v) in weights.iter_mut().zip(xs) {
            *w = av_x + v.abs();
        }
        let (s, m) = make_qkx2_quants(p, xs, &weights, &mut l[32 * j..32 * j + 32], &mut l_aux);
        scales[j] = s;
        mins[j] = m;
        if s > max_scale {
            max_scale = s;
        }
        if m > max_min {
            max_min = m;
        }
    }
    let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let sc = &mut head[4..16];
    sc.iter_mut().for_each(|s| *s = 0);
    for j in 0..8 {
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        if j < 4 {
            sc[j] = ls;
            sc[j + 4] = lm;
        } else {
            sc[j + 4] = (ls & 0x0F) | ((lm & 0x0F) << 4);
            sc[j - 4] |= (ls >> 4) << 6;
            sc[j] |= (lm >> 4) << 6;
        }
    }
    head[0..2].copy_from_slice(&f16::from_f32(max_scale / 63.0).to_le_bytes());
    head[2..4].copy_from_slice(&f16::from_f32(max_min / 63.0).to_le_bytes());
    let d_all = f16_round(max_scale / 63.0);
    let dmin_all = f16_round(max_min / 63.0);
    for j in 0..8 {
        let (s, m) = scale_min_k4(j, &head[4..16]);
        let d = d_all * s as f32;
        if d == 0.0 {
            continue;
        }
        let dm = dmin_all * m as f32;
        for ii in 0..32 {
            l[32 * j + ii] = nearest_int((x[32 * j + ii] + dm) / d).clamp(0, p.nmax) as u8;
        }
    }
}

pub(crate) fn quantize_q4_k(src: &[f32], dst: &mut [u8]) {
    let p = Qkx2 { nmax: 15, rmin: -1.0, rdelta: 0.1, nstep: 20, use_mad: false };
    let mut l = [0u8; QK_K];
    for (x, b) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(144)) {
        let (head, qs) = b.split_at_mut(16);
        quantize_q45_k_block(x, &p, head, &mut l);
        for (c, q) in qs.chunks_exact_mut(32).enumerate() {
            for (i, o) in q.iter_mut().enumerate() {
                *o = l[64 * c + i] | (l[64 * c + i + 32] << 4);
            }
        }
    }
}

pub(crate) fn quantize_q5_k(src: &[f32], dst: &mut [u8]) {
    let p = Qkx2 { nmax: 31, rmin: -0.5, rdelta: 0.1, nstep: 15, use_mad: false };
    let mut l = [0u8; QK_K];
    for (x, b) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(176)) {
        let (head, rest) = b.split_at_mut(16);
        let (qh, ql) = rest.split_at_mut(32);
        quantize_q45_k_block(x, &p, head, &mut l);
        pack_q5_k_levels(&l, qh, ql);
    }
}

pub(crate) fn quantize_q6_k(src: &[f32], dst: &mut [u8]) {
    let mut l = [0i8; QK_K];
    let mut scales = [0.0f32; 16];
    for (x, b) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(210)) {
        let (mut max_scale, mut max_abs) = (0.0f32, 0.0f32);
        for ib in 0..16 {
            let s = make_qx_quants(32, &x[16 * ib..16 * ib + 16], &mut l[16 * ib..16 * ib + 16], 1);
            scales[ib] = s;
            if s.abs() > max_abs {
                max_abs = s.abs();
                max_scale = s;
            }
        }
        if max_abs < GROUP_MAX_EPS {
            b.iter_mut().for_each(|v| *v = 0);
            continue;
        }
        let (ql, rest) = b.split_at_mut(128);
        let (qh, rest) = rest.split_at_mut(64);
        let (sc, dd) = rest.split_at_mut(16);
        let iscale = -128.0 / max_scale;
        dd.copy_from_slice(&f16::from_f32(1.0 / iscale).to_le_bytes());
        let d_all = f16_round(1.0 / iscale);
        for (o, s) in sc.iter_mut().zip(&scales) {
            *o = nearest_int(iscale * s).min(127) as i8 as u8;
        }
        for j in 0..16 {
            let d = d_all * (sc[j] as i8) as f32;
            if d == 0.0 {
                continue;
            }
            for ii in 0..16 {
                l[16 * j + ii] = (nearest_int(x[16 * j + ii] / d).clamp(-32, 31) + 32) as i8;
            }
        }
        for n in 0..2 {
            let (j, qlo, qho) = (n * 128, n * 64, n * 32);
            for i in 0..32 {
                let q = |k: usize| l[j + i + k] as u8;
                ql[qlo + i] = (q(0) & 0x0F) | ((q(64) & 0x0F) << 4);
                ql[qlo + i + 32] = (q(32) & 0x0F) | ((q(96) & 0x0F) << 4);
                qh[qho + i] = (q(0) >> 4) | ((q(32) >> 4) << 2) | ((q(64) >> 4) << 4) | ((q(96) >> 4) << 6);
            }
        }
    }
}

/// Packs 256 five-bit levels `l` into Q5_K's `qh[32]` (fifth bits) and `ql[128]` (low nibbles),
/// in ggml's order.
pub(crate) fn pack_q5_k_levels(l: &[u8; QK_K], qh: &mut [u8], ql: &mut [u8]) {
    qh.iter_mut().for_each(|h| *h = 0);
    let (mut m1, mut m2) = (1u8, 2u8);
    for (c, q) in ql.chunks_exact_mut(32).enumerate() {
        for (j, o) in q.iter_mut().enumerate() {
            let mut l1 = l[64 * c + j];
            if l1 > 15 {
                l1 -= 16;
                qh[j] |= m1;
            }
            let mut l2 = l[64 * c + j + 32];
            if l2 > 15 {
                l2 -= 16;
                qh[j] |= m2;
            }
            *o = l1 | (l2 << 4);
        }
        m1 = m1.wrapping_shl(2);
        m2 = m2.wrapping_shl(2);
    }
}
