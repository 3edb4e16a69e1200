#!/usr/bin/env bash
# The GPU run in one command, on a machine with a CUDA device (nvcc >= 12.4 unless a build
# directory made elsewhere is given) and the default model (SmolLM2-135M-Instruct.Q4_1.gguf in
# ~/.cache/skipllm/models, or SKIPLLM_MODEL; the machine may have no network):
#   configure with CUDA for the device's architecture -> build every CUDA test, the engine's
#   CUDA test against the CPU engine, and gpu_micro ->
#   ctest -L 'gpu|cuda' (every GPU test must run: a skipped one fails the run) -> gpu_micro
#   (synthetic 7B/8B-shaped weights generated on the device) -> one results file.
# Writes benchmarks/results/gpu_run_<date>.md (device, driver, date, commit, the tests' summary and
# their measured near-threshold counts, then the benchmark) and gpu_micro_<date>.md beside it.
# Exit status: non-zero when a GPU test failed or skipped, or the benchmark failed (the
# benchmark still runs after a test failure, so one run gives both).
#   SKIPLLM_BUILD_DIR   build directory (default: build-gpu)
#   SKIPLLM_BUILD_ONLY=1  configure and build, then stop: prepares SKIPLLM_BUILD_DIR on a machine
#                       without a GPU (set SKIPLLM_CUDA_ARCHS to the target's, e.g. 90, and
#                       SKIPLLM_MODEL to the model's path on the GPU machine: the test keeps it)
#   SKIPLLM_PREBUILT=1  use SKIPLLM_BUILD_DIR as it is (built on another machine): no configure,
#                       no build
#   SKIPLLM_JOBS        parallel jobs (default: number of cores)
#   SKIPLLM_CUDA_ARCHS  CMAKE_CUDA_ARCHITECTURES (default: the device's, from nvidia-smi; else 80;90)
#   SKIPLLM_BENCH_ARGS  extra gpu_micro arguments (e.g. --quick)
#   SKIPLLM_NO_DEPS=1   do not run tests/deps.sh (dependencies already installed)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SKIPLLM_BUILD_DIR:-$root/build-gpu}
jobs=${SKIPLLM_JOBS:-$(nproc 2>/dev/null || echo 2)}
results=$root/benchmarks/results
started=$(date +%s)
stamp=$(date -u +%Y-%m-%d)
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit="$commit+dirty"; fi

# Every CUDA test target; ctest then runs the labels gpu and cuda.
targets=(unit_cuda_host_side device_ptx_default device_ptx_fast_math gpu_residual_similarity gpu_gate
         gpu_conditional_node gpu_decoder_stack engine_gpu_cuda_generator gpu_micro)
model=${SKIPLLM_MODEL:-$HOME/.cache/skipllm/models/SmolLM2-135M-Instruct.Q4_1.gguf}

say() { echo "run_gpu: $*" >&2; }
elapsed() { echo $(($(date +%s) - started)); }

build_only=${SKIPLLM_BUILD_ONLY:-0}
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  device=$(nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader | head -n1)
  archs=${SKIPLLM_CUDA_ARCHS:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n1 | tr -d ' .')}
elif [ "$build_only" = 1 ]; then
  device="none (build only)"
  archs=${SKIPLLM_CUDA_ARCHS:-}
else
  say "no usable NVIDIA driver or device here (nvidia-smi fails); this run needs a GPU"
  say "(SKIPLLM_BUILD_ONLY=1 builds without one, for SKIPLLM_PREBUILT=1 on the GPU machine)"
  exit 2
fi
archs=${archs:-80;90}
say "device: $device; commit $commit"

if [ "$build_only" != 1 ] && [ ! -f "$model" ]; then
  say "the default model is missing: $model (copy it there or set SKIPLLM_MODEL); the engine's GPU test needs it"
  exit 2
fi

if [ "${SKIPLLM_PREBUILT:-0}" = 1 ]; then
  [ -f "$build/CMakeCache.txt" ] || { say "SKIPLLM_PREBUILT=1 but $build holds no build"; exit 2; }
  say "using the build in $build as it is"
else
  [ "${SKIPLLM_NO_DEPS:-0}" = 1 ] || "$root/tests/deps.sh"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSKIPLLM_ENABLE_CUDA=ON -DSKIPLLM_BUILD_TESTS=ON \
        -DSKIPLLM_BUILD_EXAMPLES=ON -DSKIPLLM_BUILD_BENCHMARKS=ON "-DCMAKE_CUDA_ARCHITECTURES=$archs" \
        "-DSKIPLLM_TEST_MODEL=$model"
  cmake --build "$build" -j "$jobs" --target "${targets[@]}"
  say "built in $(elapsed) s"
fi
if [ "$build_only" = 1 ]; then
  say "SKIPLLM_BUILD_ONLY=1: built $build for architectures $archs; run with SKIPLLM_PREBUILT=1 on the GPU"
  exit 0
fi

status=0
log=$(mktemp)
SKIPLLM_MODEL=$model ctest --test-dir "$build" -L 'gpu|cuda' --output-on-failure 2>&1 | tee "$log" || status=1
# A skipped GPU test means the device was not used: the run proves nothing, so it fails.
if grep -q "(Skipped)" "$log"; then
  say "GPU tests were skipped (no usable device from the tests' point of view):"
  grep "(Skipped)" "$log" >&2
  status=1
fi
# The measured near-threshold CPU/GPU differences (reported, not hidden).
near_tau=$(grep -hE "near-t(au|hreshold)|batched|graph replay|greedy tokens|fp16 weights|skipping on" \
  "$build/Testing/Temporary/LastTest.log" 2>/dev/null || true)

mkdir -p "$results"
bench_status=0
read -ra bench_args <<<"${SKIPLLM_BENCH_ARGS:-}"
"$build/benchmarks/gpu_micro" --out "$results" --commit "$commit" "${bench_args[@]}" || bench_status=$?
[ "$bench_status" = 0 ] || { say "gpu_micro failed ($bench_status)"; status=1; }

report=$results/gpu_run_$stamp.md
{
  echo "# skipllm GPU run"
  echo
  echo "- device (name, driver, memory, compute capability): $device"
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- commit: $commit"
  echo "- CUDA architectures built: $archs$([ "${SKIPLLM_PREBUILT:-0}" = 1 ] && echo ' (prebuilt)')"
  echo "- wall time, build included: $(elapsed) s"
  echo "- status: $([ "$status" = 0 ] && echo 'every GPU test ran and passed' || echo 'FAILED (see below)')"
  echo
  echo "## Tests (ctest -L 'gpu|cuda')"
  echo
  echo '```'
  grep -E "Test +#|tests passed|Skipped|Failed" "$log" || true
  echo '```'
  echo
  echo "## Near-threshold CPU/GPU differences, as measured by the tests"
  echo
  echo '```'
  echo "${near_tau:-none reported}"
  echo '```'
  echo
  echo "## Benchmark"
  echo
  cat "$results/gpu_micro_$(date -u +%Y-%m-%d).md" 2>/dev/null || echo "gpu_micro wrote no results"
} >"$report"
rm -f "$log"
say "results: $report ($(elapsed) s)"
exit "$status"
