// libFuzzer target: the ChatML chat template and its tokenization, as `skipllm generate` runs
// them. The input is a conversation: the first byte's low bit is add_generation_prompt, the rest
// is NUL-separated role, content, role, content... The template's text is encoded with
// parse_special (the template's markers become control tokens); a conversation whose roles and
// contents hold no "<|im_" must give exactly one <|im_start|> token per turn.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "format/tokenizer.hpp"
#include "fuzz_support.hpp"

using namespace skipllm::engine;
using skipllm::fuzz::require;

namespace {

std::vector<ChatMessage> conversation(std::string_view text) {
  std::vector<std::string> fields;
  for (std::size_t pos = 0;;) {
    std::size_t const end = text.find('\0', pos);
    fields.emplace_back(text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos));
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  std::vector<ChatMessage> messages;
  for (std::size_t i = 0; i + 1 < fields.size(); i += 2) messages.push_back({fields[i], fields[i + 1]});
  return messages;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
  if (size == 0) return 0;
  Tokenizer const& tokenizer = skipllm::fuzz::fuzz_tokenizer();
  bool const add_generation_prompt = (data[0] & 1) != 0;
  std::string_view const text = skipllm::fuzz::as_text(data + 1, size - 1);
  std::vector<ChatMessage> const messages = conversation(text);

  std::string const prompt = apply_chat_template(messages, add_generation_prompt);
  std::vector<std::int32_t> const ids = tokenizer.encode(prompt, true);
  for (std::int32_t const id : ids)
    require(id >= 0 && id < tokenizer.vocab_size(), "encode() gave an id outside the vocabulary");

  if (text.find("<|im_") == std::string_view::npos) {
    std::vector<std::int32_t> const start = tokenizer.encode("<|im_start|>", true);
    require(start.size() == 1, "<|im_start|> is not one control token");
    std::size_t turns = messages.size() + (add_generation_prompt ? 1 : 0);
    if (!messages.empty() && messages.front().role != "system") ++turns;  // the default system turn
    std::size_t starts = 0;
    for (std::int32_t const id : ids) starts += id == start.front() ? 1 : 0;
    require(starts == turns, "not one <|im_start|> token per turn");
  }
  return 0;
}
