// Builds the Tokenizer from a GGUF file's tokenizer.* metadata.
#include "format/gguf.hpp"
#include "format/tokenizer.hpp"

#include <limits>

namespace skipllm::engine {
namespace {

// An optional id key; absent means "none" (-1). from_vocab checks the range against the
// vocabulary; here only that the value can be an id at all.
std::int32_t optional_id(GgufFile const& file, std::string_view key) {
  const std::optional<std::uint64_t> value = file.find_uint(key);
  if (!value) return -1;
  if (*value > static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max())) {
    throw TokenizerError("tokenizer: " + std::string(key) + " = " + std::to_string(*value) +
                         " is not a valid token id");
  }
  return static_cast<std::int32_t>(*value);
}

std::vector<std::string> string_array(GgufFile const& file, std::string_view key) {
  std::vector<std::string> out;
  for (const std::string_view s : file.get_string_array(key)) out.emplace_back(s);
  return out;
}

// Types default to "normal" when the file has none, as in llama.cpp.
std::vector<std::int32_t> token_types(GgufFile const& file, std::size_t n_tokens) {
  constexpr std::string_view key = "tokenizer.ggml.token_type";
  if (!file.has(key)) { return std::vector<std::int32_t>(n_tokens, static_cast<std::int32_t>(TokenType::normal)); }
  std::vector<std::int32_t> out;
  for (const std::int64_t t : file.get_int_array(key)) {
    // Out-of-range values become -1, which from_vocab rejects naming the token.
    bool const fits = t >= 0 && t <= std::numeric_limits<std::int32_t>::max();
    out.push_back(fits ? static_cast<std::int32_t>(t) : -1);
  }
  return out;
}

}  // namespace

Tokenizer tokenizer_from_gguf(GgufFile const& file) {
  const std::string_view model = file.get_string("tokenizer.ggml.model");
  if (model != "gpt2") {
    throw TokenizerError("tokenizer: tokenizer.ggml.model '" + std::string(model) +
                         "' is not supported (only byte-level BPE, 'gpt2')");
  }
  std::vector<std::string> tokens = string_array(file, "tokenizer.ggml.tokens");
  std::vector<std::int32_t> types = token_types(file, tokens.size());
  // llama.cpp's name for a file that does not say.
  const std::string_view pre = file.find_string("tokenizer.ggml.pre").value_or("default");
  SpecialIds ids;
  ids.bos = optional_id(file, "tokenizer.ggml.bos_token_id");
  ids.eos = optional_id(file, "tokenizer.ggml.eos_token_id");
  ids.unk = optional_id(file, "tokenizer.ggml.unknown_token_id");
  ids.pad = optional_id(file, "tokenizer.ggml.padding_token_id");
  ids.eot = optional_id(file, "tokenizer.ggml.eot_token_id");
  Tokenizer t =
      Tokenizer::from_vocab(std::move(tokens), string_array(file, "tokenizer.ggml.merges"), std::move(types), pre, ids);
  if (auto const jinja = file.find_string("tokenizer.chat_template")) { t.set_chat_template(std::string(*jinja)); }
  return t;
}

}  // namespace skipllm::engine
