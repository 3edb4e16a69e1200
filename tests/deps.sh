#!/usr/bin/env bash
# Installs what building and testing skipllm needs, if it is missing: a C++20 compiler, CMake,
# Boost.Test, nlohmann/json (the reference engine's JSON reader), Python 3 (Debian/Ubuntu
# packages), and a venv with the gguf package for benchmarks/make_synthetic_gguf.py. CUDA is
# optional and never installed here: with nvcc on PATH the CUDA targets are compiled too.
set -euo pipefail

missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v g++ >/dev/null || missing+=(g++)
command -v make >/dev/null || missing+=(make)
[ -f /usr/include/boost/test/unit_test.hpp ] || missing+=(libboost-test-dev)
[ -f /usr/include/nlohmann/json.hpp ] || missing+=(nlohmann-json3-dev)
command -v clang-format >/dev/null || missing+=(clang-format)
# The fuzz targets (tests/fuzz) need clang >= 18 with libFuzzer: Debian 12 ships clang-19.
command -v clang++-19 >/dev/null || missing+=(clang-19)
[ -n "$(find /usr/lib/llvm-19/lib/clang -name 'libclang_rt.fuzzer*.a' 2>/dev/null | head -n 1)" ] || missing+=(libclang-rt-19-dev)
command -v python3 >/dev/null || missing+=(python3 python3-pip)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)  # the benchmark venv

install_bench_venv() {
  # benchmarks/make_synthetic_gguf.py (and its test) need the gguf package: a venv of its own,
  # so the system Python stays untouched.
  local venv=${SKIPLLM_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/skipllm/bench-venv}
  local root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  "$venv/bin/python3" -c 'import gguf, numpy' 2>/dev/null && return 0
  echo "skipllm: creating $venv (gguf, numpy)" >&2
  python3 -m venv "$venv" && "$venv/bin/python3" -m pip install -q -r "$root/benchmarks/requirements-bench.txt" ||
    echo "skipllm: could not create $venv; the synthetic-model test will be skipped" >&2
}

if [ ${#missing[@]} -eq 0 ]; then
  install_bench_venv
  exit 0
fi
echo "skipllm: installing ${missing[*]}" >&2
if ! command -v apt-get >/dev/null; then
  echo "skipllm: please install ${missing[*]} with your package manager" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "skipllm: run as root or install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
install_bench_venv
