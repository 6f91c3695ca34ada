//! The trainable Llama-family model: f32 parameters in one flat vector, a forward pass that keeps
//! the activations the backward pass needs, and an explicit backward pass for every op.
//!
//! Dimension legend (used in every shape comment of this crate):
//! - `B`  sequences in a micro-batch          - `T`  tokens per sequence (positions `0..T`)
//! - `N`  tokens in the micro-batch (`B*T`)   - `D`  d_model (residual width)
//! - `H`  query heads, `G` key/value heads    - `Dh` head width (`Q = H*Dh`, `K = G*Dh`)
//! - `F`  d_ff (feed-forward width)           - `V`  vocabulary size
//! - `L`  blocks
//!
//! Same block as `slm_model::arch::llama` (the inference forward, checked against it by a test):
//! `x += Wo·attn(rope(Wq·n(x)), rope(Wk·n(x)), Wv·n(x))`, `x += Wdown·(silu(Wgate·n(x)) ⊙ Wup·n(x))`,
//! `n` = RMSNorm, adjacent-pair RoPE (GGUF `llama` weights), causal GQA attention,
//! logits = `Wout·n(x)` with `Wout` the embedding when tied. Every sequence starts at position 0.

use crate::attention::{attention_backward, attention_forward, Heads};
use crate::distill::{distill_loss_in_place, SoftTargets};
use crate::error::TrainError;
use crate::layout::{BlockOffsets, ParamLayout};
use crate::matmul::{matmul_nn, matmul_nt, matmul_tn};
use crate::ops::{self, RopeCache, IGNORE_TARGET};
use crate::weights::{FullWeights, LoraTarget, Mat, Weights};
use slm_model::ModelConfig;

/// A model's shape: validated config plus where each tensor sits in the flat parameter vector.
#[derive(Clone, Debug)]
pub struct TrainModel {
    cfg: ModelConfig,
    layout: ParamLayout,
}

/// Saved activations of one block for the backward pass.
#[derive(Debug, Default)]
struct BlockActs {
    /// `1/rms` of the block input `[N]`, and of the mid-block residual `[N]`.
    inv_rms1: Vec<f32>,
    inv_rms2: Vec<f32>,
    /// Normalised inputs of the attention and FFN projections `[N][D]`.
    xn1: Vec<f32>,
    xn2: Vec<f32>,
    /// After RoPE: `q [N][Q]`, `k [N][K]`; `v [N][K]`.
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    /// Softmax probabilities `[B][H][T][T]`.
    probs: Vec<f32>,
    /// Attention output (input of `Wo`) `[N][Q]`.
    att: Vec<f32>,
    /// Residual after the attention half `[N][D]`.
    x_mid: Vec<f32>,
    /// FFN pre-activations `[N][F]` and `silu(gate)⊙up` `[N][F]`.
    gate: Vec<f32>,
    up: Vec<f32>,
    hid: Vec<f32>,
}

/// Activations and scratch for one micro-batch shape `(B, T)`, reused across steps.
#[derive(Debug, Default)]
pub struct Workspace {
    b: usize,
    t: usize,
    rope: Option<RopeCache>,
    /// Residual stream entering each block, plus the final one: `L+1` × `[N][D]`.
    resid: Vec<Vec<f32>>,
    blocks: Vec<BlockActs>,
    inv_rms_f: Vec<f32>,
    /// Final normalised hidden states `[N][D]`.
    xn_f: Vec<f32>,
    /// Rows per output-head chunk when set (tests); otherwise [`head_rows`] decides.
    head_rows_override: Option<usize>,
    /// Logits `[N][V]` of [`TrainModel::forward`] (inference-style use; training never fills it).
    logits: Vec<f32>,
    /// Logits of one row chunk of the output head `[rows][V]`, then their gradient.
    head: Vec<f32>,
    // Backward scratch.
    dx: Vec<f32>,
    dxn: Vec<f32>,
    d_f1: Vec<f32>,
    d_f2: Vec<f32>,
    d_f3: Vec<f32>,
    datt: Vec<f32>,
    dq: Vec<f32>,
    dk: Vec<f32>,
    dv: Vec<f32>,
}

impl Workspace {
    /// An empty workspace; buffers grow on first use.
    pub fn new() -> Workspace {
        Workspace::default()
    }

    /// A workspace whose output head (logits + cross-entropy) runs `rows` tokens at a time
    /// instead of the default ~16 MiB of logits per chunk (tests use it to cover chunking).
    pub fn with_head_rows(rows: usize) -> Workspace {
        Workspace {
            head_rows_override: Some(rows.max(1)),
            ..Workspace::default()
        }
    }

    fn head_rows(&self, n: usize, v: usize) -> usize {
        match self.head_rows_override {
            Some(r) => r.min(n.max(1)),
            None => head_rows(n, v),
        }
    }

    /// Logits `[N][V]` of the last [`TrainModel::forward`] (training steps do not fill them).
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    fn prepare(&mut self, cfg: &ModelConfig, b: usize, t: usize) {
        let n = b * t;
        let (d, q, kv, f, v) = (
            cfg.d_model,
            cfg.q_dim(),
            cfg.kv_dim(),
            cfg.d_ff,
            cfg.n_vocab,
        );
        if self.t != t || self.rope.is_none() {
            self.rope = Some(RopeCache::new(cfg.head_dim, cfg.rope_theta, t));
        }
        if self.b == b && self.t == t && self.blocks.len() == cfg.n_layer {
            return;
        }
        self.b = b;
        self.t = t;
        let z = |len: usize| vec![0.0f32; len];
        self.resid = (0..=cfg.n_layer).map(|_| z(n * d)).collect();
        self.blocks = (0..cfg.n_layer)
            .map(|_| BlockActs {
                inv_rms1: z(n),
                inv_rms2: z(n),
                xn1: z(n * d),
                xn2: z(n * d),
                q: z(n * q),
                k: z(n * kv),
                v: z(n * kv),
                probs: z(b * cfg.n_head * t * t),
                att: z(n * q),
                x_mid: z(n * d),
                gate: z(n * f),
                up: z(n * f),
                hid: z(n * f),
            })
            .collect();
        self.inv_rms_f = z(n);
        self.xn_f = z(n * d);
        self.logits = Vec::new();
        self.head = z(self.head_rows(n, v) * v);
        self.dx = z(n * d);
        self.dxn = z(n * d);
        self.d_f1 = z(n * f);
        self.d_f2 = z(n * f);
        self.d_f3 = z(n * f);
        self.datt = z(n * q);
        self.dq = z(n * q);
        self.dk = z(n * kv);
        self.dv = z(n * kv);
    }
}

/// Floats of one output-head chunk (16 MiB): bounds the logits memory for large vocabularies.
const HEAD_CHUNK_FLOATS: usize = 1 << 22;

/// Rows per output-head chunk: as many as fit [`HEAD_CHUNK_FLOATS`], at least 16, at most `n`.
fn head_rows(n: usize, v: usize) -> usize {
    (HEAD_CHUNK_FLOATS / v.max(1)).max(16).min(n.max(1))
}

impl TrainModel {
    /// A trainable model of shape `cfg` (only the `llama` architecture).
    pub fn new(cfg: ModelConfig) -> Result<TrainModel, TrainError> {
        let layout = ParamLayout::new(&cfg)?;
        Ok(TrainModel { cfg, layout })
    }

    /// A trainable model whose layers run the stored blocks of `map` (parameter sharing; see
    /// [`crate::layout::BlockMap`]): shared blocks' gradients add up over the layers using them.
    pub fn with_sharing(
        cfg: ModelConfig,
        map: crate::layout::BlockMap,
    ) -> Result<TrainModel, TrainError> {
        let layout = ParamLayout::with_block_map(&cfg, map)?;
        Ok(TrainModel { cfg, layout })
    }

    /// The configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// Where every tensor sits in the parameter vector.
    pub fn layout(&self) -> &ParamLayout {
        &self.layout
    }

    /// Bytes a training micro-batch of `b` sequences of `t` tokens needs: parameters, gradients
    /// and both Adam moments (4 × params) plus the saved activations and backward scratch.
    pub fn memory_estimate(&self, b: usize, t: usize) -> u64 {
        let c = &self.cfg;
        let (n, l) = ((b * t) as u64, c.n_layer as u64);
        let (d, q, kv, f) = (
            c.d_model as u64,
            c.q_dim() as u64,
            c.kv_dim() as u64,
            c.d_ff as u64,
        );
        let per_layer = n * (4 * d + 2 * q + 2 * kv + 3 * f + 2) + (b * c.n_head * t * t) as u64;
        let floats = 4 * self.layout.len() as u64
            + l * per_layer
            + n * (3 * d + 3 * f + 3 * q + 2 * kv)
            + (head_rows(b * t, c.n_vocab) * c.n_vocab) as u64
            + (t * t) as u64;
        floats * 4
    }

    fn heads(&self, t: usize) -> Heads {
        Heads {
            n_head: self.cfg.n_head,
            n_kv_head: self.cfg.n_kv_head,
            head_dim: self.cfg.head_dim,
            seq_len: t,
        }
    }

    fn check_params(&self, what: &str, len: usize) -> Result<(), TrainError> {
        if len != self.layout.len() {
            return Err(TrainError::InvalidArgument(format!(
                "{what} vector has {len} values, the model needs {}",
                self.layout.len()
            )));
        }
        Ok(())
    }

    fn check(&self, tokens: &[u32], seq_len: usize) -> Result<usize, TrainError> {
        if seq_len == 0 || tokens.is_empty() || !tokens.len().is_multiple_of(seq_len) {
            return Err(TrainError::InvalidArgument(format!(
                "{} tokens do not form whole sequences of {seq_len}",
                tokens.len()
            )));
        }
        if seq_len > self.cfg.n_ctx_train {
            return Err(TrainError::InvalidArgument(format!(
                "sequence length {seq_len} exceeds the model context {}; raise n_ctx_train or shorten sequences",
                self.cfg.n_ctx_train
            )));
        }
        if let Some(&id) = tokens.iter().find(|&&id| id as usize >= self.cfg.n_vocab) {
            return Err(TrainError::InvalidArgument(format!(
                "token id {id} >= vocabulary size {}",
                self.cfg.n_vocab
            )));
        }
        Ok(tokens.len() / seq_len)
    }

    /// Block `layer`'s projection `proj` as a [`Mat`].
    fn mat(&self, layer: usize, bo: &BlockOffsets, proj: LoraTarget) -> Mat {
        let c = &self.cfg;
        let (d, qd, kvd, f) = (c.d_model, c.q_dim(), c.kv_dim(), c.d_ff);
        let (offset, rows, cols) = match proj {
            LoraTarget::Q => (bo.wq, qd, d),
            LoraTarget::K => (bo.wk, kvd, d),
            LoraTarget::V => (bo.wv, kvd, d),
            LoraTarget::O => (bo.wo, d, qd),
            LoraTarget::Gate => (bo.w_gate, f, d),
            LoraTarget::Up => (bo.w_up, f, d),
            LoraTarget::Down => (bo.w_down, d, f),
        };
        Mat {
            layer,
            proj,
            offset,
            rows,
            cols,
        }
    }

    /// Runs `tokens` (`B` sequences of `seq_len`, each starting at position 0) through the model,
    /// saving activations in `ws`; the logits `[N][V]` are in [`Workspace::logits`].
    pub fn forward(
        &self,
        params: &[f32],
        tokens: &[u32],
        seq_len: usize,
        ws: &mut Workspace,
    ) -> Result<(), TrainError> {
        self.check_params("parameter", params.len())?;
        self.forward_with(&FullWeights { params }, tokens, seq_len, ws)
    }

    /// [`forward`](Self::forward) with any [`Weights`] (e.g. a frozen base plus adapters).
    pub fn forward_with(
        &self,
        w: &dyn Weights,
        tokens: &[u32],
        seq_len: usize,
        ws: &mut Workspace,
    ) -> Result<(), TrainError> {
        self.forward_hidden(w, tokens, seq_len, ws)?;
        let (n, d, v) = (tokens.len(), self.cfg.d_model, self.cfg.n_vocab);
        ws.logits.resize(n * v, 0.0);
        let head = w.tensor(self.layout.output_head(), v * d);
        matmul_nt(&mut ws.logits, &ws.xn_f, head, n, v, d, false);
        Ok(())
    }

    /// The blocks and the final norm: leaves the normalised hidden states `[N][D]` in `ws.xn_f`.
    fn forward_hidden(
        &self,
        w: &dyn Weights,
        tokens: &[u32],
        seq_len: usize,
        ws: &mut Workspace,
    ) -> Result<(), TrainError> {
        let b = self.check(tokens, seq_len)?;
        let c = &self.cfg;
        let (n, t) = (tokens.len(), seq_len);
        let (d, v) = (c.d_model, c.n_vocab);
        ws.prepare(c, b, t);
        let l = &self.layout;
        let embd = w.tensor(l.token_embd, v * d);
        for (row, &id) in ws.resid[0].chunks_exact_mut(d).zip(tokens) {
            row.copy_from_slice(&embd[id as usize * d..(id as usize + 1) * d]);
        }
        let Workspace {
            rope,
            resid,
            blocks,
            ..
        } = ws;
        let Some(rope) = rope.as_ref() else {
            return Err(TrainError::InvalidArgument("RoPE table missing".into()));
        };
        let (qd, kvd) = (c.q_dim(), c.kv_dim());
        for (i, (bo, a)) in l.blocks.iter().zip(blocks.iter_mut()).enumerate() {
            let (before, after) = resid.split_at_mut(i + 1);
            let (x_in, x_out) = (&before[i], &mut after[0]);
            let m = |p| self.mat(i, bo, p);
            let eps = c.rms_eps;
            ops::rms_norm_forward(
                x_in,
                w.tensor(bo.attn_norm, d),
                eps,
                &mut a.xn1,
                &mut a.inv_rms1,
            );
            w.linear(m(LoraTarget::Q), &a.xn1, &mut a.q, n, false);
            w.linear(m(LoraTarget::K), &a.xn1, &mut a.k, n, false);
            w.linear(m(LoraTarget::V), &a.xn1, &mut a.v, n, false);
            rope.apply(&mut a.q, qd, t, false);
            rope.apply(&mut a.k, kvd, t, false);
            attention_forward(self.heads(t), &a.q, &a.k, &a.v, &mut a.att, &mut a.probs);
            // x_mid = x_in + Wo·att
            a.x_mid.copy_from_slice(x_in);
            w.linear(m(LoraTarget::O), &a.att, &mut a.x_mid, n, true);
            ops::rms_norm_forward(
                &a.x_mid,
                w.tensor(bo.ffn_norm, d),
                eps,
                &mut a.xn2,
                &mut a.inv_rms2,
            );
            w.linear(m(LoraTarget::Gate), &a.xn2, &mut a.gate, n, false);
            w.linear(m(LoraTarget::Up), &a.xn2, &mut a.up, n, false);
            ops::swiglu_forward(&a.gate, &a.up, &mut a.hid);
            x_out.copy_from_slice(&a.x_mid);
            w.linear(m(LoraTarget::Down), &a.hid, x_out, n, true);
        }
        let x_f = &ws.resid[c.n_layer];
        let gain = w.tensor(l.output_norm, d);
        ops::rms_norm_forward(x_f, gain, c.rms_eps, &mut ws.xn_f, &mut ws.inv_rms_f);
        Ok(())
    }

    /// Output head and cross-entropy over row chunks (so `[N][V]` logits never exist at once):
    /// returns the summed loss of `targets` `[N]` (rows with [`IGNORE_TARGET`] add nothing);
    /// with `grads`, also writes `∂(scale·loss)/∂xn_f` into `ws.dxn` and adds the head's weight
    /// gradient when it is trainable.
    fn head_loss(
        &self,
        w: &dyn Weights,
        grads: Option<&mut [f32]>,
        targets: &[u32],
        soft: Option<&SoftTargets>,
        scale: f32,
        ws: &mut Workspace,
    ) -> Result<f64, TrainError> {
        let (d, v) = (self.cfg.d_model, self.cfg.n_vocab);
        let n = ws.b * ws.t;
        if targets.len() != n {
            return Err(TrainError::InvalidArgument(format!(
                "{} targets for {n} tokens",
                targets.len()
            )));
        }
        if let Some(&id) = targets
            .iter()
            .find(|&&id| id as usize >= v && id != IGNORE_TARGET)
        {
            return Err(TrainError::InvalidArgument(format!(
                "target id {id} >= vocabulary size {v}"
            )));
        }
        let rows = ws.head_rows(n, v);
        let Workspace {
            xn_f,
            head: buf,
            dxn,
            ..
        } = ws;
        if let Some(st) = soft {
            if st.ids.len() != n * st.k
                || st.probs.len() != n * st.k
                || targets.contains(&IGNORE_TARGET)
            {
                return Err(TrainError::InvalidArgument(format!(
                    "soft targets: {} ids / {} probabilities for {n} rows of {} (and no ignored rows)",
                    st.ids.len(),
                    st.probs.len(),
                    st.k
                )));
            }
            if let Some(&id) = st.ids.iter().find(|&&id| id as usize >= v) {
                return Err(TrainError::InvalidArgument(format!(
                    "soft target id {id} >= vocabulary size {v}"
                )));
            }
        }
        if !targets.contains(&IGNORE_TARGET) {
            return Ok(self.head_chunks(w, grads, xn_f, targets, soft, scale, buf, dxn, rows));
        }
        // Instruction tuning trains on a few answer tokens after a long prompt: only the rows
        // with a target go through the output head (the others' gradient is zero anyway).
        let kept: Vec<usize> = (0..n).filter(|&i| targets[i] != IGNORE_TARGET).collect();
        let mut x_kept = Vec::with_capacity(kept.len() * d);
        for &i in &kept {
            x_kept.extend_from_slice(&xn_f[i * d..(i + 1) * d]);
        }
        let t_kept: Vec<u32> = kept.iter().map(|&i| targets[i]).collect();
        let mut dx_kept = vec![0.0f32; kept.len() * d];
        let with_grads = grads.is_some();
        let loss = self.head_chunks(
            w,
            grads,
            &x_kept,
            &t_kept,
            None,
            scale,
            buf,
            &mut dx_kept,
            rows,
        );
        if with_grads {
            dxn.fill(0.0);
            for (&i, g) in kept.iter().zip(dx_kept.chunks_exact(d)) {
                dxn[i * d..(i + 1) * d].copy_from_slice(g);
            }
        }
        Ok(loss)
    }

    /// The output head over `rows`-token chunks of `x` `[M][D]`: logits, cross-entropy against
    /// `targets` `[M]` (mixed with the teacher's `soft` targets when given) and, with `grads`, the
    /// input gradient into `dx` `[M][D]` and the head's weight gradient (when trainable).
    #[allow(clippy::too_many_arguments)]
    fn head_chunks(
        &self,
        w: &dyn Weights,
        mut grads: Option<&mut [f32]>,
        x: &[f32],
        targets: &[u32],
        soft: Option<&SoftTargets>,
        scale: f32,
        buf: &mut [f32],
        dx: &mut [f32],
        rows: usize,
    ) -> f64 {
        let (d, v) = (self.cfg.d_model, self.cfg.n_vocab);
        let off = self.layout.output_head();
        let head = w.tensor(off, v * d);
        let mut loss = 0.0;
        for (i, (xc, tg)) in x.chunks(rows * d).zip(targets.chunks(rows)).enumerate() {
            let m = tg.len();
            let logits = &mut buf[..m * v];
            matmul_nt(logits, xc, head, m, v, d, false);
            loss += match soft {
                Some(st) => {
                    let (from, to) = (i * rows * st.k, (i * rows + m) * st.k);
                    let chunk = SoftTargets {
                        ids: &st.ids[from..to],
                        probs: &st.probs[from..to],
                        ..*st
                    };
                    distill_loss_in_place(logits, tg, v, &chunk, scale)
                }
                None => ops::cross_entropy_in_place(logits, tg, v, scale),
            };
            if let Some(g) = grads.as_deref_mut() {
                let dxc = &mut dx[i * rows * d..(i * rows + m) * d];
                matmul_nn(dxc, logits, head, m, d, v, false);
                if let Some(gw) = w.tensor_grad(g, off, v * d) {
                    matmul_tn(gw, logits, xc, v, d, m, true);
                }
            }
        }
        loss
    }

    /// Forward, loss and backward of one micro-batch: adds `∂(scale·Σ loss)/∂params` into
    /// `grads` and returns the summed (unscaled) loss over the `N` tokens.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_backward(
        &self,
        params: &[f32],
        grads: &mut [f32],
        tokens: &[u32],
        targets: &[u32],
        seq_len: usize,
        scale: f32,
        ws: &mut Workspace,
    ) -> Result<f64, TrainError> {
        self.check_params("parameter", params.len())?;
        let w = FullWeights { params };
        self.forward_backward_with(&w, grads, tokens, targets, seq_len, scale, ws)
    }

    /// [`forward_backward`](Self::forward_backward) with any [`Weights`]: `grads` has
    /// [`Weights::n_grads`] values (e.g. only the adapters' for LoRA). Targets may be
    /// [`IGNORE_TARGET`].
    #[allow(clippy::too_many_arguments)]
    pub fn forward_backward_with(
        &self,
        w: &dyn Weights,
        grads: &mut [f32],
        tokens: &[u32],
        targets: &[u32],
        seq_len: usize,
        scale: f32,
        ws: &mut Workspace,
    ) -> Result<f64, TrainError> {
        if grads.len() != w.n_grads() {
            return Err(TrainError::InvalidArgument(format!(
                "gradient vector has {} values, the weights need {}",
                grads.len(),
                w.n_grads()
            )));
        }
        check_targets(tokens, targets)?;
        self.forward_hidden(w, tokens, seq_len, ws)?;
        let loss = self.head_loss(w, Some(&mut *grads), targets, None, scale, ws)?;
        self.backward(w, grads, tokens, ws);
        Ok(loss)
    }

    /// [`forward_backward`](Self::forward_backward) with the distillation loss: each row's
    /// cross-entropy is mixed with a KL term against the teacher's `soft` targets
    /// (see [`crate::distill`]).
    #[allow(clippy::too_many_arguments)]
    pub fn forward_backward_soft(
        &self,
        params: &[f32],
        grads: &mut [f32],
        tokens: &[u32],
        targets: &[u32],
        soft: &SoftTargets,
        seq_len: usize,
        scale: f32,
        ws: &mut Workspace,
    ) -> Result<f64, TrainError> {
        self.check_params("parameter", params.len())?;
        self.check_params("gradient", grads.len())?;
        check_targets(tokens, targets)?;
        let w = FullWeights { params };
        self.forward_hidden(&w, tokens, seq_len, ws)?;
        let loss = self.head_loss(&w, Some(&mut *grads), targets, Some(soft), scale, ws)?;
        self.backward(&w, grads, tokens, ws);
        Ok(loss)
    }

    /// The backward pass from the final norm down, starting from `ws.dxn` left by `head_loss`.
    fn backward(&self, w: &dyn Weights, grads: &mut [f32], tokens: &[u32], ws: &mut Workspace) {
        let c = &self.cfg;
        let (n, t) = (ws.b * ws.t, ws.t);
        let (d, qd, kvd, v) = (c.d_model, c.q_dim(), c.kv_dim(), c.n_vocab);
        let l = &self.layout;
        let Workspace {
            rope,
            resid,
            blocks,
            inv_rms_f,
            dx,
            dxn,
            d_f1,
            d_f2,
            d_f3,
            datt,
            dq,
            dk,
            dv,
            ..
        } = ws;
        let Some(rope) = rope.as_ref() else { return };
        // Gradient sink for frozen norm gains (the input gradient still has to be computed).
        let mut frozen_dw = vec![0.0f32; d];
        let mut norm_backward = |x: &[f32],
                                 off: usize,
                                 inv_rms: &[f32],
                                 dxn: &[f32],
                                 dx: &mut [f32],
                                 grads: &mut [f32]| {
            let dw = match w.tensor_grad(grads, off, d) {
                Some(g) => g,
                None => &mut frozen_dw[..],
            };
            ops::rms_norm_backward(x, w.tensor(off, d), inv_rms, dxn, dx, dw);
        };

        // Final norm (the head's gradient is already in dxn, from head_loss).
        dx.fill(0.0);
        norm_backward(&resid[c.n_layer], l.output_norm, inv_rms_f, dxn, dx, grads);

        for (i, (bo, a)) in l.blocks.iter().zip(blocks.iter()).enumerate().rev() {
            let m = |p| self.mat(i, bo, p);
            // Feed-forward half; dx is the gradient of the block output (and of x_mid through
            // the residual, which it keeps accumulating).
            let (dhid, dgate, dup) = (&mut *d_f1, &mut *d_f2, &mut *d_f3);
            w.linear_backward(m(LoraTarget::Down), &a.hid, dx, dhid, n, false, grads);
            ops::swiglu_backward(&a.gate, &a.up, dhid, dgate, dup);
            w.linear_backward(m(LoraTarget::Gate), &a.xn2, dgate, dxn, n, false, grads);
            w.linear_backward(m(LoraTarget::Up), &a.xn2, dup, dxn, n, true, grads);
            norm_backward(&a.x_mid, bo.ffn_norm, &a.inv_rms2, dxn, dx, grads);

            // Attention half.
            w.linear_backward(m(LoraTarget::O), &a.att, dx, datt, n, false, grads);
            attention_backward(self.heads(t), &a.q, &a.k, &a.v, &a.probs, datt, dq, dk, dv);
            rope.apply(dq, qd, t, true);
            rope.apply(dk, kvd, t, true);
            w.linear_backward(m(LoraTarget::Q), &a.xn1, dq, dxn, n, false, grads);
            w.linear_backward(m(LoraTarget::K), &a.xn1, dk, dxn, n, true, grads);
            w.linear_backward(m(LoraTarget::V), &a.xn1, dv, dxn, n, true, grads);
            norm_backward(&resid[i], bo.attn_norm, &a.inv_rms1, dxn, dx, grads);
        }

        // Embedding rows (serial: a token may repeat, and a fixed order keeps results exact).
        let Some(de) = w.tensor_grad(grads, l.token_embd, v * d) else {
            return;
        };
        for (&id, g) in tokens.iter().zip(dx.chunks_exact(d)) {
            for (o, &gv) in de[id as usize * d..(id as usize + 1) * d].iter_mut().zip(g) {
                *o += gv;
            }
        }
    }

    /// Mean cross-entropy (nats per token) of `targets` given `tokens`, without gradients.
    pub fn eval_loss(
        &self,
        params: &[f32],
        tokens: &[u32],
        targets: &[u32],
        seq_len: usize,
        ws: &mut Workspace,
    ) -> Result<f64, TrainError> {
        self.check_params("parameter", params.len())?;
        self.eval_loss_with(&FullWeights { params }, tokens, targets, seq_len, ws)
    }

    /// [`eval_loss`](Self::eval_loss) with any [`Weights`]; the mean is over the targets that
    /// are not [`IGNORE_TARGET`] (0 when there are none).
    pub fn eval_loss_with(
        &self,
        w: &dyn Weights,
        tokens: &[u32],
        targets: &[u32],
        seq_len: usize,
        ws: &mut Workspace,
    ) -> Result<f64, TrainError> {
        self.forward_hidden(w, tokens, seq_len, ws)?;
        let counted = targets.iter().filter(|&&id| id != IGNORE_TARGET).count();
        let loss = self.head_loss(w, None, targets, None, 0.0, ws)?;
        Ok(if counted == 0 {
            0.0
        } else {
            loss / counted as f64
        })
    }
}

fn check_targets(tokens: &[u32], targets: &[u32]) -> Result<(), TrainError> {
    if targets.len() != tokens.len() {
        return Err(TrainError::InvalidArgument(format!(
            "{} targets for {} tokens",
            targets.len(),
            tokens.len()
        )));
    }
    Ok(())
}
