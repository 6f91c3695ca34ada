#!/usr/bin/env python3
"""Time to first token for a 16-token prompt: `slm serve` vs llama.cpp's `llama-server`, same file, same threads.

Per round and engine (engines alternate, slm first): start the server and time it until /health answers (cold
start: load), then send N raw completion requests one after another, each a different 16-token prompt (different
first words, so no engine can reuse a cached prefix) with max_tokens 1 and greedy sampling, and time each from
sending the request to the whole response (prefill of 16 tokens + one token + HTTP on localhost). Prints the medians,
the ratio slm / llama.cpp (below 1 = slm faster) and writes all samples as JSON.

    reference/build_llama_cpp.sh && cargo build --release -p slm-cli
    python3 bench/ttft.py --rounds 3
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from server_load import free_port

DEFAULT_MODEL = "/tmp/assets/SmolLM2-135M-Instruct.Q4_1.gguf"
LLAMA_CPP_DIR = os.environ.get("LLAMA_CPP_DIR", os.path.expanduser("~/.cache/slm-peers/llama.cpp"))
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "ttft.json")

# Sixteen-token prompts for SmolLM2's tokenizer (checked from usage.prompt_tokens of both servers): each starts
# with a different word so that no prompt shares a prefix with the one before.
PROMPTS = [
    "Yesterday the small village by the river held its yearly market, and everyone came",
    "Rain fell all night on the old stone bridge while the tired guards waited for the",
    "Students often ask their teachers why the sky looks blue during the day and red at",
    "Engineers at the plant tested the new pump for three weeks before they decided to",
    "My grandmother kept a garden full of tomatoes, beans and roses behind the little house",
    "Every winter the lake freezes so hard that the children skate across it to reach the",
    "Scientists measured the temperature of the ocean at many different depths to learn how the water",
    "After the concert the musicians packed their instruments and drove through the whole night back to",
    "Bright lights from the harbour guided the fishing boats home through the thick morning fog",
    "Travelers who cross the desert carry extra water because the nearest well is often far",
    "Our neighbour repaired his bicycle in the driveway and then rode it down to the",
    "Historians believe the castle was built in the twelfth century to protect the valley from",
]


def command(name, a, port):
    if name == "slm":
        return [a.slm, "serve", a.model, "--host", "127.0.0.1", "--port", str(port), "-t", str(a.threads),
                "-c", str(a.ctx), "--slots", "1"]
    return [a.llama_server, "-m", a.model, "--host", "127.0.0.1", "--port", str(port), "-t", str(a.threads),
            "-np", "1", "-c", str(a.ctx)]


def request(port, method, path, body=None, timeout=60):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def wait_ready(proc, port, deadline_s):
    t_end = time.monotonic() + deadline_s
    while time.monotonic() < t_end:
        if proc.poll() is not None:
            sys.exit(f"server exited with status {proc.returncode} before becoming healthy")
        try:
            if request(port, "GET", "/health", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.005)
    sys.exit(f"/health not 200 within {deadline_s} s")


def one_round(name, a, logdir, rnd):
    port = free_port()
    log = open(os.path.join(logdir, f"{name}-{rnd}.log"), "wb")
    t0 = time.monotonic()
    proc = subprocess.Popen(command(name, a, port), stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(proc, port, a.start_timeout)
        ready = time.monotonic() - t0
        samples, n_tokens = [], set()
        for prompt in PROMPTS[: a.requests]:
            body = {"model": "m", "prompt": prompt, "max_tokens": 1, "temperature": 0}
            t = time.monotonic()
            status, raw = request(port, "POST", "/v1/completions", body)
            samples.append(time.monotonic() - t)
            if status != 200:
                sys.exit(f"{name}: status {status}: {raw[:300]!r}")
            n_tokens.add(json.loads(raw)["usage"]["prompt_tokens"])
        return {"engine": name, "round": rnd, "ready_s": ready, "ttft_s": samples, "prompt_tokens": sorted(n_tokens)}
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--slm", default="target/release/slm")
    ap.add_argument("--llama-server", default=os.path.join(LLAMA_CPP_DIR, "bin", "llama-server"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=len(PROMPTS), help=f"prompts per round (at most {len(PROMPTS)})")
    ap.add_argument("--start-timeout", type=float, default=120)
    ap.add_argument("--json-out", default=RESULTS)
    a = ap.parse_args(argv)
    a.requests = max(1, min(a.requests, len(PROMPTS)))
    load_before = os.getloadavg()
    recs = []
    with tempfile.TemporaryDirectory(prefix="ttft_") as logdir:
        for rnd in range(a.rounds):
            for name in ("slm", "llama.cpp"):
                recs.append(one_round(name, a, logdir, rnd))
                r = recs[-1]
                print(f"round {rnd} {name:9}: ready {r['ready_s']:.3f} s, TTFT median "
                      f"{statistics.median(r['ttft_s']) * 1e3:.1f} ms, prompt tokens {r['prompt_tokens']}", flush=True)
    rows = {}
    for name in ("slm", "llama.cpp"):
        mine = [r for r in recs if r["engine"] == name]
        rows[name] = {
            "ready_s": statistics.median(r["ready_s"] for r in mine),
            "ttft_s": statistics.median(s for r in mine for s in r["ttft_s"]),
            "prompt_tokens": sorted({n for r in mine for n in r["prompt_tokens"]}),
        }
    print("\n| engine | start until ready (median) | TTFT, 16-token prompt (median) | prompt tokens |")
    print("|---|---:|---:|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['ready_s'] * 1e3:.0f} ms | {row['ttft_s'] * 1e3:.1f} ms | {row['prompt_tokens']} |")
    ratio = rows["slm"]["ttft_s"] / rows["llama.cpp"]["ttft_s"]
    ready_ratio = rows["slm"]["ready_s"] / rows["llama.cpp"]["ready_s"]
    print(f"\nslm / llama.cpp: TTFT {ratio:.2f}, start until ready {ready_ratio:.2f} (below 1: slm faster); "
          f"{a.rounds} alternating rounds x {a.requests} prompts, -t {a.threads}; load average {load_before} -> "
          f"{os.getloadavg()}")
    os.makedirs(os.path.dirname(a.json_out), exist_ok=True)
    with open(a.json_out, "w") as f:
        json.dump({"command": " ".join(sys.argv), "rows": rows, "rounds": recs, "load_before": load_before,
                   "load_after": os.getloadavg()}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
