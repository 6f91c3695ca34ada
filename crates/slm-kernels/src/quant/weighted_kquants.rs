//! Importance-weighted K-quant encoders (Q2_K .. Q6_K), ported from ggml's
//! `quantize_row_<type>_impl` with non-NULL `quant_weights`. Block layouts are documented in
//! [`super::kquants`]; the search helpers live in [`super::weighted_search`].

use super::kquants::{q3k_scales, scale_min_k4};
use super::weighted_search::{
    grid, make_qkx3_quants, make_qp_quants, make_qx_quants, nearest_int, put_fp16, sigma_weights,
    sum, sum_sq, GROUP_MAX_EPS,
};
use slm_format::QK_K;

/// Packs 256 2-bit values the way Q2_K/Q3_K store them.
fn pack_2bit(l: &[u8; QK_K], qs: &mut [u8]) {
    for j in (0..QK_K).step_by(128) {
        for i in 0..32 {
            qs[j / 4 + i] =
                l[j + i] | (l[j + i + 32] << 2) | (l[j + i + 64] << 4) | (l[j + i + 96] << 6);
        }
    }
}

/// Per-super-block sigma2 (`scale`·Σx²/256; ggml uses 1 for Q2_K and 2 for Q3_K..Q5_K).
fn block_sigma2(x: &[f32], scale: f32) -> f32 {
    scale * sum_sq(x) / QK_K as f32
}

pub(crate) fn quantize_q2_k(src: &[f32], qw: &[f32], dst: &mut [u8]) {
    let g = grid(3);
    let mut l = [0u8; QK_K];
    let mut l_aux = [0u8; 16];
    let mut weight = [0.0f32; 16];
    let (mut scales, mut mins, mut sw) = ([0.0f32; 16], [0.0f32; 16], [0.0f32; 16]);
    let (mut ls, mut lm) = ([0u8; 16], [0u8; 16]);
    for ((x, qwb), b) in src
        .chunks_exact(QK_K)
        .zip(qw.chunks_exact(QK_K))
        .zip(dst.chunks_exact_mut(84))
    {
        let sigma2 = sum_sq(x) / QK_K as f32;
        for j in 0..16 {
            let xs = &x[16 * j..16 * j + 16];
            sigma_weights(&qwb[16 * j..16 * j + 16], xs, sigma2, &mut weight);
            sw[j] = sum(&weight);
            (scales[j], mins[j]) =
                make_qkx3_quants(&g, xs, &weight, &mut l[16 * j..16 * j + 16], &mut l_aux);
        }
        let dm = make_qp_quants(15, &scales, &mut ls, &sw);
        let mm = make_qp_quants(15, &mins, &mut lm, &sw);
        let (sc, rest) = b.split_at_mut(16);
        let (qs, dd) = rest.split_at_mut(64);
        let dm = put_fp16(&mut dd[0..2], dm);
        let mm = put_fp16(&mut dd[2..4], mm);
        for ((o, &s), &m) in sc.iter_mut().zip(&ls).zip(&lm) {
            *o = s | (m << 4);
        }
        for j in 0..16 {
            let d = dm * (sc[j] & 0x0F) as f32;
            if d == 0.0 {
                continue;
            }
            let m = mm * (sc[j] >> 4) as f32;
            for ii in 0..16 {
                l[16 * j + ii] = nearest_int((x[16 * j + ii] + m) / d).clamp(0, 3) as u8;
            }
        }
        pack_2bit(&l, qs);
    }
}

pub(crate) fn quantize_q3_k(src: &[f32], qw: &[f32], dst: &mut [u8]) {
    let mut l = [0i8; QK_K];
    let mut weight = [0.0f32; 16];
    let (mut scales, mut sw) = ([0.0f32; 16], [0.0f32; 16]);
    let mut ls = [0i8; 16];
    for ((x, qwb), b) in src
        .chunks_exact(QK_K)
        .zip(qw.chunks_exact(QK_K))
        .zip(dst.chunks_exact_mut(110))
    {
        let sigma2 = block_sigma2(x, 2.0);
        for j in 0..16 {
            let xs = &x[16 * j..16 * j + 16];
            sigma_weights(&qwb[16 * j..16 * j + 16], xs, sigma2, &mut weight);
            sw[j] = sum(&weight);
            scales[j] = make_qx_quants(4, xs, &mut l[16 * j..16 * j + 16], &weight);
        }
        let (hmask, rest) = b.split_at_mut(32);
        let (qs, rest) = rest.split_at_mut(64);
        let (sc, dd) = rest.split_at_mut(12);
        sc.iter_mut().for_each(|s| *s = 0);
        let d_block = make_qx_quants(32, &scales, &mut ls, &sw);
        for (j, &lv) in ls.iter().enumerate() {
            let lv = lv as i32;
            if j < 8 {
                sc[j] = (lv & 0x0F) as u8;
            } else {
                sc[j - 8] |= ((lv & 0x0F) << 4) as u8;
            }
            sc[j % 4 + 8] |= ((lv >> 4) << (2 * (j / 4))) as u8;
        }
        let d_all = put_fp16(dd, d_block);
        let sc6 = q3k_scales(sc);
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
            if (v as i8) > 3 {
                hmask[j % 32] |= 1 << (j / 32);
                v = v.wrapping_sub(4);
            }
            *u = v;
        }
        pack_2bit(&lu, qs);
    }
}

/// Shared by Q4_K (nmax 15, no 63-clamp of the 6-bit scales, as in ggml) and Q5_K (nmax 31,
/// clamped): writes `d`, `dmin`, `scales[12]` into `head` and the final levels into `l`.
fn q45_k_block(
    x: &[f32],
    qw: &[f32],
    nmax: i32,
    clamp63: bool,
    head: &mut [u8],
    l: &mut [u8; QK_K],
) {
    let g = grid(nmax);
    let mut l_aux = [0u8; 32];
    let mut weights = [0.0f32; 32];
    let (mut scales, mut mins, mut sw) = ([0.0f32; 8], [0.0f32; 8], [0.0f32; 8]);
    let (mut ls, mut lm) = ([0u8; 8], [0u8; 8]);
    let sigma2 = block_sigma2(x, 2.0);
    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        sigma_weights(&qw[32 * j..32 * j + 32], xs, sigma2, &mut weights);
        sw[j] = sum(&weights);
        (scales[j], mins[j]) =
            make_qkx3_quants(&g, xs, &weights, &mut l[32 * j..32 * j + 32], &mut l_aux);
    }
    let d_block = make_qp_quants(63, &scales, &mut ls, &sw);
    let m_block = make_qp_quants(63, &mins, &mut lm, &sw);
    let (dd, sc) = head.split_at_mut(4);
    for j in 0..8 {
        let (mut s, mut m) = (ls[j], lm[j]);
        if clamp63 {
            s = s.min(63);
            m = m.min(63);
        }
        // C shifts promoted ints and stores into uint8_t: the wrap is intended.
        if j < 4 {
            sc[j] = s;
            sc[j + 4] = m;
        } else {
            sc[j + 4] = (s & 0x0F) | ((m & 0x0F) << 4);
            sc[j - 4] |= (s >> 4) << 6;
            sc[j] |= (m >> 4) << 6;
        }
    }
    let d_all = put_fp16(&mut dd[0..2], d_block);
    let dmin_all = put_fp16(&mut dd[2..4], m_block);
    for j in 0..8 {
        let (s, m) = scale_min_k4(j, sc);
        let d = d_all * s as f32;
        if d == 0.0 {
            continue;
        }
        let dm = dmin_all * m as f32;
        for ii in 0..32 {
            l[32 * j + ii] = nearest_int((x[32 * j + ii] + dm) / d).clamp(0, nmax) as u8;
        }
    }
}

pub(crate) fn quantize_q4_k(src: &[f32], qw: &[f32], dst: &mut [u8]) {
    let mut l = [0u8; QK_K];
    for ((x, qwb), b) in src
        .chunks_exact(QK_K)
        .zip(qw.chunks_exact(QK_K))
        .zip(dst.chunks_exact_mut(144))
    {
        let (head, qs) = b.split_at_mut(16);
        q45_k_block(x, qwb, 15, false, head, &mut l);
        for (c, q) in qs.chunks_exact_mut(32).enumerate() {
            for (i, o) in q.iter_mut().enumerate() {
                *o = l[64 * c + i] | (l[64 * c + i + 32] << 4);
            }
        }
    }
}

pub(crate) fn quantize_q5_k(src: &[f32], qw: &[f32], dst: &mut [u8]) {
    let mut l = [0u8; QK_K];
    for ((x, qwb), b) in src
        .chunks_exact(QK_K)
        .zip(qw.chunks_exact(QK_K))
        .zip(dst.chunks_exact_mut(176))
    {
        let (head, rest) = b.split_at_mut(16);
        let (qh, ql) = rest.split_at_mut(32);
        q45_k_block(x, qwb, 31, true, head, &mut l);
        super::kquants_encode::pack_q5_k_levels(&l, qh, ql);
    }
}

pub(crate) fn quantize_q6_k(src: &[f32], qw: &[f32], dst: &mut [u8]) {
    let mut l = [0i8; QK_K];
    let mut scales = [0.0f32; 16];
    for ((x, qwb), b) in src
        .chunks_exact(QK_K)
        .zip(qw.chunks_exact(QK_K))
        .zip(dst.chunks_exact_mut(210))
    {
        let (mut max_scale, mut max_abs) = (0.0f32, 0.0f32);
        for (ib, sc) in scales.iter_mut().enumerate() {
            let r = 16 * ib..16 * ib + 16;
            // ggml passes the raw importance here (its sigma2 weighting is commented out).
            let s = make_qx_quants(32, &x[r.clone()], &mut l[r.clone()], &qwb[r]);
            *sc = s;
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
        let d_all = put_fp16(dd, 1.0 / iscale);
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
                qh[qho + i] =
                    (q(0) >> 4) | ((q(32) >> 4) << 2) | ((q(64) >> 4) << 4) | ((q(96) >> 4) << 6);
            }
        }
    }
}
