#!/usr/bin/env bash
# The whole test suite, from a fresh clone: dependencies, configure, build, ctest.
# CPU tests always run; GPU tests (label gpu) skip with a message when no CUDA device is present.
#   SKIPLLM_BUILD_DIR  build directory (default: build)
#   SKIPLLM_JOBS       parallel jobs (default: number of cores)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SKIPLLM_BUILD_DIR:-$root/build}
jobs=${SKIPLLM_JOBS:-$(nproc 2>/dev/null || echo 2)}

"$root/tests/deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSKIPLLM_BUILD_TESTS=ON \
      -DSKIPLLM_BUILD_EXAMPLES=ON -DSKIPLLM_BUILD_BENCHMARKS=ON
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" -j "$jobs" --output-on-failure
