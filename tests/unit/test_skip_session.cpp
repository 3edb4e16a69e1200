#define BOOST_TEST_MODULE skipllm SkipSession
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include <skipllm/json.hpp>
#include <skipllm/policy/bundle.hpp>
#include <skipllm/skip_session.hpp>

namespace p = skipllm::policy;
using skipllm::FfnDecision;

namespace {

using Runtime = skipllm::Policies<p::Greedy, p::ColdLayers, p::Warmup, p::Cosine>;

// 6 layers, layer 0 and 5 cold, no warm-up: a score above 0.95 skips the next 2 layers.
Runtime policies() { return Runtime{{0.95f, 2, 1}, {1, 1}, {0, 0}, {}}; }

// One step the way a graph engine drives the session: layer by layer, every row, with row r
// measuring scores[r][l] wherever its FFN runs. Returns each row's decisions as letters.
std::vector<std::string> run_step(skipllm::SkipSession<Runtime>& session, std::vector<int> const& slots,
                                  std::vector<std::vector<float>> const& scores) {
  session.begin_step(slots);
  std::vector<std::string> letters(slots.size());
  for (int l = 0; l < session.num_layers(); ++l) {
    for (int r = 0; r < static_cast<int>(slots.size()); ++r) {
      FfnDecision const d = session.decide(l, r);
      if (skipllm::runs_ffn(d)) session.observe(l, r, scores[static_cast<std::size_t>(r)][static_cast<std::size_t>(l)]);
      letters[static_cast<std::size_t>(r)] += skipllm::decision_letter(d);
    }
  }
  session.end_step();
  return letters;
}

}  // namespace

BOOST_AUTO_TEST_CASE(rows_follow_their_own_scores_and_states) {
  skipllm::SkipSession<Runtime> session(policies(), 6, {.max_sequences = 3, .record_trace = true});
  std::vector<float> const saturated{0.99f, 0.99f, 0.99f, 0.99f, 0.99f, 0.99f};
  std::vector<float> const moving{0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
  auto const letters = run_step(session, {2, 0}, {saturated, moving});
  BOOST_TEST(letters[0] == "CSSRRC");  // cold layer 0 saturates: 1 and 2 skip, one span per token
  BOOST_TEST(letters[1] == "CRRRRC");
  BOOST_TEST(session.state(2).decode_index == 1);
  BOOST_TEST(session.state(0).decode_index == 1);
  BOOST_TEST(session.state(1).decode_index == 0);  // not in the step

  BOOST_TEST(session.statistics().tokens() == 2u);
  BOOST_TEST(session.statistics().skipped_blocks() == 2u);
  auto const& trace = session.trace();
  BOOST_REQUIRE(trace.size() == 2u);
  BOOST_TEST(trace.token(0).slot == 2);
  BOOST_TEST(trace.token(1).slot == 0);
  BOOST_TEST(trace.scores(0)[0] == 0.99f);
  BOOST_TEST(std::isnan(trace.scores(0)[1]));  // skipped: no score
}

BOOST_AUTO_TEST_CASE(begin_sequence_restarts_the_decode_index) {
  skipllm::SkipSession<Runtime> session(Runtime{{0.95f, 2, 1}, {1, 1}, {1, 0}, {}}, 6);
  std::vector<float> const saturated(6, 0.99f);
  BOOST_TEST(run_step(session, {0}, {saturated})[0] == "DDDDDD");  // warm-up token
  BOOST_TEST(run_step(session, {0}, {saturated})[0] == "CSSRRC");
  session.begin_sequence(0);
  BOOST_TEST(run_step(session, {0}, {saturated})[0] == "DDDDDD");
  BOOST_TEST(session.statistics().dense_tokens() == 2u);
}

BOOST_AUTO_TEST_CASE(bad_steps_fail_before_any_state_changes) {
  skipllm::SkipSession<Runtime> session(policies(), 6, {.max_sequences = 2});
  std::vector<int> const twice{1, 1};
  BOOST_CHECK_THROW(session.begin_step(twice), std::invalid_argument);
  std::vector<int> const outside{2};
  BOOST_CHECK_THROW(session.begin_step(outside), std::out_of_range);
  std::vector<int> const too_many{0, 1, 0};
  BOOST_CHECK_THROW(session.begin_step(too_many), std::invalid_argument);
  BOOST_TEST(session.state(1).decode_index == 0);
  BOOST_CHECK_THROW(skipllm::SkipSession<Runtime>(policies(), 0), std::invalid_argument);
  BOOST_CHECK_THROW(skipllm::SkipSession<Runtime>(policies(), 6, {.max_sequences = 0}), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(a_score_that_does_not_feed_is_reported_but_not_observed) {
  skipllm::SkipSession<Runtime> session(policies(), 6, {.record_trace = true});
  std::vector<int> const slot{0};
  session.begin_step(slot);
  session.decide(0, 0);
  session.observe(0, 0, 0.2f);
  session.decide(1, 0);
  session.observe(1, 0, 0.99f, false);  // e.g. a stand-in's score
  BOOST_TEST(static_cast<int>(session.decide(2, 0)) == static_cast<int>(FfnDecision::kRun));
  for (int l = 3; l < 6; ++l) session.decide(l, 0);
  session.end_step();
  BOOST_TEST(session.trace().scores(0)[1] == 0.99f);
}
