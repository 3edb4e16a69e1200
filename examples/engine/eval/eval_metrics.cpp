#include "eval/eval_metrics.hpp"
#include "format/tokenizer.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <string>

namespace skipllm::engine::eval {

namespace {

// Decodes one UTF-8 character at s[i], advancing i; invalid or truncated sequences give U+FFFD
// and consume one byte.
char32_t next_code_point(std::string_view s, std::size_t& i) {
  auto const byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char const b0 = byte(i);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  int extra = 0;
  char32_t cp = 0;
  char32_t min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    extra = 1, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    extra = 2, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    extra = 3, cp = b0 & 0x07, min = 0x10000;
  } else {
    ++i;
    return 0xFFFD;
  }
  if (i + static_cast<std::size_t>(extra) >= s.size()) {  // truncated
    ++i;
    return 0xFFFD;
  }
  for (int k = 1; k <= extra; ++k) {
    unsigned char const b = byte(i + static_cast<std::size_t>(k));
    if ((b & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++i;
    return 0xFFFD;
  }
  i += static_cast<std::size_t>(extra) + 1;
  return cp;
}

// Latin-1 letters U+00C0-U+00FF, folded: lowercase, no diacritics. "" marks × and ÷.
constexpr char const* kLatin1[64] = {
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i",  "i",   // C0-CF
    "d", "n", "o", "o", "o", "o", "o",  "",  "o", "u", "u", "u", "u", "y", "th", "ss",  // D0-DF
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i",  "i",   // E0-EF
    "d", "n", "o", "o", "o", "o", "o",  "",  "o", "u", "u", "u", "u", "y", "th", "y",   // F0-FF
};

// Latin Extended-A U+0100-U+017F: the base letter of each (case and diacritics folded).
constexpr char kLatinExtA[] =
    "aaaaaa"        // 0100-0105 A-macron, A-breve, A-ogonek
    "cccccccc"      // 0106-010D
    "dddd"          // 010E-0111
    "eeeeeeeeee"    // 0112-011B
    "gggggggg"      // 011C-0123
    "hhhh"          // 0124-0127
    "iiiiiiiiii"    // 0128-0131
    "ii"            // 0132-0133 IJ ligature (special-cased to "ij")
    "jj"            // 0134-0135
    "kkk"           // 0136-0138
    "llllllllll"    // 0139-0142
    "nnnnnnnnn"     // 0143-014B
    "oooooo"        // 014C-0151
    "oo"            // 0152-0153 OE ligature (special-cased to "oe")
    "rrrrrr"        // 0154-0159
    "ssssssss"      // 015A-0161
    "tttttt"        // 0162-0167
    "uuuuuuuuuuuu"  // 0168-0173
    "ww"            // 0174-0175
    "yyy"           // 0176-0178
    "zzzzzz"        // 0179-017E
    "s";            // 017F long s
static_assert(sizeof(kLatinExtA) == 128 + 1, "one letter per code point of U+0100-U+017F");

bool is_separator(char32_t c) {
  if (c < 0x80) return !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
  if (c >= 0x80 && c <= 0xBF) return c != 0xAA && c != 0xB5 && c != 0xBA;
  if (c == 0xD7 || c == 0xF7) return true;
  if (c >= 0x2000 && c <= 0x206F) return true;
  if (c >= 0x2190 && c <= 0x22FF) return true;
  if (c >= 0x3000 && c <= 0x303F) return true;
  if ((c >= 0xFF01 && c <= 0xFF0F) || (c >= 0xFF1A && c <= 0xFF20) || (c >= 0xFF3B && c <= 0xFF40) ||
      (c >= 0xFF5B && c <= 0xFF65)) {
    return true;
  }
  return c == 0xFEFF || c == 0xFFFD;
}

// Appends the folded form of `c` (a non-separator) to `word`.
void append_folded(std::string& word, char32_t c) {
  if (c < 0x80) {
    word += static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
  } else if (c >= 0xC0 && c <= 0xFF) {
    word += kLatin1[c - 0xC0];
  } else if (c >= 0x100 && c <= 0x17F) {
    if (c == 0x132 || c == 0x133) {
      word += "ij";
    } else if (c == 0x152 || c == 0x153) {
      word += "oe";
    } else {
      word += kLatinExtA[c - 0x100];
    }
  } else if (c >= 0x300 && c <= 0x36F) {
    // combining diacritical mark: dropped
  } else if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) {
    append_utf8(word, c + 0x20);  // Greek capitals
  } else if (c >= 0x410 && c <= 0x42F) {
    append_utf8(word, c + 0x20);  // Cyrillic capitals
  } else if (c >= 0x400 && c <= 0x40F) {
    append_utf8(word, c + 0x50);  // Cyrillic capitals with marks (Ё, Ђ, ...)
  } else {
    append_utf8(word, c);
  }
}

bool is_ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }

}  // namespace

std::vector<std::string> normalized_words(std::string_view text) {
  std::vector<char32_t> cps;
  cps.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) cps.push_back(next_code_point(text, i));

  std::vector<std::string> words;
  std::string word;
  auto const flush = [&] {
    if (!word.empty()) words.push_back(std::move(word));
    word.clear();
  };
  for (std::size_t i = 0; i < cps.size(); ++i) {
    char32_t const c = cps[i];
    bool const between_digits = i > 0 && i + 1 < cps.size() && is_ascii_digit(cps[i - 1]) && is_ascii_digit(cps[i + 1]);
    if (c == ',' && between_digits) continue;  // thousands separator
    if (c == '.' && between_digits) {
      word += '.';  // decimal point
      continue;
    }
    if (is_separator(c)) {
      flush();
      continue;
    }
    append_folded(word, c);
  }
  flush();
  return words;
}

std::string normalize_text(std::string_view text) {
  std::string out;
  for (auto const& w : normalized_words(text)) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

bool answer_matches(std::string_view answer, std::string_view output) {
  std::string const a = normalize_text(answer);
  if (a.empty()) return false;
  // (Appended piece by piece: g++ 12 warns falsely on "literal" + std::string&&, GCC bug 105329.)
  std::string o(1, ' '), needle(1, ' ');
  o.append(normalize_text(output)).append(1, ' ');
  needle.append(a).append(1, ' ');
  return o.find(needle) != std::string::npos;
}

int first_matching_answer(std::span<std::string const> answers, std::string_view output) {
  for (std::size_t i = 0; i < answers.size(); ++i) {
    if (answer_matches(answers[i], output)) return static_cast<int>(i);
  }
  return -1;
}

std::size_t lcs_length(std::span<std::string const> a, std::span<std::string const> b) {
  if (a.empty() || b.empty()) return 0;
  std::vector<std::size_t> row(b.size() + 1, 0);
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = 0;  // row[j-1] of the previous row
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t const up = row[j];
      row[j] = a[i - 1] == b[j - 1] ? diag + 1 : std::max(row[j], row[j - 1]);
      diag = up;
    }
  }
  return row[b.size()];
}

RougeL rouge_l(std::string_view candidate, std::string_view reference) {
  std::vector<std::string> const c = normalized_words(candidate);
  std::vector<std::string> const r = normalized_words(reference);
  RougeL out;
  if (c.empty() && r.empty()) {
    out.precision = out.recall = out.f1 = 1;
    return out;
  }
  if (c.empty() || r.empty()) return out;
  out.lcs = lcs_length(c, r);
  out.precision = static_cast<double>(out.lcs) / static_cast<double>(c.size());
  out.recall = static_cast<double>(out.lcs) / static_cast<double>(r.size());
  out.f1 = out.lcs == 0 ? 0.0 : 2 * out.precision * out.recall / (out.precision + out.recall);
  return out;
}

double token_log_prob(std::span<float const> logits, std::int32_t token) {
  if (token < 0 || static_cast<std::size_t>(token) >= logits.size()) return std::numeric_limits<double>::quiet_NaN();
  double const max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float const l : logits) sum += std::exp(static_cast<double>(l) - max);
  return static_cast<double>(logits[static_cast<std::size_t>(token)]) - max - std::log(sum);
}

double perplexity_from_sum(double sum_log_probs, std::int64_t count) {
  if (count <= 0) return std::numeric_limits<double>::quiet_NaN();
  return std::exp(-sum_log_probs / static_cast<double>(count));
}

double perplexity(std::span<double const> log_probs) {
  return perplexity_from_sum(std::accumulate(log_probs.begin(), log_probs.end(), 0.0),
                             static_cast<std::int64_t>(log_probs.size()));
}

double distinct_n(std::span<std::int32_t const> tokens, int n) {
  if (n < 1 || tokens.size() < static_cast<std::size_t>(n)) return std::numeric_limits<double>::quiet_NaN();
  std::size_t const count = tokens.size() - static_cast<std::size_t>(n) + 1;
  std::map<std::vector<std::int32_t>, int> seen;
  for (std::size_t i = 0; i < count; ++i) {
    seen.emplace(std::vector<std::int32_t>(tokens.begin() + static_cast<std::ptrdiff_t>(i),
                                           tokens.begin() + static_cast<std::ptrdiff_t>(i) + n),
                 0);
  }
  return static_cast<double>(seen.size()) / static_cast<double>(count);
}

std::size_t longest_repeated_ngram(std::span<std::int32_t const> tokens) {
  // An n-gram starting at i repeats at i + d exactly when tokens[i..i+n) == tokens[i+d..i+d+n):
  // for every shift d, the longest run of positions with tokens[i] == tokens[i + d].
  std::size_t best = 0;
  for (std::size_t d = 1; d < tokens.size(); ++d) {
    std::size_t run = 0;
    for (std::size_t i = 0; i + d < tokens.size(); ++i) {
      run = tokens[i] == tokens[i + d] ? run + 1 : 0;
      best = std::max(best, run);
    }
  }
  return best;
}

CollapseMetrics collapse_metrics(std::span<std::int32_t const> tokens) {
  CollapseMetrics m;
  m.tokens = tokens.size();
  m.distinct_1 = distinct_n(tokens, 1);
  m.distinct_2 = distinct_n(tokens, 2);
  m.distinct_3 = distinct_n(tokens, 3);
  m.longest_repeat = longest_repeated_ngram(tokens);
  m.collapsed =
      m.longest_repeat >= kCollapseRepeatTokens || (!std::isnan(m.distinct_2) && m.distinct_2 < kCollapseDistinct2);
  return m;
}

TokenAgreement token_agreement(std::span<std::int32_t const> reference, std::span<std::int32_t const> candidate) {
  TokenAgreement a;
  a.reference_tokens = reference.size();
  a.candidate_tokens = candidate.size();
  std::size_t const common = std::min(reference.size(), candidate.size());
  std::size_t const longest = std::max(reference.size(), candidate.size());
  a.first_divergence = common;
  for (std::size_t i = 0; i < common; ++i) {
    if (reference[i] == candidate[i]) {
      ++a.matched;
    } else if (a.first_divergence == common) {
      a.first_divergence = i;
    }
  }
  a.identical = reference.size() == candidate.size() && a.matched == common;
  if (longest > 0) {
    a.prefix_rate = static_cast<double>(a.first_divergence) / static_cast<double>(longest);
    a.overall_rate = static_cast<double>(a.matched) / static_cast<double>(longest);
  }
  return a;
}

Distribution describe_values(std::vector<double> values) {
  std::erase_if(values, [](double v) { return !std::isfinite(v); });
  Distribution d;
  d.count = values.size();
  if (values.empty()) {
    double const nan = std::numeric_limits<double>::quiet_NaN();
    d.mean = d.stddev = d.min = d.p10 = d.median = d.p90 = d.max = nan;
    return d;
  }
  std::sort(values.begin(), values.end());
  double const n = static_cast<double>(values.size());
  d.mean = std::accumulate(values.begin(), values.end(), 0.0) / n;
  double var = 0;
  for (double const v : values) var += (v - d.mean) * (v - d.mean);
  d.stddev = std::sqrt(var / n);
  auto const quantile = [&](double q) {
    double const pos = q * (n - 1);
    std::size_t const lo = static_cast<std::size_t>(std::floor(pos));
    std::size_t const hi = std::min(lo + 1, values.size() - 1);
    return values[lo] + (values[hi] - values[lo]) * (pos - static_cast<double>(lo));
  };
  d.min = values.front();
  d.max = values.back();
  d.p10 = quantile(0.1);
  d.median = quantile(0.5);
  d.p90 = quantile(0.9);
  return d;
}

double finite_mean(std::span<double const> values) {
  double sum = 0;
  std::size_t n = 0;
  for (double const v : values) {
    if (std::isfinite(v)) sum += v, ++n;
  }
  return n ? sum / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace skipllm::engine::eval
