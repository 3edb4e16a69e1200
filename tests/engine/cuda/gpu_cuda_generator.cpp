// The engine's CUDA decoding (examples/engine/cuda/cuda_generator.hpp) against the CPU engine
// (model/generator.hpp), on the real default model and on tiny synthetic models of odd and even
// depth. Label gpu: every case skips with "no CUDA device: SKIPPED (reason)" where there is no
// usable device, and the real-model cases need SKIPLLM_MODEL as the other engine tests do.
//
// Stated tolerances (the first GPU run measures the actual differences and reports them):
//   fp32 weights, dense: greedy tokens identical for 32 steps; every logit within
//     kLogitTolerance * max(1, max |logit|) of the CPU's (same dequantized weights, different
//     summation orders and expf);
//   fp16 weights, dense: the prompt's top token identical, logits within kHalfLogitTolerance *
//     max(1, max |logit|) (fp16 rounds every weight by up to 2^-11 relative);
//   skipping (fp32): both engines fed the same tokens; decisions identical except where the
//     deciding score (the previous layer's) of either lies within kTauBand of tau.
#define BOOST_TEST_MODULE engine_cuda_generator
#include <boost/test/unit_test.hpp>

#include <boost/property_tree/json_parser.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "cuda/cuda_generator.hpp"
#include "cuda/device.hpp"
#include "engine_test_support.hpp"
#include "eval/calibrate.hpp"
#include "eval/generation.hpp"
#include "format/gguf.hpp"
#include "format/tokenizer.hpp"
#include "model/generator.hpp"
#include "model/thread_pool.hpp"
#include "model/tiny_llama.hpp"

namespace eng = skipllm::engine;
namespace pol = skipllm::policy;

namespace {

constexpr float kLogitTolerance = 2e-3f;
constexpr float kHalfLogitTolerance = 5e-2f;
constexpr float kTau = 0.95f;
constexpr float kTauBand = 1e-3f;
constexpr int kSteps = 32;
constexpr int kContext = 256;

boost::test_tools::assertion_result has_device(boost::unit_test::test_unit_id) {
  if (std::optional<std::string> const problem = eng::cuda_device_problem()) {
    boost::test_tools::assertion_result r(false);
    r.message() << "no CUDA device: SKIPPED (" << *problem << ")";
    return r;
  }
  return true;
}

// A missing model skips too, and says so in the words run_gpu.sh counts as a skip.
boost::test_tools::assertion_result has_device_and_model(boost::unit_test::test_unit_id id) {
  boost::test_tools::assertion_result const device = has_device(id);
  if (!device) return device;
  boost::test_tools::assertion_result const model = engine_test::model_available(id);
  if (!model) {
    boost::test_tools::assertion_result r(false);
    r.message() << "no model: SKIPPED (" << model.message() << ")";
    return r;
  }
  return true;
}

std::size_t argmax(std::span<float const> v) {
  return static_cast<std::size_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

// max |a - b| / max(1, max |b|).
float relative_logit_difference(std::span<float const> a, std::span<float const> b) {
  float diff = 0, scale = 1;
  for (std::size_t i = 0; i < b.size(); ++i) {
    diff = std::max(diff, std::fabs(a[i] - b[i]));
    scale = std::max(scale, std::fabs(b[i]));
  }
  return diff / scale;
}

pol::ConfigurablePolicies dense_policies(int layers) {
  return eng::eval::dense_version(eng::calibrate::greedy_policy(kTau, 8, 1, {}, layers, 16, 6));
}

// Dense greedy decoding on both engines from `prompt`; checks tokens and logits step by step.
void check_dense_greedy(eng::LlamaModel const& model, std::vector<std::int32_t> const& prompt, int steps,
                        eng::DeviceWeights weights) {
  int const layers = model.config().n_layers;
  int const context = std::min(kContext, model.config().context_length);
  eng::ThreadPool pool(2);
  // The CUDA engine keeps its KV cache in fp32: compare with the CPU engine's fp32 cache.
  eng::Generator cpu(model, pool, dense_policies(layers), context, {.kv_cache = eng::KvCacheType::kFloat32});
  eng::CudaGenerator gpu(model, dense_policies(layers), context, {.weights = weights});
  std::span<float const> const first = cpu.prefill(prompt);
  std::vector<float> cpu_logits(first.begin(), first.end());
  std::span<float const> gpu_logits = gpu.prefill(prompt);
  float worst = relative_logit_difference(gpu_logits, cpu_logits);
  BOOST_TEST(argmax(gpu_logits) == argmax(cpu_logits), "prompt's top token");
  if (weights == eng::DeviceWeights::kFloat16) {
    BOOST_TEST(worst <= kHalfLogitTolerance);
    BOOST_TEST_MESSAGE("fp16 weights: prompt logits differ by " << worst << " of max(1, max |logit|)");
    return;
  }
  int agreed = 0;
  for (int t = 0; t < steps; ++t) {
    auto const token = static_cast<std::int32_t>(argmax(cpu_logits));
    BOOST_TEST_REQUIRE(static_cast<std::size_t>(token) == argmax(gpu_logits), "step " << t);
    std::span<float const> const c = cpu.decode(token);
    cpu_logits.assign(c.begin(), c.end());
    gpu_logits = gpu.decode(token);
    worst = std::max(worst, relative_logit_difference(gpu_logits, cpu_logits));
    ++agreed;
  }
  BOOST_TEST(worst <= kLogitTolerance);
  BOOST_TEST(gpu.statistics().tokens() == static_cast<std::uint64_t>(steps));
  BOOST_TEST(gpu.statistics().skipped_blocks() == 0u);
  BOOST_TEST_MESSAGE(layers << " layers, fp32 weights: " << agreed << " greedy tokens identical; logits differ by at "
                            << "most " << worst << " of max(1, max |logit|)");
}

engine_test::TinyLlamaSpec tiny_spec(int context, int layers) {
  engine_test::TinyLlamaSpec spec;
  spec.context_length = context;
  spec.layers = layers;
  return spec;
}

std::vector<std::int32_t> encode(eng::GgufFile const& file, std::string const& text) {
  return eng::tokenizer_from_gguf(file).encode(text, false);
}

}  // namespace

BOOST_TEST_DECORATOR(*boost::unit_test::precondition(&has_device_and_model))
BOOST_AUTO_TEST_CASE(dense_greedy_matches_the_cpu_engine_on_the_default_model) {
  eng::GgufFile const file = eng::GgufFile::open(engine_test::model_path());
  eng::LlamaModel const model(file);
  for (std::string const prompt : {"The capital of France is", "def fibonacci(n):", "Water boils at a temperature of",
                                   "Once upon a time, in a small village,"}) {
    BOOST_TEST_CONTEXT("prompt: " << prompt) {
      check_dense_greedy(model, encode(file, prompt), kSteps, eng::DeviceWeights::kFloat32);
      check_dense_greedy(model, encode(file, prompt), 0, eng::DeviceWeights::kFloat16);
    }
  }
}

BOOST_TEST_DECORATOR(*boost::unit_test::precondition(&has_device))
BOOST_AUTO_TEST_CASE(dense_greedy_matches_the_cpu_engine_at_odd_and_even_depth) {
  for (int layers : {1, 2, 3, 4, 7}) {
    engine_test::TinyLlama const tiny(tiny_spec(64, layers));
    BOOST_TEST_CONTEXT(layers << " layers") {
      check_dense_greedy(tiny.model, {1, 5, 2, 9}, 24, eng::DeviceWeights::kFloat32);
    }
  }
}

BOOST_TEST_DECORATOR(*boost::unit_test::precondition(&has_device_and_model))
BOOST_AUTO_TEST_CASE(skip_decisions_match_the_cpu_engine_outside_the_band) {
  eng::GgufFile const file = eng::GgufFile::open(engine_test::model_path());
  eng::LlamaModel const model(file);
  int const layers = model.config().n_layers;
  pol::ConfigurablePolicies const policies = eng::calibrate::greedy_policy(kTau, 8, 1, {}, layers, 16, 6);
  eng::ThreadPool pool(2);
  eng::Generator cpu(model, pool, policies, kContext, {.record_trace = true, .kv_cache = eng::KvCacheType::kFloat32});
  eng::CudaGenerator gpu(model, policies, kContext, {.record_trace = true, .weights = eng::DeviceWeights::kFloat32});
  std::vector<std::int32_t> const prompt = encode(file, "List three facts about the Moon:");
  std::span<float const> logits = cpu.prefill(prompt);
  (void)gpu.prefill(prompt);
  for (int t = 0; t < 48; ++t) {  // both fed the CPU's greedy tokens: the sequences stay the same
    auto const token = static_cast<std::int32_t>(argmax(logits));
    logits = cpu.decode(token);
    (void)gpu.decode(token);
  }
  skipllm::DecisionTrace const& g = gpu.trace();
  skipllm::DecisionTrace const& c = cpu.stack().trace();
  BOOST_TEST_REQUIRE(g.size() == c.size());
  int near_tau = 0;
  for (std::size_t i = 0; i < g.size(); ++i) {
    auto const gd = g.decisions(i), cd = c.decisions(i);
    auto const gs = g.scores(i), cs = c.scores(i);
    for (std::size_t l = 0; l < gd.size(); ++l) {
      if (gd[l] == cd[l]) continue;
      bool const in_band =
          l > 0 && (std::fabs(cs[l - 1] - kTau) <= kTauBand || std::fabs(gs[l - 1] - kTau) <= kTauBand);
      BOOST_TEST(in_band,
                 "token " << i << " layer " << l << ": scores before gpu " << gs[l - 1] << " cpu " << cs[l - 1]);
      near_tau += in_band ? 1 : 0;
      break;  // later layers of this token follow from the flip
    }
  }
  BOOST_TEST(gpu.statistics().skipped_blocks() > 0u);
  BOOST_TEST_MESSAGE("skipping on the default model: " << near_tau << " tokens with a decision flip inside +-"
                                                       << kTauBand << " of tau, of " << g.size());
}

BOOST_TEST_DECORATOR(*boost::unit_test::precondition(&has_device))
BOOST_AUTO_TEST_CASE(bad_input_is_refused) {
  engine_test::TinyLlama const tiny(tiny_spec(8, 2));
  eng::CudaGenerator gpu(tiny.model, dense_policies(2), 8);
  BOOST_CHECK_THROW(gpu.prefill(std::vector<std::int32_t>{}), std::invalid_argument);
  BOOST_CHECK_THROW(gpu.prefill(std::vector<std::int32_t>{1, 99}), std::out_of_range);
  BOOST_CHECK_THROW(gpu.prefill(std::vector<std::int32_t>(8, 1)), std::invalid_argument);  // no room left
  (void)gpu.prefill(std::vector<std::int32_t>{1, 2});
  for (int t = 0; t < 6; ++t) (void)gpu.decode(3);
  BOOST_CHECK_THROW(gpu.decode(3), std::length_error);
}

namespace {

// `skipllm generate ... --json -` in process: the JSON summary (stdout).
std::string generate_json(std::string const& device) {
  std::vector<std::string> args = {"generate",
                                   "-m",
                                   engine_test::model_path().string(),
                                   "-p",
                                   "Name the planets of the solar system.",
                                   "-n",
                                   "32",
                                   "--dense",
                                   "--json",
                                   "-",
                                   "-q",
                                   "--device",
                                   device};
  // --device cuda computes with an fp32 KV cache; the CPU engine's default is fp16.
  if (device == "cpu") args.insert(args.end(), {"--kv-cache", "fp32"});
  std::ostringstream out, err;
  int const status = skipllm::cli::run(skipllm::cli::parse_command_line(args), out, err);
  BOOST_TEST(status == 0, device << ": " << err.str());
  return out.str();
}

}  // namespace

// The command line end to end: --device cuda gives the CPU's text and statistics (dense).
BOOST_TEST_DECORATOR(*boost::unit_test::precondition(&has_device_and_model))
BOOST_AUTO_TEST_CASE(generate_on_cuda_gives_the_cpu_text_and_statistics) {
  auto const cpu = engine_test::parse_json(generate_json("cpu"));
  auto const gpu = engine_test::parse_json(generate_json("cuda"));
  BOOST_TEST(gpu.get<std::string>("text") == cpu.get<std::string>("text"));
  BOOST_TEST(gpu.get<int>("tokens.generated") == cpu.get<int>("tokens.generated"));
  // The device's KV cache: fp32, the prompt and the tokens asked for, as the CPU's at --kv-cache fp32.
  BOOST_TEST(gpu.get<std::uint64_t>("runtime.kv_cache_bytes") > 0u);
  BOOST_TEST(gpu.get<std::uint64_t>("runtime.kv_cache_bytes") == cpu.get<std::uint64_t>("runtime.kv_cache_bytes"));
  std::ostringstream a, b;
  boost::property_tree::write_json(a, gpu.get_child("statistics"));
  boost::property_tree::write_json(b, cpu.get_child("statistics"));
  BOOST_TEST(a.str() == b.str());
}

namespace {

// The dev set in the source tree (eval's default data comes from there too).
std::filesystem::path dev_set() {
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path().parent_path() /
         "examples/engine/data";
}

// `skipllm eval --task TASK ... --json -` in process on `device`: the JSON summary, without
// what differs by design (wall times, host threads).
boost::property_tree::ptree eval_json(std::string const& device, std::vector<std::string> const& task_args) {
  std::vector<std::string> args = {"eval",     "-m",  engine_test::model_path().string(), "--json", "-", "-q",
                                   "--device", device};
  args.insert(args.end(), task_args.begin(), task_args.end());
  std::ostringstream out, err;
  int const status = skipllm::cli::run(skipllm::cli::parse_command_line(args), out, err);
  BOOST_TEST_REQUIRE(status == 0, device << ": " << err.str());
  boost::property_tree::ptree j = engine_test::parse_json(out.str());
  j.erase("timings_s");
  j.get_child("runtime").erase("threads");
  return j;
}

std::string json_text(boost::property_tree::ptree const& j) {
  std::ostringstream os;
  boost::property_tree::write_json(os, j);
  return os.str();
}

}  // namespace

// eval --device cuda runs the same tasks in the same (fp32) arithmetic: dense, the same greedy
// outputs and the same JSON; perplexity within the stated logit tolerance.
BOOST_TEST_DECORATOR(*boost::unit_test::precondition(&has_device_and_model))
BOOST_AUTO_TEST_CASE(eval_on_cuda_gives_the_cpu_results) {
  std::vector<std::string> const factoid = {"--task", "factoid", "--limit", "4", "--dense"};
  BOOST_TEST(json_text(eval_json("cuda", factoid)) == json_text(eval_json("cpu", factoid)));

  // A short text keeps the CPU side quick: a few hundred decode steps per run.
  std::filesystem::path const text = std::filesystem::temp_directory_path() / "skipllm_gpu_eval_perplexity.txt";
  {
    std::ifstream in(dev_set() / "report" / "perplexity.txt");
    std::string const all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    BOOST_TEST_REQUIRE(all.size() > 1500u);
    std::ofstream(text) << all.substr(0, 1500);
  }
  std::vector<std::string> const perplexity = {"--task",   "perplexity", "--data", text.string(),
                                               "--window", "64",         "--dense"};
  boost::property_tree::ptree gpu = eval_json("cuda", perplexity), cpu = eval_json("cpu", perplexity);
  double const gp = gpu.get<double>("perplexity"), cp = cpu.get<double>("perplexity");
  BOOST_TEST(std::fabs(gp - cp) <= 1e-2 * cp, "perplexity gpu " << gp << " cpu " << cp);
  for (char const* key : {"perplexity", "nll"}) {
    gpu.erase(key);
    cpu.erase(key);
  }
  BOOST_TEST(json_text(gpu) == json_text(cpu));

  // With skipping, the same steps are decided (decisions may differ only near tau).
  std::vector<std::string> const skipping = {"--task",   "perplexity", "--data",      text.string(),
                                             "--window", "64",         "--threshold", "0.95"};
  boost::property_tree::ptree const gs = eval_json("cuda", skipping), cs = eval_json("cpu", skipping);
  BOOST_TEST(gs.get<int>("decode_steps") == cs.get<int>("decode_steps"));
  BOOST_TEST(gs.get<double>("skip_ratio") > 0.0);
  BOOST_TEST_MESSAGE("eval perplexity with skipping: skip ratio gpu " << gs.get<double>("skip_ratio") << " cpu "
                                                                      << cs.get<double>("skip_ratio"));
}

namespace {

// Several sequences decoded together (rows = slots) against one CPU engine per sequence, both
// fed the CPU's greedy tokens: every row's logits within the dense tolerance (dense), and every
// row's decisions equal outside the band around tau (skipping). Steps alternate between all
// rows and a subset in another order, so two row counts (two graphs) and a row order that is not
// the slot order are exercised.
void check_batched_decode(eng::LlamaModel const& model, pol::ConfigurablePolicies const& policies,
                          std::vector<std::vector<std::int32_t>> const& prompts, int steps, bool dense) {
  int const n = static_cast<int>(prompts.size());
  int const layers = model.config().n_layers;
  eng::ThreadPool pool(2);
  std::vector<std::unique_ptr<eng::Generator>> cpu;
  std::vector<std::vector<float>> cpu_logits;
  eng::CudaGenerator gpu(model, policies, kContext,
                         {.record_trace = true, .weights = eng::DeviceWeights::kFloat32, .max_sequences = n + 1});
  float worst = 0;
  for (int i = 0; i < n; ++i) {
    cpu.push_back(std::make_unique<eng::Generator>(
        model, pool, policies, kContext,
        eng::GeneratorOptions{.record_trace = true, .kv_cache = eng::KvCacheType::kFloat32}));
    std::span<float const> const c = cpu.back()->prefill(prompts[static_cast<std::size_t>(i)]);
    cpu_logits.emplace_back(c.begin(), c.end());
    std::span<float const> const g = gpu.prefill(i, prompts[static_cast<std::size_t>(i)]);
    worst = std::max(worst, relative_logit_difference(g, c));
  }
  std::size_t const vocab = static_cast<std::size_t>(model.config().vocab);
  for (int t = 0; t < steps; ++t) {
    std::vector<int> slots;
    if (t % 2 == 0) {
      for (int i = 0; i < n; ++i) slots.push_back(i);
    } else {
      for (int i = n - 1; i >= 1; --i) slots.push_back(i);  // reversed, slot 0 left out
    }
    std::vector<std::int32_t> tokens;
    for (int const slot : slots) {
      tokens.push_back(static_cast<std::int32_t>(argmax(cpu_logits[static_cast<std::size_t>(slot)])));
    }
    std::span<float const> const g = gpu.decode(slots, tokens);
    BOOST_TEST_REQUIRE(g.size() == slots.size() * vocab);
    for (std::size_t r = 0; r < slots.size(); ++r) {
      auto const slot = static_cast<std::size_t>(slots[r]);
      std::span<float const> const c = cpu[slot]->decode(tokens[r]);
      cpu_logits[slot].assign(c.begin(), c.end());
      if (dense) {
        std::span<float const> const row = g.subspan(r * vocab, vocab);
        worst = std::max(worst, relative_logit_difference(row, c));
        BOOST_TEST(argmax(row) == argmax(c), "step " << t << " slot " << slot);
      }
      BOOST_TEST(gpu.position(slots[r]) == cpu[slot]->position());
    }
  }
  if (dense) BOOST_TEST(worst <= kLogitTolerance);
  // Decisions per (slot, decode index) against that sequence's CPU trace.
  skipllm::DecisionTrace const& g = gpu.trace();
  std::size_t cpu_records = 0;
  for (auto const& c : cpu) cpu_records += c->stack().trace().size();
  BOOST_TEST_REQUIRE(g.size() == cpu_records);
  int near_tau = 0;
  for (std::size_t i = 0; i < g.size(); ++i) {
    skipllm::DecisionTrace::Token const key = g.token(i);
    skipllm::DecisionTrace const& c = cpu[static_cast<std::size_t>(key.slot)]->stack().trace();
    auto const ci = static_cast<std::size_t>(key.decode_index);
    BOOST_TEST_REQUIRE(ci < c.size());
    auto const gd = g.decisions(i), cd = c.decisions(ci);
    auto const gs = g.scores(i), cs = c.scores(ci);
    for (std::size_t l = 0; l < gd.size(); ++l) {
      if (gd[l] == cd[l]) continue;
      bool const in_band =
          l > 0 && (std::fabs(cs[l - 1] - kTau) <= kTauBand || std::fabs(gs[l - 1] - kTau) <= kTauBand);
      BOOST_TEST(in_band, "slot " << key.slot << " token " << ci << " layer " << l << ": scores before gpu "
                                  << gs[l - 1] << " cpu " << cs[l - 1]);
      near_tau += in_band ? 1 : 0;
      break;
    }
  }
  BOOST_TEST_MESSAGE(n << " sequences, " << layers << " layers, " << (dense ? "dense" : "skipping")
                       << ": logits differ by at most " << worst << "; " << near_tau
                       << " decision flips inside the band of " << g.size() << " records");
}

}  // namespace

BOOST_TEST_DECORATOR(*boost::unit_test::precondition(&has_device_and_model))
BOOST_AUTO_TEST_CASE(batched_decode_matches_one_cpu_engine_per_sequence) {
  eng::GgufFile const file = eng::GgufFile::open(engine_test::model_path());
  eng::LlamaModel const model(file);
  int const layers = model.config().n_layers;
  std::vector<std::vector<std::int32_t>> const prompts = {encode(file, "The capital of France is"),
                                                          encode(file, "List three facts about the Moon:"),
                                                          encode(file, "def fibonacci(n):")};
  check_batched_decode(model, dense_policies(layers), prompts, 16, true);
  pol::ConfigurablePolicies const skipping = eng::calibrate::greedy_policy(kTau, 8, 1, {}, layers, 16, 6);
  check_batched_decode(model, skipping, prompts, 24, false);
}

BOOST_TEST_DECORATOR(*boost::unit_test::precondition(&has_device))
BOOST_AUTO_TEST_CASE(batched_decode_refuses_bad_rows_before_running) {
  engine_test::TinyLlama const tiny(tiny_spec(8, 2));
  eng::CudaGenerator gpu(tiny.model, dense_policies(2), 8, {.max_sequences = 2});
  (void)gpu.prefill(0, std::vector<std::int32_t>{1, 2});
  std::vector<std::int32_t> const two = {3, 3};
  BOOST_CHECK_THROW(gpu.decode(std::vector<int>{0, 1}, two), std::invalid_argument);  // slot 1 not started
  BOOST_CHECK_THROW(gpu.decode(std::vector<int>{0, 0}, two), std::invalid_argument);  // named twice
  BOOST_CHECK_THROW(gpu.decode(std::vector<int>{0, 2}, two), std::out_of_range);
  BOOST_CHECK_THROW(gpu.decode(std::vector<int>{0}, two), std::invalid_argument);  // one token per slot
  BOOST_CHECK_THROW(gpu.prefill(2, two), std::out_of_range);
  BOOST_TEST(gpu.position(0) == 2);  // nothing ran
  (void)gpu.prefill(1, std::vector<std::int32_t>{4});
  std::span<float const> const logits = gpu.decode(std::vector<int>{1, 0}, two);
  BOOST_TEST(logits.size() == 2u * static_cast<std::size_t>(tiny.model.config().vocab));
  BOOST_TEST(gpu.position(0) == 3);
  BOOST_TEST(gpu.position(1) == 2);
  BOOST_TEST(gpu.kv_cache_bytes() == 2u * 2u * 2u * 8u * static_cast<std::size_t>(tiny.model.config().kv_dim()) *
                                         sizeof(float));  // layers, slots, K and V, positions
}
