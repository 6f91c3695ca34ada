#!/usr/bin/env python3
"""Training speed peer: slm-train vs PyTorch on CPU, same model, batch and sequence length, 2 threads.

Both train the same Llama-family model (tied embedding, GQA, SwiGLU, RoPE) on random tokens with full
optimizer steps (forward, backward, global-norm clipping to 1.0, AdamW). The two run alternately, ROUNDS
times, so load from other processes on the machine hits both; the script prints each run's tokens/s, the
median of each, and the ratio slm / torch.

Peer:     torch==2.5.1, numpy==2.1.3 from PyPI (see reference/train_golden.py, whose --bench mode is the
          torch side: SDPA attention with enable_gqa, foreach AdamW, torch's own RMSNorm).
Install:  python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch==2.5.1 numpy==2.1.3
slm side: cargo build --release -p slm-train --example train_bench
Run:      /tmp/torchenv/bin/python bench/train_speed.py [--rounds 3] [--steps 5] [--threads 2]
                 [--shape d layers heads kv_heads ff vocab T B]
          (from the repository root; by hand, never by CI)
"""

import argparse
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The Shakespeare model of docs/TRAINING.md: d 192, 4 layers, 6/3 heads, FFN 512, vocab 2048, T 256, B 8.
DEFAULT_SHAPE = [192, 4, 6, 3, 512, 2048, 256, 8]


def tok_per_s(output, who):
    m = re.search(r"^(\d+) tok/s", output, re.M)
    if not m:
        sys.exit(f"{who} printed no tok/s line:\n{output}")
    return float(m.group(1))


def run(cmd, env, who):
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{who} failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return tok_per_s(r.stdout, who)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5, help="timed optimizer steps per run (after one warm-up)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shape", type=int, nargs=8, default=DEFAULT_SHAPE, metavar="N",
                    help="d_model n_layer n_head n_kv_head d_ff n_vocab seq_len batch")
    ap.add_argument("--slm", default=os.path.join(ROOT, "target/release/examples/train_bench"))
    args = ap.parse_args()
    if not os.path.exists(args.slm):
        sys.exit(f"{args.slm} is missing: cargo build --release -p slm-train --example train_bench")
    nums = [str(n) for n in args.shape + [args.steps]]
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads))
    slm_cmd = [args.slm] + nums
    torch_cmd = [sys.executable, os.path.join(ROOT, "reference/train_golden.py"), "--bench"] + nums
    print(f"shape d/layers/heads/kv/ff/vocab/T/B = {' '.join(map(str, args.shape))}; {args.steps} timed steps; "
          f"{args.threads} threads; {args.rounds} alternating rounds", flush=True)
    slm, torch = [], []
    for r in range(args.rounds):
        slm.append(run(slm_cmd, env, "slm"))
        torch.append(run(torch_cmd, env, "torch"))
        print(f"round {r + 1}: slm {slm[-1]:.0f} tok/s, torch {torch[-1]:.0f} tok/s, "
              f"ratio {slm[-1] / torch[-1]:.2f}", flush=True)
    ms, mt = statistics.median(slm), statistics.median(torch)
    print(f"median: slm {ms:.0f} tok/s, torch {mt:.0f} tok/s, slm/torch = {ms / mt:.2f}x")


if __name__ == "__main__":
    main()
