#define BOOST_TEST_MODULE skipllm stand-ins for skipped FFNs
#include <boost/test/unit_test.hpp>

#include <array>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include <skipllm/decoder_stack.hpp>
#include <skipllm/json.hpp>
#include <skipllm/policy/describe.hpp>

// A host whose every block is linear: attention leaves x alone, the FFN is f = A x, and the
// stand-in is g = B x. With B = A a stand-in is exact, so a run that skips every FFN with a
// stand-in must end in the dense run's state.
namespace {

namespace p = skipllm::policy;
constexpr int kHidden = 4;
using Matrix = std::array<float, kHidden * kHidden>;

// Small updates (|Ax| << |x|), so cos(x, x + Ax) is high and the greedy rule triggers.
constexpr Matrix kFfn = {0.05f, 0.01f, 0.0f,  0.02f, 0.0f,  0.04f, 0.01f, 0.0f,
                         0.02f, 0.0f,  0.03f, 0.0f,  0.01f, 0.0f,  0.0f,  0.05f};

void apply(Matrix const& m, float const* x, float* y) {
  for (int o = 0; o < kHidden; ++o) {
    y[o] = 0.0f;
    for (int i = 0; i < kHidden; ++i) y[o] += m[static_cast<std::size_t>(o * kHidden + i)] * x[i];
  }
}

struct LinearHost {
  struct Step {
    std::vector<float> x = {1.0f, 0.5f, -0.25f, 2.0f};
    std::vector<float> f = std::vector<float>(kHidden);
  };
  int layers = 6;
  Matrix standin = kFfn;
  std::vector<int> ffn_calls = std::vector<int>(6);
  std::vector<int> standin_calls = std::vector<int>(6);

  int num_layers() const { return layers; }
  void attention_block(int, Step&) {}
  void ffn_block(int layer, Step& s, std::span<int const> rows) {
    ++ffn_calls[static_cast<std::size_t>(layer)];
    for (int const r : rows)
      apply(kFfn, &s.x[static_cast<std::size_t>(r * kHidden)], &s.f[static_cast<std::size_t>(r * kHidden)]);
  }
  void standin_block(int layer, Step& s, std::span<int const> rows) {
    ++standin_calls[static_cast<std::size_t>(layer)];
    for (int const r : rows)
      apply(standin, &s.x[static_cast<std::size_t>(r * kHidden)], &s.f[static_cast<std::size_t>(r * kHidden)]);
  }
  skipllm::RowView<float> residual(Step& s) { return {s.x.data(), 1, kHidden, kHidden}; }
  skipllm::RowView<float const> ffn_output(Step& s) { return {s.f.data(), 1, kHidden, kHidden}; }
};

template <class Action>
using StaticPolicies = skipllm::Policies<p::StaticMask, p::NoCold, p::NoWarmup, p::Cosine, Action>;

p::StaticMask every_layer() {
  p::StaticMask m;
  for (int l = 0; l < 6; ++l) m.layers.insert(l);
  return m;
}

template <class Policies>
std::vector<float> run_one_token(LinearHost& host, Policies const& policies, skipllm::SkipStatistics* stats = nullptr,
                                 std::string* trace = nullptr) {
  skipllm::DecoderStack<LinearHost, Policies> stack(host, policies, {.record_trace = true});
  stack.begin_sequence(0);
  LinearHost::Step step;
  stack.decode(step);
  if (stats) *stats = stack.statistics();
  if (trace) {
    for (auto const d : stack.trace().decisions(0)) *trace += skipllm::decision_letter(d);
  }
  return step.x;
}

// x after one token with every FFN run.
std::vector<float> dense_output() {
  LinearHost host;
  return run_one_token(host, skipllm::Policies<p::Dense, p::NoCold, p::NoWarmup, p::Cosine>{});
}

std::string greedy_pattern(bool feeds) {
  LinearHost host;
  p::StandIn action;
  for (int l = 0; l < 6; ++l) action.layers.insert(l);
  action.feeds = feeds;
  skipllm::Policies<p::Greedy, p::NoCold, p::NoWarmup, p::Cosine, p::StandIn> const policies{
      p::Greedy{0.9f, 1, 6}, {}, {}, action};
  std::string trace;
  run_one_token(host, policies, nullptr, &trace);
  return trace;
}

}  // namespace

BOOST_AUTO_TEST_CASE(exact_standin_leaves_the_output_unchanged) {
  std::vector<float> const dense = dense_output();

  LinearHost host;
  skipllm::SkipStatistics stats;
  std::string trace;
  std::vector<float> const stood_in =
      run_one_token(host, StaticPolicies<p::FixedStandIn<false>>{every_layer()}, &stats, &trace);
  for (int i = 0; i < kHidden; ++i)
    BOOST_TEST(stood_in[static_cast<std::size_t>(i)] == dense[static_cast<std::size_t>(i)],
               boost::test_tools::tolerance(1e-6f));
  BOOST_TEST(trace == "IIIIII");
  BOOST_TEST(stats.skipped_blocks() == 6u);
  BOOST_TEST(stats.stood_in_blocks() == 6u);
  BOOST_TEST(host.ffn_calls == std::vector<int>(6, 0), boost::test_tools::per_element());
  BOOST_TEST(host.standin_calls == std::vector<int>(6, 1), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(plain_skip_and_wrong_standin_change_the_output) {
  std::vector<float> const dense = dense_output();
  LinearHost plain_host;
  skipllm::SkipStatistics stats;
  std::vector<float> const plain = run_one_token(plain_host, StaticPolicies<p::NoStandIn>{every_layer()}, &stats);
  BOOST_TEST(plain == (std::vector<float>{1.0f, 0.5f, -0.25f, 2.0f}), boost::test_tools::per_element());
  BOOST_TEST(stats.stood_in_blocks() == 0u);
  BOOST_TEST(stats.skipped_blocks() == 6u);

  LinearHost wrong;
  wrong.standin = Matrix{};  // g = 0: the same as a plain skip
  BOOST_TEST(run_one_token(wrong, StaticPolicies<p::FixedStandIn<false>>{every_layer()}) == plain,
             boost::test_tools::per_element());
  BOOST_TEST(dense != plain);
}

BOOST_AUTO_TEST_CASE(standin_only_on_listed_layers) {
  LinearHost host;
  std::string trace;
  skipllm::SkipStatistics stats;
  run_one_token(host, StaticPolicies<p::FixedStandIn<false, 1, 4>>{every_layer()}, &stats, &trace);
  BOOST_TEST(trace == "SISSIS");
  BOOST_TEST(stats.layers()[1].stood_in == 1u);
  BOOST_TEST(stats.layers()[0].stood_in == 0u);
  BOOST_TEST(stats.layers()[0].skipped == 1u);
}

// Without feedback the layer after a stand-in sees "not measured" (as after a plain skip) and
// runs; with feedback the stand-in's score lets the next layer skip at once.
BOOST_AUTO_TEST_CASE(feeds_decision_decides_whether_the_score_triggers_the_next_skip) {
  BOOST_TEST(greedy_pattern(false) == "RIRIRI");
  BOOST_TEST(greedy_pattern(true) == "RIIIII");
}

BOOST_AUTO_TEST_CASE(json_and_description_name_the_stand_in) {
  LinearHost host;
  skipllm::DecoderStack<LinearHost, StaticPolicies<p::StandIn>> stack(
      host, StaticPolicies<p::StandIn>{every_layer(), {}, {}, p::StandIn{every_layer().layers, true}},
      {.record_trace = true});
  stack.begin_sequence(0);
  LinearHost::Step step;
  stack.decode(step);
  std::ostringstream os;
  skipllm::write_json(os, stack.statistics(), skipllm::describe(stack.layer().policies()), &stack.trace());
  std::string const json = os.str();
  BOOST_TEST(json.find("\"schema\": \"skipllm.stats/2\"") != std::string::npos);
  BOOST_TEST(json.find("\"stood_in_blocks\": 6") != std::string::npos);
  BOOST_TEST(json.find("\"stood_in\": 1") != std::string::npos);
  BOOST_TEST(json.find("\"decisions\": \"IIIIII\"") != std::string::npos);
  BOOST_TEST(skipllm::describe(stack.layer().policies()).find("standin=StandIn(layers=0,1,2,3,4,5, feeds=yes)") !=
             std::string::npos);
  // A StandIn without layers never stands in, and is described as no stand-in at all.
  BOOST_TEST(skipllm::describe(skipllm::policy::ConfigurablePolicies{}).find("standin") == std::string::npos);
}
