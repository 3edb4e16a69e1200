#!/usr/bin/env bash
# The llama.cpp integration's tests as one step of tests/run.sh: builds the patched llama.cpp
# (libllama and the probe only, in the cache directory of examples/llama_cpp/run.sh, where a
# later run rebuilds only what the patch or the glue changed) and runs
# tests/llama_cpp/test_llama_cpp.py against the reference engine.
#   SKIPLLM_ENGINE  the skipllm executable (default: build/examples/engine/skipllm)
#   SKIPLLM_MODEL   the default model's GGUF (required)
# Exit status: 0 passed, 1 failed, 77 cannot run here (no model, or llama.cpp's source cannot
# be downloaded from PyPI), with the reason printed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ -z "${SKIPLLM_MODEL:-}" ] || [ ! -f "$SKIPLLM_MODEL" ]; then
  echo "llama_cpp tests: SKIPPED: the default model is not available (SKIPLLM_MODEL='${SKIPLLM_MODEL:-}')"
  exit 77
fi
start=$SECONDS
status=0
"$root/examples/llama_cpp/run.sh" test "$@" || status=$?
if [ "$status" -eq 3 ]; then
  echo "llama_cpp tests: SKIPPED: llama.cpp's source (the llama-cpp-python sdist) could not be downloaded"
  exit 77
fi
echo "llama_cpp tests: $([ "$status" -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - start)) s (build included)"
exit "$status"
