#define BOOST_TEST_MODULE skipllm AnySkip
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>

#include <skipllm/decision.hpp>
#include <skipllm/policy/any_skip.hpp>
#include <skipllm/policy/bundle.hpp>
#include <skipllm/policy/describe.hpp>

namespace p = skipllm::policy;
using skipllm::LayerContext;
using skipllm::SkipState;

static_assert(skipllm::SkipPolicy<p::AnySkip>);
static_assert(std::is_trivially_copyable_v<p::AnySkip>);
static_assert(p::ConfigurablePolicies::valid && skipllm::PolicyBundle<p::ConfigurablePolicies>);
// The alternatives share storage: the size is the largest one's plus the tag.
static_assert(sizeof(p::AnySkip) <= sizeof(p::LayerThresholds) + 8);
// Usable in constant expressions (the same code runs in kernels).
static_assert(p::AnySkip{}.kind() == p::AnySkip::Kind::dense);
static_assert(p::AnySkip{p::Greedy{0.5f, 3, 1}}.greedy()->span == 3);
static_assert(p::AnySkip{p::Greedy{}}.layer_thresholds() == nullptr);
static_assert([] {
  p::AnySkip const a = p::StaticMask{};
  SkipState s;
  return a.kind() == p::AnySkip::Kind::static_mask && !a.should_skip(s, {3, 10, 0, 0});
}());

namespace {

std::string described(auto const& policy) {
  std::ostringstream os;
  p::describe(os, policy);
  return os.str();
}

bool same_state(SkipState const& a, SkipState const& b) {
  bool const same_score =
      a.prev_similarity == b.prev_similarity || (std::isnan(a.prev_similarity) && std::isnan(b.prev_similarity));
  return a.decode_index == b.decode_index && a.span_left == b.span_left && a.spans_left == b.spans_left && same_score &&
         a.dense_token == b.dense_token && a.scratch == b.scratch;
}

// A random state as a token may leave it mid-way: a span in progress or not, spans left or
// not, a score around the thresholds, exactly at one, or NaN (the previous FFN did not run).
SkipState random_state(std::mt19937& rng) {
  std::uniform_int_distribution<int> small(0, 3);
  std::uniform_int_distribution<int> pick(0, 9);
  std::uniform_real_distribution<float> score(0.9f, 1.0f);
  SkipState s;
  s.decode_index = std::uniform_int_distribution<int>(0, 200)(rng);
  s.span_left = pick(rng) < 3 ? small(rng) : 0;
  s.spans_left = small(rng);
  int const kind = pick(rng);
  s.prev_similarity = kind == 0 ? std::numeric_limits<float>::quiet_NaN() : kind == 1 ? 0.95f : score(rng);
  return s;
}

LayerContext random_context(std::mt19937& rng) {
  int const num_layers = std::uniform_int_distribution<int>(1, 40)(rng);
  return {std::uniform_int_distribution<int>(0, num_layers - 1)(rng), num_layers,
          std::uniform_int_distribution<int>(0, 200)(rng), std::uniform_int_distribution<int>(0, 3)(rng)};
}

// AnySkip holding `held` decides like `held` and leaves the state as `held` does, over many
// random states and contexts, for begin_token and should_skip alike.
template <class Held>
void check_same_decisions(Held const& held, std::uint32_t seed) {
  p::AnySkip const any = held;
  std::mt19937 rng(seed);
  int skips = 0, mismatches = 0;
  for (int i = 0; i < 20'000; ++i) {
    SkipState a = random_state(rng);
    SkipState h = a;
    if (i % 7 == 0) {
      any.begin_token(a);
      if constexpr (requires { held.begin_token(h); }) held.begin_token(h);
    }
    LayerContext const c = random_context(rng);
    bool const da = any.should_skip(a, c);
    bool const dh = held.should_skip(h, c);
    skips += dh;
    mismatches += da != dh || !same_state(a, h);
  }
  BOOST_TEST(mismatches == 0);
  // Guards against a vacuous comparison: the held policy did skip (Dense excepted).
  if constexpr (!std::is_same_v<Held, p::Dense>) BOOST_TEST(skips > 0);
}

// Whole tokens through the library's protocol: AnySkip in a bundle decides every layer like
// the held policy in the same bundle (spans crossing cold layers, warm-up, NaN scores). Returns
// how many FFNs were skipped, so the caller can check that the comparison covered skips at all.
template <class Held>
int check_same_tokens(Held const& held, std::uint32_t seed) {
  skipllm::Policies<Held, p::ColdRegions, p::Warmup, p::Cosine> const direct{held, {2, 1, {}}, {3, 5}};
  p::ConfigurablePolicies const any{held, direct.cold, direct.warmup};
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> score(0.9f, 1.0f);
  int const n = 24;
  int mismatches = 0, skipped = 0;
  for (int slot = 0; slot < 2; ++slot) {
    SkipState sa, sh;
    for (int t = 0; t < 300; ++t) {
      skipllm::begin_token(any, sa);
      skipllm::begin_token(direct, sh);
      for (int l = 0; l < n; ++l) {
        auto const da = skipllm::decide(any, sa, l, n, slot);
        auto const dh = skipllm::decide(direct, sh, l, n, slot);
        mismatches += da != dh;
        skipped += da == skipllm::FfnDecision::kSkip;
        float const s = l % 11 == 4 ? std::numeric_limits<float>::quiet_NaN() : score(rng);
        if (skipllm::runs_ffn(da)) skipllm::observe(sa, s);
        if (skipllm::runs_ffn(dh)) skipllm::observe(sh, s);
      }
      skipllm::end_token(sa);
      skipllm::end_token(sh);
    }
  }
  BOOST_TEST(mismatches == 0);
  return skipped;
}

p::LayerThresholds stepped_thresholds() {
  auto t = p::LayerThresholds::never(2, 3);
  for (int l = 0; l < 30; ++l) t.tau[l] = 0.9f + 0.003f * static_cast<float>(l);
  t.tau[7] = p::LayerThresholds::kNever;
  return t;
}

p::StaticMask some_layers() {
  p::StaticMask m;
  for (int l : {1, 5, 6, 14, 23}) m.layers.insert(l);
  return m;
}

}  // namespace

BOOST_AUTO_TEST_CASE(holds_each_alternative_and_says_which) {
  using Kind = p::AnySkip::Kind;
  p::AnySkip a;
  BOOST_TEST((a.kind() == Kind::dense));
  BOOST_TEST((a.greedy() == nullptr && a.layer_thresholds() == nullptr && a.random_window() == nullptr &&
              a.static_mask() == nullptr));
  a = p::Greedy{0.97f, 2, 3};
  BOOST_TEST((a.kind() == Kind::greedy));
  BOOST_TEST(a.greedy()->tau == 0.97f);
  BOOST_TEST(a.greedy()->spans_per_token == 3);
  a = stepped_thresholds();
  BOOST_TEST((a.kind() == Kind::layer_thresholds));
  BOOST_TEST(a.greedy() == nullptr);
  BOOST_TEST(a.layer_thresholds()->tau[7] == p::LayerThresholds::kNever);
  BOOST_TEST(a.layer_thresholds()->tau[29] == 0.987f);
  a = p::RandomWindow{3.5f, 5, 25, 9};
  BOOST_TEST((a.kind() == Kind::random_window));
  BOOST_TEST(a.random_window()->seed == 9u);
  a = some_layers();
  BOOST_TEST((a.kind() == Kind::static_mask));
  BOOST_TEST((a.static_mask()->layers == some_layers().layers));
  a = p::Dense{};
  BOOST_TEST((a.kind() == Kind::dense));
}

BOOST_AUTO_TEST_CASE(decides_like_the_held_policy_from_any_state) {
  check_same_decisions(p::Greedy{0.95f, 3, 2}, 1);
  check_same_decisions(p::Greedy{0.97f, p::kToColdRegion, 1}, 2);
  check_same_decisions(p::Greedy{0.95f, 8, 0}, 3);
  check_same_decisions(p::LayerThresholds::uniform(0.96f, 2, 1), 4);
  check_same_decisions(stepped_thresholds(), 5);
  check_same_decisions(p::RandomWindow{3.5f, 2, 20, 7}, 6);
  check_same_decisions(p::RandomWindow{1.0f, 0, 1 << 30, 0}, 7);
  check_same_decisions(some_layers(), 8);
  check_same_decisions(p::Dense{}, 9);
}

BOOST_AUTO_TEST_CASE(decides_like_the_held_policy_token_after_token) {
  BOOST_TEST(check_same_tokens(p::Greedy{0.95f, 3, 2}, 11) > 0);
  BOOST_TEST(check_same_tokens(p::Greedy{0.97f, p::kToColdRegion, 1}, 12) > 0);
  BOOST_TEST(check_same_tokens(stepped_thresholds(), 13) > 0);
  BOOST_TEST(check_same_tokens(p::RandomWindow{3.5f, 2, 20, 7}, 14) > 0);
  BOOST_TEST(check_same_tokens(some_layers(), 15) > 0);
  BOOST_TEST(check_same_tokens(p::Dense{}, 16) == 0);
}

BOOST_AUTO_TEST_CASE(describes_the_held_policy_word_for_word) {
  for (p::Greedy const g : {p::Greedy{0.95f, 8, 1}, p::Greedy{0.97f, p::kToColdRegion, 0}}) {
    BOOST_TEST(described(p::AnySkip{g}) == described(g));
  }
  BOOST_TEST(described(p::AnySkip{stepped_thresholds()}) == described(stepped_thresholds()));
  BOOST_TEST(described(p::AnySkip{p::LayerThresholds::uniform(0.9f, 2)}) ==
             "LayerThresholds(tau=0.9, span=2, spans_per_token=1)");
  BOOST_TEST(described(p::AnySkip{p::RandomWindow{2.5f, 5, 25, 9}}) == described(p::RandomWindow{2.5f, 5, 25, 9}));
  BOOST_TEST(described(p::AnySkip{some_layers()}) == "StaticMask(layers=1,5,6,14,23)");
  BOOST_TEST(described(p::AnySkip{}) == "Dense");
  p::ConfigurablePolicies const bundle{p::Greedy{0.96f, 2, 3}, {4, 2, {}}, {8, 5}};
  BOOST_TEST(skipllm::describe(bundle) ==
             "skip=Greedy(tau=0.96, span=2, spans_per_token=3) cold=ColdRegions(first=4, last=2) "
             "warmup=Warmup(tokens=8, every=5) metric=Cosine");
}
