#!/usr/bin/env python3
"""`slm fit` predicted vs measured, for every quantization of SmolLM2-135M (issue 9's acceptance).

1. Measures this machine once: `slm fit MODEL --device auto --save-profile` (kernel probe, calibrated on MODEL's
   own prompt/generation speed; MODEL = --calibrate-on, by default the first file).
2. For each GGUF file: the prediction (`slm fit FILE --device PROFILE -c P+N -b B --json`) and the
   measurement (`slm bench -m FILE -p P -n N -b B`, peak RSS from the kernel's rusage of that process).
3. Prints | file | peak RSS pred/meas | pp pred/meas | tg pred/meas | and the worst ratio.

Usage: python3 bench/fit_check.py FILE.gguf [FILE.gguf ...] [--slm target/release/slm] [-p 512 -n 128 -b 512 -t 2]
(the files of bench/quant_table.py are in /tmp/slm-quant-table/slm-*-plain.gguf).
"""

import argparse
import json
import os
import subprocess
import sys


def run_measured(cmd):
    """Runs cmd, returns (stdout, peak RSS bytes) using wait4's rusage of exactly that child."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return out, usage.ru_maxrss * 1024


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
    ap.add_argument("--calibrate-on", help="model the auto profile is calibrated on (default: the first file)")
    ap.add_argument("--json-out", default="bench/results/fit_check.json")
    a = ap.parse_args(argv)
    subprocess.run([a.slm, "fit", a.calibrate_on or a.files[0], "--device", "auto", "-t", str(a.t), "--save-profile", a.profile],
                   check=True, stdout=subprocess.DEVNULL)
    rows = []
    for f in a.files:
        pred = json.loads(subprocess.run([a.slm, "fit", f, "--device", a.profile, "-c", str(a.p + a.n), "-b", str(a.b),
                                          "-p", str(a.p), "-n", str(a.n), "--json"],
                                         check=True, stdout=subprocess.PIPE, text=True).stdout)["prediction"]
        out, rss = run_measured([a.slm, "bench", "-m", f, "-p", str(a.p), "-n", str(a.n), "-b", str(a.b),
                                 "-t", str(a.t), "-r", str(a.r), "-o", "json"])
        tests = json.loads(out)
        pp = next(t["avg_ts"] for t in tests if t["n_prompt"])
        tg = next(t["avg_ts"] for t in tests if t["n_gen"])
        rows.append({"file": os.path.basename(f), "rss_pred": pred["peak_bytes"], "rss_meas": rss,
                     "pp_pred": pred["prompt_tps"], "pp_meas": pp, "tg_pred": pred["gen_tps"], "tg_meas": tg})
        r = rows[-1]
        print(f"| {r['file']} | {r['rss_pred']/2**20:.1f} / {r['rss_meas']/2**20:.1f} MiB ({r['rss_pred']/r['rss_meas']:.2f}) "
              f"| {r['pp_pred']:.0f} / {r['pp_meas']:.0f} ({r['pp_pred']/r['pp_meas']:.2f}) "
              f"| {r['tg_pred']:.1f} / {r['tg_meas']:.1f} ({r['tg_pred']/r['tg_meas']:.2f}) |", flush=True)
    worst = max(max(abs(r[k + "_pred"] / r[k + "_meas"] - 1) for k in ("rss", "pp", "tg")) for r in rows)
    print(f"worst relative error: {worst * 100:.1f}%")
    os.makedirs(os.path.dirname(a.json_out), exist_ok=True)
    json.dump({"profile": json.load(open(a.profile)), "rows": rows}, open(a.json_out, "w"), indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
