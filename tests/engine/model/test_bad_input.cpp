// Bad runtime input to the engine, on a tiny model built in memory (tiny_llama.hpp): prompts
// longer than the context, a full KV cache, token ids outside the vocabulary, invalid sampling
// options, and NaN/Inf in the weights. Each is refused with a typed exception that says what was
// wrong; none reads or writes out of bounds, skips on a NaN score or samples a token from NaN.
#define BOOST_TEST_MODULE engine bad runtime input
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine_test_support.hpp"
#include "model/generator.hpp"
#include "model/tiny_llama.hpp"

using namespace skipllm::engine;
using engine_test::TinyLlama;
using engine_test::TinyLlamaSpec;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// A policy that skips whenever it can: the greedy rule at tau = -1 (any defined score starts a
// span), no cold layers, no warm-up. On the 2-layer model, layer 1 is skipped whenever layer 0's
// score is a number.
skipllm::policy::ConfigurablePolicies skip_whenever_possible() {
  skipllm::policy::ConfigurablePolicies p;
  p.skip = skipllm::policy::Greedy{-1.0f, 8, 1};
  p.cold = {0, 0, {}};
  p.warmup = {0, 0};
  return p;
}

// True when `f` throws E with a message containing `part`.
template <class E, class F>
bool throws_with(F&& f, std::string const& part) {
  try {
    f();
  } catch (E const& e) {
    BOOST_TEST_MESSAGE(e.what());
    return std::string(e.what()).find(part) != std::string::npos;
  }
  return false;
}

struct Fixture {
  TinyLlama tiny;
  ThreadPool pool{1};
};

}  // namespace

BOOST_AUTO_TEST_SUITE(sampling)

BOOST_AUTO_TEST_CASE(invalid_options_are_refused) {
  std::vector<float> const logits = {0.0f, 1.0f, 2.0f};
  std::mt19937_64 rng(1);
  auto const sample_with = [&](float temperature, float top_p) {
    return sample(logits, {.temperature = temperature, .top_p = top_p}, rng);
  };
  for (float t : {-1.0f, -0.0001f, kNaN, kInf}) {
    BOOST_TEST(throws_with<std::invalid_argument>([&] { sample_with(t, 1.0f); }, "temperature"), t);
  }
  for (float p : {0.0f, -0.5f, 1.0001f, kNaN, kInf}) {
    BOOST_TEST(throws_with<std::invalid_argument>([&] { sample_with(0.7f, p); }, "top_p"), p);
  }
  // The boundaries are valid: greedy, and top_p = 1 (the whole distribution).
  BOOST_TEST(sample_with(0.0f, 1.0f) == 2);
  BOOST_CHECK_NO_THROW(sample_with(0.7f, 1.0f));
  BOOST_CHECK_NO_THROW(validate(SamplingOptions{}));
}

BOOST_AUTO_TEST_CASE(non_finite_logits_are_reported_not_sampled) {
  std::mt19937_64 rng(1);
  for (float const temperature : {0.0f, 0.8f}) {
    SamplingOptions const o{.temperature = temperature};
    std::vector<float> logits = {0.5f, 1.0f, kNaN, 0.25f};
    BOOST_TEST(throws_with<NonFiniteError>([&] { sample(logits, o, rng); }, "logit of token 2 is NaN"));
    logits[2] = kInf;
    BOOST_TEST(throws_with<NonFiniteError>([&] { sample(logits, o, rng); }, "logit of token 2 is +Inf"));
    std::vector<float> const masked(4, -kInf);
    BOOST_TEST(throws_with<NonFiniteError>([&] { sample(masked, o, rng); }, "every logit is -Inf"));
    // -Inf alone is a masked-out token: never picked.
    std::vector<float> const some_masked = {-kInf, 0.5f, -kInf, 0.4f};
    for (int i = 0; i < 20; ++i) {
      std::int32_t const t = sample(some_masked, o, rng);
      BOOST_TEST((t == 1 || t == 3));
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(generator, Fixture)

BOOST_AUTO_TEST_CASE(invalid_policy_values_are_refused) {
  skipllm::policy::ConfigurablePolicies policies = skip_whenever_possible();
  policies.skip = skipllm::policy::Greedy{0.9f, 0, 1};
  BOOST_TEST(throws_with<std::invalid_argument>([&] { Generator(tiny.model, pool, policies, 16); },
                                                "invalid policy: Greedy: span must be at least 1"));
  policies = skip_whenever_possible();
  policies.warmup = {-1, 0};
  BOOST_TEST(throws_with<std::invalid_argument>([&] { Generator(tiny.model, pool, policies, 16); },
                                                "invalid policy: Warmup: tokens and every must be >= 0"));
}

BOOST_AUTO_TEST_CASE(prompt_longer_than_the_context_is_refused) {
  Generator g(tiny.model, pool, skip_whenever_possible(), 8);
  std::vector<std::int32_t> const prompt(8, 1);  // no room left for the next token
  BOOST_TEST(throws_with<std::invalid_argument>([&] { g.prefill(prompt); },
                                                "prompt of 8 tokens does not fit the context of 8"));
  BOOST_TEST(throws_with<std::invalid_argument>([&] { g.prefill({}); }, "empty prompt"));
  BOOST_TEST(g.prefill(std::span(prompt).first(7)).size() == 16u);
  BOOST_TEST(g.position() == 7);
}

BOOST_AUTO_TEST_CASE(a_full_kv_cache_stops_decode_without_writing) {
  Generator g(tiny.model, pool, skip_whenever_possible(), 6, {.record_trace = true});
  std::vector<std::int32_t> const prompt = {0, 1, 2};
  g.prefill(prompt);
  for (int i = 0; i < 3; ++i) g.decode(3);  // positions 3, 4, 5: the last slots of the cache
  BOOST_TEST(g.position() == 6);
  std::size_t const traced = g.stack().trace().size();
  BOOST_TEST(throws_with<std::length_error>([&] { g.decode(3); }, "context of 6 tokens is full"));
  BOOST_TEST(g.position() == 6);                   // nothing appended
  BOOST_TEST(g.stack().trace().size() == traced);  // no layer ran
  BOOST_TEST(g.prefill(prompt).size() == 16u);     // a new sequence starts over
  BOOST_TEST(g.position() == 3);
}

BOOST_AUTO_TEST_CASE(token_ids_outside_the_vocabulary_are_refused) {
  Generator g(tiny.model, pool, skip_whenever_possible(), 16);
  for (std::int32_t const bad :
       {-1, 16, std::numeric_limits<std::int32_t>::max(), std::numeric_limits<std::int32_t>::min()}) {
    std::vector<std::int32_t> const prompt = {0, bad};
    BOOST_TEST(throws_with<std::out_of_range>([&] { g.prefill(prompt); }, "token id " + std::to_string(bad)), bad);
  }
  g.prefill(std::vector<std::int32_t>{0, 1});
  BOOST_TEST(
      throws_with<std::out_of_range>([&] { g.decode(16); }, "token id 16 is outside the vocabulary of 16 tokens"));
  BOOST_TEST(g.position() == 2);  // the refused token took no position
  BOOST_CHECK_NO_THROW(g.decode(15));
}

BOOST_AUTO_TEST_CASE(nan_or_inf_in_the_hidden_state_is_reported) {
  for (float const poison : {kNaN, kInf}) {
    TinyLlama const bad({.poisoned_tensor = "blk.1.ffn_down.weight", .poison_value = poison});
    Generator g(bad.model, pool, skip_whenever_possible(), 16);
    BOOST_TEST(throws_with<NonFiniteError>(
                   [&] {
                     g.prefill(std::vector<std::int32_t>{0, 1});
                   },
                   "hidden state of the token at position 0 is"),
               poison);
  }
}

BOOST_AUTO_TEST_CASE(nan_logits_are_reported_not_sampled) {
  // A NaN in the final norm leaves the hidden state finite and poisons only the logits.
  TinyLlama const bad({.poisoned_tensor = "output_norm.weight"});
  Generator g(bad.model, pool, skip_whenever_possible(), 16);
  std::span<float const> const logits = g.prefill(std::vector<std::int32_t>{0, 1});
  std::mt19937_64 rng(1);
  BOOST_TEST(throws_with<NonFiniteError>([&] { sample(logits, {}, rng); }, "is NaN; no token was sampled"));
}

BOOST_AUTO_TEST_CASE(a_nan_score_never_decides_a_skip) {
  // Token 5's embedding starts with NaN: the prompt is clean, the decode of token 5 is not.
  TinyLlamaSpec spec{.poisoned_tensor = "token_embd.weight"};
  spec.poisoned_element = 5 * 8;
  TinyLlama const bad(spec);
  auto const decisions_of_decoding_5 = [&](LlamaModel const& model) {
    Generator g(model, pool, skip_whenever_possible(), 16, {.record_trace = true});
    g.prefill(std::vector<std::int32_t>{0, 1});
    try {
      g.decode(5);
    } catch (NonFiniteError const&) {}
    auto const& trace = g.stack().trace();
    BOOST_TEST_REQUIRE(trace.size() == 1u);
    return std::vector<skipllm::FfnDecision>(trace.decisions(0).begin(), trace.decisions(0).end());
  };
  using skipllm::FfnDecision;
  std::vector<FfnDecision> const clean = decisions_of_decoding_5(tiny.model);
  BOOST_TEST((clean == std::vector<FfnDecision>{FfnDecision::kRun, FfnDecision::kSkip}));  // the control
  std::vector<FfnDecision> const poisoned = decisions_of_decoding_5(bad.model);
  BOOST_TEST((poisoned == std::vector<FfnDecision>{FfnDecision::kRun, FfnDecision::kRun}));
  // ... and the step itself is reported.
  Generator g(bad.model, pool, skip_whenever_possible(), 16);
  g.prefill(std::vector<std::int32_t>{0, 1});
  BOOST_TEST(throws_with<NonFiniteError>([&] { g.decode(5); }, "position 2 is NaN"));
}

BOOST_AUTO_TEST_SUITE_END()
