#define BOOST_TEST_MODULE skipllm policies
#include <boost/test/unit_test.hpp>

#include <limits>

#include <skipllm/concepts.hpp>
#include <skipllm/policy/bundle.hpp>
#include <skipllm/policy/layer_thresholds.hpp>

namespace p = skipllm::policy;
using skipllm::LayerContext;
using skipllm::SkipState;

namespace {
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
LayerContext at(int layer) { return LayerContext{layer, 30, 20, 0}; }
SkipState armed(float prev_similarity, int spans = 1) {
  SkipState s;
  s.spans_left = spans;
  s.prev_similarity = prev_similarity;
  return s;
}
}  // namespace

// --- concepts accept every shipped policy -------------------------------------------------------
static_assert(skipllm::SkipPolicy<p::Greedy> && skipllm::SkipPolicy<p::FixedGreedy<0.9f, 3>> &&
              skipllm::SkipPolicy<p::Dense> && skipllm::SkipPolicy<p::StaticMask> &&
              skipllm::SkipPolicy<p::ReplayTrace>);
static_assert(skipllm::ColdRegion<p::FixedColdLayers<5, 5>> && skipllm::ColdRegion<p::ProportionalCold<1, 6>> &&
              skipllm::ColdRegion<p::ColdLayers> && skipllm::ColdRegion<p::ColdMask> && skipllm::ColdRegion<p::NoCold>);
static_assert(skipllm::SinkWarmup<p::FixedWarmup<16, 6>> && skipllm::SinkWarmup<p::Warmup> &&
              skipllm::SinkWarmup<p::NoWarmup>);
static_assert(skipllm::SimilarityMetric<p::Cosine> && skipllm::SimilarityMetric<p::RelativeUpdate>);
static_assert(skipllm::PolicyBundle<p::PaperPolicies> && skipllm::PolicyBundle<p::RuntimePolicies>);
static_assert(!skipllm::SkipPolicy<p::Cosine> && !skipllm::SimilarityMetric<p::Greedy>);

// --- ColdRegion ----------------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE(fixed_cold_protects_first_and_last_layers) {
  constexpr p::FixedColdLayers<5, 5> cold;
  for (int l = 0; l < 30; ++l) BOOST_TEST(cold.is_cold(l, 30) == (l < 5 || l >= 25), "layer " << l);
  static_assert(cold.is_cold(0, 30) && cold.is_cold(29, 30) && !cold.is_cold(5, 30) && !cold.is_cold(24, 30));
}

BOOST_AUTO_TEST_CASE(fixed_cold_larger_than_model_makes_everything_cold) {
  p::FixedColdLayers<5, 5> cold;
  for (int l = 0; l < 8; ++l) BOOST_TEST(cold.is_cold(l, 8));
}

BOOST_AUTO_TEST_CASE(proportional_cold_scales_with_depth) {
  p::ProportionalCold<1, 6> cold;  // round(L / 6) at each end
  BOOST_TEST(cold.is_cold(4, 30));
  BOOST_TEST(!cold.is_cold(5, 30));
  BOOST_TEST(!cold.is_cold(24, 30));
  BOOST_TEST(cold.is_cold(25, 30));
  BOOST_TEST(cold.is_cold(3, 24));  // 24 / 6 = 4 -> layers 0..3 and 20..23
  BOOST_TEST(!cold.is_cold(4, 24));
  BOOST_TEST(!cold.is_cold(19, 24));
  BOOST_TEST(cold.is_cold(20, 24));
  BOOST_TEST(!cold.is_cold(5, 32));  // round(32 / 6) = 5
  BOOST_TEST(cold.is_cold(27, 32));
}

BOOST_AUTO_TEST_CASE(proportional_count_rounds_to_nearest) {
  static_assert(p::proportional_count(30, 1, 6) == 5);
  BOOST_TEST(p::proportional_count(32, 1, 6) == 5);  // 5.33
  BOOST_TEST(p::proportional_count(33, 1, 6) == 6);  // 5.5 rounds up
  BOOST_TEST(p::proportional_count(2, 1, 6) == 0);
  BOOST_TEST(p::proportional_count(30, 0, 6) == 0);
}

BOOST_AUTO_TEST_CASE(layer_thresholds_never_is_a_threshold_no_score_exceeds) {
  BOOST_TEST(!skipllm::is_finite(p::LayerThresholds::kNever));
  BOOST_TEST(p::LayerThresholds::kNever > std::numeric_limits<float>::max());
  auto const never = p::LayerThresholds::never(2);
  skipllm::SkipState s{};
  never.begin_token(s);
  s.prev_similarity = std::numeric_limits<float>::max();
  BOOST_TEST(!never.should_skip(s, skipllm::LayerContext{3, 8, 0, 0}));
  BOOST_TEST(never.threshold(-1) == p::LayerThresholds::kNever);
  BOOST_TEST(never.threshold(p::LayerThresholds::kMaxLayers) == p::LayerThresholds::kNever);
}

BOOST_AUTO_TEST_CASE(runtime_cold_layers_and_mask) {
  p::ColdLayers cold{2, 1};
  BOOST_TEST(cold.is_cold(1, 10));
  BOOST_TEST(!cold.is_cold(2, 10));
  BOOST_TEST(!cold.is_cold(8, 10));
  BOOST_TEST(cold.is_cold(9, 10));
  p::ColdMask mask;
  BOOST_TEST(mask.layers.insert(0));
  BOOST_TEST(mask.layers.insert(13));
  BOOST_TEST(mask.layers.insert(255));
  BOOST_TEST(!mask.layers.insert(256));
  BOOST_TEST(!mask.layers.insert(-1));
  BOOST_TEST(mask.is_cold(0, 30));
  BOOST_TEST(mask.is_cold(13, 30));
  BOOST_TEST(!mask.is_cold(12, 30));
  BOOST_TEST(!mask.is_cold(300, 400));
  BOOST_TEST(mask.layers.count() == 3);
  BOOST_TEST(!p::NoCold{}.is_cold(0, 30));
}

// --- SinkWarmup ----------------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE(warmup_boundary) {
  p::FixedWarmup<16> w;
  BOOST_TEST(w.is_dense(0));
  BOOST_TEST(w.is_dense(15));
  BOOST_TEST(!w.is_dense(16));
  BOOST_TEST(!w.is_dense(1000));
  BOOST_TEST(w.warmup_tokens() == 16);
}

BOOST_AUTO_TEST_CASE(warmup_with_periodic_refresh_matches_authors_schedule) {
  // Authors: after the warm-up, budgets k,k,k,k,k,0 repeat: every 6th token is dense.
  p::FixedWarmup<16, 6> w;
  int dense_after = 0;
  for (int t = 16; t < 16 + 60; ++t) {
    bool const expected = (t - 16) % 6 == 5;
    BOOST_TEST(w.is_dense(t) == expected, "token " << t);
    dense_after += w.is_dense(t);
  }
  BOOST_TEST(dense_after == 10);
  p::Warmup rw{16, 6};
  for (int t = 0; t < 100; ++t) BOOST_TEST(rw.is_dense(t) == w.is_dense(t));
}

BOOST_AUTO_TEST_CASE(no_warmup_and_zero_warmup) {
  BOOST_TEST(!p::NoWarmup{}.is_dense(0));
  BOOST_TEST(!(p::Warmup{0, 0}.is_dense(0)));
  BOOST_TEST((p::Warmup{0, 1}.is_dense(0)));  // every = 1: every token dense
  BOOST_TEST(skipllm::warmup_tokens_of(p::NoWarmup{}) == 0);
}

// --- SkipPolicy ----------------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE(greedy_needs_strictly_more_than_tau) {
  p::Greedy g{0.95f, 4, 1};
  SkipState at_tau = armed(0.95f);
  BOOST_TEST(!g.should_skip(at_tau, at(10)));
  SkipState above = armed(std::nextafter(0.95f, 1.0f));
  BOOST_TEST(g.should_skip(above, at(10)));
  SkipState below = armed(0.9f);
  BOOST_TEST(!g.should_skip(below, at(10)));
}

BOOST_AUTO_TEST_CASE(greedy_never_triggers_on_nan) {
  p::Greedy g{-1.0f, 4, 1};  // even with a threshold everything passes
  SkipState s = armed(kNaN);
  BOOST_TEST(!g.should_skip(s, at(10)));
}

BOOST_AUTO_TEST_CASE(greedy_skips_span_without_rechecking_then_budget_is_spent) {
  p::FixedGreedy<0.95f, 3> g;
  SkipState s = armed(0.99f);
  BOOST_TEST(g.should_skip(s, at(10)));
  s.prev_similarity = 0.0f;  // would stop a re-checking rule; the span ignores it
  BOOST_TEST(g.should_skip(s, at(11)));
  BOOST_TEST(g.should_skip(s, at(12)));
  BOOST_TEST(s.span_left == 0);
  s.prev_similarity = 0.999f;
  BOOST_TEST(!g.should_skip(s, at(13)));  // spans_per_token = 1: spent
}

BOOST_AUTO_TEST_CASE(greedy_begin_token_arms_the_budget) {
  p::Greedy g{0.5f, 2, 3};
  SkipState s;
  g.begin_token(s);
  BOOST_TEST(s.spans_left == 3);
  p::FixedGreedy<0.5f, 2, 2> gt;
  gt.begin_token(s);
  BOOST_TEST(s.spans_left == 2);
}

BOOST_AUTO_TEST_CASE(dense_and_static_mask) {
  SkipState s = armed(1.0f);
  BOOST_TEST(!p::Dense{}.should_skip(s, at(10)));
  p::StaticMask mask;
  mask.layers.insert(10);
  BOOST_TEST(mask.should_skip(s, at(10)));
  BOOST_TEST(!mask.should_skip(s, at(11)));
}

BOOST_AUTO_TEST_CASE(replay_trace_reads_its_layout_and_runs_outside_it) {
  using skipllm::FfnDecision;
  // [slot][token][layer] = 2 x 2 x 3
  FfnDecision const d[] = {FfnDecision::kRun,  FfnDecision::kSkip, FfnDecision::kRun,    // slot 0, t 0
                           FfnDecision::kSkip, FfnDecision::kRun,  FfnDecision::kRun,    // slot 0, t 1
                           FfnDecision::kRun,  FfnDecision::kRun,  FfnDecision::kSkip,   // slot 1, t 0
                           FfnDecision::kSkip, FfnDecision::kSkip, FfnDecision::kSkip};  // slot 1, t 1
  p::ReplayTrace r{d, 2, 2, 3};
  SkipState s;
  BOOST_TEST(r.should_skip(s, {1, 3, 0, 0}));
  BOOST_TEST(!r.should_skip(s, {0, 3, 0, 0}));
  BOOST_TEST(r.should_skip(s, {0, 3, 1, 0}));
  BOOST_TEST(r.should_skip(s, {2, 3, 0, 1}));
  BOOST_TEST(r.should_skip(s, {1, 3, 1, 1}));
  BOOST_TEST(!r.should_skip(s, {1, 3, 2, 1}));  // token outside the recording
  BOOST_TEST(!r.should_skip(s, {1, 3, 0, 2}));  // slot outside
  BOOST_TEST(!r.should_skip(s, {3, 4, 1, 1}));  // layer outside
  BOOST_TEST(!r.should_skip(s, {0, 3, -1, 0}));
}

BOOST_AUTO_TEST_CASE(layer_mask_edges) {
  skipllm::LayerMask m;
  BOOST_TEST(m.count() == 0);
  BOOST_TEST(m.insert(63));
  BOOST_TEST(m.insert(64));
  BOOST_TEST(m.contains(63));
  BOOST_TEST(m.contains(64));
  BOOST_TEST(!m.contains(65));
  BOOST_TEST(!m.contains(-5));
  BOOST_TEST(m.count() == 2);
}
