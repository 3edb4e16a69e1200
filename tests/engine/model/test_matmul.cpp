// Tests of the engine's matmul (model/llama_host): a group of matrices of different weight types
// sharing one input, at decode (int8 and fp32 activations) and prefill sizes, against per-row
// reference products, and the same numbers for every thread count.
#define BOOST_TEST_MODULE engine_matmul
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "format/int8_dot.hpp"
#include "format/random_blocks.hpp"
#include "model/llama_host.hpp"

namespace eng = skipllm::engine;
using eng::GgmlType;

namespace {

constexpr std::int64_t kCols = 512;  // a multiple of both activation block sizes

struct Matrix {
  std::vector<std::byte> bytes;
  eng::WeightMatrix w;

  Matrix(GgmlType type, std::int64_t rows, std::mt19937& rng) {
    std::size_t const row_bytes = kCols / eng::block_size(type) * eng::block_bytes(type);
    for (std::int64_t r = 0; r < rows; ++r) {
      auto const row = quant_test::random_row(type, kCols, rng);
      bytes.insert(bytes.end(), row.begin(), row.end());
    }
    w = {type, bytes.data(), rows, kCols, row_bytes};
  }
};

// A Q, K, V-like group of mixed types: blocks of 32, of 256, and a float type.
std::vector<Matrix> mixed_group(std::mt19937& rng) {
  std::vector<Matrix> m;
  m.emplace_back(GgmlType::Q4_0, 37, rng);
  m.emplace_back(GgmlType::Q6_K, 5, rng);
  m.emplace_back(GgmlType::F16, 9, rng);
  m.emplace_back(GgmlType::Q5_K, 11, rng);
  return m;
}

std::vector<float> random_vector(std::size_t n, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = dist(rng);
  return x;
}

// y_k[r, o] for every matrix k of the group, in one grouped matmul.
std::vector<std::vector<float>> run(eng::ThreadPool& pool, std::vector<Matrix> const& group,
                                    std::vector<float> const& x, int rows, eng::ActivationPrecision precision) {
  std::vector<std::vector<float>> y;
  std::vector<eng::MatmulOutput> outputs;
  for (Matrix const& m : group) y.emplace_back(static_cast<std::size_t>(rows * m.w.rows));
  for (std::size_t k = 0; k < group.size(); ++k) outputs.push_back({&group[k].w, y[k].data()});
  eng::matmul(pool, outputs, x.data(), rows, precision);
  return y;
}

// The reference: each row's product on its own, int8 through dot_row_int8 where the type has an
// integer kernel (and int8 is asked for), else dot_row on fp32.
float reference(eng::WeightMatrix const& w, std::int64_t o, float const* x, bool int8) {
  if (int8 && eng::int8_activation_block(w.type) == 32) {
    eng::Int8Activations q;
    eng::quantize_activations(x, kCols, q);
    return eng::dot_row_int8(w.type, w.row(o), q);
  }
  if (int8 && eng::int8_activation_block(w.type) == 256) {
    eng::Int8KActivations q;
    eng::quantize_activations(x, kCols, q);
    return eng::dot_row_int8(w.type, w.row(o), q);
  }
  return eng::dot_row(w.type, w.row(o), x, kCols);
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_mixed_group_matches_the_per_row_products_at_decode) {
  std::mt19937 rng(17);
  auto const group = mixed_group(rng);
  eng::ThreadPool pool(2);
  for (int rows : {1, 3}) {  // decode sizes: weights used in their stored type
    auto const x = random_vector(static_cast<std::size_t>(rows * kCols), rng);
    for (auto const precision : {eng::ActivationPrecision::kInt8, eng::ActivationPrecision::kFloat32}) {
      bool const int8 = precision == eng::ActivationPrecision::kInt8;
      auto const y = run(pool, group, x, rows, precision);
      for (std::size_t k = 0; k < group.size(); ++k) {
        eng::WeightMatrix const& w = group[k].w;
        for (int r = 0; r < rows; ++r) {
          for (std::int64_t o = 0; o < w.rows; ++o) {
            BOOST_TEST(y[k][static_cast<std::size_t>(r * w.rows + o)] ==
                           reference(w, o, &x[static_cast<std::size_t>(r * kCols)], int8),
                       eng::precision_name(precision)
                           << " " << eng::type_name(w.type) << " row " << r << " output " << o);
          }
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(prefill_dequantizes_and_agrees_with_the_float_products) {
  std::mt19937 rng(23);
  auto const group = mixed_group(rng);
  eng::ThreadPool pool(2);
  int const rows = 6;  // prefill: each weight row dequantized once for all rows, fp32 either way
  auto const x = random_vector(static_cast<std::size_t>(rows * kCols), rng);
  auto const y = run(pool, group, x, rows, eng::ActivationPrecision::kInt8);
  for (std::size_t k = 0; k < group.size(); ++k) {
    eng::WeightMatrix const& w = group[k].w;
    for (int r = 0; r < rows; ++r) {
      for (std::int64_t o = 0; o < w.rows; ++o) {
        float const want = reference(w, o, &x[static_cast<std::size_t>(r * kCols)], false);
        BOOST_TEST(std::abs(y[k][static_cast<std::size_t>(r * w.rows + o)] - want) <= 1e-4f * (1.0f + std::abs(want)));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(thread_count_does_not_change_the_numbers) {
  std::mt19937 rng(29);
  auto const group = mixed_group(rng);
  auto const x = random_vector(static_cast<std::size_t>(kCols), rng);
  eng::ThreadPool one(1);
  for (auto const precision : {eng::ActivationPrecision::kInt8, eng::ActivationPrecision::kFloat32}) {
    auto const want = run(one, group, x, 1, precision);
    for (int threads : {2, 3, 4}) {
      eng::ThreadPool pool(threads);
      BOOST_TEST((run(pool, group, x, 1, precision) == want),
                 threads << " threads, " << eng::precision_name(precision));
    }
  }
}
