#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (ASan + UBSan, UBSan fatal) and runs each
# for a bounded time on a copy of its seed corpus. Exit status: 0 when every target ran clean;
# 1 on any crash, leak, timeout, out-of-memory or sanitizer report (the reproducer is kept under
# BUILD/artifacts/TARGET/); 77 when no suitable clang with libFuzzer is installed.
#   usage: tests/fuzz/run_fuzzers.sh [seconds per target, default 20]
#   SKIPLLM_FUZZ_BUILD_DIR  build directory (default: build-fuzz in the repository root)
#   SKIPLLM_FUZZ_CXX        the clang++ to use (default: the first of clang++-19, clang++-18, clang++
#                           that is clang >= 18)
#   SKIPLLM_FUZZ_TARGETS    space-separated subset of the targets (default: all)
#   SKIPLLM_MODEL           GGUF whose tokenizer the tokenizer targets use (default: the cached
#                           SmolLM2 model; without it, a built-in byte-level vocabulary)
#   SKIPLLM_JOBS            build jobs (default: number of cores)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
seconds=${1:-20}
build=${SKIPLLM_FUZZ_BUILD_DIR:-$root/build-fuzz}
jobs=${SKIPLLM_JOBS:-$(nproc 2>/dev/null || echo 2)}
targets=(${SKIPLLM_FUZZ_TARGETS:-gguf tokenizer_vocab tokenizer_encode tokenizer_decode chat_template policy_config json_reader datasets standin_file})
[[ $seconds =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [seconds per target]" >&2; exit 2; }

# ---- A clang that compiles the library (float template arguments: clang >= 18) and links libFuzzer.
skip() {
  echo "run_fuzzers: SKIPPED: $1" >&2
  echo "run_fuzzers: on Debian 12: apt-get install clang-19 libclang-rt-19-dev" >&2
  exit 77
}
cxx=""
for candidate in ${SKIPLLM_FUZZ_CXX:-clang++-19 clang++-18 clang++}; do
  command -v "$candidate" >/dev/null || continue
  "$candidate" --version 2>/dev/null | grep -q clang || continue
  major=$("$candidate" -dumpversion | cut -d. -f1)
  if [ "$major" -ge 18 ]; then cxx=$candidate; break; fi
done
[ -n "$cxx" ] || skip "no clang++ >= 18 found among: ${SKIPLLM_FUZZ_CXX:-clang++-19 clang++-18 clang++} (libFuzzer needs clang; the library's float template arguments need clang >= 18)"
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' > "$probe/probe.cpp"
"$cxx" -fsanitize=fuzzer,address,undefined "$probe/probe.cpp" -o "$probe/probe" 2>"$probe/log" ||
  skip "$cxx cannot link -fsanitize=fuzzer,address,undefined (libFuzzer runtime missing?): $(head -c 300 "$probe/log")"

# ---- Build.
mkdir -p "$build"
if ! { cmake -S "$root/tests/fuzz" -B "$build" -DCMAKE_CXX_COMPILER="$cxx" &&
       cmake --build "$build" -j "$jobs" --target $(printf 'fuzz_%s ' "${targets[@]}"); } >"$build/build.log" 2>&1; then
  tail -n 40 "$build/build.log" >&2
  echo "run_fuzzers: the build failed (log: $build/build.log)" >&2
  exit 1
fi

# ---- Seeds: the checked-in corpus plus the repository's own fixtures of each format.
extra_seeds() {
  case $1 in
    gguf) echo "$root/tests/engine/fixtures/quant_golden.gguf.bin" ;;
    policy_config | json_reader)
      echo "$root"/tests/fixtures/policy_config/valid/*.json "$root"/tests/fixtures/policy_config/invalid/*.json \
        "$root"/examples/engine/configs/*.json ;;
  esac
}
# The malformed GGUF fixtures (tests/engine/fixtures/make_malformed_gguf.py): every class of damage
# the reader must refuse, each one step from a valid file; the few of 1 MB and more (the memory
# cap cases) would only slow every mutation down.
malformed_gguf_seeds() {
  local dir=$1 out=$build/malformed_gguf
  rm -rf "$out"
  if python3 "$root/tests/engine/fixtures/make_malformed_gguf.py" "$out" >/dev/null 2>&1; then
    find "$out" -name '*.gguf' -size -64k -exec sh -c 'cp "$1" "$2/malformed_$(basename "$1" .gguf)"' _ {} "$dir" \;
  else
    echo "run_fuzzers: note: make_malformed_gguf.py failed; fuzz_gguf runs without the malformed fixtures" >&2
  fi
}
# The eval data files, cut to their first lines, behind the datasets target's selector byte.
dataset_seeds() {
  local dir=$1 data=$root/examples/engine/data
  for f in "$data"/calibration/factoid.jsonl "$data"/report/factoid.jsonl; do
    { printf '\x00'; head -n 5 "$f"; } > "$dir/data_$(basename "$(dirname "$f")")_factoid"
  done
  for f in "$data"/calibration/agreement.jsonl "$data"/report/agreement.jsonl "$data"/report/chat.jsonl; do
    { printf '\x01'; head -n 5 "$f"; } > "$dir/data_$(basename "$(dirname "$f")")_$(basename "$f" .jsonl)"
  done
  { printf '\x02'; head -n 2 "$data/report/summarize.jsonl"; } > "$dir/data_report_summarize"
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:print_summary=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for target in "${targets[@]}"; do
  corpus=$build/corpus/$target artifacts=$build/artifacts/$target/ log=$build/logs/$target.log
  rm -rf "$corpus" "$artifacts"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  [ -d "$root/tests/fuzz/corpus/$target" ] && cp "$root/tests/fuzz/corpus/$target"/* "$corpus/"
  for f in $(extra_seeds "$target"); do cp "$f" "$corpus/$(basename "$(dirname "$f")")_$(basename "$f")"; done
  [ "$target" = datasets ] && dataset_seeds "$corpus"
  [ "$target" = gguf ] && malformed_gguf_seeds "$corpus"
  status=0
  "$build/fuzz_$target" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$artifacts" "$corpus" >"$log" 2>&1 || status=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  rss=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -n 1 || true)
  units=$(find "$corpus" -type f | wc -l)
  if [ "$status" -eq 0 ]; then
    echo "fuzz_$target: ok, ${execs} execs (${rate}/s) in ${seconds}s, ${cov:-cov: ?}, corpus ${units} files, peak ${rss} MB"
  else
    failed+=("$target")
    echo "fuzz_$target: FAILED (exit $status), ${execs} execs, ${cov:-cov: ?}; log $log, reproducer in $artifacts"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|fuzz: property)|(deadly signal|timeout|out-of-memory|uncaught)' "$log" |
      head -n 5 | sed 's/^/    /'
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "run_fuzzers: ${#failed[@]} of ${#targets[@]} targets failed: ${failed[*]}" >&2
  exit 1
fi
echo "run_fuzzers: all ${#targets[@]} targets clean, ${seconds}s each"
