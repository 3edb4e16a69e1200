#!/usr/bin/env bash
# llama.cpp with skipllm's FFN skipping: fetch, patch, build, generate, test, benchmark.
#
#   examples/llama_cpp/run.sh build [--plain] [--lib]   build the patched llama.cpp (--plain: the unpatched one;
#                                                        --lib: only libllama and the probe, what `test` needs)
#   examples/llama_cpp/run.sh generate [--policy FILE] [-m GGUF] [-n N] [--raw] [PROMPT]
#                                                        answer PROMPT (a chat turn; --raw: plain completion)
#                                                        with the patched build's llama-completion, greedy,
#                                                        FFN skipping on, and print the skip statistics
#   examples/llama_cpp/run.sh test [--with-plain]        the correctness checks (tests/llama_cpp/)
#   examples/llama_cpp/run.sh bench [--quick] [ARGS]     benchmarks/llama_cpp_bench.py (llama-bench)
#   examples/llama_cpp/run.sh paths                      print where the builds and binaries are
#
# llama.cpp is the copy vendored in the PyPI sdist of llama-cpp-python (LLAMA_CPP_PYTHON below),
# downloaded once with pip into the cache directory. Nothing of it is kept in this repository:
# only our patch (llama.cpp-skipllm.patch, applied with patch -p1 inside vendor/llama.cpp), the
# glue it compiles from this repository (skipllm_llama.*, through -DLLAMA_SKIPLLM_DIR) and our probe.
#
# Environment:
#   SKIPLLM_LLAMA_CPP_DIR  cache and build directory (default: ~/.cache/skipllm/llama_cpp)
#   SKIPLLM_JOBS           parallel build jobs (default: nproc)
#   SKIPLLM_MODEL          the GGUF to run (default: the cached SmolLM2-135M-Instruct Q4_1)
#   SKIPLLM_THREADS        threads for generate (default: nproc)
#   SKIPLLM_ENGINE         the reference engine for test (default: build/examples/engine/skipllm, built if missing)
set -euo pipefail

# The one place the llama.cpp version is pinned.
LLAMA_CPP_PYTHON_VERSION=0.3.36
LLAMA_CPP_PYTHON="llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION"
SDIST_TOP="llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${SKIPLLM_LLAMA_CPP_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/skipllm/llama_cpp}
jobs=${SKIPLLM_JOBS:-$(nproc 2>/dev/null || echo 2)}
patch_file="$here/llama.cpp-skipllm.patch"
probe_src="$here/skipllm_probe.cpp"

say() { echo "[llama_cpp $(date +%H:%M:%S)] $*" >&2; }
die() {
  echo "llama_cpp: error: $*" >&2
  exit 1
}

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
}

# ------------------------------------------------------------------ source

# Downloads the sdist once; prints its path. Exit status 3 when it cannot be downloaded (no
# network), so that tests can tell "cannot run here" from a failure.
fetch_sdist() {
  local dir="$cache/sdist"
  local tarball="$dir/$SDIST_TOP.tar.gz"
  if [ ! -s "$tarball" ]; then
    mkdir -p "$dir"
    say "downloading the $LLAMA_CPP_PYTHON sdist (llama.cpp source, 77 MB) into $dir"
    # pip prepares an sdist's metadata before saving it, in an isolated environment with the
    # package's build backend (scikit-build-core), which it downloads too.
    if ! python3 -m pip download -q --no-deps --no-binary :all: -d "$dir" "$LLAMA_CPP_PYTHON" >&2; then
      echo "llama_cpp: error: could not download $LLAMA_CPP_PYTHON from PyPI (see above; no network?)" >&2
      exit 3
    fi
    [ -s "$tarball" ] || die "pip did not leave $tarball"
  fi
  echo "$tarball"
}

# Extracts vendor/llama.cpp of the sdist into $1 (replacing what is there).
extract_to() {
  local dest=$1 tarball
  tarball=$(fetch_sdist)
  say "extracting llama.cpp into $dest"
  rm -rf "$dest.tmp"
  mkdir -p "$dest.tmp"
  tar -xzf "$tarball" -C "$dest.tmp" --strip-components=3 "$SDIST_TOP/vendor/llama.cpp"
  rm -rf "$dest"
  mv "$dest.tmp" "$dest"
  echo "$LLAMA_CPP_PYTHON" >"$dest/.skipllm-sdist"
}

file_hash() { sha256sum "$1" | cut -d' ' -f1; }

# The unpatched tree: extracted once.
ensure_plain_source() {
  local src="$cache/src-plain"
  if [ "$(cat "$src/.skipllm-sdist" 2>/dev/null)" != "$LLAMA_CPP_PYTHON" ]; then
    extract_to "$src"
  fi
}

# The files a patch changes (its "+++ b/PATH" lines).
patched_files() { sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$@" | sort -u; }

# The patched tree, kept in step with the patch file. When the patch changes, the previous one
# (saved in the tree) is reversed and the new one applied; every file either touches whose
# content ends up as it was gets its old modification time back, so the build recompiles only
# what really changed (a header such as llama-cparams.h would otherwise rebuild most of
# libllama). A tree that does not take the reversal cleanly is extracted afresh.
ensure_patched_source() {
  local src="$cache/src-skipllm"
  [ -f "$patch_file" ] || die "$patch_file not found: the patched build needs it (build --plain builds the unpatched llama.cpp)"
  local want keep="" f
  want=$(file_hash "$patch_file")
  if [ "$(cat "$src/.skipllm-sdist" 2>/dev/null)" = "$LLAMA_CPP_PYTHON" ] && [ -f "$src/.skipllm-applied.patch" ]; then
    [ "$(file_hash "$src/.skipllm-applied.patch")" = "$want" ] && return 0
    keep=$(mktemp -d)
    for f in $(patched_files "$src/.skipllm-applied.patch" "$patch_file"); do
      if [ -f "$src/$f" ]; then
        mkdir -p "$keep/$(dirname "$f")"
        cp -p "$src/$f" "$keep/$f"
      fi
    done
    say "the patch changed: reversing the previous one in $src"
    if patch -p1 -R -s -f -d "$src" <"$src/.skipllm-applied.patch" >/dev/null; then
      rm -f "$src/.skipllm-applied.patch"
    else
      say "the previous patch does not reverse cleanly: extracting afresh"
      extract_to "$src"
    fi
  else
    extract_to "$src"
  fi
  say "applying $(basename "$patch_file")"
  patch -p1 -s -f -d "$src" <"$patch_file" || die "$patch_file does not apply to llama.cpp from $LLAMA_CPP_PYTHON"
  # Backup files patch may leave for hunks applied with an offset are not part of the source.
  find "$src" -name '*.orig' -newer "$patch_file" -delete 2>/dev/null || true
  cp "$patch_file" "$src/.skipllm-applied.patch"
  if [ -n "$keep" ]; then
    (cd "$keep" && find . -type f) | while IFS= read -r f; do
      if cmp -s "$keep/$f" "$src/$f"; then touch -r "$keep/$f" "$src/$f"; fi
    done
    rm -rf "$keep"
  fi
}

# ------------------------------------------------------------------ build

# configure VARIANT: CPU only, native, without what neither our programs nor llama-bench use.
configure() {
  local variant=$1 src="$cache/src-$1" build="$cache/build-$1"
  local args=(-DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=ON
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_OPENSSL=OFF
    -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_EXAMPLES=OFF)
  # (LLAMA_CURL, still named in some guides, is deprecated and ignored by this llama.cpp: it has
  # no download code to switch off; LLAMA_OPENSSL=OFF keeps it from looking for OpenSSL.)
  # skipllm is reached through a link in the cache that always names this checkout, so that a
  # build made from another clone only recompiles the glue and the few llama.cpp files that
  # include it (a changed LLAMA_SKIPLLM_DIR would reconfigure and rebuild everything).
  if [ "$variant" = skipllm ]; then
    ln -sfn "$root" "$cache/skipllm-source"
    args+=("-DLLAMA_SKIPLLM_DIR=$cache/skipllm-source")
  fi
  if command -v ninja >/dev/null; then args+=(-G Ninja); fi
  if [ ! -f "$build/CMakeCache.txt" ] || [ "$(cat "$build/.skipllm-args" 2>/dev/null)" != "${args[*]}" ]; then
    say "configuring $build"
    rm -rf "$build"
    cmake -S "$src" -B "$build" "${args[@]}" >"$cache/configure-$variant.log" 2>&1 ||
      die "configuring llama.cpp failed; see $cache/configure-$variant.log"
    echo "${args[*]}" >"$build/.skipllm-args"
  fi
}

# Runs a build command, printing a progress line every 30 s from its [n/m] counter.
build_with_progress() {
  local log=$1
  shift
  local last=0 line
  set +e
  "$@" 2>&1 | while IFS= read -r line; do
    echo "$line" >>"$log"
    if [[ $line =~ ^\[([0-9]+)/([0-9]+)\] ]] || [[ $line =~ ^\[\ *([0-9]+)%\] ]]; then
      if [ $((SECONDS - last)) -ge 30 ]; then
        last=$SECONDS
        say "  ${BASH_REMATCH[0]} $(basename "${line##* }")"
      fi
    fi
  done
  local status=${PIPESTATUS[0]}
  set -e
  return "$status"
}

# The probe: our program, on llama.h alone, linked against this variant's libllama.
build_probe() {
  local variant=$1 src="$cache/src-$1" build="$cache/build-$1"
  local exe="$build/bin/skipllm_probe" lib="$build/bin/libllama.so"
  [ -f "$lib" ] || die "$lib not found after the build"
  if [ ! -x "$exe" ] || [ "$probe_src" -nt "$exe" ] || [ "$lib" -nt "$exe" ]; then
    say "compiling skipllm_probe against $variant libllama"
    "${CXX:-g++}" -std=c++17 -O2 -Wall -Wextra -o "$exe" "$probe_src" -I"$src/include" -I"$src/ggml/include" \
      -L"$build/bin" -lllama -lggml -lggml-base -Wl,-rpath,"$build/bin" ||
      die "compiling $probe_src failed"
  fi
}

build_variant() {
  local variant=$1 lib_only=$2
  if [ "$variant" = skipllm ]; then ensure_patched_source; else ensure_plain_source; fi
  configure "$variant"
  local build="$cache/build-$variant" targets=(llama)
  [ "$lib_only" = 1 ] || targets+=(llama-bench llama-completion)
  say "building $variant llama.cpp (${targets[*]}) with $jobs jobs; log: $cache/build-$variant.log"
  : >"$cache/build-$variant.log"
  local start=$SECONDS
  build_with_progress "$cache/build-$variant.log" cmake --build "$build" -j "$jobs" --target "${targets[@]}" ||
    die "building llama.cpp failed; see $cache/build-$variant.log"
  build_probe "$variant"
  say "$variant build done in $((SECONDS - start)) s: $build/bin"
}

cmd_build() {
  local variant=skipllm lib_only=0
  while [ $# -gt 0 ]; do
    case $1 in
      --plain) variant=plain ;;
      --lib) lib_only=1 ;;
      -h | --help) usage && exit 0 ;;
      *) die "build: unknown option $1" ;;
    esac
    shift
  done
  mkdir -p "$cache"
  build_variant "$variant" "$lib_only"
}

# ------------------------------------------------------------------ model

# The default model, as the engine finds it (SKIPLLM_MODEL, then the cache); fetched by the
# engine's `skipllm fetch-model` when missing and the engine is built.
default_model() {
  if [ -n "${SKIPLLM_MODEL:-}" ]; then
    [ -f "$SKIPLLM_MODEL" ] || die "SKIPLLM_MODEL=$SKIPLLM_MODEL: no such file"
    echo "$SKIPLLM_MODEL"
    return
  fi
  local base=${XDG_CACHE_HOME:-$HOME/.cache}
  local model="$base/skipllm/models/SmolLM2-135M-Instruct.Q4_1.gguf"
  [ -f "$model" ] && { echo "$model"; return; }
  local engine="$root/build/examples/engine/skipllm"
  [ -x "$engine" ] || die "$model not found; fetch it with \`build/examples/engine/skipllm fetch-model\` (see README.md) or set SKIPLLM_MODEL"
  "$engine" fetch-model
}

# ------------------------------------------------------------------ generate

cmd_generate() {
  local policy="" tokens=128 raw=0 prompt="" model=""
  while [ $# -gt 0 ]; do
    case $1 in
      --policy) policy=${2:?--policy FILE}; shift ;;
      -m) model=${2:?-m GGUF}; shift ;;
      -n) tokens=${2:?-n N}; shift ;;
      --raw) raw=1 ;;
      -h | --help) usage && exit 0 ;;
      -*) die "generate: unknown option $1" ;;
      *) prompt=$1 ;;
    esac
    shift
  done
  [ -n "$prompt" ] || prompt="What is the capital of France? Tell me a little about the city."
  [ -n "$model" ] || model=$(default_model)
  if [ -z "$policy" ]; then
    # As `skipllm generate`: the default model runs its calibrated config (the paper's settings
    # skip ~20% of its FFNs but wreck its text, docs/results.md); any other model the paper's.
    policy="$here/configs/paper.json"
    [ "$(basename "$model")" = SmolLM2-135M-Instruct.Q4_1.gguf ] &&
      policy="$root/examples/engine/configs/smollm2-135m-instruct.json"
  fi
  [ -f "$policy" ] || die "policy config $policy not found"
  mkdir -p "$cache"
  build_variant skipllm 0
  # --fit off: fitting the parameters to the device memory builds a throwaway context first;
  # on the CPU there is nothing to fit.
  local args=(-m "$model" -p "$prompt" -n "$tokens" --temp 0 -t "${SKIPLLM_THREADS:-$(nproc)}" --no-warmup
    --no-display-prompt -lv 1 --fit off)
  # An instruct model answers a chat turn: one turn with the model's chat template, then exit.
  if [ "$raw" = 1 ]; then args+=(-no-cnv); else args+=(-cnv -st); fi
  say "policy: $policy"
  SKIPLLM_POLICY="$policy" "$cache/build-skipllm/bin/llama-completion" "${args[@]}" </dev/null
}

# ------------------------------------------------------------------ test, bench

cmd_test() {
  local with_plain=0
  while [ $# -gt 0 ]; do
    case $1 in
      --with-plain) with_plain=1 ;;
      -h | --help) usage && exit 0 ;;
      *) die "test: unknown option $1" ;;
    esac
    shift
  done
  mkdir -p "$cache"
  build_variant skipllm 1
  local plain_args=()
  if [ "$with_plain" = 1 ]; then
    build_variant plain 1
    plain_args=(--plain-probe "$cache/build-plain/bin/skipllm_probe")
  elif [ -x "$cache/build-plain/bin/skipllm_probe" ]; then
    plain_args=(--plain-probe "$cache/build-plain/bin/skipllm_probe")
  fi
  local engine=${SKIPLLM_ENGINE:-$root/build/examples/engine/skipllm}
  if [ ! -x "$engine" ]; then
    # The decision test compares against skipllm's reference engine.
    say "building the reference engine (skipllm_tool) in $root/build"
    cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$root/build" -j "$jobs" --target skipllm_tool
    engine=$root/build/examples/engine/skipllm
  fi
  python3 "$root/tests/llama_cpp/test_llama_cpp.py" --probe "$cache/build-skipllm/bin/skipllm_probe" \
    "${plain_args[@]}" --model "$(default_model)" --engine "$engine" --configs "$here/configs"
}

cmd_bench() {
  mkdir -p "$cache"
  build_variant plain 0
  build_variant skipllm 0
  python3 "$root/benchmarks/llama_cpp_bench.py" --plain "$cache/build-plain/bin/llama-bench" \
    --patched "$cache/build-skipllm/bin/llama-bench" --model "$(default_model)" --models-dir "$cache/models" "$@"
}

cmd_paths() {
  echo "cache:   $cache"
  for v in plain skipllm; do
    echo "$v: source $cache/src-$v, build $cache/build-$v, binaries $cache/build-$v/bin"
  done
}

case ${1:-} in
  build) shift && cmd_build "$@" ;;
  generate) shift && cmd_generate "$@" ;;
  test) shift && cmd_test "$@" ;;
  bench) shift && cmd_bench "$@" ;;
  paths) cmd_paths ;;
  -h | --help | help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
esac
