// Fitting stand-ins (eval/standin_fit) on a host whose FFN is exactly linear: the ridge fit must
// recover the map, its stored (binary16) form must reproduce the FFN, and a run that replaces
// every FFN by it must end where the dense run ends. Also the rank reduction on maps of known rank.
#define BOOST_TEST_MODULE engine_standin_fit
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <random>
#include <span>
#include <vector>

#include <skipllm/decoder_stack.hpp>

#include "eval/standin_fit.hpp"
#include "model/standin.hpp"
#include "model/thread_pool.hpp"

using namespace skipllm::engine;
namespace sf = skipllm::engine::standin;
namespace p = skipllm::policy;

namespace {

constexpr int kHidden = 12;
constexpr int kLayers = 3;

std::vector<double> random_matrix(int rows, int cols, std::mt19937& rng, double scale) {
  std::normal_distribution<double> normal(0.0, scale);
  std::vector<double> m(static_cast<std::size_t>(rows * cols));
  for (double& v : m) v = normal(rng);
  return m;
}

// Each layer's FFN is f = A_l x + b_l of the residual x itself (so the stand-in's input is x);
// attention adds a fixed, layer-dependent vector, so that the layers see different inputs.
struct LinearFfnHost {
  struct Step {
    std::vector<float> x, f;
  };
  std::vector<sf::LinearMap> ffn;              // [layer], the truth
  StandIns const* standins = nullptr;          // the fitted maps, for standin_block
  std::vector<sf::Moments>* record = nullptr;  // [layer]: FFN samples go here when set
  ThreadPool* pool = nullptr;

  int num_layers() const { return kLayers; }
  void attention_block(int layer, Step& s) {
    for (std::size_t i = 0; i < s.x.size(); ++i) s.x[i] += 0.1f * static_cast<float>((layer + 1) * ((i % 5) + 1) % 7);
  }
  void ffn_block(int layer, Step& s, std::span<int const> rows) {
    sf::LinearMap const& m = ffn[static_cast<std::size_t>(layer)];
    for (int const r : rows) {
      float const* x = &s.x[static_cast<std::size_t>(r * kHidden)];
      float* f = &s.f[static_cast<std::size_t>(r * kHidden)];
      for (int o = 0; o < kHidden; ++o) {
        double v = m.b[static_cast<std::size_t>(o)];
        for (int i = 0; i < kHidden; ++i) v += m.a[static_cast<std::size_t>(o * kHidden + i)] * x[i];
        f[o] = static_cast<float>(v);
      }
      if (record) (*record)[static_cast<std::size_t>(layer)].add(x, f, 1, *pool);
    }
  }
  void standin_block(int layer, Step& s, std::span<int const> rows) {
    std::vector<float> scratch(kHidden);
    for (int const r : rows)
      standins->apply(layer, &s.x[static_cast<std::size_t>(r * kHidden)], &s.f[static_cast<std::size_t>(r * kHidden)],
                      scratch.data());
  }
  skipllm::RowView<float> residual(Step& s) {
    return {s.x.data(), static_cast<std::int64_t>(s.x.size() / kHidden), kHidden, kHidden};
  }
  skipllm::RowView<float const> ffn_output(Step& s) {
    return {s.f.data(), static_cast<std::int64_t>(s.f.size() / kHidden), kHidden, kHidden};
  }
};

LinearFfnHost::Step random_step(std::mt19937& rng) {
  std::normal_distribution<float> normal;
  LinearFfnHost::Step s{std::vector<float>(kHidden), std::vector<float>(kHidden)};
  for (float& v : s.x) v = normal(rng);
  return s;
}

template <class Policies>
std::vector<float> decode_once(LinearFfnHost& host, Policies const& policies, LinearFfnHost::Step step) {
  skipllm::DecoderStack<LinearFfnHost, Policies> stack(host, policies);
  stack.begin_sequence(0);
  stack.decode(step);
  return step.x;
}

using SkipAll = skipllm::Policies<p::StaticMask, p::NoCold, p::NoWarmup, p::Cosine, p::StandIn>;

SkipAll skip_all(bool stand_in) {
  SkipAll policies;
  for (int l = 0; l < kLayers; ++l) {
    policies.skip.layers.insert(l);
    if (stand_in) policies.action.layers.insert(l);
  }
  return policies;
}

}  // namespace

BOOST_AUTO_TEST_CASE(fitted_standins_reproduce_a_linear_ffn) {
  ThreadPool pool(1);
  std::mt19937 rng(7);
  LinearFfnHost host;
  for (int l = 0; l < kLayers; ++l)
    host.ffn.push_back({kHidden, random_matrix(kHidden, kHidden, rng, 0.1), random_matrix(1, kHidden, rng, 0.1)});
  host.pool = &pool;

  // Dense decode steps record each layer's FFN samples (10x the hidden size, as calibrate asks).
  std::vector<sf::Moments> samples(kLayers, sf::Moments(kHidden));
  host.record = &samples;
  using Dense = skipllm::Policies<p::Dense, p::NoCold, p::NoWarmup, p::Cosine>;
  for (int t = 0; t < 10 * kHidden; ++t) decode_once(host, Dense{}, random_step(rng));
  host.record = nullptr;

  StandInMaps maps;
  maps.hidden = kHidden;
  maps.layers = kLayers;
  for (int l = 0; l < kLayers; ++l) {
    sf::LinearMap const fit = sf::ridge(samples[static_cast<std::size_t>(l)], 1e-10, pool);
    sf::LinearMap const& truth = host.ffn[static_cast<std::size_t>(l)];
    for (std::size_t i = 0; i < fit.a.size(); ++i) BOOST_TEST(std::abs(fit.a[i] - truth.a[i]) < 1e-4);
    for (std::size_t i = 0; i < fit.b.size(); ++i) BOOST_TEST(std::abs(fit.b[i] - truth.b[i]) < 1e-4);
    BOOST_TEST(sf::relative_error(fit, samples[static_cast<std::size_t>(l)], pool) < 1e-6);
    maps.maps.push_back(sf::to_stored(fit, l, 0, {}));
  }
  StandIns const standins(parse_standin_maps(standin_bytes(maps)));
  host.standins = &standins;

  for (int t = 0; t < 5; ++t) {
    LinearFfnHost::Step const step = random_step(rng);
    std::vector<float> const dense = decode_once(host, Dense{}, step);
    std::vector<float> const stood_in = decode_once(host, skip_all(true), step);
    std::vector<float> const skipped = decode_once(host, skip_all(false), step);
    double worst = 0, plain = 0;
    for (int i = 0; i < kHidden; ++i) {
      worst =
          std::max(worst, std::abs(double(stood_in[static_cast<std::size_t>(i)]) - dense[static_cast<std::size_t>(i)]));
      plain =
          std::max(plain, std::abs(double(skipped[static_cast<std::size_t>(i)]) - dense[static_cast<std::size_t>(i)]));
    }
    BOOST_TEST(worst < 2e-3);  // binary16 weights
    BOOST_TEST(plain > 0.05);  // while skipping without a stand-in changes the output
  }
}

BOOST_AUTO_TEST_CASE(rank_reduction_keeps_a_low_rank_map_and_loses_what_it_drops) {
  ThreadPool pool(1);
  std::mt19937 rng(11);
  // A = P Q of rank 2; samples of y = A x exactly.
  std::vector<double> const pm = random_matrix(kHidden, 2, rng, 1.0), qm = random_matrix(2, kHidden, rng, 1.0);
  sf::LinearMap truth{kHidden, std::vector<double>(kHidden * kHidden), std::vector<double>(kHidden, 0.0)};
  for (int o = 0; o < kHidden; ++o)
    for (int i = 0; i < kHidden; ++i)
      for (int k = 0; k < 2; ++k)
        truth.a[static_cast<std::size_t>(o * kHidden + i)] +=
            pm[static_cast<std::size_t>(o * 2 + k)] * qm[static_cast<std::size_t>(k * kHidden + i)];
  sf::Moments m(kHidden);
  std::normal_distribution<float> normal;
  for (int t = 0; t < 20 * kHidden; ++t) {
    std::vector<float> x(kHidden), y(kHidden);
    for (float& v : x) v = normal(rng);
    for (int o = 0; o < kHidden; ++o)
      for (int i = 0; i < kHidden; ++i)
        y[static_cast<std::size_t>(o)] +=
            static_cast<float>(truth.a[static_cast<std::size_t>(o * kHidden + i)]) * x[static_cast<std::size_t>(i)];
    m.add(x.data(), y.data(), 1, pool);
  }
  sf::LinearMap const full = sf::ridge(m, 1e-10, pool);
  std::vector<double> const dirs = sf::output_directions(full, m, 3, pool);
  BOOST_TEST(dirs.size() == 3u * kHidden);
  BOOST_TEST(sf::relative_error(sf::reduce_rank(full, dirs, 2, m, pool), m, pool) < 1e-6);
  BOOST_TEST(sf::relative_error(sf::reduce_rank(full, dirs, 1, m, pool), m, pool) > 0.01);

  // The stored rank-2 form computes the same map.
  StandInMaps maps{kHidden, 1, {sf::to_stored(sf::reduce_rank(full, dirs, 2, m, pool), 0, 2, dirs)}};
  StandIns const standins(parse_standin_maps(standin_bytes(maps)));
  BOOST_TEST(standins.bytes(0) == 2u * (2 * 2 * kHidden + kHidden));
  std::vector<float> x(kHidden), g(kHidden), scratch(2);
  for (float& v : x) v = normal(rng);
  standins.apply(0, x.data(), g.data(), scratch.data());

  for (int o = 0; o < kHidden; ++o) {
    double want = 0;
    for (int i = 0; i < kHidden; ++i)
      want += truth.a[static_cast<std::size_t>(o * kHidden + i)] * x[static_cast<std::size_t>(i)];
    BOOST_TEST(std::abs(g[static_cast<std::size_t>(o)] - want) < 1e-2 * (1 + std::abs(want)));
  }
}

BOOST_AUTO_TEST_CASE(too_few_samples_without_regularization_are_refused) {
  ThreadPool pool(1);
  sf::Moments m(kHidden);
  std::vector<float> x(kHidden, 1.0f), y(kHidden, 2.0f);
  m.add(x.data(), y.data(), 1, pool);
  m.add(x.data(), y.data(), 1, pool);
  BOOST_CHECK_THROW(sf::ridge(m, 0.0, pool), std::runtime_error);
}
