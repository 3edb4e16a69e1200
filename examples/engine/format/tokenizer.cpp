#include "format/tokenizer.hpp"

#include <algorithm>
#include <array>
#include <functional>
#include <iterator>
#include <queue>
#include <tuple>

namespace skipllm::engine {
namespace {

// ---------------------------------------------------------------------------------------------
// Unicode classes for the pre-tokenizer regexes.

struct CodepointRange {
  std::uint32_t first;
  std::uint32_t last;
};

namespace unicode_tables {
#include "format/unicode_tables.inc"
}

template <std::size_t N>
bool in_ranges(std::uint32_t cp, const CodepointRange (&table)[N]) {
  auto const it = std::upper_bound(std::begin(table), std::end(table), cp,
                                   [](std::uint32_t c, CodepointRange const& r) { return c < r.first; });
  return it != std::begin(table) && cp <= std::prev(it)->last;
}

// The classes the regexes tell apart; `end` stands for "past the current fragment", which
// matches neither \s nor \S (the lookahead (?!\S) succeeds there).
enum class Cls { letter, number, space, other, end };

Cls classify(std::uint32_t cp) {
  if (cp < 0x80) {  // fast path: most text is ASCII
    if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return Cls::letter;
    if (cp >= '0' && cp <= '9') return Cls::number;
    if (cp == ' ' || (cp >= '\t' && cp <= '\r')) return Cls::space;
    return Cls::other;
  }
  if (in_ranges(cp, unicode_tables::kLetter)) return Cls::letter;
  if (in_ranges(cp, unicode_tables::kNumber)) return Cls::number;
  if (in_ranges(cp, unicode_tables::kWhitespace)) return Cls::space;
  return Cls::other;
}

// ---------------------------------------------------------------------------------------------
// UTF-8.

constexpr std::uint32_t kReplacement = 0xFFFD;

enum class Utf8Status { ok, invalid, incomplete };

struct Utf8Step {
  Utf8Status status;
  std::uint32_t cp;
  std::size_t len;
};

// Decodes the character at s[pos]. Strict (no overlongs, surrogates or values past U+10FFFF);
// `incomplete` means the bytes so far are a valid prefix that runs off the end of s.
Utf8Step utf8_next(std::string_view s, std::size_t pos) {
  auto const byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  unsigned const lead = byte(pos);
  if (lead < 0x80) return {Utf8Status::ok, lead, 1};
  std::size_t len = 0;
  unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    len = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    len = 3;
    lo = lead == 0xE0 ? 0xA0 : 0x80;
    hi = lead == 0xED ? 0x9F : 0xBF;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    len = 4;
    lo = lead == 0xF0 ? 0x90 : 0x80;
    hi = lead == 0xF4 ? 0x8F : 0xBF;
  } else {
    return {Utf8Status::invalid, 0, 1};
  }
  std::uint32_t cp = lead & (0x7F >> len);
  for (std::size_t i = 1; i < len; ++i) {
    if (pos + i >= s.size()) return {Utf8Status::incomplete, 0, i};
    unsigned const b = byte(pos + i);
    if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xBF)) return {Utf8Status::invalid, 0, 1};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {Utf8Status::ok, cp, len};
}

// Text as code points, every invalid byte replaced by U+FFFD (what llama.cpp does, so ids
// agree on malformed input too), with `utf8` re-encoded to match the code points.
struct DecodedText {
  std::vector<std::uint32_t> cps;
  std::vector<std::size_t> offsets;  // byte offset of each code point in utf8, plus the end
  std::string utf8;
};

DecodedText decode_utf8(std::string_view text) {
  DecodedText d;
  d.cps.reserve(text.size());
  d.offsets.reserve(text.size() + 1);
  d.utf8.reserve(text.size());
  for (std::size_t pos = 0; pos < text.size();) {
    const Utf8Step step = utf8_next(text, pos);
    bool const ok = step.status == Utf8Status::ok;
    d.offsets.push_back(d.utf8.size());
    d.cps.push_back(ok ? step.cp : kReplacement);
    append_utf8(d.utf8, d.cps.back());
    pos += ok ? step.len : 1;
  }
  d.offsets.push_back(d.utf8.size());
  return d;
}

// ---------------------------------------------------------------------------------------------
// GPT-2's byte <-> code point table: token text spells bytes as printable code points, so that
// a vocabulary of strings can hold any byte (space is U+0120 'Ġ', newline U+010A 'Ċ').

struct ByteTables {
  std::array<std::uint32_t, 256> to_cp{};
  std::array<std::int16_t, 324> from_cp{};  // -1 where a code point spells no byte
};

constexpr ByteTables make_byte_tables() {
  ByteTables t;
  for (auto& v : t.from_cp) v = -1;
  std::uint32_t next_unprintable = 256;
  for (std::uint32_t b = 0; b < 256; ++b) {
    bool const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    t.to_cp[b] = printable ? b : next_unprintable++;
    t.from_cp[t.to_cp[b]] = static_cast<std::int16_t>(b);
  }
  return t;
}

constexpr ByteTables kBytes = make_byte_tables();

// Token text -> the bytes it spells; false if some character is not in the table.
bool unmap_bytes(std::string_view text, std::string& out) {
  for (std::size_t pos = 0; pos < text.size();) {
    const Utf8Step step = utf8_next(text, pos);
    if (step.status != Utf8Status::ok || step.cp >= kBytes.from_cp.size() || kBytes.from_cp[step.cp] < 0) {
      return false;
    }
    out += static_cast<char>(kBytes.from_cp[step.cp]);
    pos += step.len;
  }
  return true;
}

std::string map_bytes(std::string_view bytes) {
  std::string out;
  for (char const c : bytes) append_utf8(out, kBytes.to_cp[static_cast<unsigned char>(c)]);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Pre-tokenizers: hand-written equivalents of the regexes, working on code point ranges.

struct Span {
  std::size_t begin;
  std::size_t end;
};

// Code points of one fragment with bounds-checked classification.
class Fragment {
 public:
  Fragment(std::vector<std::uint32_t> const& cps, Span span) : cps_(cps), span_(span) {}
  std::size_t begin() const { return span_.begin; }
  std::size_t end() const { return span_.end; }
  std::uint32_t at(std::size_t i) const { return i < span_.end ? cps_[i] : 0; }
  Cls cls(std::size_t i) const { return i < span_.end ? classify(cps_[i]) : Cls::end; }
  std::size_t skip(std::size_t i, Cls c) const {
    while (cls(i) == c) ++i;
    return i;
  }

 private:
  std::vector<std::uint32_t> const& cps_;
  Span span_;
};

bool is_newline(std::uint32_t cp) { return cp == '\r' || cp == '\n'; }

// 's 't 're 've 'm 'll 'd at i: their length, or 0.
std::size_t contraction_len(Fragment const& f, std::size_t i, bool ignore_case) {
  auto const fold = [&](std::uint32_t c) { return ignore_case && c >= 'A' && c <= 'Z' ? c + 32 : c; };
  if (f.at(i) != '\'') return 0;
  const std::uint32_t a = fold(f.at(i + 1));
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  const std::uint32_t b = fold(f.at(i + 2));
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// \s+(?!\S)|\s+ from i, which is whitespace: a run followed by text leaves its last
// whitespace character to prefix the next word.
std::size_t whitespace_end(Fragment const& f, std::size_t i) {
  const std::size_t run_end = f.skip(i, Cls::space);
  return (run_end - i > 1 && run_end < f.end()) ? run_end - 1 : run_end;
}

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
std::size_t gpt2_word_end(Fragment const& f, std::size_t i) {
  if (const std::size_t n = contraction_len(f, i, false)) return i + n;
  const Cls c = f.cls(i);
  if (c != Cls::space) return f.skip(i + 1, c);  // letters, numbers or others
  if (f.at(i) == ' ') {
    const Cls next = f.cls(i + 1);
    if (next != Cls::space && next != Cls::end) return f.skip(i + 1, next);
  }
  return whitespace_end(f, i);
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
// \s*[\r\n]+|\s+(?!\S)|\s+
std::size_t llama3_word_end(Fragment const& f, std::size_t i) {
  if (const std::size_t n = contraction_len(f, i, true)) return i + n;
  const Cls c = f.cls(i);
  bool const can_prefix = c != Cls::letter && c != Cls::number && !is_newline(f.at(i));
  if (c == Cls::letter || (can_prefix && f.cls(i + 1) == Cls::letter)) { return f.skip(i + 1, Cls::letter); }
  if (c == Cls::number) return std::min(f.skip(i, Cls::number), i + 3);
  if (c == Cls::other || (f.at(i) == ' ' && f.cls(i + 1) == Cls::other)) {
    std::size_t j = f.skip(i + 1, Cls::other);
    while (j < f.end() && is_newline(f.at(j))) ++j;
    return j;
  }
  // \s*[\r\n]+ : the whitespace run up to and including its last newline.
  const std::size_t run_end = f.skip(i, Cls::space);
  for (std::size_t j = run_end; j > i; --j) {
    if (is_newline(f.at(j - 1))) return j;
  }
  return whitespace_end(f, i);
}

using WordEnd = std::size_t (*)(Fragment const&, std::size_t);

void split_words(std::vector<std::uint32_t> const& cps, Span span, WordEnd word_end, std::vector<Span>& out) {
  const Fragment f(cps, span);
  for (std::size_t i = span.begin; i < span.end;) {
    const std::size_t j = word_end(f, i);
    out.push_back({i, j});
    i = j;
  }
}

// \p{N} as its own fragment: each digit stands alone, the text between digits stays together.
std::vector<Span> split_digits(std::vector<std::uint32_t> const& cps) {
  std::vector<Span> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i < cps.size(); ++i) {
    if (classify(cps[i]) != Cls::number) continue;
    if (start < i) out.push_back({start, i});
    out.push_back({i, i + 1});
    start = i + 1;
  }
  if (start < cps.size()) out.push_back({start, cps.size()});
  return out;
}

std::vector<Span> split_text(std::vector<std::uint32_t> const& cps, PreTokenizer pre) {
  std::vector<Span> words;
  const Span all{0, cps.size()};
  switch (pre) {
    case PreTokenizer::gpt2: split_words(cps, all, gpt2_word_end, words); break;
    case PreTokenizer::llama3: split_words(cps, all, llama3_word_end, words); break;
    case PreTokenizer::digits_gpt2:
      for (const Span fragment : split_digits(cps)) { split_words(cps, fragment, gpt2_word_end, words); }
      break;
  }
  return words;
}

// ---------------------------------------------------------------------------------------------
// Vocabulary helpers.

bool is_text_token(TokenType t) { return t == TokenType::normal || t == TokenType::byte || t == TokenType::undefined; }

// Tokens that end a turn in the chat formats we know, besides the declared eos/eot: a model
// that emits <|endoftext|> instead of <|im_end|> must still stop.
constexpr std::string_view kEndOfTurnTexts[] = {"<|endoftext|>", "<|im_end|>",      "<|eot_id|>",
                                                "<|eom_id|>",    "<|end_of_text|>", "<end_of_turn>"};

// Built by appending: GCC 12's -Wrestrict misfires on "'" + std::string(s) at -O2.
std::string quoted(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.append(1, '\'').append(s).append(1, '\'');
  return out;
}

}  // namespace

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// ---------------------------------------------------------------------------------------------
// Construction.

Tokenizer Tokenizer::from_vocab(std::vector<std::string> tokens, std::vector<std::string> merges,
                                std::vector<std::int32_t> token_types, std::string_view pre_tokenizer, SpecialIds ids) {
  Tokenizer t;
  t.load_tokens(std::move(tokens), std::move(token_types));
  t.load_merges(merges);
  t.load_special_ids(ids);
  t.select_pre_tokenizer(pre_tokenizer);
  return t;
}

void Tokenizer::load_tokens(std::vector<std::string> tokens, std::vector<std::int32_t> token_types) {
  if (tokens.empty()) throw TokenizerError("tokenizer: the vocabulary is empty");
  if (tokens.size() > static_cast<std::size_t>(INT32_MAX)) { throw TokenizerError("tokenizer: vocabulary too large"); }
  if (token_types.size() != tokens.size()) {
    throw TokenizerError("tokenizer: " + std::to_string(token_types.size()) + " token types for " +
                         std::to_string(tokens.size()) + " tokens");
  }
  pieces_.resize(tokens.size());
  types_.resize(tokens.size());
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const std::int32_t type = token_types[i];
    if (type < 0 || type > static_cast<std::int32_t>(TokenType::byte)) {
      throw TokenizerError("tokenizer: token " + std::to_string(i) + " has unknown type " + std::to_string(type));
    }
    types_[i] = static_cast<TokenType>(type);
    // Text tokens spell bytes through the GPT-2 table; control and user-defined tokens are
    // literal strings.
    if (!is_text_token(types_[i])) {
      pieces_[i] = tokens[i];
    } else if (!unmap_bytes(tokens[i], pieces_[i])) {
      throw TokenizerError("tokenizer: token " + std::to_string(i) + " " + quoted(tokens[i]) +
                           " is not byte-level BPE text");
    }
    // A repeated text maps to its last id, as in llama.cpp.
    text_to_id_[std::move(tokens[i])] = static_cast<std::int32_t>(i);
  }
  for (int b = 0; b < 256; ++b) {
    auto const it = text_to_id_.find(map_bytes(std::string(1, static_cast<char>(b))));
    byte_token_[b] = it == text_to_id_.end() ? -1 : it->second;
  }
}

void Tokenizer::load_merges(std::vector<std::string> const& merges) {
  auto const lookup = [&](std::string const& text, std::size_t rank) {
    const auto it = text_to_id_.find(text);
    if (it == text_to_id_.end()) {
      throw TokenizerError("tokenizer: merge " + std::to_string(rank) + " " + quoted(merges[rank]) +
                           " refers to unknown token " + quoted(text));
    }
    return it->second;
  };
  merges_.reserve(merges.size());
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    std::string const& m = merges[rank];
    // The separator is the first space after position 0 (token text never contains a raw
    // space in a byte-level vocabulary, but a leading one would be part of the left token).
    const std::size_t sep = m.find(' ', 1);
    if (sep == std::string::npos) {
      throw TokenizerError("tokenizer: merge " + std::to_string(rank) + " " + quoted(m) +
                           " is not two tokens separated by a space");
    }
    const std::string left = m.substr(0, sep), right = m.substr(sep + 1);
    const std::int32_t l = lookup(left, rank), r = lookup(right, rank);
    const std::int32_t result = lookup(left + right, rank);
    const std::uint64_t key = (static_cast<std::uint64_t>(l) << 32) | static_cast<std::uint32_t>(r);
    // A repeated pair keeps its first (best) rank.
    merges_.emplace(key, Merge{static_cast<std::int32_t>(rank), result});
  }
}

void Tokenizer::load_special_ids(SpecialIds ids) {
  auto const check = [&](std::int32_t id, char const* role) {
    if (id < -1 || id >= vocab_size()) {
      throw TokenizerError(std::string("tokenizer: ") + role + " token id " + std::to_string(id) +
                           " is outside the vocabulary of " + std::to_string(vocab_size()));
    }
  };
  check(ids.bos, "bos");
  check(ids.eos, "eos");
  check(ids.unk, "unknown");
  check(ids.pad, "padding");
  check(ids.eot, "eot");
  ids_ = ids;

  for (std::int32_t id = 0; id < vocab_size(); ++id) {
    const TokenType t = types_[id];
    if (t == TokenType::control || t == TokenType::unknown || t == TokenType::user_defined) {
      if (!pieces_[id].empty()) matchable_.push_back(id);
    }
    bool const end_of_turn =
        t == TokenType::control &&
        std::find(std::begin(kEndOfTurnTexts), std::end(kEndOfTurnTexts), pieces_[id]) != std::end(kEndOfTurnTexts);
    if (id == ids.eos || id == ids.eot || end_of_turn) eog_.push_back(id);
  }
  // Longest first, so that a token that is a prefix of another never wins over it.
  std::stable_sort(matchable_.begin(), matchable_.end(),
                   [&](std::int32_t a, std::int32_t b) { return pieces_[a].size() > pieces_[b].size(); });
}

void Tokenizer::select_pre_tokenizer(std::string_view name) {
  static constexpr std::string_view kDigitsGpt2[] = {"smollm",    "starcoder", "refact", "command-r",
                                                     "codeshell", "exaone",    "minerva"};
  static constexpr std::string_view kLlama3[] = {"llama3", "llama-bpe", "llama-v3"};
  // Not "default": llama.cpp gives that name (a file that does not say) its own legacy split,
  // which we do not reproduce, so it takes the warning below.
  static constexpr std::string_view kGpt2[] = {"gpt2", "gpt-2"};
  auto const in = [&](auto const& names) {
    return std::find(std::begin(names), std::end(names), name) != std::end(names);
  };
  if (in(kDigitsGpt2)) {
    pre_ = PreTokenizer::digits_gpt2;
  } else if (in(kLlama3)) {
    pre_ = PreTokenizer::llama3;
  } else {
    pre_ = PreTokenizer::gpt2;
    if (!in(kGpt2)) {
      warnings_.push_back("tokenizer: pre-tokenizer " + quoted(name) +
                          " is not implemented, using GPT-2's; ids may differ from the model's");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding.

std::vector<std::int32_t> Tokenizer::encode(std::string_view text, bool parse_special) const {
  std::vector<std::int32_t> out;
  out.reserve(text.size() / 3 + 1);
  std::size_t plain_start = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    std::int32_t found = -1;
    for (const std::int32_t id : matchable_) {
      if (!parse_special && types_[id] != TokenType::user_defined) continue;
      if (text.compare(pos, pieces_[id].size(), pieces_[id]) == 0) {
        found = id;
        break;
      }
    }
    if (found < 0) {
      ++pos;
      continue;
    }
    encode_text(text.substr(plain_start, pos - plain_start), out);
    out.push_back(found);
    pos += pieces_[found].size();
    plain_start = pos;
  }
  encode_text(text.substr(plain_start), out);
  return out;
}

void Tokenizer::encode_text(std::string_view text, std::vector<std::int32_t>& out) const {
  if (text.empty()) return;
  const DecodedText d = decode_utf8(text);
  const std::string_view utf8 = d.utf8;
  for (const Span w : split_text(d.cps, pre_)) {
    encode_word(utf8.substr(d.offsets[w.begin], d.offsets[w.end] - d.offsets[w.begin]), out);
  }
}

std::vector<std::string> Tokenizer::pre_tokenize(std::string_view text) const {
  const DecodedText d = decode_utf8(text);
  std::vector<std::string> words;
  for (const Span w : split_text(d.cps, pre_)) {
    words.push_back(d.utf8.substr(d.offsets[w.begin], d.offsets[w.end] - d.offsets[w.begin]));
  }
  return words;
}

Tokenizer::Merge const* Tokenizer::find_merge(std::int32_t left, std::int32_t right) const {
  if (left < 0 || right < 0) return nullptr;
  auto const it = merges_.find((static_cast<std::uint64_t>(left) << 32) | static_cast<std::uint32_t>(right));
  return it == merges_.end() ? nullptr : &it->second;
}

// BPE on one pre-token: start from one symbol per byte, repeatedly merge the adjacent pair
// with the lowest rank (leftmost on ties). Symbols form a linked list; a min-heap holds
// candidate pairs, and a candidate is stale once either side has changed.
void Tokenizer::encode_word(std::string_view word, std::vector<std::int32_t>& out) const {
  if (pre_ == PreTokenizer::llama3) {  // LLaMA-3 takes a whole word found in the vocab as is
    auto const it = text_to_id_.find(map_bytes(word));
    if (it != text_to_id_.end() && is_text_token(types_[it->second])) {
      out.push_back(it->second);
      return;
    }
  }
  struct Symbol {
    std::int32_t id;  // -1: a byte the vocabulary lacks, or a symbol merged into its left neighbour
    std::int32_t prev;
    std::int32_t next;
  };
  const std::int32_t n = static_cast<std::int32_t>(word.size());
  std::vector<Symbol> sym(word.size());
  for (std::int32_t i = 0; i < n; ++i) {
    sym[i] = {byte_token_[static_cast<unsigned char>(word[i])], i - 1, i + 1 < n ? i + 1 : -1};
  }
  // (rank, left index, right index, left id, right id): ordered by rank, then leftmost.
  using Candidate = std::tuple<std::int32_t, std::int32_t, std::int32_t, std::int32_t, std::int32_t>;
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto const consider = [&](std::int32_t l, std::int32_t r) {
    if (l < 0 || r < 0) return;
    if (const Merge* m = find_merge(sym[l].id, sym[r].id)) { heap.emplace(m->rank, l, r, sym[l].id, sym[r].id); }
  };
  for (std::int32_t i = 0; i + 1 < n; ++i) consider(i, i + 1);
  while (!heap.empty()) {
    auto const [rank, l, r, lid, rid] = heap.top();
    heap.pop();
    if (sym[l].next != r || sym[l].id != lid || sym[r].id != rid) continue;  // stale
    sym[l].id = find_merge(lid, rid)->result;
    sym[l].next = sym[r].next;
    if (sym[r].next >= 0) sym[sym[r].next].prev = l;
    sym[r].id = -1;
    consider(sym[l].prev, l);
    consider(l, sym[l].next);
  }
  // Bytes missing from the vocabulary are dropped, as llama.cpp does.
  for (std::int32_t i = n > 0 ? 0 : -1; i >= 0; i = sym[i].next) {
    if (sym[i].id >= 0) out.push_back(sym[i].id);
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding.

std::string const& Tokenizer::checked_piece(std::int32_t id) const {
  if (id < 0 || id >= vocab_size()) {
    throw TokenizerError("tokenizer: token id " + std::to_string(id) + " is outside the vocabulary of " +
                         std::to_string(vocab_size()));
  }
  return pieces_[id];
}

std::string Tokenizer::decode(std::span<const std::int32_t> ids) const {
  std::string out;
  for (const std::int32_t id : ids) out += checked_piece(id);
  return out;
}

std::string Tokenizer::token_piece(std::int32_t id) const { return checked_piece(id); }

bool Tokenizer::is_eog(std::int32_t id) const { return std::find(eog_.begin(), eog_.end(), id) != eog_.end(); }

// ---------------------------------------------------------------------------------------------
// Chat template and streaming.

std::string apply_chat_template(std::span<const ChatMessage> messages, bool add_generation_prompt) {
  std::string out;
  auto const turn = [&](std::string_view role, std::string_view content) {
    out.append("<|im_start|>").append(role).append("\n").append(content).append("<|im_end|>\n");
  };
  // As the model's Jinja: the default system turn comes with the first message, so an empty
  // conversation gets none.
  if (!messages.empty() && messages.front().role != "system") turn("system", kSmolLM2DefaultSystem);
  for (ChatMessage const& m : messages) turn(m.role, m.content);
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

std::string Utf8StreamDecoder::push(std::string_view bytes) {
  pending_.append(bytes);
  std::string out;
  std::size_t pos = 0;
  while (pos < pending_.size()) {
    const Utf8Step step = utf8_next(pending_, pos);
    if (step.status == Utf8Status::incomplete) break;  // wait for the rest of the character
    if (step.status == Utf8Status::ok) {
      out.append(pending_, pos, step.len);
    } else {
      append_utf8(out, kReplacement);
    }
    pos += step.len;
  }
  pending_.erase(0, pos);
  return out;
}

std::string Utf8StreamDecoder::flush() {
  std::string out;
  if (!pending_.empty()) append_utf8(out, kReplacement);  // pending_ is one unfinished character
  pending_.clear();
  return out;
}

}  // namespace skipllm::engine
