#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` from the MIT-licensed llama.cpp tree that the
# llama-cpp-python sdist vendors (PyPI is the only registry this machine reaches; no
# prebuilt server wheel exists there). ~5 min on 2 cores (the server target only), the first time only: the binary
# is kept in a per-machine cache keyed by the sdist's version, so a second install — or a
# fresh clone on the same machine — links the built one in seconds.
#
#   scripts/install-llama-server.sh [VENV]     (make llama-server)
#
# Environment: PO_LLAMA_CPP_VERSION (sdist version), LLAMA_CPP_BUILD_JOBS (default 2: an
# unbounded -j exhausts memory here), PO_TOOL_CACHE (default ~/.cache/po-console/tools).
set -euo pipefail

VENV="${1:-.venv}"
VERSION="${PO_LLAMA_CPP_VERSION:-0.3.36}"
JOBS="${LLAMA_CPP_BUILD_JOBS:-2}"
CACHE="${PO_TOOL_CACHE:-$HOME/.cache/po-console/tools}/llama.cpp-$VERSION"
BIN="$CACHE/bin/llama-server"

if [ ! -x "$BIN" ]; then
  command -v cmake >/dev/null || { echo "install-llama-server: cmake is missing (apt-get install cmake g++)" >&2; exit 1; }
  WORK="$(mktemp -d)"
  trap 'rm -rf "$WORK"' EXIT
  echo "install-llama-server: building llama-server from llama-cpp-python $VERSION's llama.cpp (~5 min on 2 cores, $JOBS jobs)"
  "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps \
    --no-binary :all: -d "$WORK" "llama-cpp-python==$VERSION"
  tar -xzf "$WORK"/llama_cpp_python-"$VERSION".tar.gz -C "$WORK"
  SRC="$WORK/llama_cpp_python-$VERSION/vendor/llama.cpp"
  # Static, server only: no tests, examples, web UI download (no internet) or TLS.
  cmake -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON \
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF \
    > "$WORK/cmake.log" 2>&1 || { tail -20 "$WORK/cmake.log" >&2; exit 1; }
  cmake --build "$WORK/build" --target llama-server -j "$JOBS" > "$WORK/build.log" 2>&1 \
    || { tail -30 "$WORK/build.log" >&2; exit 1; }
  # Written under a temporary name and renamed: an interrupted build leaves no binary that
  # looks complete.
  mkdir -p "$CACHE/bin"
  cp "$WORK/build/bin/llama-server" "$BIN.partial"
  cp "$SRC/LICENSE" "$CACHE/LICENSE"
  mv "$BIN.partial" "$BIN"
fi
ln -sf "$BIN" "$VENV/bin/llama-server"
"$VENV/bin/llama-server" --version 2>&1 | head -2
