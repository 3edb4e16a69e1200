#define BOOST_TEST_MODULE skipllm layer thresholds and random window
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <limits>
#include <random>
#include <sstream>
#include <type_traits>
#include <vector>

#include <skipllm/decision.hpp>
#include <skipllm/policy/bundle.hpp>
#include <skipllm/policy/describe.hpp>
#include <skipllm/policy/layer_thresholds.hpp>
#include <skipllm/policy/random_window.hpp>

namespace p = skipllm::policy;
using skipllm::FfnDecision;
using skipllm::LayerContext;
using skipllm::SkipState;

static_assert(skipllm::SkipPolicy<p::LayerThresholds> && skipllm::SkipPolicy<p::RandomWindow>);
static_assert(std::is_trivially_copyable_v<p::LayerThresholds> && std::is_trivially_copyable_v<p::RandomWindow>);
static_assert(skipllm::Policies<p::LayerThresholds, p::ColdMask, p::Warmup, p::Cosine>::valid);
static_assert(skipllm::Policies<p::RandomWindow, p::ColdLayers, p::NoWarmup, p::Cosine>::valid);
// Usable in constant expressions (the same code runs in kernels).
static_assert(p::LayerThresholds::uniform(0.5f, 2).threshold(7) == 0.5f);
static_assert(p::LayerThresholds::never(2).threshold(7) > 1e30f);
static_assert(p::LayerThresholds{}.threshold(-1) > 1e30f && p::LayerThresholds{}.threshold(256) > 1e30f);

namespace {

// Runs one token of `bundle` over `num_layers` layers with the given per-layer scores (the
// score is observed only when the FFN runs, as DecoderLayer does).
template <class Bundle>
std::vector<FfnDecision> run_token(Bundle const& b, SkipState& s, std::vector<float> const& scores, int slot = 0) {
  std::vector<FfnDecision> out;
  skipllm::begin_token(b, s);
  int const n = static_cast<int>(scores.size());
  for (int l = 0; l < n; ++l) {
    FfnDecision const d = skipllm::decide(b, s, l, n, slot);
    if (skipllm::runs_ffn(d)) skipllm::observe(s, scores[static_cast<std::size_t>(l)]);
    out.push_back(d);
  }
  skipllm::end_token(s);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(uniform_layer_thresholds_decide_exactly_like_greedy) {
  std::mt19937 rng(17);
  std::uniform_real_distribution<float> score(0.9f, 1.0f);
  for (int span : {1, 2, 3, 8, p::kToColdRegion}) {
    for (int spans : {0, 1, 2, 5}) {
      using G = skipllm::Policies<p::Greedy, p::ColdLayers, p::Warmup, p::Cosine>;
      using L = skipllm::Policies<p::LayerThresholds, p::ColdLayers, p::Warmup, p::Cosine>;
      G const g{{0.95f, span, spans}, {3, 2}, {2, 4}};
      L const l{p::LayerThresholds::uniform(0.95f, span, spans), {3, 2}, {2, 4}};
      SkipState sg, sl;
      for (int t = 0; t < 40; ++t) {
        std::vector<float> scores(17);
        for (float& v : scores) v = score(rng);
        if (t % 7 == 3) scores[5] = std::numeric_limits<float>::quiet_NaN();
        BOOST_TEST((run_token(g, sg, scores) == run_token(l, sl, scores)), "span " << span << " spans " << spans);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(each_layer_score_is_tested_against_its_own_threshold) {
  p::LayerThresholds t = p::LayerThresholds::never(2);
  t.tau[4] = 0.5f;  // only layer 4's score may trigger: the span starts at layer 5
  SkipState s;
  s.spans_left = 1;
  s.prev_similarity = 0.99f;  // high, but it is layer 3's score: tau[3] = +Inf
  BOOST_TEST(!t.should_skip(s, LayerContext{4, 10, 0, 0}));
  s.prev_similarity = 0.6f;  // layer 4's score, above tau[4]
  BOOST_TEST(t.should_skip(s, LayerContext{5, 10, 0, 0}));
  BOOST_TEST(t.should_skip(s, LayerContext{6, 10, 0, 0}));   // span 2 continues without a test
  BOOST_TEST(!t.should_skip(s, LayerContext{7, 10, 0, 0}));  // budget spent
  s = SkipState{};
  s.spans_left = 1;
  s.prev_similarity = 0.5f;  // equal to the threshold: no skip (strictly above)
  BOOST_TEST(!t.should_skip(s, LayerContext{5, 10, 0, 0}));
  s.prev_similarity = std::numeric_limits<float>::quiet_NaN();
  BOOST_TEST(!t.should_skip(s, LayerContext{5, 10, 0, 0}));
  s.prev_similarity = 0.9f;
  BOOST_TEST(!t.should_skip(s, LayerContext{0, 10, 0, 0}));  // layer -1 has no threshold
}

BOOST_AUTO_TEST_CASE(layer_thresholds_with_a_cold_mask_clip_the_span) {
  skipllm::LayerMask cold;
  for (int l : {0, 1, 6, 9}) cold.insert(l);
  skipllm::Policies<p::LayerThresholds, p::ColdMask, p::NoWarmup, p::Cosine> const b{
      p::LayerThresholds::uniform(0.9f, p::kToColdRegion), {cold}, {}};
  SkipState s;
  std::vector<float> scores(10, 0.95f);
  auto const d = run_token(b, s, scores);
  // Layer 1 (cold) scores 0.95: layer 2 starts a span that the cold layer 6 cuts.
  std::vector<FfnDecision> const want = {
      FfnDecision::kRunCold, FfnDecision::kRunCold, FfnDecision::kSkip, FfnDecision::kSkip, FfnDecision::kSkip,
      FfnDecision::kSkip,    FfnDecision::kRunCold, FfnDecision::kRun,  FfnDecision::kRun,  FfnDecision::kRunCold};
  BOOST_TEST((d == want));
}

BOOST_AUTO_TEST_CASE(random_window_is_contiguous_inside_its_range_and_reproducible) {
  p::RandomWindow const w{5.0f, 5, 25, 42};
  std::vector<int> starts(21, 0);
  for (int t = 0; t < 4000; ++t) {
    int first = -1, count = 0;
    for (int l = 0; l < 30; ++l) {
      SkipState s;
      bool const skip = w.should_skip(s, LayerContext{l, 30, t, 1});
      SkipState s2;
      BOOST_TEST(skip == w.should_skip(s2, LayerContext{l, 30, t, 1}));  // same input, same answer
      if (skip) {
        if (first < 0) first = l;
        BOOST_TEST(l == first + count);  // contiguous
        ++count;
      }
    }
    BOOST_TEST(count == 5);
    BOOST_TEST(first >= 5);
    BOOST_TEST(first + count <= 25);
    ++starts[static_cast<std::size_t>(first - 5 + 0)];
  }
  // 16 possible starts (5..20), each drawn about 4000/16 = 250 times.
  for (int st = 0; st < 16; ++st) {
    BOOST_TEST(starts[static_cast<std::size_t>(st)] > 150, "start " << st + 5);
    BOOST_TEST(starts[static_cast<std::size_t>(st)] < 350, "start " << st + 5);
  }
}

BOOST_AUTO_TEST_CASE(random_window_fractional_length_has_the_right_mean) {
  p::RandomWindow const w{3.25f, 0, 30, 7};
  long total = 0;
  int const tokens = 20000;
  for (int t = 0; t < tokens; ++t) {
    int count = 0;
    for (int l = 0; l < 30; ++l) {
      SkipState s;
      count += w.should_skip(s, LayerContext{l, 30, t, 0}) ? 1 : 0;
    }
    BOOST_TEST((count == 3 || count == 4));
    total += count;
  }
  double const mean = static_cast<double>(total) / tokens;
  BOOST_TEST(mean > 3.20);
  BOOST_TEST(mean < 3.30);
}

BOOST_AUTO_TEST_CASE(random_window_edge_cases) {
  SkipState s;
  // Zero length or an empty range never skips; a window longer than the range is clipped.
  BOOST_TEST(!(p::RandomWindow{0.0f, 0, 30, 0}.should_skip(s, LayerContext{3, 30, 0, 0})));
  BOOST_TEST(!(p::RandomWindow{4.0f, 10, 10, 0}.should_skip(s, LayerContext{10, 30, 0, 0})));
  for (int l = 0; l < 12; ++l) {
    bool const skip = p::RandomWindow{50.0f, 4, 8, 0}.should_skip(s, LayerContext{l, 12, 3, 0});
    BOOST_TEST(skip == (l >= 4 && l < 8));
  }
  // `last` beyond the depth is clipped to the depth.
  for (int t = 0; t < 100; ++t) {
    for (int l = 0; l < 6; ++l) {
      bool const skip = p::RandomWindow{2.0f, 3, 1 << 30, 0}.should_skip(s, LayerContext{l, 6, t, 0});
      if (skip) BOOST_TEST((l >= 3 && l < 6));
    }
  }
  // Different seeds or slots draw different windows (not always, but over many tokens).
  int differ = 0;
  for (int t = 0; t < 200; ++t) {
    for (int l = 0; l < 30; ++l) {
      differ += p::RandomWindow{4.0f, 0, 30, 1}.should_skip(s, LayerContext{l, 30, t, 0}) !=
                p::RandomWindow{4.0f, 0, 30, 2}.should_skip(s, LayerContext{l, 30, t, 0});
    }
  }
  BOOST_TEST(differ > 100);
}

BOOST_AUTO_TEST_CASE(describe_new_policies) {
  std::ostringstream a, b, c;
  p::describe(a, p::LayerThresholds::uniform(0.97f, 2));
  BOOST_TEST(a.str() == "LayerThresholds(tau=0.97, span=2, spans_per_token=1)");
  p::LayerThresholds t = p::LayerThresholds::never(3, 2);
  t.tau[5] = 0.5f;
  t.tau[7] = 0.25f;
  p::describe(b, t);
  BOOST_TEST(b.str() == "LayerThresholds(tau={5:0.5,7:0.25}, span=3, spans_per_token=2)");
  p::describe(c, p::RandomWindow{2.5f, 5, 25, 9});
  BOOST_TEST(c.str() == "RandomWindow(length=2.5, layers=[5,25), seed=9)");
}

BOOST_AUTO_TEST_CASE(cold_regions_combine_counts_and_a_mask) {
  static_assert(skipllm::ColdRegion<p::ColdRegions>);
  p::ColdRegions const counts{5, 5, {}};
  p::ColdLayers const same{5, 5};
  for (int l = 0; l < 30; ++l) BOOST_TEST(counts.is_cold(l, 30) == same.is_cold(l, 30));
  skipllm::LayerMask m;
  m.insert(0);
  m.insert(13);
  m.insert(29);
  p::ColdRegions const mask{0, 0, m};
  p::ColdMask const same_mask{m};
  for (int l = 0; l < 30; ++l) BOOST_TEST(mask.is_cold(l, 30) == same_mask.is_cold(l, 30));
  p::ColdRegions const both{2, 1, m};
  for (int l = 0; l < 30; ++l) BOOST_TEST(both.is_cold(l, 30) == (l < 2 || l == 13 || l >= 29));
  std::ostringstream os;
  p::describe(os, both);
  BOOST_TEST(os.str() == "ColdRegions(first=2, last=1, layers=0,13,29)");
}
