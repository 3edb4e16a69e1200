//! @file
//! What the libFuzzer targets share: the checks that turn a broken promise into a crash the
//! fuzzer reports, and the tokenizer they run on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "format/tokenizer.hpp"

namespace skipllm::fuzz {

//! Aborts with a message when `ok` is false: a property of the code under test does not hold.
//! (assert() would vanish under NDEBUG; the fuzzers check their properties in every build.)
inline void require(bool ok, char const* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz: property violated: %s\n", what);
    std::abort();
  }
}

inline std::string_view as_text(std::uint8_t const* data, std::size_t size) {
  return {reinterpret_cast<char const*>(data), size};
}

//! Whether `s` is well-formed UTF-8 (shortest forms, no surrogates, at most U+10FFFF); written
//! apart from the engine's decoder so that it can check it.
bool valid_utf8(std::string_view s);

//! GPT-2's byte-level spelling of byte `b` in token text (U+0120 for the space, ...).
std::string byte_level(unsigned char b);

//! The tokenizer the tokenizer targets run on, built once: the default model's (SKIPLLM_MODEL,
//! else ~/.cache/skipllm/models/SmolLM2-135M-Instruct.Q4_1.gguf) when the file exists, else a
//! small byte-level vocabulary built here (every byte, a few merges, ChatML's control tokens and
//! one user-defined token). Prints which one on first use.
engine::Tokenizer const& fuzz_tokenizer();

}  // namespace skipllm::fuzz
