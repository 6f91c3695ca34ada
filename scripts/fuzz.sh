#!/usr/bin/env bash
# Coverage-guided fuzzing of slm's parsers (libFuzzer via cargo-fuzz; the project is fuzz/).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]    (default: 30 s, every target)
#
# Builds every target, then runs each one (one at a time, one process) for the given time on its
# corpus fuzz/corpus/<target>/ (committed seeds: seed-*; what libFuzzer adds there is git-ignored).
# Exits non-zero on the first crash, timeout (> FUZZ_TIMEOUT s per input, default 30) or OOM
# (> 2 GiB RSS, or one allocation above the target's malloc limit); the reproducer is in fuzz/artifacts/<target>/ and
# the log in fuzz/artifacts/<target>.log. Reproduce with:
#   fuzz/target/x86_64-unknown-linux-gnu/release/<target> fuzz/artifacts/<target>/crash-...
#
# cargo fuzz needs nightly-only rustc flags (-Zsanitizer, -Cpasses=sancov-module...): on the
# stable toolchain RUSTC_BOOTSTRAP=1 unlocks them. Override the sanitizer with FUZZ_SANITIZER
# (address by default; "none" where the ASan runtime is missing). FUZZ_NO_BUILD=1 skips the build
# (the targets are already built, e.g. by a run still going in parallel). FUZZ_TIMEOUT (seconds per
# input, 30 by default: the ASan build is ~10x slower than release, and a template that burns its
# whole fuel budget takes ~5 s here) is wall-clock time: raise it on a heavily loaded machine,
# where a niced fuzzer can sit unscheduled for seconds. See docs/RELIABILITY.md.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

secs="${1:-30}"
shift || true
all=(gguf safetensors safetensors_index hf_config tokenizer tokenizer_gguf tokenizer_json tokenizer_config
  chat_template imatrix model_gguf bert_gguf wordpiece_json server_request constrain)
targets=("$@")
[ "${#targets[@]}" -eq 0 ] && targets=("${all[@]}")

CARGO_FUZZ_VERSION=0.13.2
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  cargo install --quiet --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
export RUSTC_BOOTSTRAP=1
sanitizer="${FUZZ_SANITIZER:-address}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
  echo "== build fuzz targets (sanitizer: $sanitizer, debug assertions + overflow checks on)"
  cargo fuzz build -O --debug-assertions --sanitizer "$sanitizer"
fi

# Per-target dictionary and extra libFuzzer flags.
dict_of() {
  case "$1" in
    gguf | tokenizer_gguf | model_gguf | bert_gguf | imatrix) echo dict/gguf.dict ;;
    hf_config | safetensors | safetensors_index | tokenizer_json | tokenizer_config | wordpiece_json | server_request | constrain)
      echo dict/json.dict ;;
    chat_template) echo dict/jinja.dict ;;
    tokenizer) echo dict/tokenizer.dict ;;
  esac
}
extra_of() {
  case "$1" in
    # Loading a model must allocate no more than its (small) file justifies: no single allocation
    # may exceed 256 MiB, far below what a forged shape would need.
    model_gguf | bert_gguf | gguf | safetensors | imatrix) echo "-malloc_limit_mb=256" ;;
  esac
}

mkdir -p artifacts
status=0
for t in "${targets[@]}"; do
  corpus="corpus/$t"
  mkdir -p "$corpus" "artifacts/$t"
  log="artifacts/$t.log"
  echo "== fuzz $t for ${secs}s (corpus: $(find "$corpus" -type f | wc -l) files)"
  # shellcheck disable=SC2046
  if ! "target/$triple/release/$t" "$corpus" -dict="$(dict_of "$t")" $(extra_of "$t") \
    -max_total_time="$secs" -rss_limit_mb=2048 -timeout="${FUZZ_TIMEOUT:-30}" -print_final_stats=1 \
    -artifact_prefix="artifacts/$t/" >"$log" 2>&1; then
    echo "FAILED: $t (see fuzz/$log and fuzz/artifacts/$t/)"
    tail -n 40 "$log"
    status=1
    break
  fi
  # One summary line: executions, coverage, corpus size.
  done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)"
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
  echo "   $t: ${execs:-?} runs; ${done_line:-no DONE line}"
done
exit "$status"
