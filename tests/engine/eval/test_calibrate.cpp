#define BOOST_TEST_MODULE skipllm engine calibration and policy config
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

#include "engine_test_support.hpp"

#include "eval/calibrate.hpp"
#include "format/gguf.hpp"
#include "format/policy_config.hpp"
#include "model/generator.hpp"
#include "model/llama_model.hpp"
#include "model/thread_pool.hpp"

namespace utf = boost::unit_test;
namespace fs = std::filesystem;
using namespace skipllm::engine;
namespace cal = skipllm::engine::calibrate;

namespace {

std::string const kMinimal =
    R"({"schema": "skipllm.policy", "version": 1, "policy": {"kind": "greedy", "threshold": 0.97}})";

std::string error_of(std::string const& text) {
  try {
    parse_policy_config(text, "t.json");
  } catch (PolicyConfigError const& e) { return e.what(); }
  return "";
}

// A synthetic model of the search: the skip ratio falls linearly as tau rises, reaching
// span * spans / 30 at tau = 0.8; the NLL cost of a skip depends on the span (2 is best).
// The search builds the greedy rule with one threshold, or one per layer (then layer 10's
// threshold stands for the quantile q in [0, 1]).
cal::Measurement synthetic(cal::ConfigurablePolicies const& p) {
  auto const* g = p.skip.greedy();
  auto const* t = p.skip.layer_thresholds();
  BOOST_REQUIRE(g != nullptr || t != nullptr);
  int const span = g ? g->span : t->span;
  int const spans = g ? g->spans_per_token : t->spans_per_token;
  double const tau = g ? g->tau : 0.8 + 0.2 * t->tau[10];
  double const reach = std::min(1.0, span * spans / 30.0);
  double const r = std::clamp(reach * (1.0 - tau) / 0.2, 0.0, 1.0);
  double const cost = span == 2 ? 1.0 : 3.0;
  return {r, 2.0 + cost * r * r, 1.0 - r * cost / 4, 100};
}

}  // namespace

// ---- policy config files ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(config_round_trips_every_field) {
  PolicyConfig c;
  c.kind = PolicyConfig::Kind::layer_greedy;
  c.threshold = 0.975f;
  c.layer_thresholds = {std::nullopt, 0.5f, 0.96875f, std::nullopt};
  c.span = skipllm::policy::kToColdRegion;
  c.spans_per_token = 3;
  c.warmup_tokens = 8;
  c.warmup_every = 0;
  c.cold_first = 1;
  c.cold_last = 2;
  c.cold_layers = {2};
  c.skip_attention = true;
  c.model_name = "Tiny \"model\"";
  c.model_layers = 4;
  c.model_file = "tiny.gguf";
  c.tool = "test";
  c.command = "skipllm calibrate --target-skip 0.25";
  c.date = "2026-11-23";
  c.data = "a.txt,b.txt";
  c.notes = "line\nbreak";
  c.target_skip = 0.25;
  c.achieved_skip = 0.2512;
  c.perplexity_dense = 9.5;
  c.perplexity = 10.25;
  std::string const text = policy_config_json(c);
  PolicyConfig const r = parse_policy_config(text);
  BOOST_TEST(policy_config_json(r) == text);
  BOOST_TEST(r.layer_thresholds.size() == 4u);
  BOOST_TEST(!r.layer_thresholds[0].has_value());
  BOOST_TEST(*r.layer_thresholds[2] == 0.96875f);
  BOOST_TEST(r.span == skipllm::policy::kToColdRegion);
  BOOST_TEST(r.notes == "line\nbreak");
  BOOST_TEST(r.model_name == "Tiny \"model\"");
  BOOST_TEST(*r.achieved_skip == 0.2512);

  PolicyConfig w;
  w.kind = PolicyConfig::Kind::random_window;
  w.window_length = 3.5f;
  w.window_first = 5;
  w.window_last = 25;
  w.window_seed = 7;
  PolicyConfig const wr = parse_policy_config(policy_config_json(w));
  BOOST_TEST(wr.window_length == 3.5f);
  BOOST_TEST(wr.window_last == 25);
  BOOST_TEST(wr.window_seed == 7u);

  PolicyConfig st;
  st.kind = PolicyConfig::Kind::static_layers;
  st.static_layers = {5, 14};
  PolicyConfig const sr = parse_policy_config(policy_config_json(st));
  BOOST_TEST((sr.static_layers == std::vector<int>{5, 14}));
  skipllm::policy::ConfigurablePolicies const sp = make_policies(sr, 30);
  skipllm::SkipState state;
  BOOST_TEST(sp.skip.should_skip(state, skipllm::LayerContext{5, 30, 40, 0}));
  BOOST_TEST(!sp.skip.should_skip(state, skipllm::LayerContext{6, 30, 40, 0}));
  BOOST_TEST(error_of(R"({"schema": "skipllm.policy", "version": 1, "policy": {"kind": "static"}})")
                 .find("policy.static_layers") != std::string::npos);

  fs::path const tmp = fs::temp_directory_path() / "skipllm_test_config.json";
  save_policy_config(tmp, c);
  BOOST_TEST(policy_config_json(load_policy_config(tmp)) == text);
  fs::remove(tmp);
}

BOOST_AUTO_TEST_CASE(config_defaults_and_minimal_file) {
  PolicyConfig const c = parse_policy_config(kMinimal);
  BOOST_TEST(c.threshold == 0.97f);
  BOOST_TEST(c.span == 8);
  BOOST_TEST(c.cold_first == 5);
  BOOST_TEST(c.warmup_tokens == 16);
  BOOST_TEST(c.model_layers == 0);
}

BOOST_AUTO_TEST_CASE(config_errors_name_the_field) {
  BOOST_TEST(error_of("{").find("t.json:1:2: invalid JSON") != std::string::npos);
  BOOST_TEST(error_of(R"({"schema": "other", "version": 1, "policy": {}})").find("field 'schema'") !=
             std::string::npos);
  BOOST_TEST(error_of(R"({"schema": "skipllm.policy", "version": 2, "policy": {}})").find("field 'version'") !=
             std::string::npos);
  BOOST_TEST(error_of(R"({"schema": "skipllm.policy", "version": 1})").find("field 'policy': missing") !=
             std::string::npos);
  std::string const head =
      R"({"schema": "skipllm.policy", "version": 1, "policy": {"kind": "greedy", "threshold": 0.9, )";
  BOOST_TEST(error_of(head + R"("span": 0}})").find("field 'policy.span': must be between 1") != std::string::npos);
  BOOST_TEST(error_of(head + R"("span": "most"}})").find("field 'policy.span'") != std::string::npos);
  BOOST_TEST(error_of(head + R"("span": 2.5}})").find("expected an integer") != std::string::npos);
  BOOST_TEST(error_of(head + R"("cold": {"first": 2}}})").find("field 'policy.cold.last': missing") !=
             std::string::npos);
  BOOST_TEST(error_of(head + R"("cold": {"first": 2, "last": 1, "layer": [3]}}})")
                 .find("field 'policy.cold.layer': unknown field") != std::string::npos);
  BOOST_TEST(error_of(head + R"("treshold": 1}})").find("field 'policy.treshold': unknown field") != std::string::npos);
  BOOST_TEST(error_of(head + R"("metric": "relative"}})").find("field 'policy.metric'") != std::string::npos);
  BOOST_TEST(error_of(head + R"("warmup": {"tokens": -1, "every": 0}}})").find("field 'policy.warmup.tokens'") !=
             std::string::npos);
  BOOST_TEST(error_of(head + R"("skip_attention": 1}})").find("expected true or false") != std::string::npos);
  BOOST_TEST(error_of(R"({"schema": "skipllm.policy", "version": 1, "policy": {"kind": "layer_greedy"}})")
                 .find("policy.layer_thresholds") != std::string::npos);
  BOOST_TEST(
      error_of(R"({"schema": "skipllm.policy", "version": 1, "policy": {"kind": "fast"}})").find("policy.kind") !=
      std::string::npos);
  BOOST_TEST(
      error_of(
          R"({"schema": "skipllm.policy", "version": 1, "policy": {"kind": "greedy", "threshold": 0.9, "threshold": 0.8}})")
          .find("duplicate key") != std::string::npos);
  BOOST_CHECK_THROW(load_policy_config("/nonexistent/skipllm.json"), PolicyConfigError);
}

BOOST_AUTO_TEST_CASE(config_to_library_policies) {
  using Kind = skipllm::policy::AnySkip::Kind;
  PolicyConfig c = parse_policy_config(kMinimal);
  c.cold_first = 2;
  c.cold_last = 1;
  c.cold_layers = {7};
  c.span = 3;
  skipllm::policy::ConfigurablePolicies const p = make_policies(c, 12);
  BOOST_REQUIRE(p.skip.greedy() != nullptr);
  BOOST_TEST(p.skip.greedy()->tau == 0.97f);
  BOOST_TEST(p.skip.greedy()->span == 3);
  for (int l = 0; l < 12; ++l) BOOST_TEST(p.cold.is_cold(l, 12) == (l < 2 || l == 7 || l == 11));
  c.model_layers = 30;
  BOOST_CHECK_THROW(make_policies(c, 12), PolicyConfigError);
  c.model_layers = 0;
  c.cold_layers = {12};
  BOOST_CHECK_THROW(make_policies(c, 12), PolicyConfigError);
  c.cold_layers.clear();
  c.kind = PolicyConfig::Kind::layer_greedy;
  c.layer_thresholds = {0.5f, std::nullopt};
  BOOST_CHECK_THROW(make_policies(c, 12), PolicyConfigError);
  c.layer_thresholds.resize(12, 0.9f);
  skipllm::policy::ConfigurablePolicies const lp = make_policies(c, 12);
  BOOST_REQUIRE(lp.skip.layer_thresholds() != nullptr);
  BOOST_TEST(lp.skip.layer_thresholds()->tau[0] == 0.5f);
  BOOST_TEST(std::isinf(lp.skip.layer_thresholds()->tau[1]));
  BOOST_TEST(lp.skip.layer_thresholds()->tau[2] == 0.9f);
  BOOST_TEST(std::isinf(lp.skip.layer_thresholds()->tau[12]));
  BOOST_TEST(lp.skip.layer_thresholds()->span == 3);
  // Dense keeps the greedy rule's threshold and span in its description, with no spans.
  c.kind = PolicyConfig::Kind::dense;
  BOOST_REQUIRE(make_policies(c, 12).skip.greedy() != nullptr);
  BOOST_TEST(make_policies(c, 12).skip.greedy()->spans_per_token == 0);
  c.kind = PolicyConfig::Kind::random_window;
  c.window_length = 2.5f;
  c.window_first = 1;
  c.window_last = 10;
  BOOST_TEST((make_policies(c, 12).skip.kind() == Kind::random_window));
  BOOST_TEST(make_policies(c, 12).skip.random_window()->last == 10);
  c.kind = PolicyConfig::Kind::static_layers;
  c.static_layers = {3, 12};
  BOOST_CHECK_THROW(make_policies(c, 12), PolicyConfigError);
  c.static_layers = {3, 9};
  BOOST_TEST((make_policies(c, 12).skip.kind() == Kind::static_mask));
  BOOST_TEST(make_policies(c, 12).skip.static_mask()->layers.count() == 2);

  // What reports print: the library's description, the skip policy marked in layer-skip mode.
  c = parse_policy_config(kMinimal);
  c.threshold = 0.96f;
  c.span = 2;
  c.spans_per_token = 3;
  c.cold_first = 4;
  c.cold_last = 2;
  c.warmup_tokens = 8;
  c.warmup_every = 5;
  BOOST_TEST(describe_policies(make_policies(c, 30), false) ==
             "skip=Greedy(tau=0.96, span=2, spans_per_token=3) cold=ColdRegions(first=4, last=2) "
             "warmup=Warmup(tokens=8, every=5) metric=Cosine");
  BOOST_TEST(describe_policies(make_policies(c, 30), true) ==
             "skip=LayerSkip:Greedy(tau=0.96, span=2, spans_per_token=3) cold=ColdRegions(first=4, last=2) "
             "warmup=Warmup(tokens=8, every=5) metric=Cosine");
}

// ---- the search, on synthetic data ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(quantile_and_means) {
  BOOST_TEST(cal::quantile({3.0f, 1.0f, 2.0f, std::numeric_limits<float>::quiet_NaN()}, 0.5) == 2.0);
  BOOST_TEST(cal::quantile({1.0f, 2.0f}, 0.25) == 1.25);
  BOOST_TEST(cal::quantile({1.0f, 2.0f}, 1.0) == 2.0);
  BOOST_TEST(std::isnan(cal::quantile({}, 0.5)));
  auto const m = cal::layer_means({{1.0f, 3.0f}, {}});
  BOOST_TEST(m[0] == 2.0);
  BOOST_TEST(std::isnan(m[1]));
}

BOOST_AUTO_TEST_CASE(cold_layers_come_from_profile_and_sensitivity) {
  std::vector<double> const means = {0.05, 0.97, 0.97, 0.4, 0.97, 0.97, 0.75};
  std::vector<double> const none;
  BOOST_TEST((cal::choose_cold_layers(means, none, 0.5, 4.0) == std::vector<int>{0, 3, 6}));
  std::vector<double> const sens = {0.5, 0.01, 0.2, 0.02, 0.01, 0.02, 0.3};
  // median 0.02: 0.2 > 4 x 0.02 makes layer 2 cold too.
  BOOST_TEST((cal::choose_cold_layers(means, sens, 0.5, 4.0) == std::vector<int>{0, 2, 3, 6}));
  // The search tries one cold set per factor: with factor 1 only layers at or below the median stay eligible.
  BOOST_TEST((cal::choose_cold_layers(means, sens, 0.5, 1.0) == std::vector<int>{0, 2, 3, 6}));
}

BOOST_AUTO_TEST_CASE(candidates_can_reach_the_target) {
  auto const c = cal::candidates(0.25, 30, 26);
  BOOST_TEST(c.size() == 2u);
  for (auto const& [span, spans] : c) BOOST_TEST(span * spans >= 0.25 * 30 * 0.9);
  // Nothing fits 90% of 30 layers in 5 eligible ones: the only candidate left is "up to the cold region".
  auto const none = cal::candidates(0.9, 30, 5);
  BOOST_TEST(none.size() == 1u);
  BOOST_TEST(none.front().first == skipllm::policy::kToColdRegion);
}

BOOST_AUTO_TEST_CASE(bisection_hits_the_target_on_a_monotone_evaluator) {
  int runs = 0;
  cal::Evaluator const eval = [&](cal::ConfigurablePolicies const& p) {
    ++runs;
    return synthetic(p);
  };
  auto const make = [](double tau) {
    cal::ConfigurablePolicies p;
    p.skip = skipllm::policy::Greedy{static_cast<float>(tau), 2, 6};
    return p;
  };
  auto const r = cal::search_threshold(eval, make, 0.8, 1.0, 0.25, 0.005, 12);
  BOOST_TEST(r.reached);
  BOOST_TEST(std::abs(r.m.skip_ratio - 0.25) <= 0.005);
  BOOST_TEST(r.runs == runs);
  BOOST_TEST(std::abs(r.x - (1.0 - 0.25 / 0.4 * 0.2)) < 0.01);  // the analytic answer: reach 0.4
  // Unreachable: the nearest is reported, not "reached".
  auto const u = cal::search_threshold(eval, make, 0.8, 1.0, 0.6, 0.005, 8);
  BOOST_TEST(!u.reached);
  BOOST_TEST(u.m.skip_ratio > 0.38);
}

BOOST_AUTO_TEST_CASE(pick_best_prefers_reached_then_lowest_nll) {
  cal::SearchResult a, b, c;
  a.reached = false, a.m = {0.24, 1.0, 1.0, 1};
  b.reached = true, b.m = {0.25, 2.0, 0.9, 1};
  c.reached = true, c.m = {0.25, 1.5, 0.8, 1};
  std::vector<cal::SearchResult> v = {a, b, c};
  BOOST_TEST(cal::pick_best(v, 0.25) == 2);
  v = {a};
  BOOST_TEST(cal::pick_best(v, 0.25) == 0);
  BOOST_TEST(cal::pick_best(std::span<cal::SearchResult const>(), 0.25) == -1);
}

BOOST_AUTO_TEST_CASE(search_chooses_the_candidate_with_the_best_quality) {
  cal::Evaluator const eval = synthetic;
  cal::LayerScores profile(12);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0.9f, 1.0f);
  for (auto& layer : profile) {
    for (int i = 0; i < 50; ++i) layer.push_back(u(rng));
  }
  profile[0].assign(50, 0.05f);  // layer 0: cold by its profile
  cal::Options o;
  o.target_skip = 0.2;
  o.tolerance = 0.005;
  o.max_iterations = 14;
  o.candidates = {{1, 8}, {2, 4}, {4, 2}};
  cal::Measurement const dense{0, 2.0, 1.0, 100};
  cal::Result const r = cal::search(eval, profile, dense, {}, 12, o);
  BOOST_TEST((r.cold == std::vector<int>{0, 11}));
  BOOST_TEST(r.config.span == 2);  // span 2 is cheapest in the synthetic model
  BOOST_TEST(r.config.spans_per_token == 4);
  BOOST_TEST(std::abs(*r.config.achieved_skip - 0.2) <= 0.005);
  BOOST_TEST(r.config.cold_first == 1);
  BOOST_TEST(r.config.cold_last == 1);
  BOOST_TEST(r.config.cold_layers.empty());
  BOOST_TEST(r.config.model_layers == 12);
  BOOST_TEST(r.tried.size() == 3u);
  // The written config is valid and reproduces the chosen policy.
  cal::ConfigurablePolicies const p = make_policies(parse_policy_config(policy_config_json(r.config)), 12);
  BOOST_TEST(synthetic(p).skip_ratio == r.achieved.skip_ratio);
}

BOOST_AUTO_TEST_CASE(per_layer_search_sets_quantile_thresholds) {
  cal::LayerScores profile(6);
  for (int l = 0; l < 6; ++l) {
    for (int i = 0; i <= 100; ++i)
      profile[static_cast<std::size_t>(l)].push_back(0.9f + 0.001f * static_cast<float>(i));
  }
  cal::ConfigurablePolicies const p = cal::quantile_policy(0.5, profile, 2, 1, std::vector<int>{0, 5}, 6, 16, 0);
  auto const* t = p.skip.layer_thresholds();
  BOOST_REQUIRE(t != nullptr);
  for (int l = 0; l < 5; ++l) BOOST_TEST(std::abs(t->tau[l] - 0.95f) < 1e-6f);
  BOOST_TEST(std::isinf(t->tau[5]));  // the last layer decides nothing
  BOOST_TEST(p.cold.first == 1);
  BOOST_TEST(p.cold.last == 1);
}

// ---- on the real model ---------------------------------------------------------------------------

namespace {
struct Model {
  GgufFile file = GgufFile::open(engine_test::model_path());
  LlamaModel model{file};
  ThreadPool pool{2};
};
Model& shared_model() {
  static Model m;
  return m;
}
std::vector<std::int32_t> some_tokens(int n) {
  std::vector<std::int32_t> t;
  for (int i = 0; i < n; ++i) t.push_back(static_cast<std::int32_t>(100 + (i * 7919) % 20000));
  return t;
}
std::vector<float> run(Generator& g, std::vector<std::int32_t> const& tokens) {
  auto logits = g.prefill(std::span<std::int32_t const>(tokens.data(), 4));
  for (std::size_t i = 4; i < tokens.size(); ++i) logits = g.decode(tokens[i]);
  return {logits.begin(), logits.end()};
}
}  // namespace

BOOST_AUTO_TEST_CASE(layer_skip_mode_is_dense_when_nothing_skips_and_differs_when_it_does,
                     *utf::precondition(engine_test::model_available)) {
  Model& m = shared_model();
  auto const tokens = some_tokens(24);
  cal::ConfigurablePolicies const dense;  // policy::Dense
  Generator a(m.model, m.pool, dense, 64), b(m.model, m.pool, dense, 64, {.skip_attention = true});
  BOOST_TEST((run(a, tokens) == run(b, tokens)));  // deferring the attention add changes nothing

  // One layer always skipped: FFN skip and layer skip give different results, both non-dense.
  cal::ConfigurablePolicies const one{skipllm::policy::RandomWindow{1.0f, 12, 13, 0}, {0, 0, {}}, {0, 0}};
  Generator c(m.model, m.pool, one, 64), d(m.model, m.pool, one, 64, {.skip_attention = true});
  auto const lc = run(c, tokens), ld = run(d, tokens), la = run(a, tokens);
  BOOST_TEST((lc != ld));
  BOOST_TEST((lc != la));
  BOOST_TEST(c.stack().statistics().layers()[12].skipped == 20u);
  BOOST_TEST(d.stack().statistics().layers()[12].skipped == 20u);
  BOOST_TEST(d.stack().statistics().skipped_blocks() == 20u);
}

BOOST_AUTO_TEST_CASE(a_written_config_decides_like_the_policies_it_was_written_from,
                     *utf::precondition(engine_test::model_available)) {
  Model& m = shared_model();
  auto const tokens = some_tokens(40);
  PolicyConfig c;
  c.threshold = 0.97f;
  c.span = 2;
  c.spans_per_token = 2;
  c.cold_first = c.cold_last = 3;
  c.warmup_tokens = 4;
  c.warmup_every = 0;
  cal::ConfigurablePolicies const direct{skipllm::policy::Greedy{0.97f, 2, 2}, {3, 3, {}}, {4, 0}};
  Generator a(m.model, m.pool, direct, 64, {.record_trace = true});
  Generator b(m.model, m.pool, make_policies(parse_policy_config(policy_config_json(c)), 30), 64,
              {.record_trace = true});
  BOOST_TEST((run(a, tokens) == run(b, tokens)));
  BOOST_TEST(a.stack().statistics().skipped_blocks() == b.stack().statistics().skipped_blocks());
  BOOST_TEST(a.stack().statistics().skipped_blocks() > 0u);
}

BOOST_AUTO_TEST_CASE(small_real_calibration, *utf::precondition(engine_test::model_available)) {
  Model& m = shared_model();
  std::vector<std::vector<std::int32_t>> seqs = {some_tokens(48), some_tokens(40)};
  cal::Options o;
  o.target_skip = 0.10;
  o.tolerance = 0.03;
  o.max_iterations = 5;
  o.warmup_tokens = 4;
  o.sensitivity = false;
  o.candidates = {{2, 2}};
  std::vector<std::string> lines;
  cal::Result const r =
      cal::calibrate_model(m.model, m.pool, seqs, o, [&](std::string const& s) { lines.push_back(s); });
  BOOST_TEST(lines.size() >= 3u);
  BOOST_TEST(r.dense.skip_ratio == 0.0);
  BOOST_TEST(r.dense.agreement == 1.0);
  BOOST_TEST(r.means.size() == 30u);
  BOOST_TEST(r.means[0] < 0.5);  // layer 0 rewrites the embedding: cold by its profile
  BOOST_TEST(r.config.cold_first >= 1);
  BOOST_TEST(r.config.cold_last >= 1);
  BOOST_TEST(std::abs(*r.config.achieved_skip - 0.10) <= 0.03);
  BOOST_TEST(r.achieved.nll >= r.dense.nll - 0.5);
  cal::ConfigurablePolicies const p = make_policies(parse_policy_config(policy_config_json(r.config)), 30);
  BOOST_REQUIRE(p.skip.greedy() != nullptr);
  BOOST_TEST(p.skip.greedy()->span == 2);
}
