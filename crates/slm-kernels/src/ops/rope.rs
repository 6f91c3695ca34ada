//! Rotary position embedding (RoPE), matching ggml's `rope_f32` for `ext_factor = 0`.
//!
//! ggml computes the angle of rotary pair `i` at position `p` as `p * theta_scale^i` by repeated
//! f32 multiplication (`theta *= theta_scale`, `theta_scale = base^(-2/n_rot)`), optionally
//! divided by a per-pair frequency factor and multiplied by `freq_scale`; the table below is
//! built the same way so results agree with llama.cpp to the last bit of the angle.

/// Precomputed `cos`/`sin` per (position, rotary pair) for positions `0..max_pos`; positions
/// beyond are computed on the fly (same formula, no allocation).
#[derive(Clone, Debug)]
pub struct RopeTable {
    n_rot: usize,
    max_pos: usize,
    theta_scale: f32,
    freq_scale: f32,
    /// Per-pair divisors of the angle (`rope_freqs` tensor, Llama 3); empty = all 1.
    freq_factors: Vec<f32>,
    /// `[max_pos][n_rot / 2]` interleaved `(cos, sin)`.
    cos_sin: Vec<(f32, f32)>,
}

impl RopeTable {
    /// Floats the table holds (`max_pos × n_rot`), for memory accounting.
    pub fn len_floats(&self) -> usize {
        self.cos_sin.len() * 2
    }

    /// A table for `head_dim` rotary dimensions (all of the head), base `theta` (GGUF
    /// `rope.freq_base`, 10000 for Llama 2, 100000 for SmolLM2), positions `0..max_pos`.
    pub fn new(head_dim: usize, theta: f32, max_pos: usize) -> Self {
        Self::with_scaling(head_dim, theta, max_pos, 1.0, &[])
    }

    /// A table with linear position scaling (`freq_scale`, GGUF `1 / rope.scaling.factor`) and
    /// optional per-pair frequency factors (`n_rot / 2` values; others are ignored, missing = 1).
    /// `n_rot` is the number of rotated dimensions (may be less than the head dimension).
    pub fn with_scaling(n_rot: usize, theta: f32, max_pos: usize, freq_scale: f32, freq_factors: &[f32]) -> Self {
        let n_rot = n_rot / 2 * 2;
        let theta_scale = if n_rot > 0 { theta.powf(-2.0 / n_rot as f32) } else { 1.0 };
        let mut t = RopeTable {
            n_rot,
            max_pos,
            theta_scale,
            freq_scale,
            freq_factors: freq_factors.iter().take(n_rot / 2).copied().collect(),
            cos_sin: Vec::new(),
        };
        let half = n_rot / 2;
        let mut cs = vec![(1.0f32, 0.0f32); max_pos.saturating_mul(half)];
        for (p, row) in cs.chunks_exact_mut(half.max(1)).enumerate().take(max_pos) {
            t.fill_position(p, row);
        }
        t.cos_sin = cs;
        t
    }

    /// Rotated dimensions per head.
    pub fn n_rot(&self) -> usize {
        self.n_rot
    }

    /// Positions covered by the precomputed table.
    pub fn max_pos(&self) -> usize {
        self.max_pos
    }

    /// ggml's `rope_cache_init`: the angle recurrence in f32.
    fn fill_position(&self, pos: usize, row: &mut [(f32, f32)]) {
        let mut theta = pos as f32;
        for (i, cs) in row.iter_mut().enumerate() {
            let ff = self.freq_factors.get(i).copied().unwrap_or(1.0);
            let angle = self.freq_scale * (theta / ff);
            *cs = (angle.cos(), angle.sin());
            theta *= self.theta_scale;
        }
    }
}

/// Largest `n_rot / 2` rotated on the stack when a position is past the table.
const MAX_STACK_PAIRS: usize = 256;

/// Rotates every head of one token at position `pos` in place.
///
/// # Shapes
/// `x`: `[n_heads][head_dim]`. The first `table.n_rot()` dims of each head rotate; the rest are
/// left as they are.
///
/// `neox == false`: adjacent pairs `(x[2i], x[2i+1])` rotate (ggml `GGML_ROPE_TYPE_NORMAL`,
/// llama-arch GGUF files, whose Q/K weights were permuted at conversion). `neox == true`: pairs
/// `(x[i], x[i + n_rot/2])` (GPT-NeoX style: Qwen2, Phi, ...).
pub fn rope_inplace(x: &mut [f32], n_heads: usize, head_dim: usize, pos: usize, table: &RopeTable, neox: bool) {
    debug_assert_eq!(x.len(), n_heads * head_dim);
    let n_rot = table.n_rot.min(head_dim) / 2 * 2;
    let half = n_rot / 2;
    let mut stack = [(1.0f32, 0.0f32); MAX_STACK_PAIRS];
    let half_rot = table.n_rot / 2;
    let cached = if pos < table.max_pos { table.cos_sin.get(pos * half_rot..(pos + 1) * half_rot) } else { None };
    let cs: &[(f32, f32)] = match cached {
        Some(row) => row,
        None => {
            let k = (table.n_rot / 2).min(MAX_STACK_PAIRS);
            table.fill_position(pos, &mut stack[..k]);
            &stack[..k]
        }
    };
    if head_dim == 0 {
        return;
    }
    for head in x.chunks_exact_mut(head_dim).take(n_heads) {
        if neox {
            let (lo, hi) = head[..n_rot].split_at_mut(half);
            for ((a, b), &(c, s)) in lo.iter_mut().zip(hi.iter_mut()).zip(cs) {
                let (x0, x1) = (*a, *b);
                *a = x0 * c - x1 * s;
                *b = x0 * s + x1 * c;
            }
        } else {
            for (pair, &(c, s)) in head[..n_rot].chunks_exact_mut(2).zip(cs) {
                let (x0, x1) = (pair[0], pair[1]);
                pair[0] = x0 * c - x1 * s;
                pair[1] = x0 * s + x1 * c;
            }
        }
    }
}
