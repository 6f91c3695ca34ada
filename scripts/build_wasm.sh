#!/usr/bin/env bash
# Builds slm in WebAssembly (crates/slm-wasm, SIMD128) and the in-browser page into a static folder
# (default target/web; `slm serve` serves target/web under /web, any static file server works too).
# Works on a fresh machine: adds the wasm32 target with rustup when missing and installs the
# wasm-bindgen CLI at exactly the version of the wasm-bindgen crate in Cargo.lock (into
# target/wasm-tools, once). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/web}"

if ! rustc --print target-libdir --target wasm32-unknown-unknown >/dev/null 2>&1 \
  || [ ! -d "$(rustc --print target-libdir --target wasm32-unknown-unknown)" ]; then
  rustup target add wasm32-unknown-unknown
fi

# The CLI that writes the JavaScript glue must match the crate's version exactly.
version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)"
[ -n "$version" ] || { echo "build_wasm: no wasm-bindgen in Cargo.lock" >&2; exit 1; }
tools="$PWD/target/wasm-tools"
if [ "$("$tools/bin/wasm-bindgen" --version 2>/dev/null)" != "wasm-bindgen $version" ]; then
  echo "== installing wasm-bindgen-cli $version into $tools"
  # Not --locked: the CLI's own lock file pins a webpki-roots release the registry no longer serves.
  cargo install --quiet --force --root "$tools" wasm-bindgen-cli --version "$version"
fi

echo "== build slm-wasm (wasm32-unknown-unknown, release, simd128)"
# RUSTFLAGS replaces .cargo/config.toml's target rustflags, so the getrandom backend is repeated.
# With --target, these flags reach only the wasm artifacts (host build scripts and target/release
# are untouched).
RUSTFLAGS='--cfg getrandom_backend="wasm_js" -C target-feature=+simd128' \
  cargo build --release --target wasm32-unknown-unknown -p slm-wasm

echo "== web page -> $out"
mkdir -p "$out/pkg"
"$tools/bin/wasm-bindgen" --target web --no-typescript --out-dir "$out/pkg" \
  target/wasm32-unknown-unknown/release/slm_wasm.wasm
cp crates/slm-wasm/web/* "$out/"
ls -l "$out/pkg/slm_wasm_bg.wasm" | awk '{ printf "slm_wasm_bg.wasm: %.1f MiB\n", $5 / 1048576 }'
