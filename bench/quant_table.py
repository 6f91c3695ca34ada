#!/usr/bin/env python3
"""Quality/size/speed table of every `slm quantize` preset on SmolLM2-135M-Instruct (issue 4).

One script, every step:
  1. source: the published Q4_1 file dequantized to F32 (`slm quantize --type F32 --allow-requantize`);
     this F32 model is the reference every KLD is measured against.
  2. importance matrix: `slm imatrix` on calibration text = other licences in /usr/share/common-licenses
     (Apache-2.0, Artistic, CC0-1.0, GFDL-1.3, MPL-2.0, LGPL-2.1) — never the evaluation text.
  3. every preset with `slm quantize`, without and with the imatrix; the same with llama.cpp's
     `llama-quantize` (same F32 source, same imatrix file) and a tensor-by-tensor comparison of the data.
  4. `slm eval` of all candidates against the F32 reference on GPL-3 (held out): PPL, mean KLD, same-top %.
  5. `slm bench` (pp512 / tg128, 2 threads) per file.
Writes bench/results/quant_table.json and prints a Markdown table.

Usage:
  reference/build_llama_cpp.sh && cargo build --release -p slm-cli && pip install gguf==0.17.1
  python3 bench/quant_table.py [--chunks 8] [--work /tmp/slm-quant-table] [--no-bench]
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys

LLAMA_CPP_DIR = os.environ.get("LLAMA_CPP_DIR", os.path.expanduser("~/.cache/slm-peers/llama.cpp"))
LICENSES = "/usr/share/common-licenses"
CALIBRATION = ["Apache-2.0", "Artistic", "CC0-1.0", "GFDL-1.3", "MPL-2.0", "LGPL-2.1"]
EVAL_TEXT = f"{LICENSES}/GPL-3"
PRESETS = ["F16", "BF16", "Q8_0", "Q6_K", "Q5_1", "Q5_K_M", "Q5_K_S", "Q5_0", "Q4_1", "Q4_K_M", "Q4_K_S",
           "Q4_0", "Q3_K_L", "Q3_K_M", "Q3_K_S", "Q2_K", "Q2_K_S"]
FLOAT = {"F16", "BF16"}  # the imatrix does not change float types


def run(cmd, **kw):
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, text=True, **kw)


def tensor_hashes(path):
    from gguf import GGUFReader
    return {t.name: (t.tensor_type.name, hashlib.sha256(t.data.tobytes()).hexdigest()) for t in GGUFReader(path).tensors}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="/tmp/assets/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--slm", default="target/release/slm")
    ap.add_argument("--work", default="/tmp/slm-quant-table")
    ap.add_argument("--chunks", type=int, default=8, help="512-token chunks of GPL-3 to evaluate (max 14)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-bench", action="store_true", help="skip the speed columns")
    ap.add_argument("--json-out", default="bench/results/quant_table.json")
    ap.add_argument("--reuse", action="store_true", help="keep files already in --work (source, imatrix, quantized)")
    args = ap.parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    w = lambda name: os.path.join(args.work, name)
    slm, lq = args.slm, os.path.join(LLAMA_CPP_DIR, "bin", "llama-quantize")
    t = str(args.threads)

    src = w("f32.gguf")
    fresh = lambda path: not (args.reuse and os.path.exists(path))
    if fresh(src):
        run([slm, "quantize", args.model, src, "--type", "F32", "--allow-requantize", "-t", t])
    calib = w("calibration.txt")
    with open(calib, "w") as out:
        for name in CALIBRATION:
            out.write(open(f"{LICENSES}/{name}").read() + "\n\n")
    imatrix = w("imatrix.gguf")
    if fresh(imatrix):
        run([slm, "imatrix", "-m", src, calib, "-o", imatrix, "-c", "512", "-t", t])

    rows, candidates = [], []
    for p in PRESETS:
        for mode in (["plain"] if p in FLOAT else ["plain", "imatrix"]):
            if p == "Q2_K_S" and mode == "plain":
                continue  # llama-quantize refuses Q2_K_S without an imatrix
            extra = ["--imatrix", imatrix] if mode == "imatrix" else []
            ours, theirs = w(f"slm-{p}-{mode}.gguf"), w(f"llama-{p}-{mode}.gguf")
            if fresh(ours):
                run([slm, "quantize", src, ours, "--type", p, "-t", t] + extra, stdout=subprocess.DEVNULL)
            if fresh(theirs):
                run([lq] + extra + [src, theirs, p, t], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            a, b = tensor_hashes(ours), tensor_hashes(theirs)
            differ = sorted(n for n in a if a[n] != b.get(n))
            rows.append({"preset": p, "mode": mode, "file": ours, "bytes": os.path.getsize(ours),
                         "llama_quantize_bytes": os.path.getsize(theirs), "tensors_differing_from_llama_quantize": differ})
            candidates.append(ours)

    cmd = [slm, "eval", EVAL_TEXT, "-r", src, "-c", "512", "--chunks", str(args.chunks), "-t", t, "--json"]
    for c in candidates:
        cmd += ["-m", c]
    ev = json.loads(run(cmd, stdout=subprocess.PIPE).stdout)
    ref_ppl = ev["candidates"][0]["report"]["ppl_reference"]
    for row, c in zip(rows, ev["candidates"]):
        row.update({"bpw": c["bpw"], **{k: c["report"][k] for k in ("ppl_candidate", "mean_kld", "kld_stderr", "same_top_pct")}})
    if not args.no_bench:
        for row in rows:
            if row["mode"] != "plain" and row["preset"] != "Q2_K_S":
                continue
            out = run([slm, "bench", "-m", row["file"], "-p", "512", "-n", "128", "-t", t, "-r", "3", "-o", "json"],
                      stdout=subprocess.PIPE).stdout
            for test in json.loads(out):
                key = "pp512_tps" if test["n_prompt"] else "tg128_tps"
                row[key] = test["avg_ts"]

    os.makedirs(os.path.dirname(args.json_out), exist_ok=True)
    with open(args.json_out, "w") as f:
        json.dump({"reference_ppl": ref_ppl, "eval_text": EVAL_TEXT, "chunks": args.chunks, "rows": rows}, f, indent=1)
    print(f"\nReference F32: PPL {ref_ppl:.4f} on GPL-3 ({args.chunks} × 512-token chunks)\n")
    print("| type | size MiB | bpw | PPL | KLD (plain = llama-quantize) | same top | KLD with slm imatrix | same top | pp512 tok/s | tg128 tok/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    by = {(r["preset"], r["mode"]): r for r in rows}
    for p in PRESETS:
        plain, imx = by.get((p, "plain")), by.get((p, "imatrix"))
        base = plain or imx
        fmt = lambda r, k, f: (f.format(r[k]) if r and k in r else "–")
        print(f"| {p} | {base['bytes'] / 1048576:.1f} | {base['bpw']:.2f} | {base['ppl_candidate']:.4f} | "
              f"{fmt(plain, 'mean_kld', '{:.5f}')} | {fmt(plain, 'same_top_pct', '{:.1f}%')} | "
              f"{fmt(imx, 'mean_kld', '{:.5f}')} | {fmt(imx, 'same_top_pct', '{:.1f}%')} | "
              f"{fmt(base, 'pp512_tps', '{:.0f}')} | {fmt(base, 'tg128_tps', '{:.0f}')} |")
    differ = [(r["preset"], r["mode"], len(r["tensors_differing_from_llama_quantize"])) for r in rows
              if r["tensors_differing_from_llama_quantize"]]
    print(f"\nTensors differing from llama-quantize's output: {differ if differ else 'none (all files byte-identical in tensor data)'}")


if __name__ == "__main__":
    main(sys.argv[1:])
