#!/usr/bin/env bash
# Golden data for `slm quantize`: llama-quantize's output on a small random F32 model, for every
# preset slm supports, without and with an importance matrix. Writes
# tests/golden/quantize_llamacpp.json: {preset: {tensor: [ggml type name, sha256 of the data]}}.
#
# Usage: reference/gen_quantize_golden.sh   (needs reference/build_llama_cpp.sh's tools and
#        `pip install gguf==0.17.1 numpy`). Run by hand; the JSON is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${LLAMA_CPP_DIR:-$HOME/.cache/slm-peers/llama.cpp}/bin"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cargo run --release -q -p slm-model --example random_model -- "$WORK/random-f32.gguf"
# An importance matrix in llama.cpp's GGUF layout, written by slm (checks that llama-quantize reads it).
cargo run --release -q -p slm-model --example random_model -- "$WORK/random-f32.gguf" --imatrix "$WORK/imatrix.gguf"

PRESETS=(F16 BF16 Q8_0 Q6_K Q5_1 Q5_K_M Q5_K_S Q5_0 Q4_1 Q4_K_M Q4_K_S Q4_0 Q3_K_L Q3_K_M Q3_K_S Q2_K)
for p in "${PRESETS[@]}"; do
    "$BIN/llama-quantize" "$WORK/random-f32.gguf" "$WORK/out-$p.gguf" "$p" 1 >"$WORK/log-$p.txt" 2>&1 \
        || { cat "$WORK/log-$p.txt"; exit 1; }
done
for p in Q4_0 Q5_0 Q4_K_M Q3_K_S Q2_K Q2_K_S Q5_K_S Q6_K; do
    "$BIN/llama-quantize" --imatrix "$WORK/imatrix.gguf" "$WORK/random-f32.gguf" "$WORK/out-imatrix-$p.gguf" "$p" 1 \
        >"$WORK/log-imatrix-$p.txt" 2>&1 || { cat "$WORK/log-imatrix-$p.txt"; exit 1; }
done

python3 - "$WORK" <<'PY'
import hashlib, json, pathlib, sys
from gguf import GGUFReader
work = pathlib.Path(sys.argv[1])
out = {}
for f in sorted(work.glob("out-*.gguf")):
    key = f.stem[len("out-"):]
    r = GGUFReader(str(f))
    out[key] = {t.name: [t.tensor_type.name, hashlib.sha256(bytes(t.data.tobytes())).hexdigest()] for t in r.tensors}
dst = pathlib.Path("tests/golden/quantize_llamacpp.json")
dst.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
print(f"wrote {dst}: {len(out)} presets")
PY
