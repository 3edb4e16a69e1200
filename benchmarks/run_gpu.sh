#!/usr/bin/env bash
# The GPU run in one command, on a machine with a CUDA device and nvcc >= 12.4:
#   configure with CUDA -> build the CUDA tests and gpu_micro -> ctest -L gpu -> benchmark.
# The benchmark writes benchmarks/results/gpu_micro_<date>.md. Exit status: non-zero when a
# GPU test failed (the benchmark still runs, so one run gives both).
#   SKIPLLM_BUILD_DIR   build directory (default: build-gpu)
#   SKIPLLM_JOBS        parallel jobs (default: number of cores)
#   SKIPLLM_CUDA_ARCHS  CMAKE_CUDA_ARCHITECTURES (default: the device's, from nvidia-smi; else 80;90)
#   SKIPLLM_BENCH_ARGS  extra gpu_micro arguments (e.g. --quick)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SKIPLLM_BUILD_DIR:-$root/build-gpu}
jobs=${SKIPLLM_JOBS:-$(nproc 2>/dev/null || echo 2)}
archs=${SKIPLLM_CUDA_ARCHS:-}
if [ -z "$archs" ] && command -v nvidia-smi >/dev/null; then
  archs=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n1 | tr -d ' .')
fi
archs=${archs:-80;90}
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit="$commit+dirty"; fi

"$root/tests/deps.sh"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSKIPLLM_ENABLE_CUDA=ON -DSKIPLLM_BUILD_TESTS=ON \
      -DSKIPLLM_BUILD_EXAMPLES=OFF -DSKIPLLM_BUILD_BENCHMARKS=ON "-DCMAKE_CUDA_ARCHITECTURES=$archs"
cmake --build "$build" -j "$jobs" --target unit_cuda_host_side gpu_residual_similarity gpu_gate \
      gpu_conditional_node gpu_decoder_stack gpu_micro

status=0
ctest --test-dir "$build" -L 'gpu|cuda' --output-on-failure || status=$?
# The measured near-threshold CPU/GPU differences (reported, not hidden):
grep -hE "near-t(au|hreshold)|batched:" "$build/Testing/Temporary/LastTest.log" 2>/dev/null || true

"$build/benchmarks/gpu_micro" --out "$root/benchmarks/results" --commit "$commit" ${SKIPLLM_BENCH_ARGS:-}
exit "$status"
