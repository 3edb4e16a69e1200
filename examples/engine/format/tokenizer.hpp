// Byte-level BPE tokenizer (GPT-2 family, as stored in GGUF with tokenizer.ggml.model = "gpt2")
// and the ChatML chat template of SmolLM2-Instruct.
//
// The behaviour follows llama.cpp's, because the GGUF files we load were written for it:
// control tokens are matched as whole strings only when asked (parse_special), text is split by
// the pre-tokenizer named in the GGUF, each piece is mapped byte -> printable code point with
// GPT-2's table and merged by rank. No BOS is added: callers (the chat template) decide.
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace skipllm::engine {

class GgufFile;

// Bad vocabulary data, or a token id outside the vocabulary.
class TokenizerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Values of GGUF's tokenizer.ggml.token_type array.
enum class TokenType : std::int32_t {
  undefined = 0,
  normal = 1,
  unknown = 2,
  control = 3,
  user_defined = 4,
  unused = 5,
  byte = 6,
};

// Token ids with a role; -1 means "the vocabulary has none".
struct SpecialIds {
  std::int32_t bos = -1;
  std::int32_t eos = -1;
  std::int32_t unk = -1;
  std::int32_t pad = -1;
  std::int32_t eot = -1;
};

// How text is cut into words before BPE (the GGUF key tokenizer.ggml.pre picks one).
enum class PreTokenizer {
  gpt2,         // the GPT-2 regex
  digits_gpt2,  // every \p{N} on its own, then GPT-2 ("smollm", "starcoder", ...)
  llama3,       // the LLaMA-3 regex; whole words found in the vocab skip merging
};

// Immutable once built (apart from set_chat_template): encode and decode are safe to call from
// several threads.
class Tokenizer {
 public:
  // Builds from the GGUF arrays. Throws TokenizerError on inconsistent data. An unknown
  // pre_tokenizer name falls back to GPT-2 and records a message in warnings().
  static Tokenizer from_vocab(std::vector<std::string> tokens, std::vector<std::string> merges,
                              std::vector<std::int32_t> token_types, std::string_view pre_tokenizer, SpecialIds ids);

  // parse_special = true: control tokens written in the text (e.g. "<|im_start|>") become their
  // ids. false: they are tokenized as ordinary characters, so user text cannot inject them.
  // User-defined tokens are always matched, as in llama.cpp.
  std::vector<std::int32_t> encode(std::string_view text, bool parse_special) const;

  // The words the pre-tokenizer cuts plain text into (no special-token matching), as UTF-8
  // with invalid bytes replaced by U+FFFD. For tests and debugging.
  std::vector<std::string> pre_tokenize(std::string_view text) const;

  // Concatenated bytes of the tokens; control tokens render as their text. A prefix of a token
  // sequence may end inside a UTF-8 character: stream through Utf8StreamDecoder.
  std::string decode(std::span<const std::int32_t> ids) const;
  std::string token_piece(std::int32_t id) const;

  bool is_eog(std::int32_t id) const;  // end of generation: eos, eot and end-of-turn control tokens
  std::int32_t bos_id() const noexcept { return ids_.bos; }
  std::int32_t eos_id() const noexcept { return ids_.eos; }
  std::int32_t vocab_size() const noexcept { return static_cast<std::int32_t>(pieces_.size()); }
  PreTokenizer pre_tokenizer() const noexcept { return pre_; }
  std::vector<std::string> const& warnings() const noexcept { return warnings_; }

  // The model's Jinja chat template, kept for callers that want to check it is ChatML;
  // apply_chat_template() below does not interpret it.
  std::string const& chat_template() const noexcept { return chat_template_; }
  void set_chat_template(std::string jinja) { chat_template_ = std::move(jinja); }

 private:
  struct Merge {
    std::int32_t rank;
    std::int32_t result;
  };

  Tokenizer() = default;
  void load_tokens(std::vector<std::string> tokens, std::vector<std::int32_t> token_types);
  void load_merges(std::vector<std::string> const& merges);
  void load_special_ids(SpecialIds ids);
  void select_pre_tokenizer(std::string_view name);

  void encode_text(std::string_view text, std::vector<std::int32_t>& out) const;
  void encode_word(std::string_view word, std::vector<std::int32_t>& out) const;
  Merge const* find_merge(std::int32_t left, std::int32_t right) const;
  std::string const& checked_piece(std::int32_t id) const;

  std::vector<std::string> pieces_;  // decoded bytes of each token
  std::vector<TokenType> types_;
  std::unordered_map<std::string, std::int32_t> text_to_id_;  // token text as stored in the vocab
  std::unordered_map<std::uint64_t, Merge> merges_;           // key: left id << 32 | right id
  std::int32_t byte_token_[256] = {};                         // id of each lone byte, -1 if absent
  std::vector<std::int32_t> matchable_;                       // tokens matched as whole strings, longest first
  std::vector<std::int32_t> eog_;
  SpecialIds ids_;
  PreTokenizer pre_ = PreTokenizer::gpt2;
  std::vector<std::string> warnings_;
  std::string chat_template_;
};

// Reads tokenizer.ggml.* (model must be "gpt2") and tokenizer.chat_template.
Tokenizer tokenizer_from_gguf(GgufFile const& file);

//! Appends code point `cp` to `out` as UTF-8.
void append_utf8(std::string& out, std::uint32_t cp);

struct ChatMessage {
  std::string role;
  std::string content;
};

// SmolLM2-Instruct's default system prompt, from the GGUF's tokenizer.chat_template.
inline constexpr std::string_view kSmolLM2DefaultSystem =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

// SmolLM2-Instruct's ChatML: "<|im_start|>{role}\n{content}<|im_end|>\n" per message, the
// default system message first when messages[0] is not "system", and "<|im_start|>assistant\n"
// when add_generation_prompt. Encode the result with parse_special = true.
std::string apply_chat_template(std::span<const ChatMessage> messages, bool add_generation_prompt);

// Turns a stream of byte chunks (token pieces) into text that is always valid UTF-8: a
// character split across chunks is held back until complete; invalid bytes become U+FFFD.
class Utf8StreamDecoder {
 public:
  std::string push(std::string_view bytes);
  std::string flush();  // end of stream: a held incomplete character becomes U+FFFD

 private:
  std::string pending_;
};

}  // namespace skipllm::engine
