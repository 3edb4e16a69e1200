#define BOOST_TEST_MODULE skipllm statistics trace and JSON
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <skipllm/json.hpp>
#include <skipllm/policy/describe.hpp>
#include <skipllm/statistics.hpp>
#include <skipllm/trace.hpp>

using skipllm::FfnDecision;
namespace p = skipllm::policy;

namespace {
constexpr auto R = FfnDecision::kRun;
constexpr auto S = FfnDecision::kSkip;
constexpr auto C = FfnDecision::kRunCold;
constexpr auto D = FfnDecision::kRunDense;
}  // namespace

BOOST_AUTO_TEST_CASE(ratios_over_all_eligible_and_after_warmup) {
  skipllm::SkipStatistics st(4, 1);
  std::vector<FfnDecision> const dense{D, D, D, D}, t1{C, S, S, C}, t2{C, R, S, C}, refresh{D, D, D, D};
  st.record_token(0, dense);
  st.record_token(1, t1);
  st.record_token(2, t2);
  st.record_token(3, refresh);
  st.record_prefill(9);
  BOOST_TEST(st.tokens() == 4u);
  BOOST_TEST(st.tokens_after_warmup() == 3u);
  BOOST_TEST(st.dense_tokens() == 2u);
  BOOST_TEST(st.prefill_tokens() == 9u);
  BOOST_TEST(st.ffn_blocks() == 16u);
  BOOST_TEST(st.skipped_blocks() == 3u);
  BOOST_TEST(st.eligible_blocks() == 4u);
  BOOST_TEST(st.skip_ratio() == 3.0 / 16.0);
  BOOST_TEST(st.skip_ratio_eligible() == 3.0 / 4.0);
  BOOST_TEST(st.skip_ratio_after_warmup() == 3.0 / 12.0);
  BOOST_TEST(st.layers()[1].skipped == 1u);
  BOOST_TEST(st.layers()[1].ran == 1u);
  BOOST_TEST(st.layers()[1].ran_dense == 2u);
  BOOST_TEST(st.layers()[0].ran_cold == 2u);
  BOOST_TEST(st.layers()[2].total() == 4u);
  st.reset();
  BOOST_TEST(st.tokens() == 0u);
  BOOST_TEST(st.skip_ratio() == 0.0);  // no division by zero
  BOOST_TEST(st.layers()[1].skipped == 0u);
}

BOOST_AUTO_TEST_CASE(added_counts_equal_the_recorded_tokens) {
  // Four tokens recorded one by one, and the same tokens summed per layer (as a device counts them).
  std::vector<std::vector<FfnDecision>> const tokens{{D, D, D}, {C, S, R}, {C, R, S}, {C, S, S}};
  std::vector<int> const decode_index{0, 1, 2, 3};
  skipllm::SkipStatistics recorded(3, 2);
  std::vector<skipllm::LayerCounts> sums(3);
  std::uint64_t after_warmup = 0;
  for (std::size_t t = 0; t < tokens.size(); ++t) {
    recorded.record_token(decode_index[t], tokens[t]);
    for (std::size_t l = 0; l < sums.size(); ++l) sums[l].add(tokens[t][l]);
    if (decode_index[t] >= recorded.warmup_tokens()) ++after_warmup;
  }
  BOOST_TEST(sums[1].skipped == 2u);
  BOOST_TEST(sums[0].ran_dense == 1u);
  skipllm::SkipStatistics added(3, 2);
  added.record_prefill(5);
  added.add_counts(sums, after_warmup);
  BOOST_TEST(added.tokens() == 4u);
  BOOST_TEST(added.tokens_after_warmup() == 2u);
  BOOST_TEST(added.dense_tokens() == 1u);
  BOOST_TEST(added.prefill_tokens() == 5u);  // untouched by add_counts
  BOOST_TEST(added.skipped_blocks() == recorded.skipped_blocks());
  BOOST_TEST(added.eligible_blocks() == recorded.eligible_blocks());
  BOOST_TEST(added.skip_ratio() == recorded.skip_ratio());
  BOOST_TEST(added.skip_ratio_after_warmup() == recorded.skip_ratio_after_warmup());
  for (std::size_t l = 0; l < sums.size(); ++l) {
    BOOST_TEST(added.layers()[l].ran == recorded.layers()[l].ran);
    BOOST_TEST(added.layers()[l].skipped == recorded.layers()[l].skipped);
    BOOST_TEST(added.layers()[l].ran_cold == recorded.layers()[l].ran_cold);
    BOOST_TEST(added.layers()[l].ran_dense == recorded.layers()[l].ran_dense);
  }
  // Adding again adds up, as recording more tokens does.
  added.add_counts(sums, after_warmup);
  BOOST_TEST(added.tokens() == 8u);
  BOOST_TEST(added.layers()[2].skipped == 4u);
}

BOOST_AUTO_TEST_CASE(inconsistent_counts_are_rejected_and_add_nothing) {
  skipllm::SkipStatistics st(2, 0);
  std::vector<skipllm::LayerCounts> two(2);
  two[0].add(S, 3);
  two[1].add(R, 3);
  std::vector<skipllm::LayerCounts> const one(1);
  BOOST_CHECK_THROW(st.add_counts(one, 0), std::invalid_argument);  // wrong number of layers
  BOOST_CHECK_THROW(st.add_counts(two, 4), std::invalid_argument);  // more tokens past the warm-up than tokens
  auto uneven = two;
  uneven[1].add(C);
  BOOST_CHECK_THROW(st.add_counts(uneven, 0), std::invalid_argument);  // layers count different tokens
  BOOST_TEST(st.tokens() == 0u);
  BOOST_TEST(st.layers()[0].total() == 0u);
  st.add_counts(two, 3);
  BOOST_TEST(st.tokens() == 3u);
  BOOST_TEST(st.skip_ratio() == 0.5);
}

BOOST_AUTO_TEST_CASE(trace_rows_and_replay_buffer) {
  skipllm::DecisionTrace tr(3);
  std::vector<float> const scores{0.5f, std::numeric_limits<float>::quiet_NaN(), 0.9f};
  tr.append({1, 0}, std::vector<FfnDecision>{C, S, C}, scores);
  tr.append({0, 2}, std::vector<FfnDecision>{C, R, C}, scores);
  BOOST_TEST(tr.size() == 2u);
  BOOST_TEST(tr.token(1).slot == 0);
  BOOST_TEST(tr.token(1).decode_index == 2);
  BOOST_TEST((tr.decisions(0)[1] == S));
  BOOST_CHECK_THROW(tr.decisions(2), std::out_of_range);
  BOOST_CHECK_THROW(tr.append({0, 0}, std::vector<FfnDecision>{C}, std::vector<float>{0.f}), std::invalid_argument);
  auto const buf = tr.replay_buffer(2, 3);  // [slot][token][layer]
  BOOST_TEST(buf.size() == 18u);
  BOOST_TEST((buf[(1 * 3 + 0) * 3 + 1] == S));
  BOOST_TEST((buf[(0 * 3 + 2) * 3 + 1] == R));
  BOOST_TEST((buf[(0 * 3 + 0) * 3 + 1] == R));  // not covered: run
}

BOOST_AUTO_TEST_CASE(json_summary_has_the_documented_fields) {
  skipllm::SkipStatistics st(3, 0);
  st.record_token(0, std::vector<FfnDecision>{C, S, C});
  skipllm::DecisionTrace tr(3);
  tr.append({0, 0}, std::vector<FfnDecision>{C, S, C},
            std::vector<float>{0.25f, std::numeric_limits<float>::quiet_NaN(), 1.0f});
  std::ostringstream os;
  skipllm::write_json(os, st, "skip=\"x\"\n", &tr);
  std::string const j = os.str();
  for (char const* key :
       {"\"schema\": \"skipllm.stats/2\"", "\"num_layers\": 3", "\"decode_tokens\": 1", "\"ffn_blocks\": 3",
        "\"skipped_blocks\": 1", "\"eligible_blocks\": 1",
        "\"skip_ratio\": {\"all\": 0.333333333, \"eligible\": 1, \"after_warmup\": 0.333333333}",
        "{\"layer\": 1, \"ran\": 0, \"skipped\": 1, \"stood_in\": 0, \"ran_cold\": 0, \"ran_dense\": 0, "
        "\"skip_ratio\": 1}",
        "\"stood_in_blocks\": 0", "\"decisions\": \"CSC\"", "\"similarity\": [0.25, null, 1]",
        "\"policy\": \"skip=\\\"x\\\"\\n\""}) {
    BOOST_TEST(j.find(key) != std::string::npos, "missing " << key << " in\n" << j);
  }
  std::ostringstream no_trace;
  skipllm::write_json(no_trace, st, "p");
  BOOST_TEST(no_trace.str().find("\"trace\"") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(json_string_and_number_writers) {
  std::ostringstream os;
  skipllm::write_json_string(os, std::string_view("a\"b\\c\nd\x01", 8));
  BOOST_TEST(os.str() == R"("a\"b\\c\nd\u0001")");
  os.str("");
  skipllm::write_json_number(os, 0.1f);
  BOOST_TEST(os.str() == "0.100000001");  // 9 digits: the float round-trips
  os.str("");
  skipllm::write_json_number(os, std::numeric_limits<double>::quiet_NaN());
  skipllm::write_json_number(os, std::numeric_limits<double>::infinity());
  BOOST_TEST(os.str() == "nullnull");
}

BOOST_AUTO_TEST_CASE(compile_time_twins_describe_like_their_runtime_policies) {
  using Fixed =
      skipllm::Policies<p::FixedGreedy<0.5f, 3, 2>, p::FixedColdRegions<1, 2, 7, 9>, p::FixedWarmup<4, 3>, p::Cosine>;
  p::ColdRegions cold{1, 2, {}};
  cold.layers.insert(7);
  cold.layers.insert(9);
  skipllm::Policies<p::Greedy, p::ColdRegions, p::Warmup, p::Cosine> const runtime{{0.5f, 3, 2}, cold, {4, 3}};
  BOOST_TEST(skipllm::describe(Fixed{}) == skipllm::describe(runtime));
  std::ostringstream fixed_cold, runtime_cold;
  p::describe(fixed_cold, p::FixedColdLayers<2, 3>{});
  p::describe(runtime_cold, p::ColdLayers{2, 3});
  BOOST_TEST(fixed_cold.str() == runtime_cold.str());
}

BOOST_AUTO_TEST_CASE(describe_names_every_policy_and_its_parameters) {
  BOOST_TEST(skipllm::describe(p::PaperPolicies{}) ==
             "skip=Greedy(tau=0.95, span=8, spans_per_token=1) cold=ColdLayers(first=5, last=5) "
             "warmup=Warmup(tokens=16, every=6) metric=Cosine");
  p::ColdMask mask;
  mask.layers.insert(0);
  mask.layers.insert(7);
  skipllm::Policies<p::Greedy, p::ColdMask, p::NoWarmup, p::RelativeUpdate> runtime{
      p::Greedy{0.9f, p::kToColdRegion, 2}, mask, {}};
  BOOST_TEST(skipllm::describe(runtime) ==
             "skip=Greedy(tau=0.9, span=to-cold-region, spans_per_token=2) cold=ColdMask(0,7) warmup=NoWarmup "
             "metric=RelativeUpdate");
  struct Custom {
    bool should_skip(skipllm::SkipState&, skipllm::LayerContext) const { return false; }
  };
  BOOST_TEST(skipllm::describe(skipllm::Policies<Custom, p::ProportionalCold<1, 6>, p::NoWarmup, p::Cosine>{}) ==
             "skip=custom SkipPolicy cold=ProportionalCold(1/6) warmup=NoWarmup metric=Cosine");
}
