#define BOOST_TEST_MODULE skipllm policy validation
#include <boost/test/unit_test.hpp>

#include <limits>
#include <string>

#include <skipllm/policy/validate.hpp>

namespace p = skipllm::policy;
using p::invalid_reason;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

std::string reason(char const* why) { return why == nullptr ? "valid" : why; }

// A policy the library does not know: it has no invalid_reason, so a bundle holding it is valid.
struct CustomSkip {
  constexpr bool should_skip(skipllm::SkipState&, skipllm::LayerContext) const noexcept { return false; }
};

}  // namespace

// The defaults and the documented edge values are valid, at compile time too.
static_assert(invalid_reason(p::ConfigurablePolicies{}) == nullptr);
static_assert(invalid_reason(p::RuntimePolicies{}) == nullptr);
static_assert(invalid_reason(p::Greedy{0.95f, 1, 0}) == nullptr);
static_assert(invalid_reason(p::LayerThresholds::never(1)) == nullptr);  // +Inf means "never"
static_assert(invalid_reason(p::Greedy{0.5f, 0, 1}) != nullptr);

BOOST_AUTO_TEST_CASE(valid_values_pass) {
  BOOST_TEST(reason(invalid_reason(p::Greedy{})) == "valid");
  BOOST_TEST(reason(invalid_reason(p::Greedy{kInf, p::kToColdRegion, 3})) == "valid");
  BOOST_TEST(reason(invalid_reason(p::RandomWindow{0.0f, 0, 0, 7})) == "valid");
  BOOST_TEST(reason(invalid_reason(p::AnySkip{})) == "valid");
  BOOST_TEST(reason(invalid_reason(p::ColdRegions{0, 0, {}})) == "valid");
  BOOST_TEST(reason(invalid_reason(p::Warmup{0, 0})) == "valid");
  BOOST_TEST(reason(invalid_reason(skipllm::Policies<CustomSkip, p::NoCold, p::NoWarmup, p::Cosine>{})) == "valid");
}

BOOST_AUTO_TEST_CASE(each_invalid_field_is_named) {
  BOOST_TEST(reason(invalid_reason(p::Greedy{kNaN, 8, 1})) == "Greedy: tau is NaN");
  BOOST_TEST(reason(invalid_reason(p::Greedy{0.9f, 0, 1})) == "Greedy: span must be at least 1");
  BOOST_TEST(reason(invalid_reason(p::Greedy{0.9f, 8, -1})) == "Greedy: spans_per_token must be >= 0");

  p::LayerThresholds t = p::LayerThresholds::uniform(0.9f, 4);
  t.tau[7] = kNaN;
  BOOST_TEST(reason(invalid_reason(t)) == "LayerThresholds: a threshold is NaN");
  BOOST_TEST(reason(invalid_reason(p::LayerThresholds::uniform(0.9f, 0))) ==
             "LayerThresholds: span must be at least 1");
  BOOST_TEST(reason(invalid_reason(p::LayerThresholds::uniform(0.9f, 2, -1))) ==
             "LayerThresholds: spans_per_token must be >= 0");

  for (float const length : {-1.0f, kNaN, kInf}) {
    BOOST_TEST(reason(invalid_reason(p::RandomWindow{length, 0, 10, 0})) ==
               "RandomWindow: length must be finite and >= 0");
  }
  BOOST_TEST(reason(invalid_reason(p::RandomWindow{2.0f, -1, 10, 0})) == "RandomWindow: first must be >= 0");
  BOOST_TEST(reason(invalid_reason(p::RandomWindow{2.0f, 5, 4, 0})) == "RandomWindow: first must not exceed last");

  BOOST_TEST(reason(invalid_reason(p::ColdLayers{-1, 5})) == "ColdLayers: first and last must be >= 0");
  BOOST_TEST(reason(invalid_reason(p::ColdRegions{5, -2, {}})) == "ColdRegions: first and last must be >= 0");
  BOOST_TEST(reason(invalid_reason(p::Warmup{-16, 0})) == "Warmup: tokens and every must be >= 0");
  BOOST_TEST(reason(invalid_reason(p::Warmup{16, -6})) == "Warmup: tokens and every must be >= 0");
}

BOOST_AUTO_TEST_CASE(any_skip_checks_what_it_holds) {
  BOOST_TEST(reason(invalid_reason(p::AnySkip{p::Greedy{0.9f, 0, 1}})) == "Greedy: span must be at least 1");
  BOOST_TEST(reason(invalid_reason(p::AnySkip{p::RandomWindow{kNaN, 0, 4, 0}})) ==
             "RandomWindow: length must be finite and >= 0");
}

BOOST_AUTO_TEST_CASE(a_bundle_reports_its_first_invalid_member) {
  p::ConfigurablePolicies bundle;
  bundle.warmup = {-1, 0};
  BOOST_TEST(reason(invalid_reason(bundle)) == "Warmup: tokens and every must be >= 0");
  bundle.cold = {-1, 0, {}};
  BOOST_TEST(reason(invalid_reason(bundle)) == "ColdRegions: first and last must be >= 0");
  bundle.skip = p::Greedy{kNaN, 8, 1};
  BOOST_TEST(reason(invalid_reason(bundle)) == "Greedy: tau is NaN");
}
