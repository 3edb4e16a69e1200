#!/usr/bin/env bash
# The project's one code style, checked on every C++/CUDA source tracked by git:
#  1. clang-format (.clang-format at the root) reports no change; formatting differs between
#     clang-format releases, so the check runs with the pinned major version only; under any
#     other it skips (exit 77) with a message, except in CI (CI=true), where it fails;
#  2. standard-library names carry their std:: prefix (std::size_t, std::uint32_t, ...).
# Usage: check_style.sh <repository root> [clang-format executable]
set -euo pipefail
root=$1
pinned_major=14
clang_format=${2:-}
if [ -z "$clang_format" ]; then
  clang_format=clang-format
  command -v clang-format-$pinned_major >/dev/null && clang_format=clang-format-$pinned_major
fi
cd "$root"

if ! command -v "$clang_format" >/dev/null; then
  echo "style: SKIPPED: $clang_format not found (tests/deps.sh installs clang-format)"
  exit 77
fi
major=$("$clang_format" --version | sed -n 's/.*version \([0-9]*\).*/\1/p')
if [ "$major" != "$pinned_major" ]; then
  echo "style: clang-format $major found, the style is pinned to clang-format $pinned_major"
  [ "${CI:-}" = true ] && exit 1
  echo "style: SKIPPED"
  exit 77
fi
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "style: SKIPPED: $root is not a git checkout"
  exit 77
fi

mapfile -t sources < <(git ls-files '*.hpp' '*.cpp' '*.cuh' '*.cu')
status=0
if ! "$clang_format" --dry-run --Werror "${sources[@]}" 2>/tmp/skipllm_style_$$.log; then
  echo "style: clang-format would change these files (apply: clang-format -i FILE):"
  grep -o '^[^:]*:[0-9]*:[0-9]*: error' /tmp/skipllm_style_$$.log | cut -d: -f1 | sort | uniq -c
  head -n 40 /tmp/skipllm_style_$$.log
  status=1
fi
rm -f /tmp/skipllm_style_$$.log

# Unqualified C fixed-width and size types (not after "std::", "::" or a letter/underscore).
pattern='(^|[^:[:alnum:]_])(u?int(8|16|32|64)_t|size_t|ptrdiff_t|uintptr_t|intptr_t)([^[:alnum:]_]|$)'
if hits=$(grep -nE "$pattern" "${sources[@]}" | grep -vE '^\S+:[0-9]+:\s*(//|#\s*define)'); then
  echo "style: write these with their std:: prefix:"
  echo "$hits" | head -n 40
  status=1
fi
[ "$status" -eq 0 ] && echo "style: ${#sources[@]} files follow .clang-format and use std:: names"
exit "$status"
