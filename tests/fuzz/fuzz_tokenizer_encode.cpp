// libFuzzer target: the tokenizer's encoder on arbitrary bytes (fuzz_support.hpp says which
// vocabulary). The first byte picks parse_special; the rest is the text. Checks: every id is in
// the vocabulary, decoding gives valid text back through Utf8StreamDecoder, and valid UTF-8
// whose every character survives a round trip on its own survives it as a whole.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "format/tokenizer.hpp"
#include "fuzz_support.hpp"

namespace {

using namespace skipllm::engine;
using skipllm::fuzz::require;
using skipllm::fuzz::valid_utf8;

std::size_t utf8_length(unsigned char lead) { return lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4; }

// Whether every character of valid UTF-8 `text` comes back from decode(encode(c)) alone; a
// vocabulary may lack some bytes (SmolLM2 has no token for 0x04, 0xF5..0xFF, ...), which drops them.
bool every_character_round_trips(Tokenizer const& tokenizer, std::string_view text, bool parse_special) {
  for (std::size_t i = 0; i < text.size();) {
    std::string_view const c = text.substr(i, utf8_length(static_cast<unsigned char>(text[i])));
    if (tokenizer.decode(tokenizer.encode(c, parse_special)) != c) return false;
    i += c.size();
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
  if (size == 0) return 0;
  Tokenizer const& tokenizer = skipllm::fuzz::fuzz_tokenizer();
  bool const parse_special = (data[0] & 1) != 0;
  std::string_view const text = skipllm::fuzz::as_text(data + 1, size - 1);

  std::vector<std::int32_t> const ids = tokenizer.encode(text, parse_special);
  for (std::int32_t const id : ids)
    require(id >= 0 && id < tokenizer.vocab_size(), "encode() gave an id outside the vocabulary");
  std::string const decoded = tokenizer.decode(ids);

  Utf8StreamDecoder stream;
  std::string streamed;
  for (std::int32_t const id : ids) streamed += stream.push(tokenizer.token_piece(id));
  streamed += stream.flush();
  require(valid_utf8(streamed), "Utf8StreamDecoder gave invalid UTF-8");
  if (valid_utf8(decoded)) require(streamed == decoded, "Utf8StreamDecoder changed valid UTF-8");

  for (std::string const& word : tokenizer.pre_tokenize(text))
    require(valid_utf8(word), "pre_tokenize() gave invalid UTF-8");

  if (valid_utf8(text) && every_character_round_trips(tokenizer, text, parse_special)) {
    require(decoded == text, "decode(encode(text)) != text");
  }
  return 0;
}
