#!/usr/bin/env bash
# The main job, from a fresh clone: dependencies, build, then decode with FFN skipping and
# print the skip statistics. Extra arguments go to the program.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SKIPLLM_BUILD_DIR:-$root/build}
"$root/tests/deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSKIPLLM_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target toy_engine
"$build/examples/toy_engine" "$@"
