// Tests of the byte-level BPE tokenizer and the ChatML template.
//
// The model suite compares against tests/engine/fixtures/tokenizer_smollm2.json, written by
// make_tokenizer_fixtures.py from llama.cpp's tokenizer (ids) and Hugging Face tokenizers'
// regex pre-tokenizers (splits) on the same GGUF. It needs the model (env SKIPLLM_MODEL) and is
// reported as skipped, with the reason, when the file is missing.
#define BOOST_TEST_MODULE engine_tokenizer
#include <boost/test/unit_test.hpp>

#include "engine_test_support.hpp"
#include "format/gguf.hpp"
#include "format/tokenizer.hpp"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace skipllm::engine {
// For Boost.Test's messages.
std::ostream& operator<<(std::ostream& os, PreTokenizer p) {
  switch (p) {
    case PreTokenizer::gpt2: return os << "gpt2";
    case PreTokenizer::digits_gpt2: return os << "digits_gpt2";
    case PreTokenizer::llama3: return os << "llama3";
  }
  return os << "PreTokenizer(" << static_cast<int>(p) << ")";
}
}  // namespace skipllm::engine

namespace pt = boost::property_tree;
namespace utf = boost::unit_test;
using namespace skipllm::engine;

namespace {

// ---------------------------------------------------------------------------------------------
// Helpers.

using engine_test::env_path;
using engine_test::model_available;
using engine_test::read_fixture;

std::string from_hex(std::string const& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return out;
}

std::string case_text(pt::ptree const& c) {
  auto const hex = c.get_optional<std::string>("text_hex");
  return hex ? from_hex(*hex) : c.get<std::string>("text");
}

std::string show(std::vector<std::int32_t> const& ids) {
  std::string s;
  for (const std::int32_t id : ids) s += std::to_string(id) + " ";
  return s;
}

// Whether s is well-formed UTF-8 (what a terminal can print); written independently of the
// decoder under test.
bool valid_utf8(std::string const& s) {
  for (std::size_t i = 0; i < s.size();) {
    auto const byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned const lead = byte(i);
    std::size_t len = 0;  // 0: not a valid lead byte
    if (lead < 0x80) {
      len = 1;
    } else if (lead >= 0xC2 && lead < 0xF5) {
      len = lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
    }
    if (len == 0 || i + len > s.size()) return false;
    std::uint32_t cp = len == 1 ? lead : lead & (0xFF >> (len + 1));
    for (std::size_t k = 1; k < len; ++k) {
      if ((byte(i + k) & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (byte(i + k) & 0x3F);
    }
    const std::uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

// The SmolLM2 vocabulary read through GgufFile, and tokenizers over it: the model's own
// ("smollm") and the same vocabulary with the other pre-tokenizers.
struct Model {
  GgufFile file;
  Tokenizer smollm;
  Tokenizer llama3;
  Tokenizer gpt2;
};

Tokenizer with_pre_tokenizer(GgufFile const& file, std::string_view pre) {
  auto const strings = [&](std::string_view key) {
    std::vector<std::string> out;
    for (const std::string_view s : file.get_string_array(key)) out.emplace_back(s);
    return out;
  };
  std::vector<std::int32_t> types;
  for (const std::int64_t t : file.get_int_array("tokenizer.ggml.token_type")) {
    types.push_back(static_cast<std::int32_t>(t));
  }
  return Tokenizer::from_vocab(strings("tokenizer.ggml.tokens"), strings("tokenizer.ggml.merges"), types, pre,
                               SpecialIds{1, 2, 0, 2, -1});
}

Model const& model() {
  static const Model m = [] {
    GgufFile file = GgufFile::open(*env_path("SKIPLLM_MODEL"));
    Tokenizer smollm = tokenizer_from_gguf(file);
    Tokenizer llama3 = with_pre_tokenizer(file, "llama-bpe");
    Tokenizer gpt2 = with_pre_tokenizer(file, "gpt2");
    return Model{std::move(file), std::move(smollm), std::move(llama3), std::move(gpt2)};
  }();
  return m;
}

pt::ptree const& fixtures() {
  static const pt::ptree doc = read_fixture("tokenizer_smollm2.json");
  return doc;
}

// Cases whose text cannot survive a round trip: bytes the vocabulary lacks are dropped (the
// SmolLM2 vocabulary has no token for the bytes 0x04, 0x06, 0x13, 0x14, 0x16, 0x1D, 0xC0, 0xC1,
// 0xF1, 0xF2 and 0xF5..0xFF, so e.g. plane-10 characters, F2 xx xx xx, are lost), and invalid
// UTF-8 comes back as U+FFFD.
bool lossy(pt::ptree const& c) {
  auto const name = c.get<std::string>("name");
  return name == "missing_byte_tokens" || name == "plane_10_private" || c.count("text_hex") > 0;
}

// ---------------------------------------------------------------------------------------------
// A toy vocabulary for the BPE core and the input checks. Letters are their own byte-level
// spelling; U+0120 'Ġ' spells the space byte.

struct Toy {
  std::vector<std::string> tokens{"<|end|>", "a", "b", "c", "\xC4\xA0", "ab", "bc", "abc", "aa"};
  std::vector<std::string> merges;
  std::vector<std::int32_t> types{3, 1, 1, 1, 1, 1, 1, 1, 1};
  SpecialIds ids{-1, 0, -1, -1, -1};

  Tokenizer build(std::string_view pre = "gpt2") const {
    return Tokenizer::from_vocab(tokens, merges, types, pre, ids);
  }
};

// A GGUF file with no tensors and only tokenizer metadata, for tokenizer_from_gguf's checks.
class GgufWriter {
 public:
  GgufWriter& string(std::string_view key, std::string_view value) {
    this->key(key, 8);
    str(value);
    return *this;
  }
  GgufWriter& uint32(std::string_view key, std::uint32_t value) {
    this->key(key, 4);
    num(value);
    return *this;
  }
  GgufWriter& strings(std::string_view key, std::vector<std::string> const& values) {
    this->key(key, 9);
    num(std::uint32_t{8});
    num(std::uint64_t{values.size()});
    for (std::string const& v : values) str(v);
    return *this;
  }
  GgufWriter& int32s(std::string_view key, std::vector<std::int32_t> const& values) {
    this->key(key, 9);
    num(std::uint32_t{5});
    num(std::uint64_t{values.size()});
    for (const std::int32_t v : values) num(v);
    return *this;
  }
  GgufFile open() const {
    std::vector<std::byte> bytes;
    auto const put = [&](std::string const& s) {
      for (const char c : s) bytes.push_back(static_cast<std::byte>(c));
    };
    put("GGUF");
    std::string header;
    append(header, std::uint32_t{3});
    append(header, std::uint64_t{0});  // tensors
    append(header, n_keys_);
    put(header);
    put(body_);
    return GgufFile::from_bytes(std::move(bytes), "tokenizer-test.gguf");
  }

 private:
  template <typename T>
  static void append(std::string& out, T value) {
    out.append(reinterpret_cast<char const*>(&value), sizeof value);  // little-endian host
  }
  template <typename T>
  void num(T value) {
    append(body_, value);
  }
  void str(std::string_view s) {
    num(std::uint64_t{s.size()});
    body_.append(s);
  }
  void key(std::string_view name, std::uint32_t type) {
    ++n_keys_;
    str(name);
    num(type);
  }
  std::string body_;
  std::uint64_t n_keys_ = 0;
};

GgufWriter toy_gguf(std::string_view model = "gpt2") {
  const Toy toy;
  GgufWriter w;
  w.string("tokenizer.ggml.model", model)
      .string("tokenizer.ggml.pre", "smollm")
      .strings("tokenizer.ggml.tokens", toy.tokens)
      .strings("tokenizer.ggml.merges", {"a b"})
      .uint32("tokenizer.ggml.eos_token_id", 0);
  return w;
}

auto says(std::string part) {
  return [part](TokenizerError const& e) {
    const bool found = std::string(e.what()).find(part) != std::string::npos;
    if (!found) BOOST_TEST_MESSAGE("unexpected message: " << e.what());
    return found;
  };
}

}  // namespace

// =============================================================================================
BOOST_AUTO_TEST_SUITE(bpe_core)

BOOST_AUTO_TEST_CASE(merges_apply_by_rank_not_position) {
  Toy toy;
  toy.merges = {"b c", "a b", "a bc"};  // "b c" outranks "a b", so "abc" = a + bc -> abc
  BOOST_TEST(toy.build().encode("abc", false) == (std::vector<std::int32_t>{7}));
  toy.merges = {"b c", "a b"};  // no "a bc": stops at a + bc
  BOOST_TEST(toy.build().encode("abc", false) == (std::vector<std::int32_t>{1, 6}));
  toy.merges = {"a b", "b c"};
  BOOST_TEST(toy.build().encode("abc", false) == (std::vector<std::int32_t>{5, 3}));
}

BOOST_AUTO_TEST_CASE(equal_ranks_merge_leftmost_first) {
  Toy toy;
  toy.merges = {"a a"};
  BOOST_TEST(toy.build().encode("aaa", false) == (std::vector<std::int32_t>{8, 1}));
  BOOST_TEST(toy.build().encode("aaaa", false) == (std::vector<std::int32_t>{8, 8}));
}

BOOST_AUTO_TEST_CASE(bytes_missing_from_the_vocabulary_are_dropped) {
  const Tokenizer t = Toy{}.build();
  BOOST_TEST(t.encode("a\001b", false) == (std::vector<std::int32_t>{1, 2}));
  BOOST_TEST(t.encode("a b", false) == (std::vector<std::int32_t>{1, 4, 2}));
}

BOOST_AUTO_TEST_CASE(control_tokens_only_with_parse_special) {
  const Tokenizer t = Toy{}.build();
  BOOST_TEST(t.encode("a<|end|>b", true) == (std::vector<std::int32_t>{1, 0, 2}));
  // As text, "<|end|>" is bytes the toy vocabulary lacks, so they vanish.
  BOOST_TEST(t.encode("a<|end|>b", false) == (std::vector<std::int32_t>{1, 2}));
}

BOOST_AUTO_TEST_CASE(decode_rejects_ids_outside_the_vocabulary) {
  const Tokenizer t = Toy{}.build();
  const std::vector<std::int32_t> bad{1, 9};
  BOOST_CHECK_EXCEPTION(t.decode(bad), TokenizerError, says("token id 9 is outside"));
  BOOST_CHECK_EXCEPTION(t.token_piece(-1), TokenizerError, says("token id -1 is outside"));
  BOOST_TEST(t.token_piece(4) == " ");
  BOOST_TEST(t.token_piece(0) == "<|end|>");
}

BOOST_AUTO_TEST_CASE(unknown_pre_tokenizer_falls_back_to_gpt2_with_a_warning) {
  const Tokenizer t = Toy{}.build("no-such-regex");
  BOOST_TEST(t.pre_tokenizer() == PreTokenizer::gpt2, "fell back to GPT-2");
  BOOST_TEST_REQUIRE(t.warnings().size() == 1u);
  BOOST_TEST(t.warnings()[0].find("no-such-regex") != std::string::npos);
  BOOST_TEST(Toy{}.build("default").warnings().size() == 1u);  // llama.cpp's legacy split differs
  BOOST_TEST(Toy{}.build("gpt2").warnings().empty());
  BOOST_TEST(Toy{}.build("smollm").warnings().empty());
  BOOST_TEST(Toy{}.build("smollm").pre_tokenizer() == PreTokenizer::digits_gpt2);
  BOOST_TEST(Toy{}.build("llama-bpe").pre_tokenizer() == PreTokenizer::llama3);
}

BOOST_AUTO_TEST_SUITE_END()

// =============================================================================================
BOOST_AUTO_TEST_SUITE(bad_vocabulary)

BOOST_AUTO_TEST_CASE(empty_vocabulary) {
  Toy toy;
  toy.tokens.clear();
  toy.types.clear();
  toy.ids = {};
  BOOST_CHECK_EXCEPTION(toy.build(), TokenizerError, says("vocabulary is empty"));
}

BOOST_AUTO_TEST_CASE(token_types_length_differs) {
  Toy toy;
  toy.types.pop_back();
  BOOST_CHECK_EXCEPTION(toy.build(), TokenizerError, says("8 token types for 9 tokens"));
}

BOOST_AUTO_TEST_CASE(token_type_out_of_range) {
  Toy toy;
  toy.types[2] = 7;
  BOOST_CHECK_EXCEPTION(toy.build(), TokenizerError, says("token 2 has unknown type 7"));
}

BOOST_AUTO_TEST_CASE(text_token_not_byte_level) {
  Toy toy;
  toy.tokens[3] = "\xE2\x82\xAC";  // U+20AC spells no byte in GPT-2's table
  BOOST_CHECK_EXCEPTION(toy.build(), TokenizerError, says("token 3"));
}

BOOST_AUTO_TEST_CASE(merge_of_unknown_token) {
  Toy toy;
  toy.merges = {"a b", "a z"};
  BOOST_CHECK_EXCEPTION(toy.build(), TokenizerError, says("merge 1 'a z' refers to unknown token 'z'"));
}

BOOST_AUTO_TEST_CASE(merge_result_not_in_vocabulary) {
  Toy toy;
  toy.merges = {"a c"};
  BOOST_CHECK_EXCEPTION(toy.build(), TokenizerError, says("unknown token 'ac'"));
}

BOOST_AUTO_TEST_CASE(merge_without_separator) {
  Toy toy;
  toy.merges = {"ab"};
  BOOST_CHECK_EXCEPTION(toy.build(), TokenizerError, says("not two tokens"));
}

BOOST_AUTO_TEST_CASE(gguf_vocabulary_is_checked_too) {
  const Toy toy;
  std::vector<std::int32_t> short_types = toy.types;
  short_types.pop_back();
  const GgufFile types_short = toy_gguf().int32s("tokenizer.ggml.token_type", short_types).open();
  BOOST_CHECK_EXCEPTION(tokenizer_from_gguf(types_short), TokenizerError, says("8 token types for 9 tokens"));
  std::vector<std::int32_t> negative_type = toy.types;
  negative_type[5] = -3;
  const GgufFile bad_type = toy_gguf().int32s("tokenizer.ggml.token_type", negative_type).open();
  BOOST_CHECK_EXCEPTION(tokenizer_from_gguf(bad_type), TokenizerError, says("token 5 has unknown type"));
  const GgufFile bos_out = toy_gguf().uint32("tokenizer.ggml.bos_token_id", 9).open();
  BOOST_CHECK_EXCEPTION(tokenizer_from_gguf(bos_out), TokenizerError, says("bos token id 9"));
  const GgufFile spm = toy_gguf("llama").open();
  BOOST_CHECK_EXCEPTION(tokenizer_from_gguf(spm), TokenizerError, says("'llama' is not supported"));
}

BOOST_AUTO_TEST_CASE(gguf_without_token_types_is_all_text) {
  const GgufFile file = toy_gguf().open();
  const Tokenizer t = tokenizer_from_gguf(file);
  BOOST_TEST(t.encode("ab", false) == (std::vector<std::int32_t>{5}));
  BOOST_TEST(t.eos_id() == 0);
  BOOST_TEST(t.bos_id() == -1);
}

BOOST_AUTO_TEST_CASE(special_ids_out_of_range) {
  Toy toy;
  toy.ids.eos = 9;
  BOOST_CHECK_EXCEPTION(toy.build(), TokenizerError, says("eos token id 9 is outside"));
  toy.ids.eos = 0;
  toy.ids.bos = -2;
  BOOST_CHECK_EXCEPTION(toy.build(), TokenizerError, says("bos token id -2"));
}

BOOST_AUTO_TEST_SUITE_END()

// =============================================================================================
BOOST_AUTO_TEST_SUITE(utf8_streaming)

BOOST_AUTO_TEST_CASE(characters_split_across_chunks_are_held_back) {
  const std::string text = "a\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x9A\x80!";  // a é € 🚀 !
  for (std::size_t cut1 = 0; cut1 <= text.size(); ++cut1) {
    for (std::size_t cut2 = cut1; cut2 <= text.size(); ++cut2) {
      Utf8StreamDecoder d;
      std::string out;
      for (std::string const& chunk : {text.substr(0, cut1), text.substr(cut1, cut2 - cut1), text.substr(cut2)}) {
        const std::string emitted = d.push(chunk);
        BOOST_TEST(valid_utf8(emitted));
        out += emitted;
      }
      out += d.flush();
      BOOST_TEST(out == text, "cuts at " << cut1 << ", " << cut2);
    }
  }
}

BOOST_AUTO_TEST_CASE(nothing_is_emitted_until_the_character_is_complete) {
  Utf8StreamDecoder d;
  BOOST_TEST(d.push("\xF0\x9F").empty());
  BOOST_TEST(d.push("\x9A").empty());
  BOOST_TEST(d.push("\x80") == "\xF0\x9F\x9A\x80");
}

BOOST_AUTO_TEST_CASE(invalid_bytes_become_replacement_characters) {
  const std::string fffd = "\xEF\xBF\xBD";
  Utf8StreamDecoder d;
  BOOST_TEST(d.push("a\377b") == "a" + fffd + "b");
  BOOST_TEST(d.push("\x80") == fffd);                        // stray continuation byte
  BOOST_TEST(d.push("\303x") == fffd + "x");                 // lead byte cut short
  BOOST_TEST(d.push("\xE0\x80\x80") == fffd + fffd + fffd);  // overlong
  BOOST_TEST(d.push("\xE2\x82").empty());
  BOOST_TEST(d.flush() == fffd);  // stream ended inside a character
  BOOST_TEST(d.flush().empty());
}

BOOST_AUTO_TEST_SUITE_END()

// =============================================================================================
BOOST_AUTO_TEST_SUITE(chat_template)

BOOST_AUTO_TEST_CASE(default_system_message_is_inserted) {
  const std::vector<ChatMessage> chat{{"user", "Hi"}};
  BOOST_TEST(apply_chat_template(chat, true) ==
             "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
             "Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

BOOST_AUTO_TEST_CASE(given_system_message_replaces_the_default) {
  const std::vector<ChatMessage> chat{{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Yo"}};
  BOOST_TEST(apply_chat_template(chat, false) ==
             "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
             "<|im_start|>assistant\nYo<|im_end|>\n");
}

BOOST_AUTO_TEST_CASE(empty_conversation_is_only_the_generation_prompt) {
  BOOST_TEST(apply_chat_template({}, true) == "<|im_start|>assistant\n");
  BOOST_TEST(apply_chat_template({}, false).empty());
}

BOOST_AUTO_TEST_SUITE_END()

// =============================================================================================
BOOST_AUTO_TEST_SUITE(smollm2, *utf::precondition(model_available))

BOOST_AUTO_TEST_CASE(vocabulary_facts) {
  Tokenizer const& t = model().smollm;
  BOOST_TEST(t.vocab_size() == 49152);
  BOOST_TEST(t.bos_id() == 1);
  BOOST_TEST(t.eos_id() == 2);
  BOOST_TEST(t.pre_tokenizer() == PreTokenizer::digits_gpt2);
  BOOST_TEST(t.warnings().empty());
  BOOST_TEST(t.is_eog(2));  // <|im_end|>
  BOOST_TEST(t.is_eog(0));  // <|endoftext|>
  BOOST_TEST(!t.is_eog(1));
  BOOST_TEST(!t.is_eog(504));
}

BOOST_AUTO_TEST_CASE(ids_match_llama_cpp) {
  pt::ptree const& cases = fixtures().get_child("cases");
  BOOST_TEST(cases.size() >= 60u);
  int checked = 0, mismatches = 0;
  for (auto const& [key, c] : cases) {
    const std::string text = case_text(c);
    const std::pair<Tokenizer const*, char const*> runs[] = {
        {&model().smollm, "ids"}, {&model().llama3, "ids_llama3"}, {&model().gpt2, "ids_gpt2"}};
    for (auto const& [tok, field] : runs) {
      for (bool const special : {false, true}) {
        if (special && std::string(field) != "ids") continue;
        auto const expected = engine_test::values_of<std::int32_t>(c.get_child(special ? "ids_special" : field));
        auto const got = tok->encode(text, special);
        ++checked;
        if (got == expected) continue;
        ++mismatches;
        BOOST_ERROR(c.get<std::string>("name") << " " << field << (special ? " special" : "") << "\n  expected "
                                               << show(expected) << "\n  got      " << show(got));
      }
    }
  }
  BOOST_TEST_MESSAGE(cases.size() << " fixture strings, " << checked << " encodings, " << mismatches << " mismatches");
  BOOST_TEST(mismatches == 0);
}

BOOST_AUTO_TEST_CASE(pre_token_splits_match_the_regexes) {
  int mismatches = 0;
  for (auto const& [key, c] : fixtures().get_child("cases")) {
    if (c.count("text_hex") > 0) continue;  // splits are recorded for valid text only
    const std::string text = c.get<std::string>("text");
    const std::pair<Tokenizer const*, char const*> runs[] = {
        {&model().smollm, "splits_smollm"}, {&model().llama3, "splits_llama3"}, {&model().gpt2, "splits_gpt2"}};
    for (auto const& [tok, field] : runs) {
      if (tok->pre_tokenize(text) == engine_test::values_of<std::string>(c.get_child(field))) continue;
      ++mismatches;
      BOOST_ERROR(c.get<std::string>("name") << ": " << field << " differs");
    }
  }
  BOOST_TEST(mismatches == 0);
}

BOOST_AUTO_TEST_CASE(decode_inverts_encode) {
  Tokenizer const& t = model().smollm;
  for (auto const& [key, c] : fixtures().get_child("cases")) {
    if (lossy(c)) continue;
    const std::string text = case_text(c);
    BOOST_TEST(t.decode(t.encode(text, false)) == text, c.get<std::string>("name"));
    BOOST_TEST(t.decode(t.encode(text, true)) == text, c.get<std::string>("name") << " special");
  }
}

BOOST_AUTO_TEST_CASE(special_tokens_both_ways) {
  Tokenizer const& t = model().smollm;
  BOOST_TEST(t.encode("<|im_start|>", true) == (std::vector<std::int32_t>{1}));
  BOOST_TEST(t.encode("x<|im_end|><|endoftext|>", true).size() == 3u);
  // Without parse_special, user text cannot produce a control token.
  for (const std::int32_t id : t.encode("<|im_start|>system<|im_end|><|endoftext|>", false)) {
    BOOST_TEST(id > 16, "control token " << id << " from plain text");
  }
  BOOST_TEST(t.decode(std::vector<std::int32_t>{1, 2, 0}) == "<|im_start|><|im_end|><|endoftext|>");
}

BOOST_AUTO_TEST_CASE(chat_template_matches_the_model_jinja) {
  Tokenizer const& t = model().smollm;
  // Our GGUF reader and llama.cpp's read the same template text, and it carries our default.
  BOOST_TEST(t.chat_template() == fixtures().get<std::string>("chat_template"));
  BOOST_TEST(t.chat_template().find(kSmolLM2DefaultSystem) != std::string::npos);
  for (auto const& [key, chat] : fixtures().get_child("chats")) {
    std::vector<ChatMessage> messages;
    for (auto const& [k, m] : chat.get_child("messages")) {
      messages.push_back({m.get<std::string>("role"), m.get<std::string>("content")});
    }
    const std::string text = apply_chat_template(messages, chat.get<bool>("add_generation_prompt"));
    BOOST_TEST(text == chat.get<std::string>("text"), chat.get<std::string>("name"));
    BOOST_TEST(t.encode(text, true) == engine_test::values_of<std::int32_t>(chat.get_child("ids_special")),
               chat.get<std::string>("name"));
  }
}

BOOST_AUTO_TEST_CASE(streamed_pieces_are_always_valid_utf8) {
  Tokenizer const& t = model().smollm;
  int split_characters = 0;
  for (auto const& [key, c] : fixtures().get_child("cases")) {
    if (lossy(c)) continue;
    const std::string text = case_text(c);
    Utf8StreamDecoder d;
    std::string out;
    for (const std::int32_t id : t.encode(text, false)) {
      const std::string piece = t.token_piece(id);
      split_characters += !valid_utf8(piece);
      const std::string emitted = d.push(piece);
      BOOST_TEST(valid_utf8(emitted), c.get<std::string>("name"));
      out += emitted;
    }
    out += d.flush();
    BOOST_TEST(out == text, c.get<std::string>("name"));
  }
  BOOST_TEST_MESSAGE(split_characters << " token pieces held part of a character");
  BOOST_TEST(split_characters > 0, "the fixtures exercise characters split across tokens");
}

BOOST_AUTO_TEST_CASE(golden_prompts_tokenize_as_llama_cpp) {
  auto const path = *env_path("SKIPLLM_FIXTURES") / "golden_smollm2.json";
  BOOST_TEST_REQUIRE(std::filesystem::exists(path), path.string() << " is missing");
  const pt::ptree golden = read_fixture("golden_smollm2.json");
  for (auto const& [key, p] : golden.get_child("prompts")) {
    BOOST_TEST(model().smollm.encode(p.get<std::string>("text"), p.get<bool>("parse_special")) ==
                   engine_test::values_of<std::int32_t>(p.get_child("prompt_ids")),
               p.get<std::string>("name"));
  }
}

BOOST_AUTO_TEST_CASE(encoding_10_kb_takes_milliseconds) {
  Tokenizer const& t = model().smollm;
  std::string text;
  while (text.size() < 10 * 1024) {
    for (auto const& [key, c] : fixtures().get_child("cases")) text += case_text(c);
  }
  auto const start = std::chrono::steady_clock::now();
  const std::size_t n = t.encode(text, false).size();
  double const ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  BOOST_TEST_MESSAGE("encoded " << text.size() << " bytes into " << n << " tokens in " << ms << " ms");
  BOOST_TEST(ms < 250.0, "encoding " << text.size() << " bytes took " << ms << " ms");
}

BOOST_AUTO_TEST_SUITE_END()
