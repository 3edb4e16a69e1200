// libFuzzer target: a tokenizer built from an arbitrary vocabulary (what a GGUF's tokenizer.ggml.*
// arrays may hold), then used. Input: a flag byte (bits 0-1: pre-tokenizer smollm, llama-bpe,
// gpt2 or an unknown name; bits 2-3: bos id - 1; bit 7: start from GPT-2's 256 byte tokens), the
// text to encode, a NUL, then one vocabulary line per '\n': "M<left> <right>" is a merge,
// "<digit><text>" a token of that TokenType id, anything else a normal token. from_vocab must
// build or throw TokenizerError; a built tokenizer must encode to ids inside its vocabulary and
// decode them.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "format/tokenizer.hpp"
#include "fuzz_support.hpp"

using namespace skipllm::engine;
using skipllm::fuzz::require;
using skipllm::fuzz::valid_utf8;

namespace {

struct Vocabulary {
  std::vector<std::string> tokens, merges;
  std::vector<std::int32_t> types;
};

Vocabulary vocabulary(std::string_view lines, bool byte_tokens) {
  Vocabulary v;
  if (byte_tokens) {
    for (int b = 0; b < 256; ++b) {
      v.tokens.push_back(skipllm::fuzz::byte_level(static_cast<unsigned char>(b)));
      v.types.push_back(static_cast<std::int32_t>(TokenType::normal));
    }
  }
  while (!lines.empty()) {
    std::size_t const end = lines.find('\n');
    std::string_view const line = lines.substr(0, end);
    lines.remove_prefix(end == std::string_view::npos ? lines.size() : end + 1);
    if (!line.empty() && line[0] == 'M') {
      v.merges.emplace_back(line.substr(1));
    } else if (!line.empty() && line[0] >= '0' && line[0] <= '9') {
      v.tokens.emplace_back(line.substr(1));
      v.types.push_back(line[0] - '0');
    } else {
      v.tokens.emplace_back(line);
      v.types.push_back(static_cast<std::int32_t>(TokenType::normal));
    }
  }
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
  if (size == 0) return 0;
  std::uint8_t const flags = data[0];
  std::string_view input = skipllm::fuzz::as_text(data + 1, size - 1);
  std::size_t const nul = input.find('\0');
  std::string_view const text = input.substr(0, nul);
  input.remove_prefix(nul == std::string_view::npos ? input.size() : nul + 1);

  constexpr std::string_view kPreTokenizers[] = {"smollm", "llama-bpe", "gpt2", "default"};
  Vocabulary v = vocabulary(input, (flags & 0x80) != 0);
  SpecialIds ids;
  ids.bos = ((flags >> 2) & 3) - 1;
  ids.eos = static_cast<std::int32_t>(v.tokens.size()) - 1;
  std::optional<Tokenizer> built;
  try {
    built.emplace(Tokenizer::from_vocab(std::move(v.tokens), std::move(v.merges), std::move(v.types),
                                        kPreTokenizers[flags & 3], ids));
  } catch (TokenizerError const&) { return 0; }
  Tokenizer const& tokenizer = *built;

  for (bool const parse_special : {false, true}) {
    std::vector<std::int32_t> const out = tokenizer.encode(text, parse_special);
    for (std::int32_t const id : out) {
      require(id >= 0 && id < tokenizer.vocab_size(), "encode() gave an id outside the vocabulary");
    }
    Utf8StreamDecoder stream;
    std::string streamed;
    for (std::int32_t const id : out) streamed += stream.push(tokenizer.token_piece(id));
    streamed += stream.flush();
    require(valid_utf8(streamed), "Utf8StreamDecoder gave invalid UTF-8");
    (void)tokenizer.decode(out);
  }
  return 0;
}
