// Tests of `skipllm eval` (docs/eval.md): the metrics on hand-computed cases, the data parsers
// and their error messages, the window plan of the perplexity task, the dev set and its split
// rule, the option parser, and end-to-end runs of the built executable on the real model.
//
// Environment (set by tests/engine/CMakeLists.txt): SKIPLLM_CLI = the executable, SKIPLLM_MODEL =
// the SmolLM2 model. Tests that need one of them skip, with the reason, when it is missing.
#define BOOST_TEST_MODULE engine_eval
#include "engine_test_support.hpp"
#include "process_support.hpp"

#include <boost/property_tree/xml_parser.hpp>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli/eval_command.hpp"
#include "cli/options.hpp"
#include "eval/eval_metrics.hpp"
#include "eval/eval_tasks.hpp"
#include "format/gguf.hpp"
#include "format/policy_config.hpp"
#include "format/tokenizer.hpp"
#include "model/llama_model.hpp"
#include "model/thread_pool.hpp"

namespace fs = std::filesystem;
namespace utf = boost::unit_test;
namespace pt = boost::property_tree;
namespace cli = skipllm::cli;
namespace eng = skipllm::engine;
namespace ev = skipllm::engine::eval;
using engine_test::cli_and_model_available;
using engine_test::parse_json;
using engine_test::read_file;
using engine_test::run_cli;
using engine_test::RunResult;
using engine_test::scratch;
using engine_test::write_file;

namespace {

// ---- Helpers -----------------------------------------------------------------------------------

// The dev set in the source tree.
fs::path data_dir() {
  return fs::path(__FILE__).parent_path().parent_path().parent_path().parent_path() / "examples/engine/data";
}

std::string data_error(std::string const& content, std::string const& name = "f.jsonl") {
  try {
    ev::parse_factoid(content, name);
  } catch (ev::DataError const& e) { return e.what(); }
  BOOST_ERROR("no DataError for bad data");
  return {};
}

std::string usage_error(std::vector<std::string> const& args) {
  try {
    cli::parse_command_line(args);
  } catch (cli::UsageError const& e) { return e.what(); }
  BOOST_ERROR("no UsageError for a bad command line");
  return {};
}

bool contains(std::string const& haystack, std::string const& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::uint32_t fnv1a32(std::string const& s) {
  std::uint32_t h = 0x811C9DC5u;
  for (unsigned char const c : s) {
    h ^= c;
    h *= 0x01000193u;
  }
  return h;
}

using Tokens = std::vector<std::int32_t>;

}  // namespace

// ================================================================================================
BOOST_AUTO_TEST_SUITE(answer_matching)

BOOST_AUTO_TEST_CASE(normalization_is_exactly_what_the_docs_say) {
  using V = std::vector<std::string>;
  BOOST_TEST(ev::normalized_words("The Capital, of FRANCE!") == (V{"the", "capital", "of", "france"}));
  BOOST_TEST(ev::normalized_words("Shakespeare's plays") == (V{"shakespeare", "s", "plays"}));
  BOOST_TEST(ev::normalized_words("Jean-Paul  Sartre\n") == (V{"jean", "paul", "sartre"}));
  BOOST_TEST(ev::normalized_words("1,000 people; 3.14 and 1945.") == (V{"1000", "people", "3.14", "and", "1945"}));
  BOOST_TEST(ev::normalized_words("S\xC3\xA3o Paulo, Z\xC3\xBCrich, \xC5\x81\xC3\xB3"
                                  "d\xC5\xBA") == (V{"sao", "paulo", "zurich", "lodz"}));  // São, Zürich, Łódź
  BOOST_TEST(ev::normalized_words("Stra\xC3\x9F"
                                  "e \xC3\x86sop \xC5\x92uvre") == (V{"strasse", "aesop", "oeuvre"}));
  BOOST_TEST(ev::normalized_words("e\xCC\x81t\xC3\xA9") == (V{"ete"}));  // combining acute dropped
  BOOST_TEST(ev::normalized_words("\xCE\x91\xCE\x98\xCE\x97\xCE\x9D\xCE\x91") ==
             (V{"\xCE\xB1\xCE\xB8\xCE\xB7\xCE\xBD\xCE\xB1"}));  // ΑΘΗΝΑ -> αθηνα
  BOOST_TEST(ev::normalized_words("\xD0\x9C\xD0\x9E\xD0\xA1\xD0\x9A\xD0\x92\xD0\x90") ==
             (V{"\xD0\xBC\xD0\xBE\xD1\x81\xD0\xBA\xD0\xB2\xD0\xB0"}));  // МОСКВА -> москва
  BOOST_TEST(ev::normalized_words("\xE2\x80\x9CHadrian\xE2\x80\x99s Wall\xE2\x80\x9D \xE2\x80\x94 ok") ==
             (V{"hadrian", "s", "wall", "ok"}));  // curly quotes, em dash
  BOOST_TEST(ev::normalized_words("a\xFF"
                                  "b") == (V{"a", "b"}));  // invalid UTF-8 separates
  BOOST_TEST(ev::normalized_words("\xE4\xB8\x9C\xE4\xBA\xAC") == (V{"\xE4\xB8\x9C\xE4\xBA\xAC"}));  // 东京 kept
  BOOST_TEST(ev::normalize_text("  Hello,   World!  ") == "hello world");
  BOOST_TEST(ev::normalize_text("?!...").empty());
}

BOOST_AUTO_TEST_CASE(answers_match_case_insensitively_on_word_boundaries) {
  BOOST_TEST(ev::answer_matches("Paris", "The capital of France is Paris."));
  BOOST_TEST(ev::answer_matches("paris", "PARIS!"));
  BOOST_TEST(ev::answer_matches("William Shakespeare", "It was written by william   SHAKESPEARE in 1595."));
  BOOST_TEST(ev::answer_matches("Shakespeare", "Shakespeare's play"));
  BOOST_TEST(ev::answer_matches("Hadrian's Wall", "It is called Hadrian\xE2\x80\x99s wall."));
  BOOST_TEST(ev::answer_matches("Sao Paulo", "S\xC3\xA3o Paulo is in Brazil"));
  BOOST_TEST(ev::answer_matches("Z\xC3\xBCrich", "ZURICH"));
  BOOST_TEST(ev::answer_matches("1000", "about 1,000 years"));
  BOOST_TEST(ev::answer_matches("Jean-Paul Sartre", "jean paul sartre wrote it"));
  BOOST_TEST(ev::answer_matches("H2O", "Water is H2O."));
  // Not inside other words or numbers.
  BOOST_TEST(!ev::answer_matches("Au", "Australia"));
  BOOST_TEST(!ev::answer_matches("1945", "in 19456"));
  BOOST_TEST(!ev::answer_matches("Japan", "the Japanese Alps"));
  BOOST_TEST(!ev::answer_matches("blue whale", "the whale is blue"));
  // An answer without letters or digits never matches.
  BOOST_TEST(!ev::answer_matches("...", "..."));
  BOOST_TEST(!ev::answer_matches("", "anything"));

  std::vector<std::string> const answers = {"Leonardo da Vinci", "Leonardo", "da Vinci"};
  BOOST_TEST(ev::first_matching_answer(answers, "It was painted by Leonardo.") == 1);
  BOOST_TEST(ev::first_matching_answer(answers, "Leonardo da Vinci painted it") == 0);
  BOOST_TEST(ev::first_matching_answer(answers, "Michelangelo") == -1);
}

BOOST_AUTO_TEST_SUITE_END()

// ================================================================================================
BOOST_AUTO_TEST_SUITE(metrics)

BOOST_AUTO_TEST_CASE(rouge_l_on_hand_computed_cases) {
  // LCS("the cat sat on the mat", "the cat is on the mat") = "the cat on the mat" = 5 words.
  ev::RougeL const a = ev::rouge_l("The cat sat on the mat.", "the cat is on the mat");
  BOOST_TEST(a.lcs == 5u);
  BOOST_TEST(a.precision == 5.0 / 6.0, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(a.recall == 5.0 / 6.0, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(a.f1 == 5.0 / 6.0, boost::test_tools::tolerance(1e-12));
  // "a b c d" vs "b d e": LCS "b d" = 2, P = 1/2, R = 2/3, F1 = 2PR/(P+R) = 4/7.
  ev::RougeL const b = ev::rouge_l("a b c d", "b d e");
  BOOST_TEST(b.lcs == 2u);
  BOOST_TEST(b.precision == 0.5, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(b.recall == 2.0 / 3.0, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(b.f1 == 4.0 / 7.0, boost::test_tools::tolerance(1e-12));
  // Order matters: the reversed sentence shares only one word in order.
  BOOST_TEST(ev::rouge_l("c b a", "a b c").lcs == 1u);
  // Case and punctuation are ignored; no common word gives 0; empty texts.
  BOOST_TEST(ev::rouge_l("Hello, World!", "hello world").f1 == 1.0);
  BOOST_TEST(ev::rouge_l("x y", "z").f1 == 0.0);
  BOOST_TEST(ev::rouge_l("", "").f1 == 1.0);
  BOOST_TEST(ev::rouge_l("", "words").f1 == 0.0);
  BOOST_TEST(ev::rouge_l("words", "!!").f1 == 0.0);
}

BOOST_AUTO_TEST_CASE(perplexity_from_given_log_probs) {
  // p = 1/2 and 1/4: mean NLL = (ln 2 + ln 4) / 2 = 1.5 ln 2, perplexity = 2^1.5.
  std::vector<double> const lp = {std::log(0.5), std::log(0.25)};
  BOOST_TEST(ev::perplexity(lp) == std::pow(2.0, 1.5), boost::test_tools::tolerance(1e-12));
  BOOST_TEST(ev::perplexity_from_sum(std::log(0.5) * 3, 3) == 2.0, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(std::isnan(ev::perplexity(std::vector<double>{})));
  BOOST_TEST(ev::perplexity(std::vector<double>{0.0}) == 1.0);
  // Logits 0, 0, ln 2: softmax 1/4, 1/4, 1/2.
  std::vector<float> const logits = {0.0f, 0.0f, static_cast<float>(std::log(2.0))};
  BOOST_TEST(ev::token_log_prob(logits, 2) == std::log(0.5), boost::test_tools::tolerance(1e-6));
  BOOST_TEST(ev::token_log_prob(logits, 0) == std::log(0.25), boost::test_tools::tolerance(1e-6));
  // Shifting every logit changes nothing; a huge logit does not overflow.
  std::vector<float> const shifted = {1000.0f, 1000.0f, 1000.0f + static_cast<float>(std::log(2.0))};
  BOOST_TEST(ev::token_log_prob(shifted, 2) == std::log(0.5), boost::test_tools::tolerance(1e-4));
  BOOST_TEST(std::isnan(ev::token_log_prob(logits, 3)));
}

BOOST_AUTO_TEST_CASE(distinct_n_and_longest_repeat_on_hand_cases) {
  Tokens const t = {1, 2, 1, 2, 3};
  BOOST_TEST(ev::distinct_n(t, 1) == 3.0 / 5.0);  // {1, 2, 3} of 5
  BOOST_TEST(ev::distinct_n(t, 2) == 3.0 / 4.0);  // (1,2) (2,1) (1,2) (2,3)
  BOOST_TEST(ev::distinct_n(t, 3) == 1.0);        // (1,2,1) (2,1,2) (1,2,3)
  BOOST_TEST(std::isnan(ev::distinct_n(Tokens{1, 2}, 3)));
  BOOST_TEST(std::isnan(ev::distinct_n(Tokens{}, 1)));

  BOOST_TEST(ev::longest_repeated_ngram(Tokens{1, 2, 3, 1, 2, 3, 4}) == 3u);
  BOOST_TEST(ev::longest_repeated_ngram(Tokens{5, 5, 5, 5}) == 3u);  // overlapping occurrences count
  BOOST_TEST(ev::longest_repeated_ngram(Tokens{1, 2, 3}) == 0u);
  BOOST_TEST(ev::longest_repeated_ngram(Tokens{}) == 0u);
  BOOST_TEST(ev::longest_repeated_ngram(Tokens{7, 1, 2, 8, 1, 2, 9, 1}) == 2u);
}

BOOST_AUTO_TEST_CASE(collapse_flag) {
  Tokens varied(64);
  for (std::size_t i = 0; i < varied.size(); ++i) varied[i] = static_cast<std::int32_t>(i);
  ev::CollapseMetrics const ok = ev::collapse_metrics(varied);
  BOOST_TEST(!ok.collapsed);
  BOOST_TEST(ok.distinct_2 == 1.0);
  BOOST_TEST(ok.longest_repeat == 0u);

  Tokens loop;  // a 5-token phrase said 8 times: the 35-token tail repeats
  for (int k = 0; k < 8; ++k) loop.insert(loop.end(), {10, 11, 12, 13, 14});
  ev::CollapseMetrics const bad = ev::collapse_metrics(loop);
  BOOST_TEST(bad.longest_repeat == 35u);
  BOOST_TEST(bad.collapsed);

  // A repeat of 15 tokens is below the threshold; of 16 it collapses.
  Tokens r15(15), r16(16);
  for (int i = 0; i < 15; ++i) r15[static_cast<std::size_t>(i)] = 100 + i;
  for (int i = 0; i < 16; ++i) r16[static_cast<std::size_t>(i)] = 100 + i;
  Tokens a = r15, b = r16;
  a.push_back(1), b.push_back(1);
  a.insert(a.end(), r15.begin(), r15.end());
  b.insert(b.end(), r16.begin(), r16.end());
  BOOST_TEST(!ev::collapse_metrics(a).collapsed);
  BOOST_TEST(ev::collapse_metrics(b).collapsed);

  // Distinct-2 below 0.3 collapses even when no repeat reaches 16 tokens.
  ev::CollapseMetrics const l = ev::collapse_metrics(Tokens(10, 7));
  BOOST_TEST(l.distinct_2 == 1.0 / 9.0);
  BOOST_TEST(l.longest_repeat == 9u);
  BOOST_TEST(l.collapsed);
  BOOST_TEST(!ev::collapse_metrics(Tokens{1, 2, 1, 1, 2, 2}).collapsed);  // distinct-2 = 4/5
}

BOOST_AUTO_TEST_CASE(token_agreement_up_to_first_divergence_and_overall) {
  ev::TokenAgreement const a = ev::token_agreement(Tokens{1, 2, 3, 4}, Tokens{1, 2, 9, 4});
  BOOST_TEST(a.first_divergence == 2u);
  BOOST_TEST(a.matched == 3u);
  BOOST_TEST(a.prefix_rate == 0.5);
  BOOST_TEST(a.overall_rate == 0.75);
  BOOST_TEST(!a.identical);

  ev::TokenAgreement const shorter = ev::token_agreement(Tokens{1, 2, 3, 4}, Tokens{1, 2});
  BOOST_TEST(shorter.first_divergence == 2u);
  BOOST_TEST(shorter.prefix_rate == 0.5);
  BOOST_TEST(shorter.overall_rate == 0.5);
  BOOST_TEST(!shorter.identical);

  ev::TokenAgreement const same = ev::token_agreement(Tokens{5, 6}, Tokens{5, 6});
  BOOST_TEST(same.identical);
  BOOST_TEST(same.prefix_rate == 1.0);
  BOOST_TEST(same.overall_rate == 1.0);

  ev::TokenAgreement const empty = ev::token_agreement(Tokens{}, Tokens{});
  BOOST_TEST(empty.identical);
  BOOST_TEST(empty.overall_rate == 1.0);

  ev::TokenAgreement const first = ev::token_agreement(Tokens{1, 2, 3}, Tokens{9, 2, 3});
  BOOST_TEST(first.first_divergence == 0u);
  BOOST_TEST(first.prefix_rate == 0.0);
  BOOST_TEST(first.overall_rate == 2.0 / 3.0);
}

BOOST_AUTO_TEST_CASE(distribution_summary) {
  ev::Distribution const d = ev::describe_values({4, 1, std::nan(""), 3, 2});
  BOOST_TEST(d.count == 4u);
  BOOST_TEST(d.mean == 2.5);
  BOOST_TEST(d.stddev == std::sqrt(1.25), boost::test_tools::tolerance(1e-12));
  BOOST_TEST(d.min == 1.0);
  BOOST_TEST(d.max == 4.0);
  BOOST_TEST(d.median == 2.5);
  BOOST_TEST(d.p10 == 1.3, boost::test_tools::tolerance(1e-12));  // numpy: 1 + 0.3 * (2 - 1)
  BOOST_TEST(d.p90 == 3.7, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(std::isnan(ev::describe_values({}).mean));
  BOOST_TEST(ev::finite_mean(std::vector<double>{1, std::nan(""), 3}) == 2.0);
}

BOOST_AUTO_TEST_SUITE_END()

// ================================================================================================
BOOST_AUTO_TEST_SUITE(data)

BOOST_AUTO_TEST_CASE(factoid_jsonl) {
  ev::Dataset<ev::FactoidItem> const d = ev::parse_factoid(
      "{\"question\": \"Q1?\", \"answers\": [\"A\", \"a b\"]}\n\n  \r\n{\"id\": \"x\", \"question\": \"Q2?\", "
      "\"answers\": [\"B\"], \"topic\": \"ignored\"}\r\n",
      "f.jsonl");
  BOOST_TEST(d.file.lines == 4u);
  BOOST_TEST_REQUIRE(d.items.size() == 2u);
  BOOST_TEST(d.items[0].id == "line1");
  BOOST_TEST(d.items[0].answers.size() == 2u);
  BOOST_TEST(d.items[1].id == "x");
  BOOST_TEST(d.items[1].line == 4u);
  BOOST_TEST(d.items[1].question == "Q2?");
}

BOOST_AUTO_TEST_CASE(bad_jsonl_lines_are_named) {
  std::string const good = "{\"question\": \"Q?\", \"answers\": [\"A\"]}\n";
  std::string e = data_error(good + "\n{\"question\": \"Q?\", \"answers\": [\"A\"]\n");
  BOOST_TEST(contains(e, "f.jsonl:3: invalid JSON"), e);
  BOOST_TEST(contains(e, "column"), e);
  e = data_error(good + "{\"question\": \"Q?\"}\n");
  BOOST_TEST(contains(e, "f.jsonl:2: missing \"answers\""), e);
  e = data_error("{\"answers\": [\"A\"]}\n");
  BOOST_TEST(contains(e, "f.jsonl:1: missing \"question\""), e);
  e = data_error("{\"question\": \"Q?\", \"answers\": []}\n");
  BOOST_TEST(contains(e, "f.jsonl:1: \"answers\" must be a non-empty array of strings"), e);
  e = data_error("{\"question\": \"Q?\", \"answers\": [\"A\", 3]}\n");
  BOOST_TEST(contains(e, "f.jsonl:1: \"answers\" must be a non-empty array of strings"), e);
  e = data_error("{\"question\": \"Q?\", \"answers\": \"A\"}\n");
  BOOST_TEST(contains(e, "must be a non-empty array"), e);
  e = data_error("{\"question\": 7, \"answers\": [\"A\"]}\n");
  BOOST_TEST(contains(e, "\"question\" must be a string"), e);
  e = data_error("[1, 2]\n");
  BOOST_TEST(contains(e, "f.jsonl:1: expected a JSON object per line"), e);
  e = data_error("{\"question\": \"  \", \"answers\": [\"A\"]}\n");
  BOOST_TEST(contains(e, "\"question\" is empty"), e);
  e = data_error("{\"question\": \"Q\", \"answers\": [\"?!\"]}\n");
  BOOST_TEST(contains(e, "no letters or digits"), e);
  BOOST_CHECK_THROW(ev::read_factoid(scratch() / "absent.jsonl"), ev::DataError);
}

BOOST_AUTO_TEST_CASE(prompt_and_summarize_jsonl) {
  ev::Dataset<ev::PromptItem> const p = ev::parse_prompts(
      "{\"prompt\": \"Hi\", \"system\": \"S\"}\n"
      "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}, "
      "{\"role\": \"user\", \"content\": \"c\"}, {\"role\": \"assistant\", \"content\": \"ref\"}]}\n",
      "p.jsonl");
  BOOST_TEST_REQUIRE(p.items.size() == 2u);
  BOOST_TEST(p.items[0].messages.size() == 2u);
  BOOST_TEST(p.items[0].messages[0].role == "system");
  BOOST_TEST(!p.items[0].reference);
  BOOST_TEST(p.items[1].messages.size() == 3u);
  BOOST_TEST(p.items[1].messages.back().content == "c");
  BOOST_TEST(*p.items[1].reference == "ref");

  auto const prompt_error = [](std::string const& s) {
    try {
      ev::parse_prompts(s, "p.jsonl");
    } catch (ev::DataError const& e) { return std::string(e.what()); }
    return std::string();
  };
  BOOST_TEST(contains(prompt_error("{\"prompt\": \"a\", \"messages\": []}"), "p.jsonl:1: expected exactly one of"));
  BOOST_TEST(contains(prompt_error("{}"), "expected exactly one of"));
  BOOST_TEST(
      contains(prompt_error("{\"messages\": [{\"role\": \"bot\", \"content\": \"a\"}]}"), "unknown role \"bot\""));
  BOOST_TEST(contains(prompt_error("{\"messages\": [{\"role\": \"assistant\", \"content\": \"a\"}]}"),
                      "must end with a user message"));
  BOOST_TEST(contains(prompt_error("{\"messages\": [{\"role\": \"user\"}]}"), "messages[0] must be an object"));

  ev::Dataset<ev::SummarizeItem> const s =
      ev::parse_summarize("{\"document\": \"D\", \"reference\": \"R\"}\n{\"document\": \"E\"}\n", "s.jsonl");
  BOOST_TEST_REQUIRE(s.items.size() == 2u);
  BOOST_TEST(*s.items[0].reference == "R");
  BOOST_TEST(!s.items[1].reference);
  BOOST_CHECK_THROW(ev::parse_summarize("{\"reference\": \"R\"}\n", "s.jsonl"), ev::DataError);
  BOOST_TEST(ev::summarize_prompt("Doc.\n") == std::string(ev::kSummarizeInstruction) + "\n\nDoc.");
  BOOST_TEST(ev::length_bucket(10) == "short");
  BOOST_TEST(ev::length_bucket(400) == "medium");
  BOOST_TEST(ev::length_bucket(1000) == "long");
}

BOOST_AUTO_TEST_CASE(windows_score_every_position_once) {
  // 10 tokens, window 4, stride 2: [0,4) scores 1-3, [2,6) 4-5, [4,8) 6-7, [6,10) 8-9.
  std::vector<ev::Window> const w = ev::plan_windows(10, 4, 2, false);
  BOOST_TEST_REQUIRE(w.size() == 4u);
  BOOST_TEST(w[0].begin == 0u);
  BOOST_TEST(w[0].score_begin == 1u);
  BOOST_TEST(w[1].begin == 2u);
  BOOST_TEST(w[1].score_begin == 4u);
  BOOST_TEST(w[3].end == 10u);
  BOOST_TEST(w[3].score_begin == 8u);
  // With BOS every position, 0 included, is scored.
  BOOST_TEST(ev::plan_windows(10, 4, 2, true)[0].score_begin == 0u);

  for (std::size_t n : {2u, 3u, 7u, 64u, 100u}) {
    for (int window : {2, 3, 8, 16}) {
      for (int stride : {1, window / 2 > 0 ? window / 2 : 1, window}) {
        for (bool bos : {false, true}) {
          std::vector<int> scored(n, 0);
          for (ev::Window const& x : ev::plan_windows(n, window, stride, bos)) {
            BOOST_TEST(x.end - x.begin <= static_cast<std::size_t>(window));
            for (std::size_t i = x.score_begin; i < x.end; ++i) ++scored[i];
            BOOST_TEST((x.score_begin > x.begin || bos));  // a scored token has context (or BOS)
          }
          for (std::size_t i = 0; i < n; ++i) {
            bool const gap = !bos && stride == window && i % static_cast<std::size_t>(window) == 0;
            BOOST_TEST(scored[i] == ((i == 0 && !bos) || gap ? 0 : 1),
                       "n " << n << " window " << window << " stride " << stride << " bos " << bos << " pos " << i);
          }
        }
      }
    }
  }
  BOOST_CHECK_THROW(ev::plan_windows(10, 1, 1, false), std::invalid_argument);
  BOOST_CHECK_THROW(ev::plan_windows(10, 4, 5, false), std::invalid_argument);
  BOOST_CHECK_THROW(ev::plan_windows(10, 4, 0, false), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(dev_set_parses_and_follows_the_split_rule) {
  fs::path const dir = data_dir();
  BOOST_TEST_REQUIRE(fs::is_directory(dir), dir.string());
  auto const cal = ev::read_factoid(dir / "calibration/factoid.jsonl");
  auto const rep = ev::read_factoid(dir / "report/factoid.jsonl");
  BOOST_TEST(cal.items.size() + rep.items.size() >= 150u);
  BOOST_TEST(rep.items.size() >= 100u);
  BOOST_TEST(cal.items.size() >= 60u);
  std::set<std::string> questions;
  for (auto const& [items, calibration] : {std::pair{&cal.items, true}, std::pair{&rep.items, false}}) {
    for (ev::FactoidItem const& q : *items) {
      BOOST_TEST((fnv1a32(q.question) % 5 < 2) == calibration, q.question);
      BOOST_TEST(questions.insert(q.question).second, "duplicate: " << q.question);
      // No accepted answer may be found in the question itself (an echo would score).
      BOOST_TEST(ev::first_matching_answer(q.answers, q.question) == -1, q.question);
    }
  }
  BOOST_TEST(ev::read_prompts(dir / "report/agreement.jsonl").items.size() >= 20u);
  BOOST_TEST(ev::read_prompts(dir / "calibration/agreement.jsonl").items.size() >= 10u);
  auto const chat = ev::read_prompts(dir / "report/chat.jsonl");
  BOOST_TEST(chat.items.size() >= 10u);
  for (ev::PromptItem const& c : chat.items) BOOST_TEST(c.messages.size() >= 3u, c.id);  // multi-turn
  auto const sum = ev::read_summarize(dir / "report/summarize.jsonl");
  BOOST_TEST(sum.items.size() >= 8u);
  for (char const* text : {"calibration/perplexity.txt", "report/perplexity.txt"}) {
    ev::DataFile f;
    BOOST_TEST(ev::read_text(dir / text, f).size() > 5000u, text);
  }
  BOOST_TEST(fs::is_regular_file(dir / "README.md"));
}

BOOST_AUTO_TEST_SUITE_END()

// ================================================================================================
BOOST_AUTO_TEST_SUITE(options)

BOOST_AUTO_TEST_CASE(eval_defaults_and_spellings) {
  cli::CommandLine const cl = cli::parse_command_line({"eval", "--task", "factoid", "--data", "q.jsonl"});
  BOOST_TEST((cl.command == cli::Command::eval));
  BOOST_TEST_REQUIRE(cl.eval != nullptr);
  cli::EvalOptions const& o = *cl.eval;
  BOOST_TEST((*o.task == cli::EvalTask::factoid));
  BOOST_TEST(*o.data == "q.jsonl");
  BOOST_TEST(!o.json);
  BOOST_TEST(!o.max_tokens);
  BOOST_TEST(cli::default_max_tokens(cli::EvalTask::factoid) == 32);
  BOOST_TEST(o.window == 512);
  BOOST_TEST(!o.stride);
  BOOST_TEST(o.threshold == 0.95f);
  BOOST_TEST(o.span == 8);
  BOOST_TEST(!o.dense);

  // --json without a value (last, or before another option) means stdout.
  BOOST_TEST(*cli::parse_command_line({"eval", "--task", "factoid", "--json"}).eval->json == "-");
  BOOST_TEST(*cli::parse_command_line({"eval", "--json", "--task", "factoid"}).eval->json == "-");
  BOOST_TEST(*cli::parse_command_line({"eval", "--task", "factoid", "--json", "-"}).eval->json == "-");
  BOOST_TEST(*cli::parse_command_line({"eval", "--task", "factoid", "--json", "out.json"}).eval->json == "out.json");
  BOOST_TEST(*cli::parse_command_line({"eval", "--task", "factoid", "--json=o.json"}).eval->json == "o.json");

  cli::CommandLine const all = cli::parse_command_line({"eval",
                                                        "--task=perplexity",
                                                        "--data",
                                                        "t.txt",
                                                        "-m",
                                                        "m.gguf",
                                                        "--window",
                                                        "64",
                                                        "--stride",
                                                        "16",
                                                        "--threshold",
                                                        "0.99",
                                                        "--span",
                                                        "all",
                                                        "--warmup",
                                                        "0",
                                                        "--refresh-every",
                                                        "0",
                                                        "--cold-first",
                                                        "2",
                                                        "--cold-last",
                                                        "3",
                                                        "-t2",
                                                        "--ctx",
                                                        "1024",
                                                        "--progress",
                                                        "-q",
                                                        "--config",
                                                        "c.json"});
  cli::EvalOptions const& a = *all.eval;
  BOOST_TEST((*a.task == cli::EvalTask::perplexity));
  BOOST_TEST(a.window == 64);
  BOOST_TEST(*a.stride == 16);
  BOOST_TEST(a.threshold == 0.99f);
  BOOST_TEST(a.span == skipllm::policy::kToColdRegion);
  BOOST_TEST(a.warmup == 0);
  BOOST_TEST(*a.cold_first == 2);
  BOOST_TEST(*a.cold_last == 3);
  BOOST_TEST(a.threads == 2);
  BOOST_TEST(a.ctx == 1024);
  BOOST_TEST(a.progress);
  BOOST_TEST(a.quiet);
  BOOST_TEST(*a.config == "c.json");
  BOOST_TEST(a.given.count("--threshold") == 1u);

  // The policy built from eval options is that of generate.
  eng::PolicyConfig const p = cli::policy_config(
      *cli::parse_command_line({"eval", "--task", "factoid", "--dense", "--warmup", "4"}).eval, 30, cli::Command::eval);
  BOOST_TEST((p.kind == eng::PolicyConfig::Kind::dense));
  BOOST_TEST(p.spans_per_token == 0);
  BOOST_TEST(p.warmup_tokens == 4);
  BOOST_TEST(p.cold_first == 5);
}

BOOST_AUTO_TEST_CASE(bad_eval_command_lines) {
  BOOST_TEST(contains(usage_error({"eval"}), "no task"));
  BOOST_TEST(contains(usage_error({"eval", "--task", "trivia"}), "unknown task 'trivia'"));
  BOOST_TEST(contains(usage_error({"eval", "--task", "trivia"}), "factoid, perplexity"));
  BOOST_TEST(
      contains(usage_error({"eval", "--task", "factoid", "--plot", "p.svg"}), "--plot is only for --task profile"));
  BOOST_TEST(contains(usage_error({"eval", "--task", "perplexity", "--window", "8", "--stride", "9"}),
                      "--stride 9 is larger than --window 8"));
  BOOST_TEST(contains(usage_error({"eval", "--task", "perplexity", "--window", "1"}), "--window must be between 2"));
  BOOST_TEST(contains(usage_error({"eval", "--task", "factoid", "--dense", "--spans-per-token", "2"}),
                      "--dense and --spans-per-token conflict"));
  BOOST_TEST(contains(usage_error({"eval", "--task", "factoid", "--limit", "0"}), "--limit must be between 1"));
  BOOST_TEST(contains(usage_error({"eval", "--task", "factoid", "--treshold", "0.9"}), "did you mean '--threshold'"));
  BOOST_TEST(contains(usage_error({"eval", "--task", "factoid", "--task", "chat"}), "given more than once"));
  BOOST_TEST(contains(usage_error({"eval", "--task", "factoid", "extra"}), "unexpected argument 'extra'"));
  BOOST_TEST(contains(usage_error({"eval", "--task", "factoid", "--data"}), "needs a value"));
  BOOST_TEST(
      contains(usage_error({"eval", "--task", "factoid", "--threshold", "2"}), "--threshold must be between -1"));
  BOOST_TEST(contains(usage_error({"evl"}), "did you mean 'eval'"));
  BOOST_TEST(contains(usage_error({"eval", "--task", "factoid", "--config", "c.json", "--paper"}),
                      "--config and --paper conflict"));
}

BOOST_AUTO_TEST_CASE(eval_warnings_and_help) {
  cli::CommandLine const cl =
      cli::parse_command_line({"eval", "--task", "perplexity", "-n", "5", "--dense", "--threshold", "0.9"});
  BOOST_TEST(cl.warnings.size() == 2u);
  BOOST_TEST(cl.eval->warnings == cl.warnings);
  cli::CommandLine const profile = cli::parse_command_line({"eval", "--task", "profile", "--span", "2"});
  BOOST_TEST_REQUIRE(profile.warnings.size() == 1u);
  BOOST_TEST(contains(profile.warnings[0], "always runs dense"));

  cli::CommandLine const help = cli::parse_command_line({"eval", "--help"});
  BOOST_TEST((help.command == cli::Command::help));
  BOOST_TEST((help.help_for == cli::Command::eval));
  std::string const text = cli::help_text(cli::Command::eval);
  for (char const* option :
       {"--task",          "--data",       "--model",     "--limit", "--max-tokens",      "--system",
        "--window",        "--stride",     "--threshold", "--span",  "--spans-per-token", "--warmup",
        "--refresh-every", "--cold-first", "--cold-last", "--dense", "--config",          "--paper",
        "--threads",       "--ctx",        "--json",      "--plot",  "--progress",        "--quiet",
        "--help"}) {
    BOOST_TEST(contains(text, option), option);
  }
  for (char const* task : {"factoid", "perplexity", "agreement", "collapse", "chat", "summarize", "profile"}) {
    BOOST_TEST(contains(text, task), task);
  }
  BOOST_TEST(contains(cli::help_text(cli::Command::help), "eval"));
}

BOOST_AUTO_TEST_SUITE_END()

// ================================================================================================
BOOST_AUTO_TEST_SUITE(model, *utf::precondition(engine_test::model_available))

struct Model {
  Model()
      : file(eng::GgufFile::open(engine_test::model_path())),
        model(file),
        tokenizer(eng::tokenizer_from_gguf(file)),
        pool(2) {}
  eng::GgufFile file;
  eng::LlamaModel model;
  eng::Tokenizer tokenizer;
  eng::ThreadPool pool;
  ev::EvalModel eval() { return {model, tokenizer, pool, false, 512}; }
};

skipllm::policy::ConfigurablePolicies dense_policies() { return {}; }  // policy::Dense

BOOST_AUTO_TEST_CASE(decode_step_perplexity_matches_prefill_scoring) {
  // Dense, every prediction of the text computed by a full prefill of its prefix: the
  // token-by-token windows must score the same positions with the same log-probabilities.
  Model m;
  std::string const text = "The harbour at Corran rises and falls twice a day, and the boats rest in the mud.";
  std::vector<std::int32_t> const tokens = m.tokenizer.encode(text, false);
  BOOST_TEST_REQUIRE(tokens.size() >= 12u);
  ev::PerplexityOptions o;
  o.window = 8;
  o.stride = 4;
  ev::PerplexityResult const r = ev::run_perplexity(m.eval(), dense_policies(), text, o);
  BOOST_TEST(r.tokens == static_cast<std::int64_t>(tokens.size()) - 1);

  // Reference: for each position i >= 1, the window it is scored in (plan_windows) gives its
  // context; prefill that context and read the last logits.
  eng::Generator g(m.model, m.pool, dense_policies(), 16);
  double sum = 0;
  for (ev::Window const& w : ev::plan_windows(tokens.size(), 8, 4, false)) {
    for (std::size_t i = w.score_begin; i < w.end; ++i) {
      std::span<std::int32_t const> const ctx(tokens.data() + w.begin, i - w.begin);
      sum += ev::token_log_prob(g.prefill(ctx), tokens[i]);
    }
  }
  BOOST_TEST(r.sum_log_prob == sum, boost::test_tools::tolerance(1e-3));
  BOOST_TEST(r.skip_ratio == 0.0);
  BOOST_TEST(r.statistics.tokens() > 0u);
}

BOOST_AUTO_TEST_CASE(dense_policy_agrees_with_itself_and_skipping_is_counted) {
  Model m;
  std::vector<ev::PromptItem> items(1);
  items[0].messages.push_back({"user", "Write a poem about the sea."});
  ev::CompareOptions o;
  o.max_tokens = 24;
  ev::CompareResult const dense = ev::run_compare(m.eval(), dense_policies(), items, o);
  BOOST_TEST(!dense.dense_run);  // the policy cannot skip: no second generation
  BOOST_TEST(dense.summary.identical == 1u);
  BOOST_TEST(dense.summary.rouge_vs_dense == 1.0);
  BOOST_TEST(dense.skip_ratio == 0.0);

  // The paper's rule without warm-up: skips on this model.
  skipllm::policy::ConfigurablePolicies const skipping{skipllm::policy::Greedy{}, {}, {0, 0}};
  ev::CompareResult const s = ev::run_compare(m.eval(), skipping, items, o);
  BOOST_TEST(s.dense_run);
  BOOST_TEST(s.skip_ratio > 0.0);
  BOOST_TEST(s.items[0].dense.tokens == dense.items[0].skip.tokens);  // the dense run is the dense policy's
  BOOST_TEST(s.items[0].skip.skipped_blocks == s.statistics.skipped_blocks());
}

// A TaskGenerator that forwards to the CPU engine's and counts the calls, as the CLI's CUDA
// factory (cli/cuda_task_generator) stands in for it: the tasks must decode through it only.
struct CountingGenerator final : ev::TaskGenerator {
  CountingGenerator(std::unique_ptr<ev::TaskGenerator> inner, int& decodes)
      : inner(std::move(inner)), decodes(decodes) {}
  std::span<float const> prefill(std::span<std::int32_t const> prompt) override { return inner->prefill(prompt); }
  std::span<float const> decode(std::int32_t token) override {
    ++decodes;
    return inner->decode(token);
  }
  int position() const override { return inner->position(); }
  int max_context() const override { return inner->max_context(); }
  skipllm::SkipStatistics const& statistics() override { return inner->statistics(); }
  skipllm::DecisionTrace& trace() override { return inner->trace(); }
  std::unique_ptr<ev::TaskGenerator> inner;
  int& decodes;
};

struct CountingFactory {
  std::vector<ev::TaskGeneratorSpec> specs;
  int decodes = 0;
  ev::GeneratorFactory make(Model& m) {
    return [this, &m](ev::TaskGeneratorSpec const& spec) -> std::unique_ptr<ev::TaskGenerator> {
      specs.push_back(spec);
      return std::make_unique<CountingGenerator>(ev::cpu_task_generator(m.model, m.pool, spec), decodes);
    };
  }
};

BOOST_AUTO_TEST_CASE(tasks_decode_through_the_given_generators_with_the_same_results) {
  Model m;
  CountingFactory f;
  ev::EvalModel const via{m.model, m.tokenizer, m.pool, false, 512, false, f.make(m)};
  skipllm::policy::ConfigurablePolicies const skipping{skipllm::policy::Greedy{}, {}, {0, 0}};

  std::vector<ev::FactoidItem> facts(1);
  facts[0].question = "What is the capital of France?";
  facts[0].answers = {"Paris"};
  ev::FactoidOptions fo;
  fo.max_tokens = 8;
  ev::FactoidResult const fa = ev::run_factoid(m.eval(), skipping, facts, fo);
  ev::FactoidResult const fb = ev::run_factoid(via, skipping, facts, fo);
  BOOST_TEST(fa.items[0].output == fb.items[0].output);
  BOOST_TEST(fa.statistics.skipped_blocks() == fb.statistics.skipped_blocks());
  BOOST_TEST(fa.items[0].skipped_blocks == fb.items[0].skipped_blocks);
  BOOST_TEST_REQUIRE(f.specs.size() == 1u);
  BOOST_TEST(!f.specs[0].record_trace);
  BOOST_TEST(f.specs[0].max_context > 0);
  BOOST_TEST(f.decodes > 0);

  std::string const text = "The harbour at Corran rises and falls twice a day, and the boats rest in the mud.";
  ev::PerplexityOptions po;
  po.window = 8;
  ev::PerplexityResult const pa = ev::run_perplexity(m.eval(), skipping, text, po);
  ev::PerplexityResult const pb = ev::run_perplexity(via, skipping, text, po);
  BOOST_TEST(pa.sum_log_prob == pb.sum_log_prob);
  BOOST_TEST(pa.statistics.tokens() == pb.statistics.tokens());
  BOOST_TEST_REQUIRE(f.specs.size() == 2u);
  BOOST_TEST(f.specs[1].max_context == 9);

  ev::ProfileOptions pr;
  pr.window = 8;
  ev::ProfileResult const ra = ev::run_profile(m.eval(), text, pr);
  ev::ProfileResult const rb = ev::run_profile(via, text, pr);
  BOOST_TEST(ra.tokens == rb.tokens);
  BOOST_TEST(rb.tokens > 0);
  BOOST_TEST_REQUIRE(ra.layers.size() == rb.layers.size());
  for (std::size_t l = 0; l < ra.layers.size(); ++l) BOOST_TEST(ra.layers[l].cosine.mean == rb.layers[l].cosine.mean);
  BOOST_TEST_REQUIRE(f.specs.size() == 3u);
  BOOST_TEST(f.specs[2].record_trace);  // the profile reads every step's scores from the trace

  std::vector<ev::PromptItem> prompts(1);
  prompts[0].messages.push_back({"user", "Write a poem about the sea."});
  ev::CompareOptions co;
  co.max_tokens = 12;
  ev::CompareResult const ca = ev::run_compare(m.eval(), skipping, prompts, co);
  ev::CompareResult const cb = ev::run_compare(via, skipping, prompts, co);
  BOOST_TEST(ca.items[0].skip.tokens == cb.items[0].skip.tokens);
  BOOST_TEST(ca.items[0].dense.tokens == cb.items[0].dense.tokens);
  BOOST_TEST_REQUIRE(f.specs.size() == 5u);  // the policy's generator and the dense one
  BOOST_TEST(!ev::can_skip(f.specs[4].policies));
}

BOOST_AUTO_TEST_SUITE_END()

// ================================================================================================
BOOST_AUTO_TEST_SUITE(end_to_end, *utf::precondition(cli_and_model_available))

BOOST_AUTO_TEST_CASE(factoid_json_summary) {
  RunResult const r =
      run_cli({"eval", "--task", "factoid", "--data", (data_dir() / "calibration/factoid.jsonl").string(), "-m",
               engine_test::model_path().string(), "--limit", "3", "-t", "2", "--json"});
  BOOST_TEST_REQUIRE(r.status == 0, r.err);
  pt::ptree const j = parse_json(r.out);  // stdout holds the JSON alone
  BOOST_TEST(j.get<std::string>("schema") == "skipllm.eval/1");
  BOOST_TEST(j.get<std::string>("task") == "factoid");
  BOOST_TEST(j.get<int>("n") == 3);
  double const accuracy = j.get<double>("accuracy");
  BOOST_TEST(accuracy >= 0.0);
  BOOST_TEST(accuracy <= 1.0);
  BOOST_TEST(j.get<double>("accuracy") == j.get<double>("correct") / 3.0, boost::test_tools::tolerance(1e-6));
  BOOST_TEST(j.get<double>("skip_ratio") >= 0.0);
  BOOST_TEST(j.get<double>("skip_ratio_eligible") >= j.get<double>("skip_ratio"));
  BOOST_TEST(contains(j.get<std::string>("policy.description"), "Greedy(tau=0.95, span=8, spans_per_token=1)"));
  BOOST_TEST(contains(j.get<std::string>("data.path"), "factoid.jsonl"));
  BOOST_TEST(j.get<std::size_t>("data.lines") == ev::read_factoid(data_dir() / "calibration/factoid.jsonl").file.lines);
  BOOST_TEST(j.get<int>("data.used") == 3);
  BOOST_TEST(j.get<std::string>("statistics.schema") == "skipllm.stats/2");
  BOOST_TEST(j.get<int>("statistics.decode_tokens") == j.get<int>("decode_steps"));
  BOOST_TEST_REQUIRE(j.get_child("items").size() == 3u);
  int correct = 0;
  for (auto const& item : j.get_child("items")) {
    BOOST_TEST(!item.second.get<std::string>("question").empty());
    BOOST_TEST(item.second.get<int>("generated_tokens") <= 32);
    correct += item.second.get<bool>("correct") ? 1 : 0;
  }
  BOOST_TEST(correct == j.get<int>("correct"));
  // The report went to stderr, after the progress lines.
  BOOST_TEST(contains(r.err, "accuracy:"), r.err);
  BOOST_TEST(contains(r.err, "skip ratio:"), r.err);
}

BOOST_AUTO_TEST_CASE(perplexity_and_profile_on_a_short_text) {
  fs::path const text = scratch() / "short.txt";
  write_file(text,
             "Bread needs flour, water, salt and yeast. Kneading builds gluten, which traps the gas "
             "that the yeast makes, so the dough rises.\n");
  fs::path const json = scratch() / "ppl.json";
  RunResult const r =
      run_cli({"eval", "--task", "perplexity", "--data", text.string(), "-m", engine_test::model_path().string(),
               "--window", "16", "-t", "2", "--json", json.string(), "--dense"});
  BOOST_TEST_REQUIRE(r.status == 0, r.err);
  BOOST_TEST(contains(r.out, "perplexity:"), r.out);  // the report is on stdout
  pt::ptree const j = parse_json(read_file(json));
  BOOST_TEST(j.get<double>("perplexity") > 1.0);
  BOOST_TEST(j.get<int>("tokens") == j.get<int>("text_tokens") - 1);
  BOOST_TEST(j.get<double>("skip_ratio") == 0.0);
  BOOST_TEST(j.get<bool>("policy.dense"));

  fs::path const svg = scratch() / "profile.svg";
  RunResult const p =
      run_cli({"eval", "--task", "profile", "--data", text.string(), "-m", engine_test::model_path().string(),
               "--window", "16", "-t", "2", "--plot", svg.string(), "--json", "-"});
  BOOST_TEST_REQUIRE(p.status == 0, p.err);
  pt::ptree const pj = parse_json(p.out);
  BOOST_TEST(pj.get_child("layers").size() == 30u);
  BOOST_TEST(pj.get<double>("perplexity") == j.get<double>("perplexity"), boost::test_tools::tolerance(1e-4));
  for (auto const& l : pj.get_child("layers")) {
    BOOST_TEST(l.second.get<double>("min") <= l.second.get<double>("mean"));
    BOOST_TEST(l.second.get<double>("mean") <= l.second.get<double>("max"));
  }
  pt::ptree doc;
  std::istringstream in(read_file(svg));
  pt::read_xml(in, doc);  // well-formed
  BOOST_TEST(doc.get_child_optional("svg").has_value());
  std::string const picture = read_file(svg);
  for (char const* part :
       {"id=\"overview\"", "id=\"zoom\"", "class=\"band\"", "class=\"mean\"", "class=\"threshold\""}) {
    BOOST_TEST(contains(picture, part), part);
  }
}

BOOST_AUTO_TEST_CASE(config_files_set_the_policy_and_options_override_them) {
  eng::PolicyConfig c;
  c.threshold = 0.97f;
  c.span = 2;
  c.warmup_tokens = 4;
  c.warmup_every = 0;
  c.cold_first = 1;
  c.cold_last = 1;
  fs::path const config = scratch() / "policy.json";
  eng::save_policy_config(config, c);
  std::vector<std::string> const args = {"eval",
                                         "--task",
                                         "factoid",
                                         "--data",
                                         (data_dir() / "calibration/factoid.jsonl").string(),
                                         "-m",
                                         engine_test::model_path().string(),
                                         "--limit",
                                         "1",
                                         "-n",
                                         "4",
                                         "-t",
                                         "2",
                                         "--config",
                                         config.string(),
                                         "--json",
                                         "-q"};
  RunResult const r = run_cli(args);
  BOOST_TEST_REQUIRE(r.status == 0, r.err);
  pt::ptree const j = parse_json(r.out);
  BOOST_TEST(j.get<std::string>("policy.config") == config.string());
  BOOST_TEST(j.get<double>("policy.threshold") == 0.97);
  BOOST_TEST(j.get<int>("policy.span") == 2);
  BOOST_TEST(j.get<int>("policy.warmup_tokens") == 4);
  BOOST_TEST(j.get<int>("policy.cold_first") == 1);
  BOOST_TEST(contains(j.get<std::string>("policy.description"), "tau=0.97, span=2"));

  std::vector<std::string> overridden = args;
  overridden.insert(overridden.end(), {"--threshold", "0.99", "--cold-last", "3"});
  RunResult const o = run_cli(overridden);
  BOOST_TEST_REQUIRE(o.status == 0, o.err);
  pt::ptree const k = parse_json(o.out);
  BOOST_TEST(k.get<double>("policy.threshold") == 0.99);
  BOOST_TEST(k.get<int>("policy.span") == 2);
  BOOST_TEST(k.get<int>("policy.cold_last") == 3);

  write_file(scratch() / "broken.json", "{\"schema\": ");
  std::vector<std::string> broken = args;
  broken[broken.size() - 3] = (scratch() / "broken.json").string();
  RunResult const b = run_cli(broken);
  BOOST_TEST(b.status == 2);
  BOOST_TEST(contains(b.err, "--config"), b.err);
}

BOOST_AUTO_TEST_CASE(bad_data_exits_with_status_2_naming_the_line) {
  fs::path const bad = scratch() / "bad.jsonl";
  write_file(bad, "{\"question\": \"Q?\", \"answers\": [\"A\"]}\n{\"question\": \"Q2?\" \"answers\": []}\n");
  RunResult const r =
      run_cli({"eval", "--task", "factoid", "--data", bad.string(), "-m", engine_test::model_path().string()});
  BOOST_TEST(r.status == 2);
  BOOST_TEST(contains(r.err, "bad.jsonl:2: invalid JSON"), r.err);
  RunResult const missing = run_cli({"eval", "--task", "perplexity", "--data", (scratch() / "none.txt").string(), "-m",
                                     engine_test::model_path().string()});
  BOOST_TEST(missing.status == 2);
  BOOST_TEST(contains(missing.err, "none.txt"), missing.err);
}

BOOST_AUTO_TEST_SUITE_END()
