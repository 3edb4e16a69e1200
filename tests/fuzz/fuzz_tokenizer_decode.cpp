// libFuzzer target: the tokenizer's decoder on arbitrary token ids (4 little-endian bytes each).
// Ids outside the vocabulary must be refused with TokenizerError; the same ids folded into the
// vocabulary must decode, and streamed through Utf8StreamDecoder give valid UTF-8 that equals
// the whole decode whenever that is valid UTF-8 itself.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "format/tokenizer.hpp"
#include "fuzz_support.hpp"

using namespace skipllm::engine;
using skipllm::fuzz::require;
using skipllm::fuzz::valid_utf8;

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
  Tokenizer const& tokenizer = skipllm::fuzz::fuzz_tokenizer();
  std::vector<std::int32_t> ids(size / 4);
  if (!ids.empty()) std::memcpy(ids.data(), data, ids.size() * 4);

  bool in_vocabulary = true;
  for (std::int32_t const id : ids) in_vocabulary &= id >= 0 && id < tokenizer.vocab_size();
  try {
    (void)tokenizer.decode(ids);
    require(in_vocabulary, "decode() accepted an id outside the vocabulary");
  } catch (TokenizerError const&) { require(!in_vocabulary, "decode() refused ids inside the vocabulary"); }
  for (std::int32_t const id : ids) {
    try {
      (void)tokenizer.token_piece(id);
      (void)tokenizer.is_eog(id);
    } catch (TokenizerError const&) {
      require(id < 0 || id >= tokenizer.vocab_size(), "token_piece() refused an id inside the vocabulary");
    }
  }

  for (std::int32_t& id : ids)
    id = static_cast<std::int32_t>(static_cast<std::uint32_t>(id) % static_cast<std::uint32_t>(tokenizer.vocab_size()));
  std::string const decoded = tokenizer.decode(ids);
  Utf8StreamDecoder stream;
  std::string streamed;
  for (std::int32_t const id : ids) streamed += stream.push(tokenizer.token_piece(id));
  streamed += stream.flush();
  require(valid_utf8(streamed), "Utf8StreamDecoder gave invalid UTF-8");
  if (valid_utf8(decoded)) require(streamed == decoded, "Utf8StreamDecoder changed valid UTF-8");
  return 0;
}
