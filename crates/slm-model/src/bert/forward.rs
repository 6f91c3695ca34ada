//! The encoder forward pass over a batch of variable-length sequences.
//!
//! The sequences are packed one after another into a single `[T][d]` activation matrix (no
//! padding): every projection runs once over all `T` tokens of the batch, and only attention
//! looks at sequence boundaries. The result equals a padded batch with an attention mask, minus
//! the work on padding.

use slm_kernels::ops::{attend, bias_gelu_inplace, layer_norm_inplace};
use slm_kernels::{matmul_dense, matmul_many, Pool, QMatrix, Scratch, DENSE_MIN_TOKENS};

use super::config::{BertConfig, Pooling};
use super::weights::{BertLayer, BertWeights, Norm};
use crate::error::ModelError;
use crate::weights::Linear;

/// Reusable buffers of [`super::BertModel::encode`]; they grow to the largest batch seen.
#[derive(Default)]
pub struct EncoderState {
    /// Final hidden states, `[T][d]` (valid after `encode`).
    hidden: Vec<f32>,
    /// Start of each sequence in `hidden` (in tokens), plus the total at the end.
    offsets: Vec<usize>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    ctx: Vec<f32>,
    ff: Vec<f32>,
    /// Per-head copies of one sequence's Q, K, V and attention output: `[H][L][hd]` each.
    heads: [Vec<f32>; 4],
    /// Attention scores of one sequence, `[H][L][L]`.
    scores: Vec<f32>,
    bufs: Bufs,
}

/// Work buffers of the matrix products.
#[derive(Default)]
struct Bufs {
    /// Activation quantization of the dot-product kernels.
    scratch: Scratch,
    /// A quantized weight decoded to f32 for the dense GEMM.
    decoded: Vec<f32>,
}

impl EncoderState {
    /// A fresh state (buffers allocated on first use).
    pub fn new() -> Self {
        EncoderState::default()
    }

    /// Number of sequences of the last batch.
    pub fn n_seqs(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// The final hidden states of sequence `i` of the last batch, `[L][d]`; empty if out of range.
    pub fn sequence(&self, i: usize, d: usize) -> &[f32] {
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&a), Some(&b)) => self.hidden.get(a * d..b * d).unwrap_or(&[]),
            _ => &[],
        }
    }
}

fn grow(buf: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if buf.len() < n {
        buf.resize(n, 0.0);
    }
    &mut buf[..n]
}

/// Runs the encoder on `seqs` (token ids, each starting with `[CLS]` and ending with `[SEP]` as
/// the tokenizer made them; token type 0 for every token) and leaves the final hidden states in
/// `state`.
pub(super) fn encode(
    cfg: &BertConfig,
    w: &BertWeights,
    pool: &Pool,
    seqs: &[&[u32]],
    state: &mut EncoderState,
) -> Result<(), ModelError> {
    let d = cfg.d_model;
    state.offsets.clear();
    state.offsets.push(0);
    let mut total = 0usize;
    for (i, s) in seqs.iter().enumerate() {
        if s.is_empty() {
            return Err(ModelError::InvalidArgument(format!("sequence {i} of the batch is empty")));
        }
        if s.len() > cfg.n_positions {
            return Err(ModelError::InvalidArgument(format!(
                "sequence {i} has {} tokens; the model has {} positions (truncate the input)",
                s.len(),
                cfg.n_positions
            )));
        }
        if let Some(&id) = s.iter().find(|&&id| id as usize >= cfg.n_vocab) {
            return Err(ModelError::TokenOutOfRange { id, n_vocab: cfg.n_vocab });
        }
        total += s.len();
        state.offsets.push(total);
    }
    // Every product of an encoder pass is a prompt product: prompt mode keeps a sequence's
    // numbers independent of the batch it is in (see `slm_kernels::Scratch::set_prompt`).
    state.bufs.scratch.set_prompt(true);
    embed_tokens(cfg, w, seqs, grow(&mut state.hidden, total * d))?;
    for layer in &w.layers {
        block(cfg, layer, pool, total, state)?;
    }
    Ok(())
}

/// `x[t] = LayerNorm(word[id] + position[p] + type[0])`.
fn table(t: &crate::weights::WeightTensor, rows: usize, d: usize) -> Result<QMatrix<'_>, ModelError> {
    Ok(QMatrix::new(t.dtype, rows, d, t.bytes())?)
}

fn embed_tokens(cfg: &BertConfig, w: &BertWeights, seqs: &[&[u32]], x: &mut [f32]) -> Result<(), ModelError> {
    let d = cfg.d_model;
    let words = table(&w.token_embd, cfg.n_vocab, d)?;
    let positions = table(&w.position_embd, cfg.n_positions, d)?;
    let mut type0 = vec![0.0f32; d];
    if let Some(t) = &w.token_types {
        table(t, cfg.n_token_types, d)?.dequantize_row(0, &mut type0)?;
    }
    let mut pos_row = vec![0.0f32; d];
    let mut rows = x.chunks_exact_mut(d);
    for s in seqs {
        for (p, &id) in s.iter().enumerate() {
            let Some(row) = rows.next() else { break };
            words.dequantize_row(id as usize, row)?;
            positions.dequantize_row(p, &mut pos_row)?;
            for ((r, &pv), &tv) in row.iter_mut().zip(&pos_row).zip(&type0) {
                *r += pv + tv;
            }
            layer_norm_inplace(row, &w.embd_norm.weight, &w.embd_norm.bias, cfg.eps);
        }
    }
    Ok(())
}

/// One block: `x = LN(x + O·attn(x))`, then `x = LN(x + Down·gelu(Up·x))`.
fn block(cfg: &BertConfig, l: &BertLayer, pool: &Pool, total: usize, st: &mut EncoderState) -> Result<(), ModelError> {
    let (d, ff) = (cfg.d_model, cfg.d_ff);
    let n = total * d;
    grow(&mut st.q, n);
    grow(&mut st.k, n);
    grow(&mut st.v, n);
    grow(&mut st.ctx, n);
    grow(&mut st.ff, total * ff);
    let x = &mut st.hidden[..n];
    let dec = &mut st.bufs.decoded;
    if !(project(pool, &l.q, x, total, &mut st.q[..n], dec)?
        && project(pool, &l.k, x, total, &mut st.k[..n], dec)?
        && project(pool, &l.v, x, total, &mut st.v[..n], dec)?)
    {
        let (qm, km, vm) = (l.q.matrix()?, l.k.matrix()?, l.v.matrix()?);
        let outs = [&mut st.q[..n], &mut st.k[..n], &mut st.v[..n]];
        matmul_many(pool, [&qm, &km, &vm], x, total, outs, &mut st.bufs.scratch)?;
    }
    for (lin, buf) in [(&l.q, &mut st.q), (&l.k, &mut st.k), (&l.v, &mut st.v)] {
        add_bias(&mut buf[..n], lin.bias.as_deref());
    }
    for s in 0..st.offsets.len().saturating_sub(1) {
        let (a, b) = (st.offsets[s], st.offsets[s + 1]);
        attention(cfg, pool, a, b - a, st);
    }
    // The attention output goes into `q` (free now), then joins the residual.
    linear(pool, &l.o, &st.ctx[..n], total, &mut st.q[..n], &mut st.bufs)?;
    let x = &mut st.hidden[..n];
    residual_norm(pool, x, &st.q[..n], d, &l.attn_norm, cfg.eps);

    let h = &mut st.ff[..total * ff];
    linear(pool, &l.up, x, total, h, &mut st.bufs)?;
    par_rows(pool, h, ff, &|_, rows| {
        for row in rows.chunks_exact_mut(ff) {
            bias_gelu_inplace(row, &l.up_bias, cfg.gelu);
        }
    });
    linear(pool, &l.down, h, total, &mut st.q[..n], &mut st.bufs)?;
    residual_norm(pool, x, &st.q[..n], d, &l.out_norm, cfg.eps);
    Ok(())
}

/// `out = W x` (no bias) through the dense GEMM when the batch is large (quantized weights are
/// decoded to f32 first);
/// `Ok(false)` when that path does not apply.
fn project(
    pool: &Pool,
    lin: &Linear,
    x: &[f32],
    n: usize,
    out: &mut [f32],
    decoded: &mut Vec<f32>,
) -> Result<bool, ModelError> {
    if n < DENSE_MIN_TOKENS {
        return Ok(false);
    }
    Ok(matmul_dense(pool, &lin.matrix()?, x, n, out, decoded)?)
}

/// `out = W x + b` for `n` tokens, on the fastest path for the weight's type and the batch size.
fn linear(pool: &Pool, lin: &Linear, x: &[f32], n: usize, out: &mut [f32], bufs: &mut Bufs) -> Result<(), ModelError> {
    if project(pool, lin, x, n, out, &mut bufs.decoded)? {
        add_bias(out, lin.bias.as_deref());
        return Ok(());
    }
    lin.forward(pool, x, n, out, &mut bufs.scratch)
}

fn add_bias(x: &mut [f32], bias: Option<&[f32]>) {
    if let Some(b) = bias {
        for row in x.chunks_exact_mut(b.len()) {
            slm_kernels::ops::add_inplace(row, b);
        }
    }
}

/// `x[t] = LayerNorm(x[t] + y[t])` for every row, rows spread over the pool.
fn residual_norm(pool: &Pool, x: &mut [f32], y: &[f32], d: usize, norm: &Norm, eps: f32) {
    par_rows(pool, x, d, &|first, rows| {
        let ys = y.get(first * d..).unwrap_or(&[]);
        for (xr, yr) in rows.chunks_exact_mut(d).zip(ys.chunks_exact(d)) {
            slm_kernels::ops::add_inplace(xr, yr);
            layer_norm_inplace(xr, &norm.weight, &norm.bias, eps);
        }
    });
}

/// Runs `f(first_row, rows)` over blocks of whole rows of `buf` (rows of `width`) on the pool.
fn par_rows(pool: &Pool, buf: &mut [f32], width: usize, f: &(dyn Fn(usize, &mut [f32]) + Sync)) {
    pool.run_rows(buf, width, &mut [] as &mut [()], 0, &|first, rows, _| f(first, rows));
}

/// Bidirectional attention of the sequence at tokens `start..start + len`: heads are gathered
/// into contiguous `[L][hd]` blocks, attended in parallel (one task per head), and scattered back
/// into `st.ctx`.
fn attention(cfg: &BertConfig, pool: &Pool, start: usize, len: usize, st: &mut EncoderState) {
    let (d, n_head) = (cfg.d_model, cfg.n_head);
    let hd = d / n_head;
    let span = start * d..(start + len) * d;
    let [qh, kh, vh, oh] = &mut st.heads;
    for (src, dst) in [(&st.q, &mut *qh), (&st.k, &mut *kh), (&st.v, &mut *vh)] {
        let dst = grow(dst, len * d);
        for (t, row) in src[span.clone()].chunks_exact(d).enumerate() {
            for (h, head) in row.chunks_exact(hd).enumerate() {
                dst[(h * len + t) * hd..][..hd].copy_from_slice(head);
            }
        }
    }
    let oh = grow(oh, len * d);
    let scores = grow(&mut st.scores, n_head * len * len);
    let scale = 1.0 / (hd as f32).sqrt();
    let (qh, kh, vh) = (&qh[..len * d], &kh[..len * d], &vh[..len * d]);
    pool.run_chunks(oh, len * hd, scores, len * len, &|h, out, sc| {
        let block = h * len * hd..(h + 1) * len * hd;
        attend(&qh[block.clone()], hd, &kh[block.clone()], &vh[block], len, scale, sc, out);
    });
    for (t, row) in st.ctx[span].chunks_exact_mut(d).enumerate() {
        for (h, head) in row.chunks_exact_mut(hd).enumerate() {
            head.copy_from_slice(&oh[(h * len + t) * hd..][..hd]);
        }
    }
}

/// Pools each sequence's hidden states into one vector and L2-normalises it when asked.
pub(super) fn pool_sequences(state: &EncoderState, d: usize, pooling: Pooling, normalize: bool) -> Vec<Vec<f32>> {
    (0..state.n_seqs())
        .map(|i| {
            let h = state.sequence(i, d);
            let mut v = vec![0.0f32; d];
            match pooling {
                Pooling::Cls => v.copy_from_slice(&h[..d.min(h.len())]),
                Pooling::Mean => {
                    let n = (h.len() / d).max(1);
                    let mut acc = vec![0.0f64; d];
                    for row in h.chunks_exact(d) {
                        acc.iter_mut().zip(row).for_each(|(a, &x)| *a += x as f64);
                    }
                    v.iter_mut().zip(&acc).for_each(|(o, &a)| *o = (a / n as f64) as f32);
                }
            }
            if normalize {
                l2_normalize(&mut v);
            }
            v
        })
        .collect()
}

/// Scales `v` to unit Euclidean length (sentence-transformers' `Normalize`: divides by
/// `max(‖v‖, 1e-12)`).
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt().max(1e-12);
    let inv = (1.0 / norm) as f32;
    v.iter_mut().for_each(|x| *x *= inv);
}
