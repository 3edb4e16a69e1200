#include "fuzz_support.hpp"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "format/gguf.hpp"

namespace skipllm::fuzz {

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto const byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned const lead = byte(i);
    std::size_t len = 0;  // 0: not a lead byte
    if (lead < 0x80) {
      len = 1;
    } else if (lead >= 0xC2 && lead < 0xF5) {
      len = lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
    }
    if (len == 0 || i + len > s.size()) return false;
    std::uint32_t cp = len == 1 ? lead : lead & (0xFFu >> (len + 1));
    for (std::size_t k = 1; k < len; ++k) {
      if ((byte(i + k) & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (byte(i + k) & 0x3F);
    }
    std::uint32_t const smallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < smallest[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) return false;
    i += len;
  }
  return true;
}

namespace {

std::filesystem::path default_model_path() {
  if (char const* env = std::getenv("SKIPLLM_MODEL"); env != nullptr && *env != '\0') return env;
  char const* home = std::getenv("HOME");
  if (home == nullptr) return {};
  return std::filesystem::path(home) / ".cache/skipllm/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

}  // namespace

// GPT-2's byte -> code point table: printable Latin-1 bytes are themselves, the others are
// numbered from U+0100 in byte order.
std::string byte_level(unsigned char b) {
  static std::array<std::uint32_t, 256> const table = [] {
    std::array<std::uint32_t, 256> t{};
    std::uint32_t next = 256;
    for (std::uint32_t c = 0; c < 256; ++c) {
      bool const printable = (c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE);
      t[c] = printable ? c : next++;
    }
    return t;
  }();
  std::string out;
  engine::append_utf8(out, table[b]);
  return out;
}

namespace {

// Every byte, merges for " t", "th", "the", " the", "in", "ing", ChatML's control tokens and a
// user-defined token: enough for every path of the encoder (merging, whole-word control tokens,
// user-defined matches, multi-byte characters), without the model.
engine::Tokenizer builtin_tokenizer() {
  using engine::TokenType;
  std::vector<std::string> tokens;
  std::vector<std::int32_t> types;
  auto const add = [&](std::string text, TokenType type) {
    tokens.push_back(std::move(text));
    types.push_back(static_cast<std::int32_t>(type));
  };
  add("<|endoftext|>", TokenType::control);
  add("<|im_start|>", TokenType::control);
  add("<|im_end|>", TokenType::control);
  for (int b = 0; b < 256; ++b) add(byte_level(static_cast<unsigned char>(b)), TokenType::normal);
  std::string const space = byte_level(' ');
  std::vector<std::string> merges;
  for (auto const& [left, right] : std::vector<std::pair<std::string, std::string>>{
           {space, "t"}, {"t", "h"}, {"th", "e"}, {space, "the"}, {"i", "n"}, {"in", "g"}}) {
    merges.push_back(left + " " + right);
    add(left + right, TokenType::normal);
  }
  add("<tool>", TokenType::user_defined);
  return engine::Tokenizer::from_vocab(std::move(tokens), std::move(merges), std::move(types), "smollm",
                                       engine::SpecialIds{0, 0, -1, 0, 2});
}

engine::Tokenizer load_tokenizer() {
  std::filesystem::path const model = default_model_path();
  std::error_code ec;
  if (!model.empty() && std::filesystem::is_regular_file(model, ec)) {
    engine::GgufFile const file = engine::GgufFile::open(model);
    std::fprintf(stderr, "fuzz: tokenizer of %s\n", model.c_str());
    return engine::tokenizer_from_gguf(file);
  }
  std::fprintf(stderr, "fuzz: no model at '%s': built-in byte-level tokenizer\n", model.c_str());
  return builtin_tokenizer();
}

}  // namespace

engine::Tokenizer const& fuzz_tokenizer() {
  static engine::Tokenizer const tokenizer = load_tokenizer();
  return tokenizer;
}

}  // namespace skipllm::fuzz
