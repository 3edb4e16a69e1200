#!/usr/bin/env bash
# The CPU test suite under AddressSanitizer (with LeakSanitizer) and UndefinedBehaviorSanitizer.
#   tests/sanitize/run_sanitized.sh [build dir]     (default: build-sanitize)
#   SKIPLLM_JOBS   parallel jobs (default: number of cores)
#   SKIPLLM_MODEL  the GGUF the engine tests run on (default: the cached default model, fetched
#                  once by the sanitized `skipllm fetch-model`)
#   CXX            the compiler (default: g++; clang++ works too)
#
# Every test that runs skipllm's own code runs here: the library's unit tests, the engine's tests
# (which also run the `skipllm` executable, built with the same sanitizers) and the examples.
# Left out, by label, are the tests whose subject is a compiler or another tool rather than our
# binaries: compile_fail (expects a compile error), consumer (configures and builds other CMake
# projects with the unsanitized toolchain), python (the Python config reader) and style
# (clang-format). gpu tests do not exist here (CUDA is off). Also left out: the long run (label
# long), 2 x 4,096 decode steps that would take minutes under ASan; its memory and statistics
# checks run in the plain build, and every code path it drives runs here in the shorter engine
# tests. And engine_test_golden (492 s under ASan on a busy 2-core machine, half of this run): what it
# checks is numeric agreement with reference logits, which the plain build checks; the forward
# pass, prefill in chunks and decode it drives run here in engine_test_eval, engine_test_calibrate,
# engine_test_bad_input and engine_test_cli.
#
# Fails on any sanitizer report. Reports go to files (log_path) as well as failing the process,
# so a report from a child process whose exit code a test expected to be non-zero still fails
# the run.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$(realpath -m "${1:-$root/build-sanitize}")
jobs=${SKIPLLM_JOBS:-$(nproc 2>/dev/null || echo 2)}
sanitizers="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"

# -O2 keeps the forward pass fast enough; -g1 gives the reports file:line. Assertions stay on
# (no NDEBUG), and _GLIBCXX_ASSERTIONS adds bounds checks to std::vector/std::span indexing,
# which catch what ASan cannot: an index past size() but inside capacity(). g++'s
# -Wmaybe-uninitialized is off: the sanitizers' instrumentation makes it report false positives
# (in Boost.PropertyTree's optional, with -Werror on the tests), as GCC's manual warns.
flags="$sanitizers -D_GLIBCXX_ASSERTIONS"
if "${CXX:-g++}" --version | grep -q 'Free Software Foundation'; then
  flags="$flags -Wno-maybe-uninitialized"
fi
cmake -S "$root" -B "$build" -DCMAKE_CXX_COMPILER="${CXX:-g++}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1" -DCMAKE_CXX_FLAGS="$flags" \
      -DCMAKE_EXE_LINKER_FLAGS="$sanitizers" -DSKIPLLM_ENABLE_CUDA=OFF -DSKIPLLM_BUILD_TESTS=ON \
      -DSKIPLLM_BUILD_EXAMPLES=ON -DSKIPLLM_BUILD_BENCHMARKS=OFF
cmake --build "$build" -j "$jobs"

reports="$build/sanitizer-reports"
rm -rf "$reports"
mkdir -p "$reports"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:log_path=$reports/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan"

model=${SKIPLLM_MODEL:-}
if [ -z "$model" ]; then
  model=$("$build/examples/engine/skipllm" fetch-model) || {
    echo "skipllm: could not fetch the default model; engine tests that need it will be skipped" >&2
    model=""
  }
fi
cmake -S "$root" -B "$build" -DSKIPLLM_TEST_MODEL="$model" >/dev/null

status=0
ctest --test-dir "$build" -j "$jobs" --output-on-failure -LE '^(compile_fail|consumer|python|style|long)$' \
  -E '^engine_test_golden$' ||
  status=$?
if compgen -G "$reports/*" >/dev/null; then
  echo "skipllm: sanitizer reports:" >&2
  for report in "$reports"/*; do
    echo "=== $report" >&2
    cat "$report" >&2
  done
  status=1
fi
exit "$status"
