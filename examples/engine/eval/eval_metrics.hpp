// Quality metrics of `skipllm eval` (docs/eval.md): answer matching, ROUGE-L, perplexity,
// distinct-n, repetition, and token agreement between two generations.
//
// Pure functions on strings, log-probabilities and token ids: no model, no I/O, so every one is
// unit-tested on hand-computed cases (tests/engine/eval/test_eval.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace skipllm::engine::eval {

// ---- Text normalization ----------------------------------------------------------------------

//! Normalizes text for answer matching and ROUGE-L, and returns its words. Exactly:
//!  1. UTF-8 is decoded; invalid bytes count as separators.
//!  2. Case is folded: ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic capitals.
//!  3. Latin letters lose their diacritics: "é" -> "e", "Ł" -> "l", "ß" -> "ss", "æ" -> "ae",
//!     "œ" -> "oe", "þ" -> "th" (Latin-1 and Latin Extended-A); combining marks U+0300-U+036F
//!     are dropped.
//!  4. A comma between two ASCII digits is dropped ("1,000" -> "1000"); a period between two
//!     ASCII digits is kept ("3.14").
//!  5. Every other character that is not a letter or digit separates words: ASCII punctuation
//!     and symbols, whitespace and control characters, U+0080-U+00BF (except the letters ª µ º),
//!     × and ÷, General Punctuation U+2000-U+206F (curly quotes, dashes, ...), arrows and
//!     mathematical symbols U+2190-U+22FF, CJK punctuation U+3000-U+303F, fullwidth ASCII
//!     punctuation, U+FEFF and U+FFFD. Other code points (letters of any script, CJK) are kept.
//! So "Shakespeare's" gives {"shakespeare", "s"}, "Jean-Paul Sartre" {"jean", "paul", "sartre"}.
std::vector<std::string> normalized_words(std::string_view text);

//! normalized_words() joined by single spaces.
std::string normalize_text(std::string_view text);

// ---- Answer matching -------------------------------------------------------------------------

//! True when `answer`, normalized, occurs in `output`, normalized, as a whole-word sequence:
//! case-insensitive containment that respects word boundaries ("Paris" is found in "It is
//! Paris.", "Au" is not found in "Australia", "1945" not in "19456"). An answer that normalizes
//! to nothing never matches.
bool answer_matches(std::string_view answer, std::string_view output);

//! Index of the first of `answers` that matches `output`, or -1.
int first_matching_answer(std::span<std::string const> answers, std::string_view output);

// ---- ROUGE-L ---------------------------------------------------------------------------------

struct RougeL {
  double precision = 0;  //!< LCS / candidate words
  double recall = 0;     //!< LCS / reference words
  double f1 = 0;         //!< 2 P R / (P + R): the F-measure with beta = 1
  std::size_t lcs = 0;   //!< longest common subsequence, in words
};

//! ROUGE-L of `candidate` against `reference` on normalized_words() (lowercase, punctuation
//! removed). Two empty texts score 1 (identical); one empty text scores 0.
RougeL rouge_l(std::string_view candidate, std::string_view reference);

//! Longest common subsequence length of two word (or token) sequences.
std::size_t lcs_length(std::span<std::string const> a, std::span<std::string const> b);

// ---- Perplexity ------------------------------------------------------------------------------

//! log p(token) under `logits` (natural log): log-softmax in double precision.
double token_log_prob(std::span<float const> logits, std::int32_t token);

//! exp(-mean(log_probs)): the perplexity of the scored tokens. NaN when `log_probs` is empty.
double perplexity(std::span<double const> log_probs);

//! The same from a sum of log-probabilities over `count` tokens (NaN when count is 0).
double perplexity_from_sum(double sum_log_probs, std::int64_t count);

// ---- Diversity and repetition ----------------------------------------------------------------

//! Distinct-n: unique n-grams / n-grams in `tokens` (n >= 1). NaN when the sequence has fewer
//! than n tokens (no n-gram to count).
double distinct_n(std::span<std::int32_t const> tokens, int n);

//! Length of the longest n-gram that occurs at least twice in `tokens` (occurrences may
//! overlap: "a a a" repeats "a a"); 0 when no token repeats.
std::size_t longest_repeated_ngram(std::span<std::int32_t const> tokens);

struct CollapseMetrics {
  std::size_t tokens = 0;
  double distinct_1 = 0, distinct_2 = 0, distinct_3 = 0;  //!< NaN where undefined
  std::size_t longest_repeat = 0;                         //!< longest_repeated_ngram
  bool collapsed = false;                                 //!< see collapse_metrics
};

//! Collapse thresholds: a generation has collapsed when an n-gram of at least
//! kCollapseRepeatTokens tokens occurs twice, or its distinct-2 is below kCollapseDistinct2.
inline constexpr std::size_t kCollapseRepeatTokens = 16;
inline constexpr double kCollapseDistinct2 = 0.3;

CollapseMetrics collapse_metrics(std::span<std::int32_t const> tokens);

// ---- Agreement of two generations ------------------------------------------------------------

struct TokenAgreement {
  std::size_t reference_tokens = 0;  //!< e.g. the dense generation
  std::size_t candidate_tokens = 0;  //!< e.g. the generation with skipping
  std::size_t first_divergence = 0;  //!< first position where they differ (the common length if none)
  std::size_t matched = 0;           //!< positions i < min(lengths) with equal tokens
  bool identical = false;
  //! first_divergence / max(lengths): the share reproduced exactly before the first difference.
  double prefix_rate = 1;
  //! matched / max(lengths): position-wise agreement over the whole generation.
  double overall_rate = 1;
};

//! Greedy token agreement of `candidate` with `reference`. Two empty sequences agree fully.
TokenAgreement token_agreement(std::span<std::int32_t const> reference, std::span<std::int32_t const> candidate);

// ---- Summaries -------------------------------------------------------------------------------

struct Distribution {
  std::size_t count = 0;
  double mean = 0, stddev = 0, min = 0, p10 = 0, median = 0, p90 = 0, max = 0;
};

//! Summary of `values` (NaN values are ignored). stddev is the population standard deviation;
//! percentiles interpolate linearly between order statistics (numpy's default). All fields
//! are NaN when no value is finite.
Distribution describe_values(std::vector<double> values);

//! Mean of the finite values, NaN when there are none.
double finite_mean(std::span<double const> values);

}  // namespace skipllm::engine::eval
