#!/usr/bin/env bash
# Build llama.cpp's own C++ tools from the exact source pinned by llama-cpp-python==0.3.36
# (the same llama.cpp commit that produced the golden files in tests/golden/).
#
# Usage:  reference/build_llama_cpp.sh            # builds into $LLAMA_CPP_DIR
#         LLAMA_CPP_DIR=/some/dir reference/build_llama_cpp.sh
#         JOBS=4 reference/build_llama_cpp.sh     # default -j2
#
# Produces $LLAMA_CPP_DIR/bin/{llama-bench,llama-perplexity,llama-cli,llama-quantize,llama-server}
# and keeps the unpacked sdist in $LLAMA_CPP_DIR/src (reference/PERPLEXITY.md quotes its
# tools/perplexity/perplexity.cpp). Idempotent: does nothing if all binaries already exist.
# Needs: python3 + pip (with scikit-build-core, cmake, ninja available, installed if missing), a C++ compiler.
set -euo pipefail

VERSION=0.3.36
LLAMA_CPP_DIR="${LLAMA_CPP_DIR:-$HOME/.cache/slm-peers/llama.cpp}"
JOBS="${JOBS:-2}"
TARGETS=(llama-bench llama-perplexity llama-cli llama-quantize llama-server)

missing=0
for t in "${TARGETS[@]}"; do
    [[ -x "$LLAMA_CPP_DIR/bin/$t" ]] || missing=1
done
if [[ $missing -eq 0 ]]; then
    echo "llama.cpp tools already built in $LLAMA_CPP_DIR/bin; nothing to do"
    exit 0
fi

for mod in scikit_build_core cmake ninja; do
    python3 -c "import $mod" 2>/dev/null || python3 -m pip install "${mod//_/-}"
done

mkdir -p "$LLAMA_CPP_DIR"
SRC="$LLAMA_CPP_DIR/src"
if [[ ! -d "$SRC/vendor/llama.cpp" ]]; then
    dl="$LLAMA_CPP_DIR/sdist"
    mkdir -p "$dl"
    if ! ls "$dl"/llama_cpp_python-"$VERSION".tar.gz >/dev/null 2>&1; then
        python3 -m pip download --no-deps --no-binary :all: --no-build-isolation \
            -d "$dl" "llama-cpp-python==$VERSION"
    fi
    rm -rf "$SRC.tmp"
    mkdir -p "$SRC.tmp"
    tar -xzf "$dl"/llama_cpp_python-"$VERSION".tar.gz -C "$SRC.tmp" --strip-components=1
    mv "$SRC.tmp" "$SRC"
fi

BUILD="$LLAMA_CPP_DIR/build"
cmake -S "$SRC/vendor/llama.cpp" -B "$BUILD" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release \
    -DGGML_NATIVE=ON \
    -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_SERVER=ON \
    -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF \
    -DBUILD_SHARED_LIBS=OFF
cmake --build "$BUILD" -j"$JOBS" --target "${TARGETS[@]}"

mkdir -p "$LLAMA_CPP_DIR/bin"
for t in "${TARGETS[@]}"; do
    cp -f "$BUILD/bin/$t" "$LLAMA_CPP_DIR/bin/$t"
done
# Record exactly which source this is.
{
    echo "llama-cpp-python $VERSION"
    "$LLAMA_CPP_DIR/bin/llama-cli" --version 2>&1 | head -n 4 || true
} > "$LLAMA_CPP_DIR/VERSION.txt"
cat "$LLAMA_CPP_DIR/VERSION.txt"
echo "built: $LLAMA_CPP_DIR/bin"
