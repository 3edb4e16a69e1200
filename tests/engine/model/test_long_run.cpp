// Long run: 4,096 decode steps on the default model, with the shipped calibrated skip policy and
// with skipping off (--dense), in a context just large enough (prompt + 4,096 tokens).
//
//  - Memory is stable: resident memory after the whole run exceeds resident memory after the
//    first 512 tokens by no more than the KV cache of the 3,584 positions written in between
//    (the engine reserves the whole cache up front, so in practice it does not grow at all)
//    plus a fixed allowance for the allocator.
//  - The statistics add up: every decode step is counted once, every layer of every token has
//    exactly one decision (skipped + ran + cold + dense = layers x tokens), cold and dense
//    counts are exactly what the policies say, the three ratios are their stated quotients,
//    and the JSON statistics (skipllm.stats/2) say the same.
//
// Label `long` (tests/engine/CMakeLists.txt): the sanitized suite leaves it out.
#define BOOST_TEST_MODULE engine long run
#include <unistd.h>
#include <algorithm>
#include <cstdint>
#include <fstream>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include <skipllm/json.hpp>

#include "engine_test_support.hpp"
#include "format/policy_config.hpp"
#include "model/generator.hpp"

namespace utf = boost::unit_test;
namespace tt = boost::test_tools;
namespace pt = boost::property_tree;
using namespace skipllm::engine;
using engine_test::values_of;

namespace {

constexpr int kDecodeSteps = 4096;
constexpr int kFirstMeasurement = 512;
// Allocator slack and the like, besides the KV cache.
constexpr long kFixedMemoryAllowance = 8L << 20;

struct Model {
  GgufFile file = GgufFile::open(engine_test::model_path());
  LlamaModel model{file};
  ThreadPool pool{2};
};

Model& shared_model() {
  static Model m;
  return m;
}

// Resident set size of this process, from /proc/self/statm (pages).
long resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  long size_pages = 0, resident_pages = 0;
  statm >> size_pages >> resident_pages;
  BOOST_REQUIRE(statm);
  return resident_pages * sysconf(_SC_PAGESIZE);
}

int argmax(std::span<float const> v) { return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin()); }

// Decodes kDecodeSteps tokens greedily (end-of-generation tokens included: the run never stops
// early) and checks memory and statistics.
void long_run(PolicyConfig const& config) {
  Model& m = shared_model();
  LlamaConfig const& c = m.model.config();
  pt::ptree const golden = engine_test::read_fixture("golden_smollm2_hf.json");
  auto const prompt = values_of<std::int32_t>(golden.get_child("prompts").front().second.get_child("prompt_ids"));
  int const context = static_cast<int>(prompt.size()) + kDecodeSteps;
  BOOST_REQUIRE(context <= c.context_length);

  skipllm::policy::ConfigurablePolicies const policies = make_policies(config, c.n_layers);
  Generator gen(m.model, m.pool, policies, context);
  auto logits = gen.prefill(prompt);
  long rss_first = 0;
  for (int t = 0; t < kDecodeSteps; ++t) {
    logits = gen.decode(argmax(logits));
    if (t + 1 == kFirstMeasurement) rss_first = resident_bytes();
  }
  long const rss_end = resident_bytes();
  BOOST_TEST(gen.position() == context);
  BOOST_CHECK_THROW(gen.decode(argmax(logits)), std::length_error);  // the context is full

  long const kv_bytes_per_position = static_cast<long>(c.n_layers) * 2 * c.kv_dim() * static_cast<long>(sizeof(float));
  long const bound = kv_bytes_per_position * (kDecodeSteps - kFirstMeasurement) + kFixedMemoryAllowance;
  BOOST_TEST_MESSAGE(kind_name(config.kind)
                     << ": RSS after " << kFirstMeasurement << " tokens " << (rss_first >> 20) << " MiB, after "
                     << kDecodeSteps << " tokens " << (rss_end >> 20) << " MiB; growth " << (rss_end - rss_first) / 1024
                     << " KiB, bound " << bound / 1024 << " KiB");
  BOOST_TEST(rss_end - rss_first <= bound);

  // Every decode step counted once, with one decision per layer.
  auto const& st = gen.stack().statistics();
  std::uint64_t const tokens = kDecodeSteps;
  std::uint64_t const layers = static_cast<std::uint64_t>(c.n_layers);
  BOOST_TEST(st.tokens() == tokens);
  BOOST_TEST(st.prefill_tokens() == prompt.size());
  BOOST_TEST(st.ffn_blocks() == layers * tokens);
  std::uint64_t dense = 0;
  for (int i = 0; i < kDecodeSteps; ++i) dense += policies.warmup.is_dense(i) ? 1 : 0;
  BOOST_TEST(st.dense_tokens() == dense);
  BOOST_TEST(st.tokens_after_warmup() == tokens - static_cast<std::uint64_t>(policies.warmup.warmup_tokens()));
  std::uint64_t ran = 0, skipped = 0, cold = 0, ran_dense = 0;
  for (int l = 0; l < c.n_layers; ++l) {
    auto const& counts = st.layers()[static_cast<std::size_t>(l)];
    BOOST_TEST(counts.total() == tokens, "layer " << l);
    BOOST_TEST(counts.ran_dense == dense, "layer " << l);
    if (policies.cold.is_cold(l, c.n_layers)) {
      BOOST_TEST(counts.ran_cold == tokens - dense, "layer " << l);
    } else {
      BOOST_TEST(counts.eligible() == tokens - dense, "layer " << l);
    }
    ran += counts.ran;
    skipped += counts.skipped;
    cold += counts.ran_cold;
    ran_dense += counts.ran_dense;
  }
  BOOST_TEST(ran + skipped + cold + ran_dense == layers * tokens);
  BOOST_TEST(skipped == st.skipped_blocks());
  BOOST_TEST(ran + skipped == st.eligible_blocks());
  if (config.kind == PolicyConfig::Kind::dense) {
    BOOST_TEST(skipped == 0u);
  } else {
    BOOST_TEST(skipped > 0u);
  }
  double const skip_ratio = static_cast<double>(skipped) / static_cast<double>(layers * tokens);
  BOOST_TEST(st.skip_ratio() == skip_ratio, tt::tolerance(1e-12));
  BOOST_TEST(st.skip_ratio_eligible() == static_cast<double>(skipped) / static_cast<double>(ran + skipped),
             tt::tolerance(1e-12));
  BOOST_TEST(st.skip_ratio_after_warmup() ==
                 static_cast<double>(skipped) / static_cast<double>(layers * st.tokens_after_warmup()),
             tt::tolerance(1e-12));
  BOOST_TEST_MESSAGE(kind_name(config.kind) << ": " << skipped << " of " << layers * tokens << " FFN blocks skipped ("
                                            << skip_ratio << "), " << cold << " cold, " << ran_dense << " dense");

  // The JSON statistics say the same.
  std::ostringstream json;
  skipllm::write_json(json, st, describe_policies(policies, false));
  pt::ptree const doc = engine_test::parse_json(json.str());
  BOOST_TEST(doc.get<std::string>("schema") == "skipllm.stats/2");
  BOOST_TEST(doc.get<int>("num_layers") == c.n_layers);
  BOOST_TEST(doc.get<std::uint64_t>("decode_tokens") == tokens);
  BOOST_TEST(doc.get<std::uint64_t>("prefill_tokens") == prompt.size());
  BOOST_TEST(doc.get<std::uint64_t>("dense_tokens") == dense);
  BOOST_TEST(doc.get<std::uint64_t>("ffn_blocks") == layers * tokens);
  BOOST_TEST(doc.get<std::uint64_t>("skipped_blocks") == skipped);
  BOOST_TEST(doc.get<std::uint64_t>("eligible_blocks") == ran + skipped);
  BOOST_TEST(doc.get<double>("skip_ratio.all") == st.skip_ratio(), tt::tolerance(1e-8));
  BOOST_TEST(doc.get<double>("skip_ratio.eligible") == st.skip_ratio_eligible(), tt::tolerance(1e-8));
  BOOST_TEST(doc.get<double>("skip_ratio.after_warmup") == st.skip_ratio_after_warmup(), tt::tolerance(1e-8));
  int l = 0;
  for (auto const& [_, layer] : doc.get_child("layers")) {
    auto const& counts = st.layers()[static_cast<std::size_t>(l)];
    BOOST_TEST(layer.get<int>("layer") == l);
    BOOST_TEST(layer.get<std::uint64_t>("ran") == counts.ran, "layer " << l);
    BOOST_TEST(layer.get<std::uint64_t>("skipped") == counts.skipped, "layer " << l);
    BOOST_TEST(layer.get<std::uint64_t>("ran_cold") == counts.ran_cold, "layer " << l);
    BOOST_TEST(layer.get<std::uint64_t>("ran_dense") == counts.ran_dense, "layer " << l);
    ++l;
  }
  BOOST_TEST(l == c.n_layers);
}

}  // namespace

BOOST_AUTO_TEST_CASE(shipped_policy_4096_tokens, *utf::precondition(engine_test::model_available)) {
  long_run(load_policy_config(SKIPLLM_SHIPPED_CONFIG));
}

BOOST_AUTO_TEST_CASE(dense_4096_tokens, *utf::precondition(engine_test::model_available)) {
  PolicyConfig dense;  // what `skipllm generate --dense` runs
  dense.kind = PolicyConfig::Kind::dense;
  dense.spans_per_token = 0;
  long_run(dense);
}
