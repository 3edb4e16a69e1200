#define BOOST_TEST_MODULE skipllm similarity
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <skipllm/cpu/residual_similarity.hpp>
#include <skipllm/policy/similarity.hpp>

using skipllm::policy::Cosine;
using skipllm::policy::RelativeUpdate;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

template <class Metric>
float score(std::vector<float> const& before, std::vector<float> const& after) {
  typename Metric::Accumulator acc{};
  for (std::size_t i = 0; i < before.size(); ++i) acc = Metric::accumulate(acc, before[i], after[i]);
  return Metric::finalize(acc);
}

double cosine_reference(std::vector<float> const& h, std::vector<float> const& f) {
  double dot = 0, hh = 0, xx = 0;
  for (std::size_t i = 0; i < h.size(); ++i) {
    double const x = static_cast<double>(h[i]) + f[i];
    dot += h[i] * x;
    hh += static_cast<double>(h[i]) * h[i];
    xx += x * x;
  }
  return dot / std::sqrt(hh * xx);
}

std::vector<float> random_vector(std::size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

}  // namespace

BOOST_AUTO_TEST_CASE(cosine_of_hand_built_vectors) {
  BOOST_TEST(score<Cosine>({1, 0}, {1, 0}) == 1.0f);
  BOOST_TEST(score<Cosine>({1, 0}, {0, 1}) == 0.0f);
  BOOST_TEST(score<Cosine>({1, 0}, {-2, 0}) == -1.0f);
  BOOST_TEST(score<Cosine>({3, 4}, {4, 3}) == 24.0f / 25.0f, boost::test_tools::tolerance(1e-7f));
}

BOOST_AUTO_TEST_CASE(undefined_cosine_is_nan) {
  BOOST_TEST(std::isnan(score<Cosine>({0, 0, 0}, {1, 2, 3})));  // zero h
  BOOST_TEST(std::isnan(score<Cosine>({1, 2, 3}, {0, 0, 0})));  // zero x (f = -h)
  BOOST_TEST(std::isnan(score<Cosine>({}, {})));                // empty
  BOOST_TEST(std::isnan(score<Cosine>({1, kNaN}, {1, 1})));
  BOOST_TEST(std::isnan(score<Cosine>({1, 1}, {kInf, 1})));
  BOOST_TEST(std::isnan(score<Cosine>({-kInf, 1}, {-kInf, 1})));
  BOOST_TEST(std::isnan(score<Cosine>({3e20f, 1}, {3e20f, 1})));  // squares overflow fp32
}

BOOST_AUTO_TEST_CASE(relative_update_scores) {
  BOOST_TEST(score<RelativeUpdate>({3, 4}, {3, 4}) == 1.0f);
  BOOST_TEST(score<RelativeUpdate>({3, 4}, {6, 8}) == 0.0f);  // |f| = |h|
  BOOST_TEST(score<RelativeUpdate>({2, 0}, {2, 1}) == 0.5f);
  BOOST_TEST(std::isnan(score<RelativeUpdate>({0, 0}, {1, 1})));
  BOOST_TEST(std::isnan(score<RelativeUpdate>({1, 1}, {kNaN, 1})));
}

BOOST_AUTO_TEST_CASE(combine_is_the_sum_of_partials) {
  std::mt19937 rng(7);
  auto const h = random_vector(97, rng);
  auto const x = random_vector(97, rng);
  Cosine::Accumulator left{}, right{}, whole{};
  for (std::size_t i = 0; i < 97; ++i) {
    whole = Cosine::accumulate(whole, h[i], x[i]);
    (i < 40 ? left : right) = Cosine::accumulate(i < 40 ? left : right, h[i], x[i]);
  }
  BOOST_TEST(Cosine::finalize(Cosine::combine(left, right)) == Cosine::finalize(whole),
             boost::test_tools::tolerance(1e-6f));
}

BOOST_AUTO_TEST_CASE(fused_residual_add_matches_reference_at_odd_sizes) {
  std::mt19937 rng(42);
  for (std::size_t n : {1u, 7u, 8u, 17u, 97u, 576u, 4096u, 8193u}) {
    auto h = random_vector(n, rng);
    auto const f = random_vector(n, rng, 0.3f);
    double const expected = cosine_reference(h, f);
    auto const h0 = h;
    float const got = skipllm::cpu::residual_add_similarity<Cosine>(h.data(), f.data(), static_cast<std::int64_t>(n));
    BOOST_TEST_CONTEXT("n = " << n) {
      BOOST_TEST(got == expected, boost::test_tools::tolerance(1e-5));
      for (std::size_t i = 0; i < n; ++i) BOOST_TEST_REQUIRE(h[i] == h0[i] + f[i]);
    }
  }
}

BOOST_AUTO_TEST_CASE(fused_residual_add_in_half_and_bfloat16) {
  std::mt19937 rng(3);
  std::size_t const n = 577;
  auto const h = random_vector(n, rng);
  auto const f = random_vector(n, rng, 0.2f);
  std::vector<skipllm::half_t> hh(n), fh(n);
  std::vector<skipllm::bfloat16_t> hb(n), fb(n);
  for (std::size_t i = 0; i < n; ++i) {
    hh[i] = skipllm::from_float<skipllm::half_t>(h[i]);
    fh[i] = skipllm::from_float<skipllm::half_t>(f[i]);
    hb[i] = skipllm::from_float<skipllm::bfloat16_t>(h[i]);
    fb[i] = skipllm::from_float<skipllm::bfloat16_t>(f[i]);
  }
  double const expected = cosine_reference(h, f);
  auto const hh0 = hh;
  float const s_half = skipllm::cpu::residual_add_similarity<Cosine>(hh.data(), fh.data(), n);
  float const s_bf16 = skipllm::cpu::residual_add_similarity<Cosine>(hb.data(), fb.data(), n);
  // Inputs were rounded to 16 bits; accumulation stays fp32.
  BOOST_TEST(s_half == expected, boost::test_tools::tolerance(1e-3));
  BOOST_TEST(s_bf16 == expected, boost::test_tools::tolerance(1e-2));
  for (std::size_t i = 0; i < n; ++i) {
    float const sum = skipllm::to_float(hh0[i]) + skipllm::to_float(fh[i]);
    BOOST_TEST_REQUIRE(hh[i].bits == skipllm::from_float<skipllm::half_t>(sum).bits);
  }
}

BOOST_AUTO_TEST_CASE(fused_residual_add_with_nan_input_scores_nan) {
  std::vector<float> h(33, 1.0f), f(33, 0.0f);
  f[20] = kNaN;
  BOOST_TEST(std::isnan(skipllm::cpu::residual_add_similarity<Cosine>(h.data(), f.data(), 33)));
  std::vector<float> z(16, 0.0f), g(16, 0.0f);
  BOOST_TEST(std::isnan(skipllm::cpu::residual_add_similarity<Cosine>(z.data(), g.data(), 16)));
}

BOOST_AUTO_TEST_CASE(plain_residual_add) {
  std::vector<float> x{1, 2, 3};
  std::vector<skipllm::half_t> f{skipllm::from_float<skipllm::half_t>(0.5f),
                                 skipllm::from_float<skipllm::half_t>(-2.0f),
                                 skipllm::from_float<skipllm::half_t>(1.0f)};
  skipllm::cpu::residual_add(x.data(), f.data(), 3);
  BOOST_TEST(x == (std::vector<float>{1.5f, 0.0f, 4.0f}), boost::test_tools::per_element());
}
