//! Activation quantization: the f32 input of a matmul is quantized once per call into the
//! block format its weight type's integer dot product wants (ggml's "vec_dot type").
//!
//! These are in-memory formats only (never written to files), so they keep `d` and `s` as f32
//! instead of ggml's f16: one fewer conversion per block in the hot loop and slightly better
//! precision.

use crate::quant::kquants::quantize_q8_k_block;
use half::f16;
use slm_format::QK_K;

/// 32 activations quantized to i8 with one scale: `x[i] ≈ d * qs[i]`.
///
/// Numerics follow what llama.cpp runs on x86 (`quantize_row_q8_0`/`q8_1` with AVX2): scale
/// `d = amax / 127` stored rounded to f16, quants `round_ties_even(x * 127 / amax)`, and
/// `s = f16(d * sum(qs))` (ggml's Q8_1 `s`, used by Q4_1/Q5_1 for their `m` term), so our
/// logits track llama.cpp's closely. `sd = d * sum(qs)` without the f16 rounding serves the
/// Q4_0/Q5_0 kernels that compute `sum((q - 8) * a)` as `sum(q * a) - 8 * sum(a)` and must stay
/// as exact as ggml's signed-integer version.
///
/// The layout is fixed (`#[repr(C)]`, 48 bytes, 16-aligned) so kernels load `(d, s, sd, 0)` as
/// one vector.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C, align(16))]
pub struct Q8Block {
    /// Quantized values.
    pub qs: [i8; 32],
    /// Scale (an f16 value).
    pub d: f32,
    /// `d * sum(qs)`, rounded to f16 like ggml's Q8_1.
    pub s: f32,
    /// `d * sum(qs)` in f32.
    pub sd: f32,
    /// Always 0; completes the `(d, s, sd, pad)` vector.
    pub pad: f32,
}

/// The scales of one block column across eight consecutive tokens, gathered so that 8-token
/// kernels load them as one vector each (`t` = token within the group).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C, align(32))]
pub struct Group8 {
    /// `Q8Block::d` of tokens `t0..t0 + 8`.
    pub d: [f32; 8],
    /// `Q8Block::s` of the same tokens.
    pub s: [f32; 8],
    /// `Q8Block::sd` of the same tokens.
    pub sd: [f32; 8],
}

/// Fills `groups[g * nb + b]` from `acts` (`n_tokens` rows of `nb` blocks) for every full group
/// of eight tokens.
pub(crate) fn gather_group8(acts: &[Q8Block], nb: usize, groups: &mut [Group8]) {
    if nb == 0 {
        return;
    }
    for (g, grow) in groups.chunks_exact_mut(nb).enumerate() {
        for (b, gb) in grow.iter_mut().enumerate() {
            for t in 0..8 {
                if let Some(a) = acts.get((g * 8 + t) * nb + b) {
                    gb.d[t] = a.d;
                    gb.s[t] = a.s;
                    gb.sd[t] = a.sd;
                }
            }
        }
    }
}

/// 256 activations quantized to i8 with one scale (ggml's Q8_K), plus sums of each 16 quants
/// so that K-quant mins can be applied per group without touching the quants.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C, align(8))]
pub struct Q8KBlock {
    /// Quantized values.
    pub qs: [i8; QK_K],
    /// `bsums[g] = sum(qs[16g..16g+16])`.
    pub bsums: [i16; 16],
    /// Scale.
    pub d: f32,
}

impl Default for Q8KBlock {
    fn default() -> Self {
        Q8KBlock { qs: [0; QK_K], bsums: [0; 16], d: 0.0 }
    }
}

/// Quantizes `x` (a multiple of 32 long) into `out` (`x.len() / 32` blocks); see [`Q8Block`]
/// for the exact arithmetic. Uses AVX2 when the CPU has it (same results).
pub fn quantize_q8(x: &[f32], out: &mut [Q8Block]) {
    #[cfg(target_arch = "x86_64")]
    if crate::dot::Isa::Avx2.is_available() {
        // SAFETY: the CPU supports avx2, fma and f16c (checked just above).
        unsafe { crate::act_avx2::quantize_q8(x, out) };
        return;
    }
    quantize_q8_scalar(x, out)
}

/// Portable [`quantize_q8`].
pub(crate) fn quantize_q8_scalar(x: &[f32], out: &mut [Q8Block]) {
    for (xs, b) in x.chunks_exact(32).zip(out.iter_mut()) {
        let amax = xs.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let mut sum = 0i32;
        for (q, v) in b.qs.iter_mut().zip(xs) {
            let qi = (v * id).round_ties_even() as i32;
            sum += qi;
            *q = qi as i8;
        }
        b.d = f16::from_f32(d).to_f32();
        b.s = f16::from_f32(d * sum as f32).to_f32();
        b.sd = b.d * sum as f32;
    }
}

/// Quantizes `x` (a multiple of 256 long) into `out` (`x.len() / 256` blocks) as ggml's Q8_K
/// (scale kept in f32, as ggml does). Uses AVX2 when the CPU has it (same results).
pub fn quantize_q8k(x: &[f32], out: &mut [Q8KBlock]) {
    #[cfg(target_arch = "x86_64")]
    if crate::dot::Isa::Avx2.is_available() {
        // SAFETY: the CPU supports avx2, fma and f16c (checked just above).
        unsafe { crate::act_avx2::quantize_q8k(x, out) };
        return;
    }
    quantize_q8k_scalar(x, out)
}

/// Portable [`quantize_q8k`].
pub(crate) fn quantize_q8k_scalar(x: &[f32], out: &mut [Q8KBlock]) {
    for (xs, b) in x.chunks_exact(QK_K).zip(out.iter_mut()) {
        b.d = quantize_q8_k_block(xs, &mut b.qs, &mut b.bsums);
    }
}

/// Reusable scratch memory for activation quantization, so the decode loop does not allocate
/// once buffers have grown to the largest shape used.
#[derive(Debug, Default)]
pub struct Scratch {
    pub(crate) q8: Vec<Q8Block>,
    pub(crate) q8k: Vec<Q8KBlock>,
    pub(crate) g8: Vec<Group8>,
    /// Prompt mode (see [`Scratch::set_prompt`]).
    pub(crate) prompt: bool,
    /// Row-invariant mode (see [`Scratch::set_row_invariant`]).
    pub(crate) row_invariant: bool,
    /// The threads' shares of a one-token product (see `crate::matvec`).
    pub(crate) shares: Vec<crate::matvec::Share>,
}

impl Scratch {
    /// An empty scratch; it grows on first use.
    pub fn new() -> Self {
        Scratch::default()
    }

    /// Prompt mode: products of weight types that have a batched prompt kernel (Q8_0, Q4_0, Q4_1
    /// on AVX-512 VNNI) use it for any number of tokens, so a prompt's results do not depend on
    /// how it is split into calls. Off (generation), they use the dot kernels, which are faster for
    /// one token. The two agree within 1e-5 relative, not bit for bit.
    pub fn set_prompt(&mut self, on: bool) {
        self.prompt = on;
    }

    /// Whether prompt mode is on.
    pub fn prompt(&self) -> bool {
        self.prompt
    }

    /// Row-invariant mode: every token row of a product is computed by the one-token kernel, so
    /// each row's result is bit for bit what a call with that row alone gives, whatever the other
    /// rows are. Sequences decoded together (continuous batching) then produce exactly the tokens
    /// they produce alone, while still sharing each weight row's read. Wins over prompt mode.
    pub fn set_row_invariant(&mut self, on: bool) {
        self.row_invariant = on;
    }

    /// `n` Q8 blocks and `m` 8-token scale groups (contents unspecified), growing as needed.
    pub(crate) fn q8_with_groups(&mut self, n: usize, m: usize) -> (&mut [Q8Block], &mut [Group8]) {
        if self.q8.len() < n {
            self.q8.resize(n, Q8Block::default());
        }
        if self.g8.len() < m {
            self.g8.resize(m, Group8::default());
        }
        (&mut self.q8[..n], &mut self.g8[..m])
    }

    /// `n` Q8_K blocks (contents unspecified), growing the buffer if needed.
    pub(crate) fn q8k(&mut self, n: usize) -> &mut [Q8KBlock] {
        if self.q8k.len() < n {
            self.q8k.resize(n, Q8KBlock::default());
        }
        &mut self.q8k[..n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group8_gathers_scales_per_block_column() {
        let x: Vec<f32> = (0..16 * 64).map(|i| ((i * 7919) % 1000) as f32 / 100.0 - 5.0).collect();
        let mut acts = vec![Q8Block::default(); 16 * 2];
        quantize_q8(&x, &mut acts);
        let mut g = vec![Group8::default(); 2 * 2];
        gather_group8(&acts, 2, &mut g);
        for grp in 0..2 {
            for b in 0..2 {
                for t in 0..8 {
                    let a = &acts[(grp * 8 + t) * 2 + b];
                    let gb = &g[grp * 2 + b];
                    assert_eq!((gb.d[t], gb.s[t], gb.sd[t]), (a.d, a.s, a.sd));
                }
            }
        }
    }

    #[test]
    fn q8_blocks_round_trip_within_half_step() {
        let x: Vec<f32> = (0..64).map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.37).collect();
        let mut b = vec![Q8Block::default(); 2];
        quantize_q8(&x, &mut b);
        for (xs, blk) in x.chunks(32).zip(&b) {
            let amax = xs.iter().fold(0.0f32, |a, v| a.max(v.abs()));
            assert_eq!(blk.d, f16::from_f32(amax / 127.0).to_f32());
            let sum: i32 = blk.qs.iter().map(|&q| q as i32).sum();
            assert_eq!(blk.sd, blk.d * sum as f32);
            assert!((blk.s - blk.sd).abs() <= blk.sd.abs() * 1e-3);
            // Half a step, plus the f16 rounding of d over up to 127 steps.
            for (v, q) in xs.iter().zip(&blk.qs) {
                assert!((v - blk.d * *q as f32).abs() <= blk.d * 0.57 + 1e-6);
            }
        }
    }

    #[test]
    fn q8k_maps_absmax_to_127_and_sums_groups() {
        let mut x: Vec<f32> = (0..256).map(|i| (i as f32 * 0.1).sin()).collect();
        x[5] = -3.0;
        let mut b = vec![Q8KBlock::default()];
        quantize_q8k(&x, &mut b);
        assert_eq!(b[0].qs[5], -127);
        for g in 0..16 {
            let s: i16 = b[0].qs[16 * g..16 * g + 16].iter().map(|&q| q as i16).sum();
            assert_eq!(b[0].bsums[g], s);
        }
        assert!((b[0].d * -127.0 - -3.0).abs() < 1e-6);
    }

    #[test]
    fn simd_quantizers_equal_scalar_ones() {
        let mut x: Vec<f32> = crate::quant::tests::test_data(4 * 256, 77);
        x[300] = -x.iter().fold(0.0f32, |m, v| m.max(v.abs())) * 1.5; // negative absmax
        x[600..640].iter_mut().for_each(|v| *v = 0.0); // an all-zero Q8 block
        x[768..].iter_mut().for_each(|v| *v = 0.0); // an all-zero Q8_K block
        x[5] = 0.5 * 127.0 / 2.0; // exercises ties in some block
        let (mut a, mut b) = (vec![Q8Block::default(); 32], vec![Q8Block::default(); 32]);
        quantize_q8(&x, &mut a);
        quantize_q8_scalar(&x, &mut b);
        assert_eq!(a, b);
        let (mut a, mut b) = (vec![Q8KBlock::default(); 4], vec![Q8KBlock::default(); 4]);
        quantize_q8k(&x, &mut a);
        quantize_q8k_scalar(&x, &mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn scratch_grows_and_reuses() {
        let mut s = Scratch::new();
        assert_eq!(s.q8_with_groups(10, 2).0.len(), 10);
        let p = s.q8_with_groups(10, 2).0.as_ptr();
        assert_eq!(s.q8_with_groups(5, 1).0.as_ptr(), p);
        assert_eq!(s.q8_with_groups(5, 3).1.len(), 3);
        assert_eq!(s.q8k(3).len(), 3);
    }
}
