#!/usr/bin/env bash
# Golden perplexity figures for SmolLM2-135M-Instruct Q4_1 from llama.cpp's own llama-perplexity tool.
#
# Pinned peer: llama.cpp as vendored by llama-cpp-python==0.3.36 (commit 0c1e57098), built by
#              reference/build_llama_cpp.sh into $LLAMA_CPP_DIR (default ~/.cache/slm-peers/llama.cpp).
#              Token counts come from llama-cpp-python==0.3.36 (same llama.cpp), tokenizing the file exactly
#              like llama-perplexity does (see reference/PERPLEXITY.md).
# Usage:       reference/gen_perplexity_golden.sh [MODEL] [OUT_JSON]
#              defaults: /tmp/assets/SmolLM2-135M-Instruct.Q4_1.gguf, tests/golden/perplexity_smollm2.json
# Produces:    OUT_JSON with one entry per (file, ctx) run: n_tokens, n_chunks, n_scored, ppl, ppl_stderr, command.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
MODEL="${1:-/tmp/assets/SmolLM2-135M-Instruct.Q4_1.gguf}"
OUT="${2:-$here/../tests/golden/perplexity_smollm2.json}"
LLAMA_CPP_DIR="${LLAMA_CPP_DIR:-$HOME/.cache/slm-peers/llama.cpp}"
PPL_BIN="$LLAMA_CPP_DIR/bin/llama-perplexity"
EXPECTED_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

[[ -x "$PPL_BIN" ]] || { echo "no $PPL_BIN: run reference/build_llama_cpp.sh first" >&2; exit 1; }
sha="$(sha256sum "$MODEL" | cut -d' ' -f1)"
[[ "$sha" == "$EXPECTED_SHA" ]] || { echo "model sha256 $sha != $EXPECTED_SHA" >&2; exit 1; }

# file ctx pairs
RUNS=(
    "/usr/share/common-licenses/Apache-2.0 128"
    "/usr/share/common-licenses/Apache-2.0 256"
    "/usr/share/common-licenses/GPL-3 512"
)

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
: > "$tmp/runs.tsv"
i=0
for run in "${RUNS[@]}"; do
    read -r file ctx <<< "$run"
    cmd="llama-perplexity -m $(basename "$MODEL") -f $file -c $ctx -b $ctx -t 2"
    echo "== $cmd" >&2
    "$PPL_BIN" -m "$MODEL" -f "$file" -c "$ctx" -b "$ctx" -t 2 > "$tmp/log$i" 2>&1 || {
        cat "$tmp/log$i" >&2; exit 1; }
    grep -E "Final estimate|calculating perplexity over" "$tmp/log$i" >&2
    printf '%s\t%s\t%s\t%s\n' "$file" "$ctx" "$tmp/log$i" "$cmd" >> "$tmp/runs.tsv"
    i=$((i + 1))
done

python3 - "$MODEL" "$OUT" "$EXPECTED_SHA" "$tmp/runs.tsv" <<'PY'
import json, re, sys
import llama_cpp

model, out, sha, runs_tsv = sys.argv[1:5]
assert llama_cpp.__version__ == "0.3.36", llama_cpp.__version__
llm = llama_cpp.Llama(model_path=model, n_ctx=64, n_threads=2, verbose=False)
runs = []
for line in open(runs_tsv, encoding="utf-8"):
    file, ctx, log, cmd = line.rstrip("\n").split("\t")
    ctx = int(ctx)
    text = open(log, encoding="utf-8", errors="replace").read()
    m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", text)
    c = re.search(r"calculating perplexity over (\d+) chunks, n_ctx=(\d+), batch_size=(\d+), n_seq=(\d+)", text)
    if not m or not c:
        sys.exit(f"cannot parse llama-perplexity output in {log}")
    # Exactly what llama-perplexity tokenizes: file bytes minus one trailing '\n' (common/arg.cpp -f),
    # common_tokenize(add_special=true, parse_special=false); add_special adds BOS only if the vocab says so.
    data = open(file, "rb").read()
    if data.endswith(b"\n"):
        data = data[:-1]
    ids = llm.tokenize(data, add_bos=True, special=False)
    n_chunks = int(c.group(1))
    assert n_chunks == len(ids) // ctx, (n_chunks, len(ids), ctx)
    assert int(c.group(4)) == 1, "expected one sequence per batch (-b == -c)"
    runs.append({
        "file": file,
        "ctx": ctx,
        "n_tokens": len(ids),
        "first_ids": ids[:8],
        "n_chunks": n_chunks,
        "n_scored": n_chunks * (ctx - ctx // 2 - 1),
        "ppl": float(m.group(1)),
        "ppl_stderr": float(m.group(2)),
        "command": cmd,
    })
meta = {
    "generator": "reference/gen_perplexity_golden.sh (llama.cpp 0c1e57098 via llama-cpp-python 0.3.36 sdist)",
    "model_file": model.rsplit("/", 1)[-1],
    "model_sha256": sha,
    "method": "see reference/PERPLEXITY.md",
    "runs": runs,
}
with open(out, "w", encoding="utf-8") as f:
    json.dump(meta, f, indent=1)
    f.write("\n")
print(json.dumps(runs, indent=1))
PY
