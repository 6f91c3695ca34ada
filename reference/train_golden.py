#!/usr/bin/env python3
"""Golden forward/backward and AdamW steps of a tiny Llama model, produced by PyTorch.

Pinned peer: torch==2.5.1, numpy==2.1.3 (PyPI).
Install:     python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch==2.5.1 numpy==2.1.3
Run:         /tmp/torchenv/bin/python reference/train_golden.py [--out tests/golden/train_tiny_llama.json]
             (from the repository root; run by hand, never by CI; the output is committed)
Speed peer:  /tmp/torchenv/bin/python reference/train_golden.py --bench [d layers heads kv_heads ff vocab T B steps]
             trains the same architecture on random tokens with torch on 2 threads (SDPA attention,
             AdamW foreach, clipping) and prints tokens/s; compare with
             `cargo run --release -p slm-train --example train_bench -- <same numbers>`.

The model is written from scratch in plain torch ops with slm's conventions (GGUF `llama` layout):
RMSNorm (x * rsqrt(mean(x^2) + eps) * w), adjacent-pair RoPE with ggml's float32 angle recurrence
(theta *= base^(-2/Dh)), causal grouped-query attention (query head h reads KV head h // (H/G)),
SwiGLU, residuals, output head tied to the embedding, mean cross-entropy. Weight names and
orientation are GGUF's ([rows][cols] = torch Linear [out][in]).

The golden JSON holds:
  config                      model and optimizer settings
  params                      initial weights, name -> flat row-major list (float32 values)
  batch.streams               B token streams of T+1 ids (inputs = [:-1], targets = [1:])
  batch.logits, batch.loss    forward of the B sequences ([B*T][V] flat, mean cross-entropy)
  batch.grads                 d loss / d params (name -> flat list)
  steps.losses                losses of 3 optimizer steps on stream 0 alone (B = 1), each: zero grads,
                              forward/backward, clip_grad_norm_(1.0), AdamW.step (torch's single-tensor
                              AdamW, weight decay 0.1 on matrices only, none on norms and the embedding)
  steps.grad_norms            global gradient norms before clipping
  steps.params                parameters after the 3 steps
"""

import argparse
import json
import math

import numpy as np
import torch
import torch.nn.functional as F

CFG = dict(n_vocab=24, d_model=16, n_layer=2, n_head=4, n_kv_head=2, head_dim=4, d_ff=32, n_ctx_train=16,
           rms_eps=1e-5, rope_theta=10000.0, tied_output=True)
OPT = dict(lr=1e-2, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1, clip=1.0, steps=3)
B, T = 2, 8


def names(cfg):
    out = [("token_embd.weight", (cfg["n_vocab"], cfg["d_model"]), "embedding")]
    d, q, kv, f = cfg["d_model"], cfg["n_head"] * cfg["head_dim"], cfg["n_kv_head"] * cfg["head_dim"], cfg["d_ff"]
    for i in range(cfg["n_layer"]):
        out += [
            (f"blk.{i}.attn_norm.weight", (d,), "norm"),
            (f"blk.{i}.attn_q.weight", (q, d), "matrix"),
            (f"blk.{i}.attn_k.weight", (kv, d), "matrix"),
            (f"blk.{i}.attn_v.weight", (kv, d), "matrix"),
            (f"blk.{i}.attn_output.weight", (d, q), "matrix"),
            (f"blk.{i}.ffn_norm.weight", (d,), "norm"),
            (f"blk.{i}.ffn_gate.weight", (f, d), "matrix"),
            (f"blk.{i}.ffn_up.weight", (f, d), "matrix"),
            (f"blk.{i}.ffn_down.weight", (d, f), "matrix"),
        ]
    out.append(("output_norm.weight", (d,), "norm"))
    return out


def rope_table(dh, base, n_pos):
    """ggml's rope_cache_init in float32: theta = p; theta *= base^(-2/dh) per pair."""
    scale = np.float32(base) ** np.float32(-2.0 / dh)
    cos = np.zeros((n_pos, dh // 2), np.float32)
    sin = np.zeros((n_pos, dh // 2), np.float32)
    for p in range(n_pos):
        theta = np.float32(p)
        for i in range(dh // 2):
            cos[p, i], sin[p, i] = np.cos(theta), np.sin(theta)
            theta = np.float32(theta * scale)
    return torch.from_numpy(cos), torch.from_numpy(sin)


def rope(x, cos, sin):
    """x [B, T, heads, Dh]: rotate adjacent pairs (x[2i], x[2i+1]) by the angle of (position, i)."""
    x0, x1 = x[..., 0::2], x[..., 1::2]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def forward(P, tokens, cfg):
    b, t = tokens.shape
    h_, g_, dh = cfg["n_head"], cfg["n_kv_head"], cfg["head_dim"]
    cos, sin = rope_table(dh, cfg["rope_theta"], t)
    x = P["token_embd.weight"][tokens]
    mask = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
    for i in range(cfg["n_layer"]):
        p = lambda s: P[f"blk.{i}.{s}.weight"]
        h = rms_norm(x, p("attn_norm"), cfg["rms_eps"])
        q = rope((h @ p("attn_q").T).view(b, t, h_, dh), cos, sin)
        k = rope((h @ p("attn_k").T).view(b, t, g_, dh), cos, sin)
        v = (h @ p("attn_v").T).view(b, t, g_, dh)
        k = k.repeat_interleave(h_ // g_, dim=2)
        v = v.repeat_interleave(h_ // g_, dim=2)
        scores = torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(dh)
        att = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
        o = torch.einsum("bhts,bshd->bthd", att, v).reshape(b, t, h_ * dh)
        x = x + o @ p("attn_output").T
        h = rms_norm(x, p("ffn_norm"), cfg["rms_eps"])
        x = x + (F.silu(h @ p("ffn_gate").T) * (h @ p("ffn_up").T)) @ p("ffn_down").T
    h = rms_norm(x, P["output_norm.weight"], cfg["rms_eps"])
    return h @ P["token_embd.weight"].T


def flat(t):
    return [float(np.float32(v)) for v in t.detach().reshape(-1).numpy()]


def fast_forward(P, tokens, cfg, cos, sin):
    """The same model with torch's fused attention (the speed peer; equal to forward() up to rounding)."""
    b, t = tokens.shape
    h_, g_, dh = cfg["n_head"], cfg["n_kv_head"], cfg["head_dim"]
    x = F.embedding(tokens, P["token_embd.weight"])
    for i in range(cfg["n_layer"]):
        p = lambda s: P[f"blk.{i}.{s}.weight"]
        h = F.rms_norm(x, (x.shape[-1],), p("attn_norm"), cfg["rms_eps"])
        q = rope((h @ p("attn_q").T).view(b, t, h_, dh), cos, sin).transpose(1, 2)
        k = rope((h @ p("attn_k").T).view(b, t, g_, dh), cos, sin).transpose(1, 2)
        v = (h @ p("attn_v").T).view(b, t, g_, dh).transpose(1, 2)
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        x = x + o.transpose(1, 2).reshape(b, t, h_ * dh) @ p("attn_output").T
        h = F.rms_norm(x, (x.shape[-1],), p("ffn_norm"), cfg["rms_eps"])
        x = x + (F.silu(h @ p("ffn_gate").T) * (h @ p("ffn_up").T)) @ p("ffn_down").T
    h = F.rms_norm(x, (x.shape[-1],), P["output_norm.weight"], cfg["rms_eps"])
    return h @ P["token_embd.weight"].T


def bench(nums):
    import time

    d, layers, heads, kv, ff, vocab, t, b, steps = (nums + [256, 6, 8, 4, 688, 2048, 256, 8, 5][len(nums):])[:9]
    torch.set_num_threads(2)
    cfg = dict(n_vocab=vocab, d_model=d, n_layer=layers, n_head=heads, n_kv_head=kv, head_dim=d // heads, d_ff=ff,
               rms_eps=1e-5, rope_theta=10000.0)
    torch.manual_seed(1)
    P = {n: (torch.ones(s) if k == "norm" else 0.02 * torch.randn(s)).requires_grad_(True) for n, s, k in names(cfg)}
    n_params = sum(w.numel() for w in P.values())
    opt = torch.optim.AdamW(list(P.values()), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    cos, sin = rope_table(d // heads, 10000.0, t)
    data = torch.randint(0, vocab, (steps + 1, b, t + 1))

    def step(batch):
        opt.zero_grad(set_to_none=True)
        logits = fast_forward(P, batch[:, :-1], cfg, cos, sin)
        loss = F.cross_entropy(logits.reshape(-1, vocab), batch[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(P.values()), 1.0)
        opt.step()
        return float(loss)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; model {n_params} params; T {t}, B {b}")
    step(data[0])
    start = time.perf_counter()
    for i in range(steps):
        t0 = time.perf_counter()
        loss = step(data[i + 1])
        print(f"step {i + 1}: loss {loss:.4f} ({time.perf_counter() - t0:.3f} s)")
    secs = time.perf_counter() - start
    print(f"{steps * b * t / secs:.0f} tok/s ({secs / steps:.3f} s/step)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/golden/train_tiny_llama.json")
    ap.add_argument("--bench", nargs="*", type=int, help="speed peer: d layers heads kv_heads ff vocab T B steps")
    args = ap.parse_args()
    if args.bench is not None:
        return bench(args.bench)
    torch.manual_seed(20261129)
    cfg = CFG
    P = {}
    kinds = {}
    for name, shape, kind in names(cfg):
        if kind == "norm":
            w = 1.0 + 0.1 * torch.randn(shape)
        elif kind == "embedding":
            w = 0.5 * torch.randn(shape)
        else:
            w = torch.randn(shape) / math.sqrt(shape[1])
        P[name] = w.float().requires_grad_(True)
        kinds[name] = kind
    init = {n: flat(w) for n, w in P.items()}
    streams = torch.randint(0, cfg["n_vocab"], (B, T + 1))

    logits = forward(P, streams[:, :-1], cfg)
    loss = F.cross_entropy(logits.reshape(-1, cfg["n_vocab"]), streams[:, 1:].reshape(-1))
    loss.backward()
    batch = dict(streams=streams.tolist(), logits=flat(logits), loss=float(loss), grads={n: flat(w.grad) for n, w in P.items()})

    for w in P.values():
        w.grad = None
    decay = [w for n, w in P.items() if kinds[n] == "matrix"]
    no_decay = [w for n, w in P.items() if kinds[n] != "matrix"]
    opt = torch.optim.AdamW(
        [dict(params=decay, weight_decay=OPT["weight_decay"]), dict(params=no_decay, weight_decay=0.0)],
        lr=OPT["lr"], betas=(OPT["beta1"], OPT["beta2"]), eps=OPT["eps"], foreach=False,
    )
    losses, norms = [], []
    s0 = streams[:1]
    for _ in range(OPT["steps"]):
        opt.zero_grad()
        l = F.cross_entropy(forward(P, s0[:, :-1], cfg).reshape(-1, cfg["n_vocab"]), s0[:, 1:].reshape(-1))
        l.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(list(P.values()), OPT["clip"])))
        opt.step()
        losses.append(float(l))
    steps = dict(losses=losses, grad_norms=norms, params={n: flat(w) for n, w in P.items()})

    out = dict(peer=f"torch {torch.__version__}", config=dict(model=cfg, optim=OPT, batch=B, seq_len=T),
               params=init, batch=batch, steps=steps)
    with open(args.out, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print(f"wrote {args.out}: loss {batch['loss']:.6f}, step losses {losses}")


if __name__ == "__main__":
    main()
