#!/usr/bin/env bash
# Golden perplexities of SmolLM2-135M-Instruct Q4_1 with LoRA adapters applied by llama.cpp's own
# llama-perplexity (`--lora`, `--lora-scaled`), for crates/slm-cli/tests/lora_cli.rs.
#
# Pinned peer: llama.cpp as vendored by llama-cpp-python==0.3.36 (commit 0c1e57098), built by
#              reference/build_llama_cpp.sh into $LLAMA_CPP_DIR (default ~/.cache/slm-peers/llama.cpp).
#              (llama-cpp-python itself is not used: its wheel must be compiled, and llama-perplexity
#              takes the same adapters through the same llama_adapter_lora_init code.)
# Adapters:    two deterministic random adapters written by slm's own GGUF adapter writer
#              (crates/slm-model/examples/random_lora.rs = LoraAdapter::random), so the golden also
#              proves that llama.cpp accepts slm's adapter files. Their sha256 are recorded; the test
#              regenerates them in memory and checks the hashes before comparing.
#                a1: targets q,k,v,o  rank 4 alpha 8 seed 1 B amplitude 0.5
#                a2: targets gate,up,down rank 2 alpha 4 seed 2 B amplitude 0.8
# Usage:       reference/gen_lora_golden.sh [MODEL] [OUT_JSON]
#              defaults: /tmp/assets/SmolLM2-135M-Instruct.Q4_1.gguf, tests/golden/lora_perplexity_smollm2.json
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$here/.."
MODEL="${1:-/tmp/assets/SmolLM2-135M-Instruct.Q4_1.gguf}"
OUT="${2:-$root/tests/golden/lora_perplexity_smollm2.json}"
LLAMA_CPP_DIR="${LLAMA_CPP_DIR:-$HOME/.cache/slm-peers/llama.cpp}"
PPL_BIN="$LLAMA_CPP_DIR/bin/llama-perplexity"
EXPECTED_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
TEXT=/usr/share/common-licenses/Apache-2.0
CTX=128

[[ -x "$PPL_BIN" ]] || { echo "no $PPL_BIN: run reference/build_llama_cpp.sh first" >&2; exit 1; }
sha="$(sha256sum "$MODEL" | cut -d' ' -f1)"
[[ "$sha" == "$EXPECTED_SHA" ]] || { echo "model sha256 $sha != $EXPECTED_SHA" >&2; exit 1; }

(cd "$root" && cargo build --release -q -p slm-model --example random_lora)
gen="$root/target/release/examples/random_lora"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$gen" "$MODEL" "$tmp/a1.gguf" q,k,v,o 4 8 1 0.5
"$gen" "$MODEL" "$tmp/a2.gguf" gate,up,down 2 4 2 0.8

# name | llama-perplexity adapter flags | slm --lora values (space-separated)
RUNS=(
    "a1|--lora $tmp/a1.gguf|a1.gguf"
    "a2_half|--lora-scaled $tmp/a2.gguf:0.5|a2.gguf:0.5"
    "a1_a2_half|--lora $tmp/a1.gguf --lora-scaled $tmp/a2.gguf:0.5|a1.gguf a2.gguf:0.5"
)
: > "$tmp/runs.tsv"
for run in "${RUNS[@]}"; do
    IFS='|' read -r name flags slm_lora <<< "$run"
    echo "== $name: llama-perplexity $flags" >&2
    # shellcheck disable=SC2086
    "$PPL_BIN" -m "$MODEL" -f "$TEXT" -c "$CTX" -b "$CTX" -t 2 $flags > "$tmp/log_$name" 2>&1 || {
        cat "$tmp/log_$name" >&2; exit 1; }
    line="$(grep 'Final estimate' "$tmp/log_$name")"
    ppl="$(sed -E 's/.*PPL = ([0-9.]+) \+\/- ([0-9.]+).*/\1/' <<< "$line")"
    se="$(sed -E 's/.*PPL = ([0-9.]+) \+\/- ([0-9.]+).*/\2/' <<< "$line")"
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$slm_lora" "$ppl" "$se" "${flags//$tmp\//}" >> "$tmp/runs.tsv"
done

python3 - "$tmp" "$OUT" "$(basename "$MODEL")" "$EXPECTED_SHA" "$TEXT" "$CTX" <<'PY'
import hashlib, json, sys
tmp, out, model, model_sha, text, ctx = sys.argv[1:7]
sha = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()
runs = []
for line in open(f"{tmp}/runs.tsv"):
    name, slm_lora, ppl, se, flags = line.rstrip("\n").split("\t")
    runs.append({
        "name": name, "lora": slm_lora.split(), "ppl": float(ppl), "ppl_stderr": float(se),
        "command": f"llama-perplexity -m {model} -f {text} -c {ctx} -b {ctx} -t 2 {flags}",
    })
doc = {
    "generator": "reference/gen_lora_golden.sh (llama.cpp 0c1e57098 via llama-cpp-python 0.3.36 sdist, llama-perplexity)",
    "model_file": model, "model_sha256": model_sha, "file": text, "ctx": int(ctx),
    "adapters": {
        "a1.gguf": {"targets": "q,k,v,o", "rank": 4, "alpha": 8.0, "seed": 1, "b_amplitude": 0.5, "sha256": sha(f"{tmp}/a1.gguf")},
        "a2.gguf": {"targets": "gate,up,down", "rank": 2, "alpha": 4.0, "seed": 2, "b_amplitude": 0.8, "sha256": sha(f"{tmp}/a2.gguf")},
    },
    "runs": runs,
}
with open(out, "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
print(f"wrote {out}")
PY
