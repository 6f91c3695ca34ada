//! The weighted scale searches of ggml's importance-matrix quantizers (`make_qx_quants` with
//! explicit weights, `make_qkx3_quants`, `make_qp_quants` in ggml-quants.c), plus ggml's exact
//! `nearest_int` and f32→f16 conversion.
//!
//! Byte identity with ggml depends on doing the same f32 operations in the same order, so every
//! expression below mirrors the C one (`w*x*l` is `(w*x)*l`, `w*diff*diff` is not
//! `w*(diff*diff)`, ...). ggml-base is compiled for baseline x86-64 (no FMA contraction), which
//! is what plain Rust f32 arithmetic does too. Loops go through slices, so no input can make them
//! index out of bounds; callers pass equal-length slices.

/// ggml's GROUP_MAX_EPS: groups whose absmax is below this are stored as zeros.
pub(super) const GROUP_MAX_EPS: f32 = 1e-15;

/// ggml's `nearest_int`: round-half-even through the 1.5·2^23 magic number. Equal to
/// `round_ties_even` for |f| ≤ 2^22 (ggml asserts that range in debug builds); outside it, and
/// for NaN/inf, it returns the same wrapped value as the C code instead of saturating.
#[inline]
pub(super) fn nearest_int(f: f32) -> i32 {
    let v = f + 12_582_912.0;
    (v.to_bits() as i32 & 0x007f_ffff) - 0x0040_0000
}

/// ggml's `ggml_compute_fp32_to_fp16` (the software path ggml-base uses), bit for bit,
/// including its canonical NaN (0x7E00 with the sign kept).
pub(super) fn fp32_to_fp16(f: f32) -> u16 {
    let scale_to_inf = f32::from_bits(0x7780_0000); // 2^112
    let scale_to_zero = f32::from_bits(0x0880_0000); // 2^-110
    let mut base = (f.abs() * scale_to_inf) * scale_to_zero;
    let w = f.to_bits();
    let shl1_w = w.wrapping_add(w);
    let sign = w & 0x8000_0000;
    let mut bias = shl1_w & 0xFF00_0000;
    if bias < 0x7100_0000 {
        bias = 0x7100_0000;
    }
    base += f32::from_bits((bias >> 1) + 0x0780_0000);
    let bits = base.to_bits();
    let exp_bits = (bits >> 13) & 0x0000_7C00;
    let mantissa_bits = bits & 0x0000_0FFF;
    let nonsign = exp_bits + mantissa_bits;
    ((sign >> 16)
        | if shl1_w > 0xFF00_0000 {
            0x7E00
        } else {
            nonsign
        }) as u16
}

/// Writes `v` as ggml's f16 into `dst[0..2]` and returns the value the decoder will see.
#[inline]
pub(super) fn put_fp16(dst: &mut [u8], v: f32) -> f32 {
    let h = fp32_to_fp16(v);
    dst.copy_from_slice(&h.to_le_bytes());
    half::f16::from_bits(h).to_f32()
}

/// Symmetric quantization of `x` to `-nmax..nmax-1` minimizing Σ qw·(x − s·l)² over 19 trial
/// scales (ggml `make_qx_quants` with `rmse_type = 1` and non-NULL `qw`).
/// Writes `L[i] = l + nmax` and returns the scale.
pub(super) fn make_qx_quants(nmax: i32, x: &[f32], l_out: &mut [i8], qw: &[f32]) -> f32 {
    let (mut max, mut amax) = (0.0f32, 0.0f32);
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l_out.iter_mut().for_each(|l| *l = 0);
        return 0.0;
    }
    let nmaxf = nmax as f32;
    let q = |iscale: f32, v: f32| nearest_int(iscale * v).clamp(-nmax, nmax - 1);
    let mut iscale = -nmaxf / max;
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for ((lo, &v), &w) in l_out.iter_mut().zip(x).zip(qw) {
        let l = q(iscale, v);
        *lo = (l + nmax) as i8;
        let lf = l as f32;
        sumlx += w * v * lf;
        suml2 += w * lf * lf;
    }
    // C: `suml2 ? sumlx/suml2 : 0` (NaN counts as true).
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmaxf + 0.1 * is as f32) / max;
        let (mut slx, mut sl2) = (0.0f32, 0.0f32);
        for (&v, &w) in x.iter().zip(qw) {
            let lf = q(iscale, v) as f32;
            slx += w * v * lf;
            sl2 += w * lf * lf;
        }
        if sl2 > 0.0 && slx * slx > best * sl2 {
            for (lo, &v) in l_out.iter_mut().zip(x) {
                *lo = (nmax + q(iscale, v)) as i8;
            }
            scale = slx / sl2;
            best = scale * slx;
        }
    }
    scale
}

/// Trial-scale grid of [`make_qkx3_quants`]: `iscale = (rmin + rdelta·is + nmax) / (max − min)`
/// for `is` in `0..=nstep`.
pub(super) struct Grid {
    pub nmax: i32,
    pub rmin: f32,
    pub rdelta: f32,
    pub nstep: i32,
}

/// The grid every importance-weighted asymmetric quantizer in ggml uses (`-0.9, 0.05, 36`).
pub(super) const fn grid(nmax: i32) -> Grid {
    Grid {
        nmax,
        rmin: -0.9,
        rdelta: 0.05,
        nstep: 36,
    }
}

/// Asymmetric quantization `x ≈ scale·L − the_min`, `L` in `0..=nmax`, minimizing
/// Σ w·(x − scale·L + the_min)² with a least-squares fit per trial scale (ggml
/// `make_qkx3_quants` with `use_mad = false`). Returns `(scale, the_min)`; `the_min ≥ 0`.
/// `x`, `w`, `l_out` and `l_aux` have the same length.
pub(super) fn make_qkx3_quants(
    p: &Grid,
    x: &[f32],
    w: &[f32],
    l_out: &mut [u8],
    l_aux: &mut [u8],
) -> (f32, f32) {
    let (Some(&x0), Some(&w0)) = (x.first(), w.first()) else {
        return (0.0, 0.0);
    };
    let (mut min, mut max) = (x0, x0);
    let mut sum_w = w0;
    let mut sum_x = sum_w * x0;
    for (&v, &wi) in x.iter().zip(w).skip(1) {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
        sum_w += wi;
        sum_x += wi * v;
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max <= min {
        l_out.iter_mut().for_each(|l| *l = 0);
        return (0.0, -min);
    }
    let nmaxf = p.nmax as f32;
    let level =
        |iscale: f32, v: f32, min: f32| nearest_int(iscale * (v - min)).clamp(0, p.nmax) as u8;
    let mut iscale = nmaxf / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_mad = 0.0f32;
    for ((lo, &v), &wi) in l_out.iter_mut().zip(x).zip(w) {
        *lo = level(iscale, v, min);
        let diff = scale * *lo as f32 + min - v;
        best_mad += wi * (diff * diff);
    }
    if p.nstep < 1 {
        return (scale, -min);
    }
    for is in 0..=p.nstep {
        iscale = (p.rmin + p.rdelta * is as f32 + nmaxf) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for ((la, &v), &wi) in l_aux.iter_mut().zip(x).zip(w) {
            *la = level(iscale, v, min);
            let lf = *la as f32;
            sum_l += wi * lf;
            sum_l2 += wi * lf * lf;
            sum_xl += wi * lf * v;
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut mad = 0.0f32;
            for ((&la, &v), &wi) in l_aux.iter().zip(x).zip(w) {
                let diff = this_scale * la as f32 + this_min - v;
                mad += wi * (diff * diff);
            }
            if mad < best_mad {
                l_out.copy_from_slice(l_aux);
                best_mad = mad;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// Quantizes the non-negative sub-block scales `x` to `0..=nmax` for a super-block scale,
/// minimizing Σ qw·(x − s·L)² (ggml `make_qp_quants`). Returns the super-block scale.
/// `L` is `uint8_t` in C: negative levels wrap, and the wrapped value is used afterwards, as here.
pub(super) fn make_qp_quants(nmax: i32, x: &[f32], l_out: &mut [u8], qw: &[f32]) -> f32 {
    let mut max = 0.0f32;
    for &v in x {
        // C: MAX(max, x[i]) = max > x ? max : x
        max = if max > v { max } else { v };
    }
    if max < GROUP_MAX_EPS {
        l_out.iter_mut().for_each(|l| *l = 0);
        return 0.0;
    }
    let nmaxf = nmax as f32;
    let mut iscale = nmaxf / max;
    for (lo, &v) in l_out.iter_mut().zip(x) {
        *lo = nearest_int(iscale * v) as u8;
    }
    let scale = 1.0 / iscale;
    let mut best_mse = 0.0f32;
    for ((&l, &v), &w) in l_out.iter().zip(x).zip(qw) {
        let diff = v - scale * l as f32;
        best_mse += w * diff * diff;
    }
    for is in -4..=4 {
        if is == 0 {
            continue;
        }
        let iscale_is = (0.1 * is as f32 + nmaxf) / max;
        let scale_is = 1.0 / iscale_is;
        let mut mse = 0.0f32;
        for (&v, &w) in x.iter().zip(qw) {
            let l = nearest_int(iscale_is * v).min(nmax);
            let diff = v - scale_is * l as f32;
            mse += w * diff * diff;
        }
        if mse < best_mse {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for ((lo, &v), &w) in l_out.iter_mut().zip(x).zip(qw) {
        let l = nearest_int(iscale * v).min(nmax);
        *lo = l as u8;
        let lf = l as f32;
        sumlx += w * v * lf;
        suml2 += w * lf * lf;
    }
    for _ in 0..5 {
        let mut n_changed = 0;
        for ((lo, &v), &w) in l_out.iter_mut().zip(x).zip(qw) {
            let li = *lo as f32;
            let mut slx = sumlx - w * v * li;
            let mut sl2 = suml2 - w * li * li;
            if slx > 0.0 && sl2 > 0.0 {
                let new_l = nearest_int(v * sl2 / slx).min(nmax);
                if new_l != *lo as i32 {
                    let nf = new_l as f32;
                    slx += w * v * nf;
                    sl2 += w * nf * nf;
                    if slx * slx * suml2 > sumlx * sumlx * sl2 {
                        *lo = new_l as u8;
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
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}

/// The per-element weights of the sigma2-style quantizers: `qw[i]·sqrt(sigma2 + x[i]²)`.
pub(super) fn sigma_weights(qw: &[f32], x: &[f32], sigma2: f32, out: &mut [f32]) {
    for ((o, &q), &v) in out.iter_mut().zip(qw).zip(x) {
        *o = q * (sigma2 + v * v).sqrt();
    }
}

/// Σ x² in index order (ggml's `sum_x2` loops).
pub(super) fn sum_sq(x: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for &v in x {
        s += v * v;
    }
    s
}

/// Sum in index order.
pub(super) fn sum(x: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for &v in x {
        s += v;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_matches_round_half_even_in_range_and_never_panics() {
        for &v in &[
            0.0f32,
            0.5,
            1.5,
            2.5,
            -0.5,
            -1.5,
            -2.49,
            4_194_303.0,
            -4_194_303.0,
            123.456,
        ] {
            assert_eq!(nearest_int(v), v.round_ties_even() as i32, "{v}");
        }
        for &v in &[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30, -1e30] {
            let _ = nearest_int(v);
        }
    }

    #[test]
    fn fp16_conversion_matches_half_for_finite_values() {
        let mut state = 0x1234_5678u32;
        for _ in 0..20_000 {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let v = f32::from_bits(state);
            if v.is_finite() {
                assert_eq!(fp32_to_fp16(v), half::f16::from_f32(v).to_bits(), "{v:e}");
            }
        }
        assert_eq!(fp32_to_fp16(f32::NAN) & 0x7FFF, 0x7E00);
        assert_eq!(fp32_to_fp16(f32::INFINITY), 0x7C00);
        assert_eq!(fp32_to_fp16(1e6), 0x7C00);
    }
}
