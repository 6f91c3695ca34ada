#!/usr/bin/env python3
"""`slm fit` predicted vs measured, for every quantization of SmolLM2-135M (issue 9's acceptance).

For each GGUF file, close together in time (the machine is shared and its speed drifts by more than the 20% the
check is about over a few minutes):
1. measure this machine: `slm fit MODEL --device auto --save-profile` (kernel probe on MODEL's layer shapes,
   calibrated on MODEL's own prompt/generation speed; MODEL = --calibrate-on, by default the first file: never
   the file being checked, unless it is that reference file itself);
2. predict the file from that profile: `slm fit FILE --device PROFILE -c P+N -b B -p P -n N --json`;
3. measure it: R times `slm bench -m FILE -p P -n N -b B -r 1` (peak RSS from the kernel's rusage of that
   process), each followed by the same for REF (--reference, default: the calibration model).
`--one-probe` measures the machine once before all files instead (the original method).
Cells show the mean of FILE's R runs. The "relative" ratio (pred(FILE) / pred(REF)) / (meas(FILE) / meas(REF)),
the median over the R alternated pairs, is reported next to the absolute one: it takes out how much slower the
machine was during the file's benchmark than during the calibration run (this VM's speed moves by up to 2x
within seconds while it looks idle from inside).
Prints | file | peak RSS pred/meas | pp pred/meas | tg pred/meas |, the worst ratio, and the load average (uptime)
before and after.

Usage: python3 bench/fit_check.py FILE.gguf [FILE.gguf ...] [--slm target/release/slm] [-p 512 -n 128 -b 512 -t 2]
(the files of bench/quant_table.py are in /tmp/slm-quant-table/slm-*-plain.gguf).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def run_measured(cmd):
    """Runs cmd, returns (stdout, peak RSS bytes) using wait4's rusage of exactly that child."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return out, usage.ru_maxrss * 1024


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def probe(a, path):
    t = time.time()
    subprocess.run([a.slm, "fit", a.calibrate_on or a.files[0], "--device", "auto", "-t", str(a.t),
                    "--save-profile", path], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    profile = json.load(open(path))
    print(f"probe {path}: {time.time() - t:.1f} s, {profile['source']}", flush=True)
    return profile


def bench_cmd(a, f):
    return [a.slm, "bench", "-m", f, "-p", str(a.p), "-n", str(a.n), "-b", str(a.b), "-t", str(a.t), "-r", "1",
            "-o", "json"]


def speeds(bench_json):
    tests = json.loads(bench_json)
    return next(t["avg_ts"] for t in tests if t["n_prompt"]), next(t["avg_ts"] for t in tests if t["n_gen"])


def predict(a, f, profile_path):
    out = subprocess.run([a.slm, "fit", f, "--device", profile_path, "-c", str(a.p + a.n), "-b", str(a.b),
                          "-p", str(a.p), "-n", str(a.n), "--json"], check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(out.stdout)["prediction"]


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--slm", default="target/release/slm")
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-b", type=int, default=512)
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("--profile", default="/tmp/slm-fit-profile.json")
    ap.add_argument("--one-probe", action="store_true", help="measure the machine once, before all files")
    ap.add_argument("--calibrate-on", help="model the auto profile is calibrated on (default: the first file)")
    ap.add_argument("--reference", help="file benchmarked after each file (default: the calibration model)")
    ap.add_argument("--json-out", default="bench/results/fit_check.json")
    a = ap.parse_args(argv)
    load_before = load_average()
    print(f"load average before: {load_before}", flush=True)
    profiles = []
    rows = []
    for f in a.files:
        if not profiles or not a.one_probe:
            profiles.append(probe(a, a.profile))
        pred = predict(a, f, a.profile)
        ref = a.reference or a.calibrate_on or a.files[0]
        ref_pred = predict(a, ref, a.profile)
        # FILE and REF alternately, one repetition each, so every pair ran at nearly the same machine speed.
        runs, ref_runs, rss = [], [], 0
        for _ in range(a.r):
            out, peak = run_measured(bench_cmd(a, f))
            runs.append(speeds(out))
            rss = max(rss, peak)
            ref_runs.append(speeds(run_measured(bench_cmd(a, ref))[0]))
        pp, tg = (statistics.mean(x[i] for x in runs) for i in (0, 1))
        ref_pp, ref_tg = (statistics.mean(x[i] for x in ref_runs) for i in (0, 1))
        rel = [[(pred[k] / ref_pred[k]) / (m[i] / rm[i]) for m, rm in zip(runs, ref_runs)]
               for i, k in enumerate(("prompt_tps", "gen_tps"))]
        r = {"ref_pp_pred": ref_pred["prompt_tps"], "ref_tg_pred": ref_pred["gen_tps"], "ref_pp_meas": ref_pp,
             "ref_tg_meas": ref_tg, "pp_rel": statistics.median(rel[0]), "tg_rel": statistics.median(rel[1]),
             "runs": runs, "ref_runs": ref_runs, "file": os.path.basename(f), "rss_pred": pred["peak_bytes"],
             "rss_meas": rss, "pp_pred": pred["prompt_tps"], "pp_meas": pp, "tg_pred": pred["gen_tps"], "tg_meas": tg,
             "load": load_average(), "calibration": profiles[-1]["source"]}
        rows.append(r)
        print(f"| {r['file']} | {r['rss_pred']/2**20:.1f} / {rss/2**20:.1f} MiB ({r['rss_pred']/rss:.2f}) "
              f"| {r['pp_pred']:.0f} / {pp:.0f} ({r['pp_pred']/pp:.2f}) "
              f"| {r['tg_pred']:.1f} / {tg:.1f} ({r['tg_pred']/tg:.2f}) | {r['pp_rel']:.2f} | {r['tg_rel']:.2f} "
              f"| {r['load']} |", flush=True)
    worst = max((abs(r[k + "_pred"] / r[k + "_meas"] - 1), r["file"], k) for r in rows for k in ("rss", "pp", "tg"))
    worst_rel = max((abs(r[k] - 1), r["file"], k) for r in rows for k in ("pp_rel", "tg_rel"))
    print(f"worst relative error, relative to the reference: {worst_rel[0] * 100:.1f}% ({worst_rel[1]} {worst_rel[2]})")
    load_after = load_average()
    print(f"worst relative error: {worst[0] * 100:.1f}% ({worst[1]} {worst[2]})")
    print(f"load average before: {load_before}; after: {load_after}")
    os.makedirs(os.path.dirname(a.json_out), exist_ok=True)
    json.dump({"command": " ".join(sys.argv), "load_before": load_before, "load_after": load_after,
               "profiles": profiles, "rows": rows}, open(a.json_out, "w"), indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
