#!/usr/bin/env python3
"""Bounded load test of `slm serve` against llama.cpp's own server (llama-server), same load (issue 7).

Each server is started by this script on 127.0.0.1 at a free port (loopback only), with the same model file,
threads, context per request and parallel slots; rounds alternate (slm, llama-server, slm, llama-server, ...).
Per server and round:

1. Baseline: every prompt once, alone, greedy (temperature 0), streamed, max_tokens = --max-tokens.
2. Load: --clients concurrent clients, --requests each, closed loop (a client sends its next request when the
   previous one is over). Every request is drawn from a plan made with a fixed seed before any server starts, so
   both servers get the same sequence: a normal streamed greedy chat (a prompt from a fixed list, max_tokens
   varied per request so answers are distinguishable), a disconnect (the client closes or resets the connection
   after a random number of content chunks), or a malformed request (bad JSON, wrong types, out-of-range
   numbers, an oversized body), which must get a 4xx JSON error.
3. After the load: /health must answer 200 and one more greedy request must still give the baseline answer;
   then the server is stopped with SIGTERM (odd rounds: SIGINT) and must exit with status 0.

Correctness checks (the exit status is non-zero if one fails for slm; the peer's findings are reported, and
fail the run only with --peer-strict):
- every completed stream is well-formed SSE (every event `data: <JSON chunk>`, one id per stream, one final
  chunk with finish_reason, a usage chunk, and `data: [DONE]` last), ids are unique across responses;
- usage.completion_tokens = max_tokens when finish_reason is "length", <= max_tokens when "stop";
- slm: each answer under load equals the same prompt's baseline answer (a prefix of it when cut by a smaller
  max_tokens): a response that belongs to another request, or is computed differently under load, fails;
  llama-server: batching may change its numerics, so its exact-match rate is reported as information only.

Reported: requests ok / disconnected / malformed-rejected, aggregate generated tok/s over the load window (the
completion tokens of the completed streams / wall time from the first request sent to the last answer read),
time to first token (first non-empty content chunk) p50/p99 and total latency p50/p99, per round and the median
over rounds, with the ratio slm / llama.cpp. JSON results: bench/results/server_load.json (atomic write).

Usage:
  cargo build --release -p slm-cli && reference/build_llama_cpp.sh
  python3 bench/server_load.py                              # 4 clients x 8 requests, 2 rounds, both servers
  python3 bench/server_load.py --clients 8 --requests 6 --rounds 3
  python3 bench/server_load.py --quick --slm-only           # a short smoke run of slm alone (CI-sized)

Standard library only (asyncio streams speak HTTP/1.1 directly, so disconnects and malformed bodies are exact).
"""

import argparse
import asyncio
import codecs
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

DEFAULT_MODEL = "/tmp/assets/SmolLM2-135M-Instruct.Q4_1.gguf"
LLAMA_CPP_DIR = os.environ.get("LLAMA_CPP_DIR", os.path.expanduser("~/.cache/slm-peers/llama.cpp"))
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "server_load.json")
CHAT = "/v1/chat/completions"
MAX_RESPONSE_BYTES = 8 << 20  # any answer larger than this is a failure, not something to buffer forever

PROMPTS = [
    "Write a short story about a robot who learns to paint.",
    "Explain how a bicycle works to a ten-year-old.",
    "List five facts about the Moon.",
    "Describe a day in the life of a lighthouse keeper.",
    "Give me three tips for learning a new language, with a sentence on each.",
    "Why is the sky blue? Answer in a paragraph.",
]


def chat_body(prompt, max_tokens, **extra):
    body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens, "temperature": 0,
            "stream": True, "stream_options": {"include_usage": True}}
    body.update(extra)
    return json.dumps(body).encode()


def user(text="hi"):
    return [{"role": "user", "content": text}]


# name -> body. Every case is harmless if a server accepts it (a few tokens at most), so a lenient peer stays bounded.
MALFORMED = {
    "truncated_json": b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4',
    "not_json": b"hello, server",
    "empty_body": b"",
    "messages_not_array": json.dumps({"messages": "hi", "max_tokens": 4, "stream": True}).encode(),
    "max_tokens_string": json.dumps({"messages": user(), "max_tokens": "four", "stream": True}).encode(),
    "content_number": json.dumps({"messages": [{"role": "user", "content": 42}], "max_tokens": 4}).encode(),
    "temperature_7_5": json.dumps({"messages": user(), "max_tokens": 4, "temperature": 7.5}).encode(),
    "top_p_3": json.dumps({"messages": user(), "max_tokens": 4, "top_p": 3}).encode(),
    "max_tokens_negative": json.dumps({"messages": user(), "max_tokens": -5}).encode(),
    "max_tokens_2e40": json.dumps({"messages": user(), "max_tokens": 1 << 40}).encode(),
    "no_messages": json.dumps({"max_tokens": 4, "stream": True}).encode(),
    # 2 MiB: over slm's 1 MiB body limit (413); llama-server reads it and finds the prompt longer than the context.
    "oversized_body_2MiB": json.dumps({"messages": user("word " * ((2 << 20) // 5)), "max_tokens": 4}).encode(),
}


# ---------------------------------------------------------------------------------------------- HTTP client


class Response:
    """What one request got back."""

    def __init__(self):
        self.status = None
        self.headers = {}
        self.body = b""
        self.events = []  # (seconds since send, data string) per SSE event with data
        self.sse_errors = []  # lines that are not `data:` / comments, or events after [DONE]
        self.t_first_content = None
        self.t_end = None
        self.disconnected = False  # we closed the connection on purpose
        self.error = None  # transport error or timeout


def _parse_head(raw):
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return status, headers


async def _body_pieces(reader, headers):
    """Yields the body as it arrives: chunked, Content-Length, or until the peer closes."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        for _ in range(1 << 20):  # bounded: a chunk per token at most
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # (no trailers are sent by either server)
                return
            data = await reader.readexactly(size)
            await reader.readexactly(2)
            yield data
        raise RuntimeError("too many chunks")
    if "content-length" in headers:
        n = int(headers["content-length"])
        if n > MAX_RESPONSE_BYTES:
            raise RuntimeError(f"Content-Length {n} is too large")
        yield await reader.readexactly(n)
        return
    while True:
        data = await reader.read(1 << 16)
        if not data:
            return
        yield data


async def http(port, method, path, body=b"", *, timeout, close_after=None, reset=False):
    """One HTTP/1.1 request on a fresh connection (Connection: close).

    close_after: for a streamed answer, close the connection once this many content chunks have arrived (0: right
    after the response head); reset: close with RST (SO_LINGER 0) instead of FIN."""
    r = Response()
    t0 = time.perf_counter()
    writer = None

    async def run():
        nonlocal writer
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 16)
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        writer.write(head.encode() + body)
        try:
            await writer.drain()
        except (ConnectionError, BrokenPipeError) as e:  # a server may answer (413) before reading it all
            r.error = f"write: {e!r}"
        r.status, r.headers = _parse_head((await reader.readuntil(b"\r\n\r\n"))[:-4])
        r.error = None
        sse = "text/event-stream" in r.headers.get("content-type", "")
        if sse and close_after == 0:
            r.disconnected = True
            return
        buf, body_parts, n_content, done = "", [], 0, False
        utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character may span two pieces
        async for piece in _body_pieces(reader, r.headers):
            body_parts.append(piece)
            if sum(map(len, body_parts)) > MAX_RESPONSE_BYTES:
                raise RuntimeError("response too large")
            if not sse:
                continue
            buf += utf8.decode(piece).replace("\r\n", "\n")
            while "\n\n" in buf:
                event, buf = buf.split("\n\n", 1)
                data = [ln[6:] if ln.startswith("data: ") else ln[5:] if ln.startswith("data:") else None
                        for ln in event.split("\n")]
                if any(d is None and not ln.startswith(":") for d, ln in zip(data, event.split("\n"))):
                    r.sse_errors.append(f"non-data line in event {event[:120]!r}")
                data = [d for d in data if d is not None]
                if not data:
                    continue
                if done:
                    r.sse_errors.append(f"event after [DONE]: {event[:120]!r}")
                text = "\n".join(data)
                now = time.perf_counter() - t0
                r.events.append((now, text))
                done = text == "[DONE]"
                if not done and _content_of(text):
                    n_content += 1
                    if r.t_first_content is None:
                        r.t_first_content = now
                    if close_after is not None and n_content >= close_after:
                        r.disconnected = True
                        return
        if sse and buf.strip():
            r.sse_errors.append(f"unterminated event at the end: {buf[:120]!r}")
        r.body = b"".join(body_parts)

    try:
        await asyncio.wait_for(run(), timeout)
    except asyncio.TimeoutError:
        r.error = f"timeout after {timeout} s"
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, RuntimeError, ValueError) as e:
        r.error = r.error or f"{type(e).__name__}: {e}"
    finally:
        r.t_end = time.perf_counter() - t0
        if writer is not None:
            if reset:
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 5)
            except (OSError, asyncio.TimeoutError):
                pass
    return r


def _content_of(data):
    try:
        chunk = json.loads(data)
        return "".join((c.get("delta") or {}).get("content") or "" for c in chunk.get("choices") or [])
    except (ValueError, AttributeError, TypeError):
        return ""


# ------------------------------------------------------------------------------------------ stream checking


def parse_stream(r, max_tokens):
    """Checks a completed chat stream; returns (text, finish_reason, completion_tokens, id, problems)."""
    problems = list(r.sse_errors)
    if r.status != 200:
        return None, None, None, None, [f"status {r.status}: {r.body[:200]!r}"]
    if not r.events or r.events[-1][1] != "[DONE]":
        problems.append("stream does not end with data: [DONE]")
    ids, text, finish, usage = set(), [], [], None
    for _, data in r.events:
        if data == "[DONE]":
            continue
        try:
            chunk = json.loads(data)
        except ValueError:
            problems.append(f"event is not JSON: {data[:120]!r}")
            continue
        if not isinstance(chunk, dict) or "error" in chunk:
            problems.append(f"error or non-object chunk: {data[:200]}")
            continue
        ids.add(chunk.get("id"))
        if chunk.get("object") != "chat.completion.chunk":
            problems.append(f"object is {chunk.get('object')!r}")
        for c in chunk.get("choices") or []:
            if finish and (c.get("delta") or {}).get("content"):
                problems.append("content after the finish chunk")
            text.append((c.get("delta") or {}).get("content") or "")
            if c.get("finish_reason"):
                finish.append(c["finish_reason"])
        if chunk.get("usage"):
            usage = chunk["usage"]
    if len(ids) != 1:
        problems.append(f"{len(ids)} different ids in one stream")
    if len(finish) != 1:
        problems.append(f"{len(finish)} chunks with a finish_reason")
    n = usage.get("completion_tokens") if isinstance(usage, dict) else None
    if not isinstance(n, int):
        problems.append("no usage chunk with completion_tokens")
    elif finish == ["length"] and n != max_tokens:
        problems.append(f"finish_reason length with {n} completion tokens, max_tokens {max_tokens}")
    elif finish == ["stop"] and n > max_tokens:
        problems.append(f"finish_reason stop with {n} > max_tokens {max_tokens} completion tokens")
    return "".join(text), (finish or [None])[0], n, (ids.pop() if len(ids) == 1 else None), problems


def matches_baseline(text, finish, n, base):
    """Greedy answers cut at max_tokens are prefixes of the longer baseline answer; a stop ends it exactly."""
    b_text, b_finish, b_n = base
    if finish == "stop":
        return text == b_text and b_finish == "stop" and n == b_n
    if finish == "length":
        return b_text.startswith(text) and n <= b_n and (n < b_n or text == b_text)
    return False


def is_json_error(r):
    try:
        return isinstance(json.loads(r.body).get("error"), dict)
    except (ValueError, AttributeError):
        return False


# --------------------------------------------------------------------------------------------------- plan


def make_plan(args):
    """Per client, a fixed list of requests (independent of timing, same for both servers)."""
    rng = random.Random(args.seed)
    cuts = [0, 3, 7, 11, 16]
    names = sorted(MALFORMED)
    rng.shuffle(names)
    plan, used = [], 0
    for _ in range(args.clients):
        reqs = []
        for _ in range(args.requests):
            x = rng.random()
            p = rng.randrange(len(PROMPTS))
            m = max(1, args.max_tokens - rng.choice(cuts) * args.max_tokens // 48)
            if x < args.malformed_rate:
                reqs.append({"kind": "malformed", "case": names[used % len(names)]})
                used += 1
            elif x < args.malformed_rate + args.disconnect_rate:
                reqs.append({"kind": "disconnect", "prompt": p, "max_tokens": m,
                             "close_after": rng.randrange(0, 6), "reset": rng.random() < 0.5})
            else:
                reqs.append({"kind": "chat", "prompt": p, "max_tokens": m})
        plan.append(reqs)
    # Every malformed case at least once: the ones the draw left out go in at random places.
    for k, case in enumerate(names[used:]):
        reqs = plan[k % len(plan)]
        reqs.insert(rng.randrange(len(reqs) + 1), {"kind": "malformed", "case": case})
    return plan


# ------------------------------------------------------------------------------------------------ servers


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(name, args, port):
    n = args.clients
    if name == "slm":
        return [args.slm, "serve", args.model, "--host", "127.0.0.1", "--port", str(port), "-t", str(args.threads),
                "-c", str(args.ctx), "--slots", str(n), "--queue", str(max(16, 2 * n))]
    # -c is split over the -np slots; -n caps requests that give no valid max_tokens (a lenient peer stays bounded).
    return [args.llama_server, "-m", args.model, "--host", "127.0.0.1", "--port", str(port), "-t", str(args.threads),
            "-np", str(n), "--cont-batching", "-c", str(n * args.ctx), "-n", str(args.max_tokens)]


async def wait_health(proc, port, deadline_s):
    t_end = time.monotonic() + deadline_s
    while time.monotonic() < t_end:
        if proc.poll() is not None:
            return f"exited with status {proc.returncode} before becoming healthy"
        r = await http(port, "GET", "/health", timeout=5)
        if r.status == 200:
            return None
        await asyncio.sleep(0.2)
    return f"/health not 200 within {deadline_s} s"


def _prom(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            try:
                return float(line.split()[1])
            except (IndexError, ValueError):
                return None
    return None


async def wait_idle(name, port, deadline_s):
    """After the load, waits (bounded) until the server has no queued or running work and no open connection
    but ours: slm from /metrics, llama-server from /slots."""
    t_end, state = time.monotonic() + deadline_s, {}
    while True:
        if name == "slm":
            r = await http(port, "GET", "/metrics", timeout=5)
            text = r.body.decode("utf-8", "replace")
            state = {k: _prom(text, f"slm_{k}") for k in
                     ("queue_depth", "requests_active", "connections_open", "requests_cancelled_total",
                      "decode_steps_total", "decode_tokens_total")}  # (the last two: batching, from 0eac7f1)
            if state["decode_steps_total"]:
                state["mean_decode_batch"] = (state["decode_tokens_total"] or 0) / state["decode_steps_total"]
            # connections_open counts ours and, about half the time, the permit the accept loop takes before
            # the next connection arrives: 2 is idle.
            state["idle"] = (r.status == 200 and state["queue_depth"] == 0 and state["requests_active"] == 0
                             and state["connections_open"] is not None and state["connections_open"] <= 2)
        else:
            r = await http(port, "GET", "/slots", timeout=5)
            try:
                slots = json.loads(r.body)
                busy = sum(1 for sl in slots if sl.get("is_processing"))
            except (ValueError, TypeError, AttributeError):
                busy = None
            state = {"slots_processing": busy, "idle": r.status == 200 and busy == 0}
        if state["idle"] or time.monotonic() > t_end:
            return state
        await asyncio.sleep(0.2)


def stop(proc, sig, grace_s=30):
    proc.send_signal(sig)
    try:
        return proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        return f"did not exit within {grace_s} s of {sig.name}; killed"


# ---------------------------------------------------------------------------------------------------- run


def pct(xs, q):
    """Nearest-rank percentile (with few samples p99 is the maximum)."""
    if not xs:
        return None
    xs = sorted(xs)
    return xs[max(0, min(len(xs) - 1, int(-(-q * len(xs) // 100)) - 1))]


async def baseline(port, args, fail):
    """Each prompt alone, greedy, the largest max_tokens: {prompt index: (text, finish, tokens)}, and the
    single-stream speed (prompt included) to read the load figures against."""
    base, tokens, seconds = {}, 0, 0.0
    for i, prompt in enumerate(PROMPTS):
        r = await http(port, "POST", CHAT, chat_body(prompt, args.max_tokens), timeout=args.request_timeout)
        text, fin, n, _, problems = parse_stream(r, args.max_tokens)
        if r.error or problems:
            fail(f"baseline prompt {i}: {r.error or ''} {problems}")
            return None, None
        base[i] = (text, fin, n)
        tokens, seconds = tokens + n, seconds + r.t_end
    return base, (tokens / seconds if seconds > 0 else None)


async def load(port, args, plan):
    """Runs the plan's clients concurrently (closed loop); returns per client [(spec, response, end time)] and
    the start time."""
    results = [[] for _ in plan]

    async def client(c):
        for spec in plan[c]:
            if spec["kind"] == "malformed":
                r = await http(port, "POST", CHAT, MALFORMED[spec["case"]], timeout=args.request_timeout)
            else:
                body = chat_body(PROMPTS[spec["prompt"]], spec["max_tokens"])
                r = await http(port, "POST", CHAT, body, timeout=args.request_timeout,
                               close_after=spec.get("close_after"), reset=spec.get("reset", False))
            results[c].append((spec, r, time.perf_counter()))

    t0 = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(client(c) for c in range(len(plan)))), args.load_timeout)
    return results, t0


def score(name, results, t0, base, fail):
    """Checks every response of the load and computes the figures."""
    window = max((e for rs in results for *_, e in rs), default=t0) - t0
    ids, tokens, ttft, total = set(), 0, [], []
    counts = {"ok": 0, "disconnected": 0, "malformed_rejected": 0, "malformed_accepted": 0, "failed": 0}
    exact, malformed_status, mismatches = 0, {}, []
    for c, rs in enumerate(results):
        for j, (spec, r, _) in enumerate(rs):
            where = f"client {c} request {j} ({spec['kind']})"
            if spec["kind"] == "malformed":
                malformed_status.setdefault(spec["case"], []).append(r.status)
                if r.status is None:
                    counts["failed"] += 1
                    fail(f"{where} {spec['case']}: no answer: {r.error}")
                elif 400 <= r.status < 500 and is_json_error(r):
                    counts["malformed_rejected"] += 1
                else:
                    counts["malformed_accepted"] += 1
                    fail(f"{where} {spec['case']}: status {r.status}, not a 4xx JSON error: {r.body[:160]!r}")
                continue
            if spec["kind"] == "disconnect" and r.disconnected:
                counts["disconnected"] += 1
                continue
            # (A disconnect whose answer ended before the planned cut is checked like any chat.)
            text, fin, n, rid, problems = parse_stream(r, spec["max_tokens"])
            if r.error or problems:
                counts["failed"] += 1
                fail(f"{where}: {r.error or ''} {problems}")
                continue
            counts["ok"] += 1
            if rid in ids:
                fail(f"{where}: id {rid} was already used by another response")
            ids.add(rid)
            tokens += n
            total.append(r.t_end)
            if r.t_first_content is not None:
                ttft.append(r.t_first_content)
            if matches_baseline(text, fin, n, base[spec["prompt"]]):
                exact += 1
            else:
                mismatches.append({"where": where, "prompt": spec["prompt"], "max_tokens": spec["max_tokens"],
                                   "text": text, "finish": fin, "tokens": n})
    if name == "slm":  # llama-server's batched numerics may differ: its rate is information
        for m in mismatches:
            fail(f"{m['where']}: answer differs from the prompt's greedy answer measured alone: {m['text']!r}")
    n_ok = counts["ok"]
    return {"counts": counts, "window_s": window, "completion_tokens": tokens,
            "tok_per_s": tokens / window if window > 0 else None,
            "ttft_p50_s": pct(ttft, 50), "ttft_p99_s": pct(ttft, 99),
            "latency_p50_s": pct(total, 50), "latency_p99_s": pct(total, 99),
            "exact_match": f"{exact}/{n_ok}", "exact_match_rate": exact / n_ok if n_ok else None,
            "mismatches": mismatches, "malformed_status": malformed_status}


async def run_server(name, args, plan, round_no, logdir):
    """Starts one server, runs baseline + load + post-checks, stops it; returns the round's record."""
    port = free_port()
    cmd = server_command(name, args, port)
    log_path = os.path.join(logdir, f"{name}-round{round_no}.log")
    rec = {"server": name, "round": round_no, "command": " ".join(cmd), "log": log_path, "failures": []}
    fail = rec["failures"].append
    print(f"[round {round_no}] {name}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        err = await wait_health(proc, port, args.start_timeout)
        if err:
            fail(f"start: {err} (log {log_path})")
            return rec
        base, rec["alone_tok_per_s"] = await baseline(port, args, fail)
        if base is None:
            return rec
        rec["baseline"] = {i: {"text": t, "finish": f, "tokens": n} for i, (t, f, n) in base.items()}
        rec["loadavg_1m_before_load"] = os.getloadavg()[0]
        try:
            results, t0 = await load(port, args, plan)
        except asyncio.TimeoutError:
            fail(f"the load did not finish within --load-timeout {args.load_timeout} s")
            return rec
        rec.update(score(name, results, t0, base, fail))

        # After the load: alive, drained, healthy, still right.
        if proc.poll() is not None:
            return rec  # (reported below)
        rec["idle_after_load"] = idle = await wait_idle(name, port, args.idle_timeout)
        if not idle.get("idle"):
            fail(f"still busy {args.idle_timeout} s after the load (work or connections leaked?): {idle}")
        h = await http(port, "GET", "/health", timeout=10)
        if h.status != 200:
            fail(f"/health after the load: {h.status} {h.error or ''}")
        r = await http(port, "POST", CHAT, chat_body(PROMPTS[0], args.max_tokens), timeout=args.request_timeout)
        text, fin, n, _, problems = parse_stream(r, args.max_tokens)
        rec["post_load_matches_baseline"] = ok = not r.error and not problems and matches_baseline(text, fin, n,
                                                                                                   base[0])
        if not ok and (name == "slm" or r.error or problems):
            fail(f"request after the load: {r.error or ''} {problems} {text!r}")
    finally:
        if proc.poll() is None:
            sig = signal.SIGTERM if round_no % 2 == 0 else signal.SIGINT
            rc = stop(proc, sig)
            rec["stop"] = {"signal": sig.name, "exit": rc}
            if rc != 0:
                fail(f"exit status {rc} after {sig.name} (log {log_path})")
        else:
            rec["stop"] = {"signal": None, "exit": proc.returncode}
            fail(f"the server had exited by itself with status {proc.returncode} (log {log_path})")
    return rec


# --------------------------------------------------------------------------------------------------- report

METRICS = [("alone_tok_per_s", "one request alone, tok/s", "{:.1f}"), ("tok_per_s", "aggregate tok/s", "{:.1f}"),
           ("ttft_p50_s", "TTFT p50 (s)", "{:.3f}"),
           ("ttft_p99_s", "TTFT p99 (s)", "{:.3f}"), ("latency_p50_s", "latency p50 (s)", "{:.3f}"),
           ("latency_p99_s", "latency p99 (s)", "{:.3f}")]


def median_of(recs, key):
    xs = [r[key] for r in recs if r.get(key) is not None]
    return statistics.median(xs) if xs else None


def fmt(f, x):
    return "–" if x is None else f.format(x)


def table(rounds, servers):
    by = {s: [r for r in rounds if r["server"] == s and "counts" in r] for s in servers}
    cols = []
    for s in servers:
        label = "slm" if s == "slm" else "llama.cpp"
        cols += [f"{label} r{r['round']}" for r in by[s]] + [f"{label} median"]
    lines = ["| metric | " + " | ".join(cols) + (" | slm / llama.cpp |" if len(servers) == 2 else " |"),
             "|---|" + "---:|" * (len(cols) + (len(servers) == 2))]
    for key, label, f in METRICS:
        cells, med = [], {}
        for s in servers:
            cells += [fmt(f, r[key]) for r in by[s]]
            med[s] = median_of(by[s], key)
            cells.append(fmt(f, med[s]))
        if len(servers) == 2:
            a, b = med.get("slm"), med.get("llama-server")
            cells.append(fmt("{:.2f}", a / b if a is not None and b else None))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for key in ("ok", "disconnected", "malformed_rejected", "malformed_accepted", "failed"):
        cells = []
        for s in servers:
            cells += [str(r["counts"][key]) for r in by[s]] + [""]
        lines.append(f"| {key.replace('_', ' ')} | " + " | ".join(cells) + (" | |" if len(servers) == 2 else " |"))
    cells = []
    for s in servers:
        cells += [r["exact_match"] for r in by[s]] + [""]
    lines.append("| greedy = alone | " + " | ".join(cells) + (" | |" if len(servers) == 2 else " |"))
    return "\n".join(lines)


def write_json(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--slm", default="target/release/slm")
    ap.add_argument("--llama-server", default=os.path.join(LLAMA_CPP_DIR, "bin", "llama-server"))
    ap.add_argument("--clients", type=int, default=4, help="concurrent clients (= parallel slots of both servers)")
    ap.add_argument("--requests", type=int, default=8, help="requests per client")
    ap.add_argument("--max-tokens", type=int, default=48, help="largest max_tokens (requests use it minus 0 to a third)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=512, help="context per request / per slot")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds (slm, llama-server, slm, ...)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--malformed-rate", type=float, default=0.15)
    ap.add_argument("--disconnect-rate", type=float, default=0.15)
    ap.add_argument("--request-timeout", type=float, default=120)
    ap.add_argument("--load-timeout", type=float, default=900, help="bound on one load phase (s)")
    ap.add_argument("--idle-timeout", type=float, default=15, help="bound on the wait for idle after the load (s)")
    ap.add_argument("--start-timeout", type=float, default=120, help="bound on a server's start (s)")
    ap.add_argument("--slm-only", action="store_true", help="skip llama-server")
    ap.add_argument("--quick", action="store_true", help="3 clients x 8 requests (+ every malformed case), max_tokens 24, 1 round")
    ap.add_argument("--peer-strict", action="store_true", help="llama-server findings fail the run too")
    ap.add_argument("--json-out", default=RESULTS)
    args = ap.parse_args(argv)
    if args.quick:
        args.clients, args.requests, args.max_tokens, args.rounds = 3, 8, 24, 1
        args.malformed_rate, args.disconnect_rate = 0.2, 0.2
    if min(args.clients, args.requests, args.rounds, args.max_tokens) < 1 or args.max_tokens > args.ctx // 2:
        ap.error("clients, requests, rounds and max-tokens must be >= 1, and max-tokens <= ctx / 2")
    return args


async def main_async(args):
    servers = ["slm"] if args.slm_only else ["slm", "llama-server"]
    for s in servers:
        exe = args.slm if s == "slm" else args.llama_server
        if not os.access(exe, os.X_OK):
            hint = "cargo build --release -p slm-cli" if s == "slm" else "reference/build_llama_cpp.sh"
            sys.exit(f"{exe} not found or not executable; build it with {hint}")
    plan = make_plan(args)
    kinds = [spec["kind"] for reqs in plan for spec in reqs]
    print(f"plan: {len(kinds)} requests: " + ", ".join(f"{kinds.count(k)} {k}" for k in sorted(set(kinds))),
          file=sys.stderr)
    rounds = []
    t_start = time.time()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="server_load_") as logdir:
        for rnd in range(args.rounds):
            for s in servers:
                rec = await run_server(s, args, plan, rnd, logdir)
                if rec["failures"]:
                    try:  # keep the evidence: the server's log tail goes into the record
                        with open(rec["log"], "rb") as f:
                            rec["log_tail"] = f.read()[-3000:].decode("utf-8", "replace")
                    except OSError:
                        pass
                rounds.append(rec)
    md = table(rounds, servers)
    fatal = [f"{r['server']} round {r['round']}: {f}" for r in rounds for f in r["failures"]
             if r["server"] == "slm" or args.peer_strict]
    peer = [f"llama-server round {r['round']}: {f}" for r in rounds for f in r["failures"]
            if r["server"] != "slm" and not args.peer_strict]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    built = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(os.path.getmtime(args.slm)))
    out = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t_start)), "commit": commit,
           "slm_binary": {"path": args.slm, "built": built},  # HEAD need not be what the binary was built from
           "command": " ".join([os.path.basename(sys.executable), "bench/server_load.py"] + sys.argv[1:]),
           "settings": {k: v for k, v in vars(args).items() if k != "json_out"},
           "plan": plan, "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
           "wall_s": time.time() - t_start, "rounds": rounds, "table_md": md,
           "failures": fatal, "peer_findings": peer}
    write_json(args.json_out, out)
    print(md)
    print(f"\nwall {out['wall_s']:.0f} s; load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f};"
          f" JSON: {args.json_out}")
    for r in rounds:
        if r.get("malformed_status"):
            print(f"{r['server']} r{r['round']} malformed -> status: "
                  + ", ".join(f"{k} {sorted(set(map(str, v)))}" for k, v in sorted(r["malformed_status"].items())))
    for p in peer:
        print(f"peer finding: {p}")
    for f in fatal:
        print(f"FAIL: {f}")
    print("FAILED" if fatal else "all checks passed")
    return 1 if fatal else 0


def main(argv=None):
    return asyncio.run(main_async(parse_args(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    sys.exit(main())
