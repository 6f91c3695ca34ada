#!/usr/bin/env python3
"""Side-by-side speed comparison: llama.cpp's llama-bench vs `slm bench` on the same GGUF files.

Both engines run the same tests (-p N_PROMPT -n N_GEN -t THREADS -r REPS) and print llama-bench's JSON
(`-o json`: an array with one object per test carrying n_prompt, n_gen, n_threads, avg_ts, stddev_ts,
samples_ts). The engines alternate over --rounds rounds (llama.cpp first on even rounds, slm first on odd ones)
so that thermal or background-load drift hits both alike; the samples of all rounds are pooled.

Usage:
  reference/build_llama_cpp.sh                    # once: builds llama-bench from the pinned source
  cargo build --release -p slm-cli                # the slm binary
  python3 bench/compare_llamacpp.py [--files A.gguf B.gguf] [--rounds 3] [-p 512 -n 128 -t 2 -r 5]
  python3 bench/compare_llamacpp.py --engines llama.cpp        # only one engine
  python3 bench/compare_llamacpp.py --json-out bench/results/compare.json

Prints a table: file | test | llama.cpp tok/s | slm tok/s | ratio (slm / llama.cpp).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

DEFAULT_MODEL = "/tmp/assets/SmolLM2-135M-Instruct.Q4_1.gguf"
LLAMA_CPP_DIR = os.environ.get("LLAMA_CPP_DIR", os.path.expanduser("~/.cache/slm-peers/llama.cpp"))
ENGINES = ("llama.cpp", "slm")


def parse_args(argv):
    ap = argparse.ArgumentParser(description="llama-bench vs slm bench, same tests, alternating rounds")
    ap.add_argument("--files", nargs="+", default=[DEFAULT_MODEL], help="GGUF files to benchmark")
    ap.add_argument("--slm", default="target/release/slm", help="slm binary")
    ap.add_argument("--llama-bench", default=os.path.join(LLAMA_CPP_DIR, "bin", "llama-bench"))
    ap.add_argument("-p", "--n-prompt", type=int, default=512)
    ap.add_argument("-n", "--n-gen", type=int, default=128)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-r", "--repetitions", type=int, default=5, help="repetitions per engine run")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per file")
    ap.add_argument("--engines", default="llama.cpp,slm", help="comma list out of: llama.cpp, slm")
    ap.add_argument("--json-out", help="write pooled results (and raw engine outputs) here")
    args = ap.parse_args(argv)
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    for e in args.engines:
        if e not in ENGINES:
            ap.error(f"unknown engine {e!r}; choose from {', '.join(ENGINES)}")
    return args


def engine_command(engine, args, model):
    common = ["-m", model, "-p", str(args.n_prompt), "-n", str(args.n_gen), "-t", str(args.threads),
              "-r", str(args.repetitions), "-o", "json"]
    if engine == "llama.cpp":
        return [args.llama_bench] + common
    return [args.slm, "bench"] + common


def run_engine(engine, args, model):
    """Run one engine once; return its parsed JSON array (one object per test)."""
    cmd = engine_command(engine, args, model)
    print(f"  $ {' '.join(cmd)}", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        sys.exit(f"{engine} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    try:
        results = json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        sys.exit(f"{engine} printed no JSON array on stdout ({e}):\n{proc.stdout[:2000]}")
    if not isinstance(results, list):
        sys.exit(f"{engine}: expected a JSON array, got {type(results).__name__}")
    for r in results:
        for key in ("n_prompt", "n_gen", "samples_ts"):
            if key not in r:
                sys.exit(f"{engine}: result object lacks {key!r}: {r}")
    print(f"    {engine}: {wall:.1f} s", file=sys.stderr, flush=True)
    return results


def test_name(r):
    if r["n_prompt"] and r["n_gen"]:
        return f"pp{r['n_prompt']}+tg{r['n_gen']}"
    return f"pp{r['n_prompt']}" if r["n_prompt"] else f"tg{r['n_gen']}"


def fmt(samples):
    if not samples:
        return "-"
    mean = statistics.fmean(samples)
    sd = statistics.stdev(samples) if len(samples) > 1 else 0.0
    return f"{mean:8.2f} ± {sd:6.2f}"


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    for model in args.files:
        if not os.path.isfile(model):
            sys.exit(f"no such model file: {model}")
    exe = {"llama.cpp": args.llama_bench, "slm": args.slm}
    for e in args.engines:
        if not os.access(exe[e], os.X_OK):
            hint = "run reference/build_llama_cpp.sh" if e == "llama.cpp" else "cargo build --release -p slm-cli"
            sys.exit(f"{e} binary not found/executable: {exe[e]} ({hint})")

    # pooled[(model, test)][engine] -> list of tok/s samples
    pooled = {}
    raw = []
    for model in args.files:
        print(f"{os.path.basename(model)}:", file=sys.stderr)
        for rnd in range(args.rounds):
            order = args.engines if rnd % 2 == 0 else list(reversed(args.engines))
            for engine in order:
                for r in run_engine(engine, args, model):
                    key = (model, test_name(r))
                    pooled.setdefault(key, {}).setdefault(engine, []).extend(float(x) for x in r["samples_ts"])
                    raw.append({"engine": engine, "round": rnd, "file": model, **r})

    header = ["file", "test", "llama.cpp tok/s", "slm tok/s", "ratio slm/llama.cpp"]
    rows = []
    summary = []
    for (model, test), by_engine in pooled.items():
        lc, sl = by_engine.get("llama.cpp", []), by_engine.get("slm", [])
        ratio = statistics.fmean(sl) / statistics.fmean(lc) if lc and sl else None
        rows.append([os.path.basename(model), test, fmt(lc), fmt(sl), f"{ratio:.3f}" if ratio else "-"])
        summary.append({"file": model, "test": test,
                        "llama_cpp_ts": statistics.fmean(lc) if lc else None,
                        "slm_ts": statistics.fmean(sl) if sl else None,
                        "ratio": ratio, "samples": by_engine})
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    print(f"\n-p {args.n_prompt} -n {args.n_gen} -t {args.threads} -r {args.repetitions}, "
          f"{args.rounds} alternating rounds, host {platform.node()} ({os.cpu_count()} CPUs)")

    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump({"settings": {"n_prompt": args.n_prompt, "n_gen": args.n_gen, "threads": args.threads,
                                    "repetitions": args.repetitions, "rounds": args.rounds},
                       "summary": summary, "raw": raw}, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
