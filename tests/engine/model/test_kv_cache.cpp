// Tests of the KV cache (model/kv_cache): fp16 storage rounds exactly as skipllm::from_float<half_t>,
// attention's two products agree with plain loops over the stored values in both types, entries
// of different slots, layers, heads and positions never overlap, and the bytes per token follow
// 2 x layers x kv_heads x head_dim x bytes.
#define BOOST_TEST_MODULE engine_kv_cache
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <random>
#include <vector>

#include <skipllm/numeric.hpp>

#include "model/kv_cache.hpp"

namespace eng = skipllm::engine;
using eng::KvCacheType;

namespace {

eng::LlamaConfig config(int layers, int kv_heads, int head_dim) {
  eng::LlamaConfig c;
  c.n_layers = layers;
  c.n_kv_heads = kv_heads;
  c.n_heads = 2 * kv_heads;
  c.head_dim = head_dim;
  c.n_embd = c.n_heads * head_dim;
  return c;
}

// What the cache holds for a written value: itself (fp32) or its fp16 rounding.
float stored(float x, KvCacheType type) {
  return type == KvCacheType::kFloat32 ? x : skipllm::to_float(skipllm::from_float<skipllm::half_t>(x));
}

// A K or V value that differs for every (slot, layer, k|v, position, element).
float value(int slot, int layer, int which, int position, int i) {
  return std::sin(0.37f * static_cast<float>(slot * 1000 + layer * 100 + which * 50 + position) +
                  0.11f * static_cast<float>(i));
}

}  // namespace

BOOST_AUTO_TEST_CASE(bytes_per_token_and_storage) {
  eng::LlamaConfig const c = config(30, 3, 64);  // SmolLM2-135M
  BOOST_TEST(eng::kv_bytes_per_token(c, KvCacheType::kFloat16) == 2u * 30 * 3 * 64 * 2);
  BOOST_TEST(eng::kv_bytes_per_token(c, KvCacheType::kFloat32) == 2u * 30 * 3 * 64 * 4);
  eng::LlamaConfig const llama2_7b = config(32, 32, 128);
  BOOST_TEST(eng::kv_bytes_per_token(llama2_7b, KvCacheType::kFloat16) == 512u * 1024);
  for (KvCacheType const type : {KvCacheType::kFloat16, KvCacheType::kFloat32}) {
    eng::KvCache const cache(c, 2, 100, type);
    BOOST_TEST(cache.bytes() == 2 * 100 * eng::kv_bytes_per_token(c, type));
    BOOST_TEST((cache.type() == type));
  }
  BOOST_TEST(eng::kv_cache_type_name(KvCacheType::kFloat16) == "fp16");
  BOOST_TEST(eng::kv_cache_type_name(KvCacheType::kFloat32) == "fp32");
  BOOST_CHECK_THROW(eng::KvCache(c, 0, 10, KvCacheType::kFloat16), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(products_match_plain_loops_over_the_stored_values) {
  // head_dim 20: the F16C loops' 8-wide body and their scalar tail both run.
  constexpr int kSlots = 2, kLayers = 3, kKvHeads = 2, kHeadDim = 20, kContext = 9;
  eng::LlamaConfig const c = config(kLayers, kKvHeads, kHeadDim);
  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (KvCacheType const type : {KvCacheType::kFloat16, KvCacheType::kFloat32}) {
    eng::KvCache cache(c, kSlots, kContext, type);
    int const kv = kKvHeads * kHeadDim;
    for (int s = 0; s < kSlots; ++s) {
      for (int l = 0; l < kLayers; ++l) {
        for (int p = 0; p < kContext; ++p) {
          std::vector<float> k(static_cast<std::size_t>(kv)), v(k.size());
          for (int i = 0; i < kv; ++i) {
            k[static_cast<std::size_t>(i)] = value(s, l, 0, p, i);
            v[static_cast<std::size_t>(i)] = value(s, l, 1, p, i);
          }
          cache.store(s, l, p, k.data(), v.data());
        }
      }
    }
    std::vector<float> q(kHeadDim), probs(kContext);
    for (float& x : q) x = dist(rng);
    for (float& x : probs) x = std::abs(dist(rng));
    for (int s = 0; s < kSlots; ++s) {
      for (int l = 0; l < kLayers; ++l) {
        for (int h = 0; h < kKvHeads; ++h) {
          BOOST_TEST_CONTEXT(eng::kv_cache_type_name(type) << " slot " << s << " layer " << l << " head " << h) {
            int const length = kContext - s - h;  // fewer than all positions, too
            std::vector<float> scores(static_cast<std::size_t>(length));
            cache.scores(s, l, h, q.data(), 0.5f, length, scores.data());
            std::vector<float> out(kHeadDim, 1.0f);  // accumulates onto what is there
            cache.add_weighted_values(s, l, h, probs.data(), length, out.data());
            std::vector<double> want_out(kHeadDim, 1.0);
            for (int t = 0; t < length; ++t) {
              double dot = 0, bound = 0;
              for (int i = 0; i < kHeadDim; ++i) {
                double const kt = stored(value(s, l, 0, t, h * kHeadDim + i), type);
                dot += q[static_cast<std::size_t>(i)] * kt;
                bound += std::abs(q[static_cast<std::size_t>(i)] * kt);
                want_out[static_cast<std::size_t>(i)] +=
                    probs[static_cast<std::size_t>(t)] * stored(value(s, l, 1, t, h * kHeadDim + i), type);
              }
              BOOST_TEST(std::abs(scores[static_cast<std::size_t>(t)] - 0.5 * dot) <= 1e-6 * bound, "t = " << t);
            }
            for (int i = 0; i < kHeadDim; ++i)
              BOOST_TEST(std::abs(out[static_cast<std::size_t>(i)] - want_out[static_cast<std::size_t>(i)]) <= 1e-5);
          }
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(fp16_rounds_to_nearest_even_and_keeps_specials) {
  // One head of one dimension: a score with q = 1 reads the stored key back exactly.
  eng::LlamaConfig const c = config(1, 1, 1);
  eng::KvCache cache(c, 1, 8, KvCacheType::kFloat16);
  // 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: ties go to the even mantissa (1); 1 + 3 * 2^-11
  // goes up to 1 + 2^-9. 65520 rounds to inf; 1e-8 is below half the smallest subnormal (0).
  float const inputs[] = {1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, 65520.0f, -1e-8f, 0x1p-24f, 3.14159265f};
  float const expect[] = {1.0f, 1.0f + 0x1p-9f, INFINITY, -0.0f, 0x1p-24f, 3.140625f};
  float const one = 1.0f, zero = 0.0f;
  for (int p = 0; p < 6; ++p) cache.store(0, 0, p, &inputs[p], &zero);
  std::vector<float> scores(6);
  cache.scores(0, 0, 0, &one, 1.0f, 6, scores.data());
  for (std::size_t p = 0; p < 6; ++p) BOOST_TEST(scores[p] == expect[p], "input " << inputs[p]);
}
