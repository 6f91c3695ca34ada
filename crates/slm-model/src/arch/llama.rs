//! The Llama-family decoder: SmolLM2, Llama 2/3, Mistral, Qwen2 (with Q/K/V biases).
//!
//! Dimension legend (used in every shape comment of this file):
//! - `T`  tokens in the current batch        - `P`  positions in the KV cache
//! - `D`  d_model (residual width)           - `F`  d_ff (feed-forward width)
//! - `H`  query heads, `G` key/value heads   - `Dh` head_dim (`H * Dh` = q width, `G * Dh` = kv width)
//! - `V`  vocabulary size
//!
//! One block: `x += Wo·attn(rope(Wq·n(x)), rope(Wk·n(x)), Wv·n(x))`, then
//! `x += Wdown·(silu(Wgate·n(x)) ⊙ Wup·n(x))`, with `n` = RMSNorm. Attention is causal with
//! grouped-query heads: query head `h` reads KV head `h / (H / G)`.

use crate::config::ModelConfig;
use crate::error::ModelError;
use crate::kv_cache::KvCache;
use crate::lora::{LoraStack, LoraTarget};
use crate::observe::{ActivationObserver, Site};
use crate::weights::{Linear, TensorLoader, WeightTensor};
use slm_kernels::ops::{self, RopeTable};
use slm_kernels::{Pool, Scratch};

/// One transformer block's weights.
#[derive(Debug)]
pub struct Block {
    /// RMSNorm weight before attention, `[D]`.
    pub attn_norm: Vec<f32>,
    /// `[H*Dh] ← [D]`
    pub wq: Linear,
    /// `[G*Dh] ← [D]`
    pub wk: Linear,
    /// `[G*Dh] ← [D]`
    pub wv: Linear,
    /// `[D] ← [H*Dh]`
    pub wo: Linear,
    /// RMSNorm weight before the feed-forward block, `[D]`.
    pub ffn_norm: Vec<f32>,
    /// `[F] ← [D]`
    pub w_gate: Linear,
    /// `[F] ← [D]`
    pub w_up: Linear,
    /// `[D] ← [F]`
    pub w_down: Linear,
}

/// All weights of a Llama-family model.
#[derive(Debug)]
pub struct LlamaWeights {
    /// Token embedding, ggml dims `[D, V]` (row `i` is token `i`'s vector).
    pub token_embd: WeightTensor,
    /// The blocks, in order.
    pub blocks: Vec<Block>,
    /// Final RMSNorm weight, `[D]`.
    pub output_norm: Vec<f32>,
    /// Output head `[V] ← [D]` (the embedding itself when tied).
    pub output: Linear,
}

impl LlamaWeights {
    /// Loads every tensor of the architecture, checking names, shapes and types, and refusing
    /// files with tensors left over.
    pub fn load(mut loader: TensorLoader, cfg: &ModelConfig) -> Result<Self, ModelError> {
        let (d, v) = (cfg.d_model, cfg.n_vocab);
        let token_embd = loader.tensor("token_embd.weight", &[d as u64, v as u64])?;
        if !crate::weights::supports_matmul(token_embd.dtype) {
            return Err(ModelError::TensorType {
                name: token_embd.name.clone(),
                dtype: token_embd.dtype,
                usage: "the token embedding",
            });
        }
        // Shared blocks (`slm.block_map`): each stored block is loaded once and every layer that
        // runs it holds a cheap clone (the matrices are views of the same mapped bytes).
        let blocks = match crate::weights::read_block_map(loader.metadata(), cfg.n_layer)? {
            None => {
                let mut blocks = Vec::with_capacity(cfg.n_layer);
                for i in 0..cfg.n_layer {
                    blocks.push(load_block(&mut loader, cfg, i)?);
                }
                blocks
            }
            Some(map) => {
                let n_stored = map.iter().max().map_or(0, |m| m + 1);
                let stored = (0..n_stored).map(|j| load_block(&mut loader, cfg, j)).collect::<Result<Vec<_>, _>>()?;
                let mut blocks = Vec::with_capacity(map.len());
                for &j in &map {
                    let b = stored.get(j).ok_or_else(|| {
                        ModelError::InvalidConfig(format!("slm.block_map names block {j} of {n_stored}"))
                    })?;
                    blocks.push(share_block(b));
                }
                blocks
            }
        };
        let output_norm = loader.vector("output_norm.weight", d)?;
        let output = if cfg.tied_output {
            Linear { weight: token_embd.clone(), bias: None, rows: v, cols: d }
        } else {
            loader.linear("output.weight", v, d)?
        };
        // Precomputed RoPE frequencies are derivable from θ; files sometimes carry them anyway.
        if loader.contains("rope_freqs.weight") {
            return Err(ModelError::InvalidConfig(
                "this model uses per-dimension RoPE frequency factors (rope_freqs), not supported yet".into(),
            ));
        }
        loader.finish()?;
        Ok(LlamaWeights { token_embd, blocks, output_norm, output })
    }
}

/// Another handle on block `b`'s weights: matrices share `b`'s bytes, norms are copied.
fn share_block(b: &Block) -> Block {
    Block {
        attn_norm: b.attn_norm.clone(),
        wq: b.wq.clone(),
        wk: b.wk.clone(),
        wv: b.wv.clone(),
        wo: b.wo.clone(),
        ffn_norm: b.ffn_norm.clone(),
        w_gate: b.w_gate.clone(),
        w_up: b.w_up.clone(),
        w_down: b.w_down.clone(),
    }
}

fn load_block(loader: &mut TensorLoader, cfg: &ModelConfig, i: usize) -> Result<Block, ModelError> {
    let (d, f, q, kv) = (cfg.d_model, cfg.d_ff, cfg.q_dim(), cfg.kv_dim());
    let name = |s: &str| format!("blk.{i}.{s}");
    let mut wq = loader.linear(&name("attn_q.weight"), q, d)?;
    let mut wk = loader.linear(&name("attn_k.weight"), kv, d)?;
    let mut wv = loader.linear(&name("attn_v.weight"), kv, d)?;
    if cfg.arch.qkv_bias() {
        wq.bias = Some(loader.vector(&name("attn_q.bias"), q)?);
        wk.bias = Some(loader.vector(&name("attn_k.bias"), kv)?);
        wv.bias = Some(loader.vector(&name("attn_v.bias"), kv)?);
    }
    Ok(Block {
        attn_norm: loader.vector(&name("attn_norm.weight"), d)?,
        wq,
        wk,
        wv,
        wo: loader.linear(&name("attn_output.weight"), d, q)?,
        ffn_norm: loader.vector(&name("ffn_norm.weight"), d)?,
        w_gate: loader.linear(&name("ffn_gate.weight"), f, d)?,
        w_up: loader.linear(&name("ffn_up.weight"), f, d)?,
        w_down: loader.linear(&name("ffn_down.weight"), d, f)?,
    })
}

/// Activation buffers for up to `n_batch` tokens, allocated once per context so that the decode
/// loop never allocates.
#[derive(Debug)]
pub struct ForwardState {
    n_batch: usize,
    /// Longest context these buffers serve (RoPE table and attention scores).
    n_ctx: usize,
    /// Residual stream `[T][D]`.
    x: Vec<f32>,
    /// Normalised residual `[T][D]`.
    xn: Vec<f32>,
    /// `[T][H*Dh]`
    q: Vec<f32>,
    /// `[T][G*Dh]`
    k: Vec<f32>,
    /// `[T][G*Dh]`
    v: Vec<f32>,
    /// Attention output as the attention tasks write it (chunked by head group and tokens).
    attn_heads: Vec<f32>,
    /// Attention output, token-major `[T][H*Dh]`.
    attn: Vec<f32>,
    /// Attention score scratch, one block per attention task.
    scores: Vec<f32>,
    /// Projection output `[T][D]`.
    proj: Vec<f32>,
    /// `[T][F]`
    gate: Vec<f32>,
    /// `[T][F]`
    up: Vec<f32>,
    /// Activation quantization scratch for the matmul kernels.
    scratch: Scratch,
    /// LoRA `A·x` rows `[T][rank]`; empty until adapters are used, then sized once.
    lora_tmp: Vec<f32>,
    /// RoPE sin/cos table up to the context size.
    rope: RopeTable,
}

impl ForwardState {
    /// Prompt mode of the matmul kernels (see `Model::forward_prompt`).
    pub(crate) fn set_prompt(&mut self, on: bool) {
        self.scratch.set_prompt(on);
    }

    /// Row-invariant products (see `slm_kernels::Scratch::set_row_invariant`).
    pub(crate) fn set_row_invariant(&mut self, on: bool) {
        self.scratch.set_row_invariant(on);
    }

    /// Buffers for batches of up to `n_batch` tokens in a context of `n_ctx` positions.
    pub fn new(cfg: &ModelConfig, n_batch: usize, n_ctx: usize) -> Self {
        let (d, f, q, kv) = (cfg.d_model, cfg.d_ff, cfg.q_dim(), cfg.kv_dim());
        let (attn_tmp, attn_scores) = AttnSplit::capacity(cfg, n_batch, n_ctx);
        ForwardState {
            n_batch,
            n_ctx,
            x: vec![0.0; n_batch * d],
            xn: vec![0.0; n_batch * d],
            q: vec![0.0; n_batch * q],
            k: vec![0.0; n_batch * kv],
            v: vec![0.0; n_batch * kv],
            attn_heads: vec![0.0; attn_tmp],
            attn: vec![0.0; n_batch * q],
            scores: vec![0.0; attn_scores],
            proj: vec![0.0; n_batch * d],
            gate: vec![0.0; n_batch * f],
            up: vec![0.0; n_batch * f],
            scratch: Scratch::new(),
            lora_tmp: Vec::new(),
            rope: RopeTable::new(cfg.head_dim, cfg.rope_theta, n_ctx),
        }
    }

    /// Largest batch these buffers hold.
    pub fn n_batch(&self) -> usize {
        self.n_batch
    }

    /// Bytes [`ForwardState::new`] allocates for these sizes, without allocating: the activation
    /// buffers, the RoPE table and the activation-quantization scratch once it has grown to a full
    /// batch (Q8 blocks of 36 bytes per 32 values, Q8_K blocks of 292 bytes per 256).
    pub fn bytes_for(cfg: &ModelConfig, n_batch: usize, n_ctx: usize) -> usize {
        let (d, f, q, kv) = (cfg.d_model, cfg.d_ff, cfg.q_dim(), cfg.kv_dim());
        let (attn_tmp, attn_scores) = AttnSplit::capacity(cfg, n_batch, n_ctx);
        let floats = n_batch * (3 * d + 2 * q + 2 * kv + 2 * f) + attn_tmp + attn_scores;
        let rope = n_ctx * (cfg.head_dim / 2) * 2;
        let widest = d.max(q).max(f);
        let scratch = n_batch * (widest.div_ceil(32) * 36 + widest.div_ceil(256) * 292);
        (floats + rope) * 4 + scratch
    }

    /// Bytes the activation buffers and RoPE table hold now (the scratch grows separately).
    pub fn allocated_bytes(&self) -> usize {
        let floats = [&self.x, &self.xn, &self.q, &self.k, &self.v, &self.attn_heads, &self.attn, &self.scores]
            .iter()
            .chain([&self.proj, &self.gate, &self.up, &self.lora_tmp].iter())
            .map(|v| v.len())
            .sum::<usize>();
        floats * 4 + self.rope.len_floats() * 4
    }
}

/// One sequence's share of a batch: its KV cache and how many of the batch's tokens are its
/// (consecutive rows, in the order of the spans).
pub struct SeqSpan<'a> {
    /// The sequence's cache; its tokens go to positions `cache.len()..`.
    pub cache: &'a mut KvCache,
    /// Tokens of the batch that belong to this sequence.
    pub n: usize,
}

/// Runs `tokens` (at most `state.n_batch()`) through the blocks and leaves the final normalised
/// hidden states in `state.xn[..T*D]`. The rows belong to the sequences of `seqs` in order: one
/// span for a prompt chunk, one span of one token per sequence for a continuous-batching decode
/// step. The products read each weight once for all rows; RoPE positions, cache writes and
/// attention are per sequence. Nothing is written unless every span fits.
///
/// `lora` adds the adapters' updates to every adapted projection (`y = W·x + B·(A·x)`).
#[allow(clippy::too_many_arguments)]
pub fn forward_batch(
    cfg: &ModelConfig,
    w: &LlamaWeights,
    pool: &Pool,
    seqs: &mut [SeqSpan],
    state: &mut ForwardState,
    tokens: &[u32],
    mut observer: Option<&mut dyn ActivationObserver>,
    lora: Option<&LoraStack>,
) -> Result<(), ModelError> {
    let n = tokens.len();
    let (d, q_dim, kv_dim, f) = (cfg.d_model, cfg.q_dim(), cfg.kv_dim(), cfg.d_ff);
    if n == 0 || n > state.n_batch {
        return Err(ModelError::InvalidArgument(format!("batch of {n} tokens (capacity {})", state.n_batch)));
    }
    if seqs.iter().map(|s| s.n).sum::<usize>() != n || seqs.iter().any(|s| s.n == 0) {
        return Err(ModelError::InvalidArgument(format!("sequence spans do not cover the batch of {n} tokens")));
    }
    for s in seqs.iter() {
        let pos = s.cache.len();
        if pos + s.n > s.cache.n_ctx() {
            return Err(ModelError::ContextFull { n_past: pos, n_new: s.n, n_ctx: s.cache.n_ctx() });
        }
        if s.cache.n_ctx() > state.n_ctx {
            return Err(ModelError::InvalidArgument(format!(
                "a context of {} positions needs buffers for at least that many (these hold {})",
                s.cache.n_ctx(),
                state.n_ctx
            )));
        }
    }
    if let Some(&id) = tokens.iter().find(|&&id| id as usize >= cfg.n_vocab) {
        return Err(ModelError::TokenOutOfRange { id, n_vocab: cfg.n_vocab });
    }
    let lora = lora.filter(|l| !l.is_empty());
    if let Some(l) = lora {
        // Once per context (or when adapters grow): the decode loop then never allocates.
        let need = state.n_batch * l.max_rank();
        if state.lora_tmp.len() < need {
            state.lora_tmp.resize(need, 0.0);
        }
    }

    // Embedding lookup: x[t] = E[token_t].
    let embd = slm_kernels::QMatrix::new(w.token_embd.dtype, cfg.n_vocab, d, w.token_embd.bytes())?;
    for (t, &id) in tokens.iter().enumerate() {
        embd.dequantize_row(id as usize, &mut state.x[t * d..(t + 1) * d])?;
    }

    for (layer, b) in w.blocks.iter().enumerate() {
        // --- attention ---
        rms_norm_rows(&state.x[..n * d], &b.attn_norm, cfg.rms_eps, &mut state.xn[..n * d]);
        let s = &mut *state;
        let xn = &s.xn[..n * d];
        if let Some(o) = observer.as_deref_mut() {
            o.observe(layer, Site::AttnIn, xn, n);
        }
        let (q, k, v) = (&mut s.q[..n * q_dim], &mut s.k[..n * kv_dim], &mut s.v[..n * kv_dim]);
        linear_many(pool, [&b.wq, &b.wk, &b.wv], xn, n, [q, k, v], &mut s.scratch)?;
        if let Some(l) = lora {
            l.add(layer, LoraTarget::Q, pool, xn, n, &mut s.q, &mut s.lora_tmp);
            l.add(layer, LoraTarget::K, pool, xn, n, &mut s.k, &mut s.lora_tmp);
            l.add(layer, LoraTarget::V, pool, xn, n, &mut s.v, &mut s.lora_tmp);
        }
        let neox = cfg.arch.rope_neox();
        let mut row = 0;
        for seq in seqs.iter_mut() {
            let (pos, rows) = (seq.cache.len(), row..row + seq.n);
            for (i, t) in rows.clone().enumerate() {
                let qt = &mut s.q[t * q_dim..(t + 1) * q_dim];
                ops::rope_inplace(qt, cfg.n_head, cfg.head_dim, pos + i, &s.rope, neox);
                let kt = &mut s.k[t * kv_dim..(t + 1) * kv_dim];
                ops::rope_inplace(kt, cfg.n_kv_head, cfg.head_dim, pos + i, &s.rope, neox);
            }
            let kv_rows = rows.start * kv_dim..rows.end * kv_dim;
            seq.cache.store(layer, pos, &s.k[kv_rows.clone()], &s.v[kv_rows]);
            let q_rows = rows.start * q_dim..rows.end * q_dim;
            let (q, out) = (&s.q[q_rows.clone()], &mut s.attn[q_rows]);
            attention(cfg, pool, seq.cache, layer, pos, seq.n, q, out, &mut s.attn_heads, &mut s.scores);
            row = rows.end;
        }
        if let Some(o) = observer.as_deref_mut() {
            o.observe(layer, Site::AttnOutIn, &s.attn[..n * q_dim], n);
        }
        b.wo.forward(pool, &s.attn, n, &mut s.proj, &mut s.scratch)?;
        if let Some(l) = lora {
            l.add(layer, LoraTarget::O, pool, &s.attn, n, &mut s.proj, &mut s.lora_tmp);
        }
        ops::add_inplace(&mut s.x[..n * d], &s.proj[..n * d]);

        // --- feed-forward ---
        rms_norm_rows(&s.x[..n * d], &b.ffn_norm, cfg.rms_eps, &mut s.xn[..n * d]);
        if let Some(o) = observer.as_deref_mut() {
            o.observe(layer, Site::FfnIn, &s.xn[..n * d], n);
        }
        let (gate, up) = (&mut s.gate[..n * f], &mut s.up[..n * f]);
        linear_many(pool, [&b.w_gate, &b.w_up], &s.xn[..n * d], n, [gate, up], &mut s.scratch)?;
        if let Some(l) = lora {
            l.add(layer, LoraTarget::Gate, pool, &s.xn, n, &mut s.gate, &mut s.lora_tmp);
            l.add(layer, LoraTarget::Up, pool, &s.xn, n, &mut s.up, &mut s.lora_tmp);
        }
        ops::silu_mul_inplace(&mut s.gate[..n * f], &s.up[..n * f]);
        if let Some(o) = observer.as_deref_mut() {
            o.observe(layer, Site::FfnDownIn, &s.gate[..n * f], n);
        }
        b.w_down.forward(pool, &s.gate, n, &mut s.proj, &mut s.scratch)?;
        if let Some(l) = lora {
            l.add(layer, LoraTarget::Down, pool, &s.gate, n, &mut s.proj, &mut s.lora_tmp);
        }
        ops::add_inplace(&mut s.x[..n * d], &s.proj[..n * d]);
    }
    for seq in seqs.iter_mut() {
        seq.cache.advance(seq.n)?;
    }
    rms_norm_rows(&state.x[..n * d], &w.output_norm, cfg.rms_eps, &mut state.xn[..n * d]);
    Ok(())
}

/// Computes logits for rows `first..n` of the normalised hidden states left by [`forward_batch`].
///
/// # Shapes
/// `out: [n - first][V]`.
pub fn output_logits(
    w: &LlamaWeights,
    pool: &Pool,
    state: &mut ForwardState,
    first: usize,
    n: usize,
    out: &mut [f32],
) -> Result<(), ModelError> {
    let d = w.output.cols;
    let rows = &state.xn[first * d..n * d];
    w.output.forward(pool, rows, n - first, out, &mut state.scratch)
}

/// `outs[i] = ls[i] · x (+ bias)` for linears that read the same input, as one pool job (the
/// input is quantized once).
///
/// # Shapes
/// `x: [n][cols]`, `outs[i]: [n][ls[i].rows]`.
fn linear_many<const N: usize>(
    pool: &Pool,
    ls: [&Linear; N],
    x: &[f32],
    n: usize,
    mut outs: [&mut [f32]; N],
    scratch: &mut Scratch,
) -> Result<(), ModelError> {
    // Plain views; `matmul_many` checks every shape against the bytes.
    let ms =
        ls.map(|l| slm_kernels::QMatrix { dtype: l.weight.dtype, rows: l.rows, cols: l.cols, data: l.weight.bytes() });
    {
        let outs_view: [&mut [f32]; N] = outs.each_mut().map(|o| &mut **o);
        slm_kernels::matmul_many(pool, ms.each_ref(), x, n, outs_view, scratch)?;
    }
    for (l, out) in ls.iter().zip(outs.iter_mut()) {
        if let Some(bias) = &l.bias {
            for row in out.chunks_exact_mut(l.rows.max(1)) {
                ops::add_inplace(row, bias);
            }
        }
    }
    Ok(())
}

/// RMSNorm of each `[D]` row of `x` into `out`.
fn rms_norm_rows(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let d = weight.len();
    for (xr, or) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        ops::rms_norm(xr, weight, eps, or);
    }
}

/// Most token chunks one KV head's queries are split into, so prompt attention spreads over the
/// pool; sizes the per-task scratch in [`ForwardState`].
const MAX_TOKEN_CHUNKS: usize = 8;

/// How [`attention`] splits work into pool tasks: every task owns the whole group of query heads
/// of one KV head for a contiguous range of `tc` tokens, so each key/value row is read once per
/// group. In generation the cache comes from memory (the weights streamed since have evicted
/// it): one task per query head read it `group` times and took twice as long (perf, SmolLM2).
#[derive(Clone, Copy)]
struct AttnSplit {
    /// KV heads `G`.
    g: usize,
    /// Query heads per KV head.
    group: usize,
    /// Token chunks.
    c: usize,
    /// Tokens per chunk (the last may be shorter).
    tc: usize,
}

impl AttnSplit {
    fn new(cfg: &ModelConfig, n: usize) -> Self {
        let g = cfg.n_kv_head.max(1);
        let group = (cfg.n_head / g).max(1);
        let tc = n.div_ceil(n.clamp(1, MAX_TOKEN_CHUNKS)).max(1);
        AttnSplit { g, group, c: n.div_ceil(tc), tc }
    }

    fn n_tasks(&self) -> usize {
        self.g * self.c
    }

    /// `(token chunk, KV head, first query head)` of task `i`; the costliest (latest) token
    /// chunks come first so that dynamic claiming balances the causal triangle.
    fn task(&self, i: usize) -> (usize, usize, usize) {
        let c = self.c - 1 - (i / self.g).min(self.c - 1);
        let kv = i % self.g;
        (c, kv, kv * self.group)
    }

    /// Output floats per task: `[tc][group][Dh]`.
    fn out_chunk(&self, dh: usize) -> usize {
        self.tc * self.group * dh
    }

    /// Output and score scratch sizes (floats) that cover every batch of up to `n_batch` tokens:
    /// chunks cover at most `n + tc` tokens with `tc <= ceil(n_batch / MAX_TOKEN_CHUNKS)`, and a
    /// batch has at most `MAX_TOKEN_CHUNKS` chunks of whole groups.
    fn capacity(cfg: &ModelConfig, n_batch: usize, n_ctx: usize) -> (usize, usize) {
        let sp = AttnSplit::new(cfg, 1);
        let heads = sp.g * sp.group;
        let tokens = n_batch + n_batch.div_ceil(MAX_TOKEN_CHUNKS);
        (heads * cfg.head_dim * tokens, heads * MAX_TOKEN_CHUNKS * n_ctx)
    }
}

/// Causal grouped-query attention for `n` new tokens at positions `pos..pos+n` of `layer`,
/// whose keys/values are already in the cache; writes `out: [T][H*Dh]`. Tasks (see
/// [`AttnSplit`]) write head-chunked results into `tmp`, which is then scattered into `out`.
///
/// # Shapes
/// `q: [T][H*Dh]`, `out: [T][H*Dh]`; `tmp` and `scores` sized by [`AttnSplit::capacity`].
#[allow(clippy::too_many_arguments)]
fn attention(
    cfg: &ModelConfig,
    pool: &Pool,
    cache: &KvCache,
    layer: usize,
    pos: usize,
    n: usize,
    q: &[f32],
    out: &mut [f32],
    tmp: &mut [f32],
    scores: &mut [f32],
) {
    let dh = cfg.head_dim;
    let q_dim = cfg.q_dim();
    let scale = 1.0 / (dh as f32).sqrt();
    let n_ctx = cache.n_ctx();
    let sp = AttnSplit::new(cfg, n);
    let (oc, sc) = (sp.out_chunk(dh), sp.group * n_ctx);
    let n_tasks = sp.n_tasks();
    let (tmp_len, scores_len) = ((n_tasks * oc).min(tmp.len()), (n_tasks * sc).min(scores.len()));
    let (tmp, scores) = (&mut tmp[..tmp_len], &mut scores[..scores_len]);
    pool.run_chunks(tmp, oc, scores, sc, &|i, out_i, scores_i| {
        let (c, kv, h0) = sp.task(i);
        let (keys, values) = cache.head(layer, kv);
        let width = sp.group * dh;
        for (k, t) in (c * sp.tc..((c + 1) * sp.tc).min(n)).enumerate() {
            let Some(qt) = q.get(t * q_dim + h0 * dh..t * q_dim + h0 * dh + width) else { return };
            let Some(ot) = out_i.get_mut(k * width..(k + 1) * width) else { return };
            // Token t sits at position pos + t and attends to positions 0..=pos + t.
            ops::attend(qt, dh, keys, values, pos + t + 1, scale, scores_i, ot);
        }
    });
    let width = sp.group * dh;
    for (i, chunk) in tmp.chunks_exact(oc).enumerate() {
        let (c, _, h0) = sp.task(i);
        for (t, src) in (c * sp.tc..((c + 1) * sp.tc).min(n)).zip(chunk.chunks_exact(width)) {
            if let Some(dst) = out.get_mut(t * q_dim + h0 * dh..t * q_dim + h0 * dh + width) {
                dst.copy_from_slice(src);
            }
        }
    }
}
