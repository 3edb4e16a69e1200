#define BOOST_TEST_MODULE skipllm decision protocol
#include <boost/test/unit_test.hpp>

#include <limits>
#include <string>
#include <vector>

#include <skipllm/decision.hpp>
#include <skipllm/json.hpp>
#include <skipllm/policy/bundle.hpp>

namespace p = skipllm::policy;
using skipllm::FfnDecision;
using skipllm::SkipState;

namespace {

// Runs the protocol for one token over `scores.size()` layers, where `scores[l]` is what
// layer l's FFN would measure if it runs; returns the decisions as letters (R S C D).
template <class Bundle>
std::string run_token(Bundle const& policies, SkipState& s, std::vector<float> const& scores) {
  int const num_layers = static_cast<int>(scores.size());
  std::string out;
  skipllm::begin_token(policies, s);
  for (int l = 0; l < num_layers; ++l) {
    FfnDecision const d = skipllm::decide(policies, s, l, num_layers, 0);
    if (skipllm::runs_ffn(d)) skipllm::observe(s, scores[static_cast<std::size_t>(l)]);
    out += skipllm::decision_letter(d);
  }
  skipllm::end_token(s);
  return out;
}

std::vector<float> ramp(int num_layers, int first_high, float low = 0.9f, float high = 0.99f) {
  std::vector<float> v(static_cast<std::size_t>(num_layers), low);
  for (int l = first_high; l < num_layers; ++l) v[static_cast<std::size_t>(l)] = high;
  return v;
}

using Runtime = skipllm::Policies<p::Greedy, p::ColdLayers, p::Warmup, p::Cosine>;

}  // namespace

BOOST_AUTO_TEST_CASE(authors_rule_triggers_on_previous_layer_and_skips_k) {
  Runtime const pol{p::Greedy{0.95f, 3, 1}, p::ColdLayers{2, 2}, p::Warmup{0, 0}};
  SkipState s;
  // Layer 4 is the first to measure > tau, so layer 5 starts a span of 3.
  BOOST_TEST(run_token(pol, s, ramp(12, 4)) == "CCRRRSSSRRCC");
}

BOOST_AUTO_TEST_CASE(span_is_clipped_at_the_tail_cold_region) {
  Runtime const pol{p::Greedy{0.95f, 8, 1}, p::ColdLayers{2, 2}, p::Warmup{0, 0}};
  SkipState s;
  BOOST_TEST(run_token(pol, s, ramp(12, 6)) == "CCRRRRRSSSCC");
}

BOOST_AUTO_TEST_CASE(last_cold_layer_of_the_head_region_can_trigger) {
  // Authors' scan starts at the first non-cold layer, testing the score of the cold layer before.
  Runtime const pol{p::Greedy{0.95f, 2, 1}, p::ColdLayers{2, 2}, p::Warmup{0, 0}};
  SkipState s;
  BOOST_TEST(run_token(pol, s, ramp(10, 1)) == "CCSSRRRRCC");
}

BOOST_AUTO_TEST_CASE(token_that_never_reaches_tau_is_dense) {
  Runtime const pol{p::Greedy{0.95f, 3, 1}, p::ColdLayers{2, 2}, p::Warmup{0, 0}};
  SkipState s;
  BOOST_TEST(run_token(pol, s, ramp(10, 10)) == "CCRRRRRRCC");
}

BOOST_AUTO_TEST_CASE(recheck_variant_needs_a_fresh_measurement_after_each_span) {
  Runtime const pol{p::Greedy{0.95f, 2, 100}, p::ColdLayers{1, 1}, p::Warmup{0, 0}};
  SkipState s;
  // After a span the next layer runs (nothing measured while skipping), measures, re-triggers.
  BOOST_TEST(run_token(pol, s, ramp(12, 0)) == "CSSRSSRSSRSC");
}

BOOST_AUTO_TEST_CASE(to_cold_region_variant_skips_everything_up_to_the_tail) {
  Runtime const pol{p::Greedy{0.95f, p::kToColdRegion, 1}, p::ColdLayers{2, 3}, p::Warmup{0, 0}};
  SkipState s;
  BOOST_TEST(run_token(pol, s, ramp(14, 4)) == "CCRRRSSSSSSCCC");
}

BOOST_AUTO_TEST_CASE(a_cold_layer_in_the_middle_ends_the_span) {
  p::ColdMask cold;
  cold.layers.insert(0);
  cold.layers.insert(5);
  cold.layers.insert(9);
  skipllm::Policies<p::Greedy, p::ColdMask, p::NoWarmup, p::Cosine> const pol{p::Greedy{0.95f, 10, 2}, cold, {}};
  SkipState s;
  // Span starts at 1 (layer 0 scored high), is cut by cold layer 5, which measures and lets
  // layer 6 start the second (last) span, cut again by layer 9.
  BOOST_TEST(run_token(pol, s, ramp(10, 0)) == "CSSSSCSSSC");
}

BOOST_AUTO_TEST_CASE(warmup_tokens_are_dense_and_the_boundary_is_exact) {
  Runtime const pol{p::Greedy{0.95f, 2, 1}, p::ColdLayers{1, 1}, p::Warmup{3, 0}};
  SkipState s;
  skipllm::begin_sequence(s);
  auto const scores = ramp(6, 0);
  BOOST_TEST(run_token(pol, s, scores) == "DDDDDD");
  BOOST_TEST(run_token(pol, s, scores) == "DDDDDD");
  BOOST_TEST(run_token(pol, s, scores) == "DDDDDD");
  BOOST_TEST(s.decode_index == 3);
  BOOST_TEST(run_token(pol, s, scores) == "CSSRRC");
}

BOOST_AUTO_TEST_CASE(nan_and_zero_norm_scores_never_skip) {
  Runtime const pol{p::Greedy{-2.0f, 3, 5}, p::ColdLayers{1, 1}, p::Warmup{0, 0}};
  SkipState s;
  std::vector<float> nan_scores(8, std::numeric_limits<float>::quiet_NaN());
  BOOST_TEST(run_token(pol, s, nan_scores) == "CRRRRRRC");
}

BOOST_AUTO_TEST_CASE(state_is_reset_between_tokens) {
  Runtime const pol{p::Greedy{0.95f, 1, 1}, p::ColdLayers{1, 1}, p::Warmup{0, 0}};
  SkipState s;
  BOOST_TEST(run_token(pol, s, ramp(6, 0)) == "CSRRRC");
  // The last layer of the previous token measured 0.99; the new token must not inherit it.
  BOOST_TEST(run_token(pol, s, ramp(6, 3)) == "CRRRSC");
}

BOOST_AUTO_TEST_CASE(paper_defaults_bundle) {
  p::PaperPolicies const pol{};
  SkipState s;
  for (int t = 0; t < 16; ++t) BOOST_TEST(run_token(pol, s, ramp(30, 0)) == std::string(30, 'D'));
  std::string const first = run_token(pol, s, ramp(30, 0));
  BOOST_TEST(first == "CCCCC" + std::string(8, 'S') + std::string(12, 'R') + "CCCCC");
  for (int t = 17; t < 21; ++t) run_token(pol, s, ramp(30, 0));
  BOOST_TEST(run_token(pol, s, ramp(30, 0)) == std::string(30, 'D'));  // refresh: 6th after warm-up
}

BOOST_AUTO_TEST_CASE(dense_bundle_never_skips) {
  p::DensePolicies const pol{};
  SkipState s;
  BOOST_TEST(run_token(pol, s, ramp(5, 0, 1.0f, 1.0f)) == "RRRRR");
}

BOOST_AUTO_TEST_CASE(decide_passes_layer_context_to_the_policy) {
  struct Recorder {
    mutable skipllm::LayerContext last{};
    bool should_skip(SkipState&, skipllm::LayerContext c) const {
      last = c;
      return false;
    }
  };
  skipllm::Policies<Recorder, p::NoCold, p::NoWarmup, p::Cosine> pol{};
  SkipState s;
  s.decode_index = 7;
  skipllm::decide(pol, s, 3, 9, 2);
  BOOST_TEST(pol.skip.last.layer == 3);
  BOOST_TEST(pol.skip.last.num_layers == 9);
  BOOST_TEST(pol.skip.last.decode_index == 7);
  BOOST_TEST(pol.skip.last.slot == 2);
}
