// Golden test: the engine's dense logits against independent oracles on the real model.
//
//  - golden_smollm2_hf.json: Hugging Face transformers in fp32 on the dequantized GGUF
//    weights (make_golden_hf.py). Same arithmetic, independent implementation (half-split RoPE
//    on unpermuted weights): with fp32 activations and KV cache, logits must agree to 1e-3 and
//    greedy decoding must follow the same tokens; the fp16 KV cache (the default) and the int8
//    activations (--precision int8) each have their stated tolerance (`arithmetics` below).
//  - golden_smollm2.json: llama.cpp (make_golden_logits.py), which rounds activations to Q8_1
//    before each product, so only a looser agreement is expected.
// Both include a 589-token prompt, where a RoPE convention error would show.
#define BOOST_TEST_MODULE engine golden logits
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "engine_test_support.hpp"
#include "model/generator.hpp"

namespace utf = boost::unit_test;
namespace pt = boost::property_tree;
using namespace skipllm::engine;
using engine_test::values_of;

namespace {

// Against the fp32 oracle, with fp32 activations and KV cache (measured: <= 7e-5 on every prompt
// and step): the arithmetic is the oracle's, only the order of additions differs.
constexpr double kMaxLogitErrorFp32 = 1e-3;
// Against llama.cpp's Q8_1-rounded activations (measured: <= 0.77).
constexpr double kMaxLogitErrorLlamaCpp = 1.5;

// The engine's arithmetic settings and how close each must stay to the fp32 oracle: the largest
// |logit error| over the oracle's top 20 at every teacher-forced step; the same argmax wherever
// the oracle's top token leads by more than `clear_margin`; and the free-running greedy steps that
// must reproduce the oracle's tokens.
struct Arithmetic {
  char const* name;
  GeneratorOptions options;
  double max_logit_error;
  double clear_margin;
  std::size_t min_greedy_agreement;
};

Arithmetic const arithmetics[] = {
    {"fp32, KV fp32",
     {.precision = ActivationPrecision::kFloat32, .kv_cache = KvCacheType::kFloat32},
     kMaxLogitErrorFp32,
     2 * kMaxLogitErrorFp32,
     32},
    // K and V rounded to fp16 (measured: <= 0.018).
    {"fp32, KV fp16", {.precision = ActivationPrecision::kFloat32, .kv_cache = KvCacheType::kFloat16}, 0.05, 0.1, 32},
    // --precision int8: activations rounded to int8 per block before each decode product, as
    // llama.cpp does (measured: <= 0.96; llama.cpp itself is 0.77 from the fp32 engine). Free-running
    // greedy decoding is not compared: the oracle's first token leads by 0.35 and 0.18 logits on
    // two prompts, and llama.cpp's own greedy text departs from the oracle's at step 0 and 1 there.
    {"int8, KV fp16", {.precision = ActivationPrecision::kInt8, .kv_cache = KvCacheType::kFloat16}, 1.5, 1.0, 0},
};

// The oracle's top-1 lead over its second token in a top-k list of (id, logit) pairs.
double top1_margin(pt::ptree const& top) {
  std::vector<double> logits;
  for (auto const& pair : top) logits.push_back(values_of<double>(pair.second)[1]);
  std::partial_sort(logits.begin(), logits.begin() + 2, logits.end(), std::greater<>());
  return logits[0] - logits[1];
}

int top1_id(pt::ptree const& top) {
  int best = -1;
  double best_logit = -1e300;
  for (auto const& pair : top) {
    auto const v = values_of<double>(pair.second);
    if (v[1] > best_logit) best_logit = v[1], best = static_cast<int>(v[0]);
  }
  return best;
}

struct Model {
  GgufFile file = GgufFile::open(engine_test::model_path());
  LlamaModel model{file};
  ThreadPool pool{2};
};

Model& shared_model() {
  static Model m;
  return m;
}

skipllm::policy::ConfigurablePolicies dense_policies() {
  return {skipllm::policy::Greedy{0.95f, 8, 0}, {5, 5}, {16, 6}};
}

int argmax(std::span<float const> v) { return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin()); }

// Largest |ours - reference| over a top-k list of (id, logit) pairs.
double top_k_error(std::span<float const> logits, pt::ptree const& top) {
  double err = 0;
  for (auto const& pair : top) {
    auto const v = values_of<double>(pair.second);
    err = std::max(err, std::abs(logits[static_cast<std::size_t>(v[0])] - v[1]));
  }
  return err;
}

}  // namespace

BOOST_AUTO_TEST_CASE(greedy_decoding_matches_fp32_oracle, *utf::precondition(engine_test::model_available)) {
  pt::ptree const golden = engine_test::read_fixture("golden_smollm2_hf.json");
  Model& m = shared_model();
  for (Arithmetic const& a : arithmetics) {
    if (a.min_greedy_agreement == 0) continue;  // see `arithmetics`
    for (auto const& [_, p] : golden.get_child("prompts")) {
      auto const name = a.name + std::string(": ") + p.get<std::string>("name");
      auto const prompt = values_of<std::int32_t>(p.get_child("prompt_ids"));
      auto const expected = values_of<std::int32_t>(p.get_child("continuation_ids"));
      Generator gen(m.model, m.pool, dense_policies(), 2048, a.options);
      auto logits = gen.prefill(prompt);
      std::size_t agree = 0;
      while (agree < expected.size() && argmax(logits) == expected[agree]) logits = gen.decode(expected[agree++]);
      BOOST_TEST_MESSAGE(name << ": free-running greedy identical for " << agree << " of " << expected.size()
                              << " steps");
      BOOST_TEST(agree >= a.min_greedy_agreement, name << " diverged at step " << agree);
      BOOST_TEST(gen.stack().statistics().skipped_blocks() == 0u);
    }
  }
}

BOOST_AUTO_TEST_CASE(logits_match_fp32_oracle_at_every_step, *utf::precondition(engine_test::model_available)) {
  pt::ptree const golden = engine_test::read_fixture("golden_smollm2_hf.json");
  Model& m = shared_model();
  for (Arithmetic const& a : arithmetics) {
    for (auto const& [_, p] : golden.get_child("prompts")) {
      auto const name = a.name + std::string(": ") + p.get<std::string>("name");
      auto const continuation = values_of<std::int32_t>(p.get_child("continuation_ids"));
      Generator gen(m.model, m.pool, dense_policies(), 2048, a.options);
      auto logits = gen.prefill(values_of<std::int32_t>(p.get_child("prompt_ids")));
      double worst = 0;
      std::size_t step = 0, clear_steps = 0;
      for (auto const& [__, top] : p.get_child("top_logits")) {  // teacher-forced on the oracle's tokens
        worst = std::max(worst, top_k_error(logits, top));
        if (top1_margin(top) > a.clear_margin) {
          ++clear_steps;
          BOOST_TEST(argmax(logits) == top1_id(top), name << " step " << step);
        }
        if (step < continuation.size()) logits = gen.decode(continuation[step++]);
      }
      BOOST_TEST_MESSAGE(name << ": max |logit error| over top-20 at " << step << " steps = " << worst << "; "
                              << clear_steps << " steps with a clear leader");
      BOOST_TEST(worst <= a.max_logit_error, name);
    }
  }
}

BOOST_AUTO_TEST_CASE(logits_close_to_llama_cpp, *utf::precondition(engine_test::model_available)) {
  pt::ptree const golden = engine_test::read_fixture("golden_smollm2.json");
  Model& m = shared_model();
  for (Arithmetic const& a : arithmetics) {
    for (auto const& [_, p] : golden.get_child("prompts")) {
      auto const name = a.name + std::string(": ") + p.get<std::string>("name");
      auto const prompt = values_of<std::int32_t>(p.get_child("prompt_ids"));
      auto const continuation = values_of<std::int32_t>(p.get_child("continuation_ids"));
      auto const margins = values_of<double>(p.get_child("top1_margin"));
      Generator gen(m.model, m.pool, dense_policies(), 2048, a.options);
      auto logits = gen.prefill(prompt);
      double worst = 0;
      std::size_t step = 0;
      for (auto const& [__, top] : p.get_child("top_logits")) {
        worst = std::max(worst, top_k_error(logits, top));
        // Where llama.cpp's top choice leads clearly, ours must be the same token.
        if (margins[step] > kMaxLogitErrorLlamaCpp)
          BOOST_TEST(argmax(logits) == continuation[step], name << " step " << step);
        if (step < continuation.size()) logits = gen.decode(continuation[step]);
        ++step;
      }
      BOOST_TEST_MESSAGE(name << ": max |logit error| vs llama.cpp = " << worst);
      BOOST_TEST(worst <= kMaxLogitErrorLlamaCpp, name);
    }
  }
}

BOOST_AUTO_TEST_CASE(skipping_keeps_warmup_tokens_identical_to_dense,
                     *utf::precondition(engine_test::model_available)) {
  // Warm-up tokens are decoded densely, so with a warm-up of 8 the first 8 generated tokens
  // match dense decoding exactly; after that the skip policy is live and does skip.
  pt::ptree const golden = engine_test::read_fixture("golden_smollm2_hf.json");
  auto const& p = golden.get_child("prompts").front().second;
  auto const prompt = values_of<std::int32_t>(p.get_child("prompt_ids"));
  Model& m = shared_model();
  Generator dense(m.model, m.pool, dense_policies(), 2048);
  Generator skip(m.model, m.pool,
                 skipllm::policy::ConfigurablePolicies{skipllm::policy::Greedy{0.9f, 8, 1}, {5, 5}, {8, 0}}, 2048);
  auto ld = dense.prefill(prompt);
  auto ls = skip.prefill(prompt);
  for (int t = 0; t < 24; ++t) {
    int const next = argmax(ld);
    if (t <= 8) BOOST_TEST(argmax(ls) == next, "token " << t);
    ld = dense.decode(next);
    ls = skip.decode(next);  // both follow the dense tokens: same KV history
  }
  auto const& st = skip.stack().statistics();
  BOOST_TEST(st.dense_tokens() == 8u);
  BOOST_TEST(st.skipped_blocks() > 0u);
  BOOST_TEST(st.layers()[0].skipped == 0u);   // cold
  BOOST_TEST(st.layers()[29].skipped == 0u);  // cold
}
