#define BOOST_TEST_MODULE skipllm DecoderLayer and DecoderStack
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include <skipllm/decoder_stack.hpp>
#include <skipllm/json.hpp>

#include "scripted_host.hpp"

// Counts every allocation in this test program, to check the decode loop makes none.
// (These replacements pair malloc with free; g++ cannot see that through the inlined std
// containers and warns wrongly at -O3.)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
long g_allocations = 0;
void* operator new(std::size_t n) {
  ++g_allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace p = skipllm::policy;
using Host = ScriptedHost<float>;
using Runtime = p::RuntimePolicies;

namespace {

constexpr float kLow = 0.90f;
constexpr float kHigh = 0.99f;

std::string letters(std::span<skipllm::FfnDecision const> d) {
  std::string s;
  for (auto x : d) s += skipllm::decision_letter(x);
  return s;
}

// Decodes one token for each slot in `slots` (one row each), with the rows' decode indices
// taken from the stack so the host's script can key on them.
template <class Stack>
void decode_rows(Stack& stack, std::vector<int> const& slots) {
  std::vector<int> indices;
  for (int s : slots) indices.push_back(stack.state(s).decode_index);
  typename Host::Step step(slots, indices);
  stack.decode(step, slots);
}

}  // namespace

BOOST_AUTO_TEST_CASE(single_sequence_follows_the_scripted_pattern) {
  // Similarity turns high from layer 3 + t % 3 for token t.
  Host host(10, [](int, int t, int layer) { return layer >= 3 + t % 3 ? kHigh : kLow; });
  skipllm::DecoderStack<Host, p::Greedy, p::ColdLayers, p::Warmup, p::Cosine> stack(
      host, {p::Greedy{0.95f, 3, 1}, p::ColdLayers{2, 2}, p::Warmup{2, 0}}, {.record_trace = true});
  stack.begin_sequence(0);
  for (int t = 0; t < 5; ++t) decode_rows(stack, {0});

  std::vector<std::string> const expected = {"DDDDDDDDDD", "DDDDDDDDDD", "CCRRRRSSCC", "CCRRSSSRCC", "CCRRRSSSCC"};
  auto const& trace = stack.trace();
  BOOST_TEST_REQUIRE(trace.size() == 5u);
  for (std::size_t t = 0; t < 5; ++t) {
    BOOST_TEST(letters(trace.decisions(t)) == expected[t], "token " << t);
    BOOST_TEST(trace.token(t).decode_index == static_cast<int>(t));
  }

  // Attention ran in every layer of every token: the KV cache is complete.
  for (int calls : host.attention_calls) BOOST_TEST(calls == 5);
  // The FFN ran exactly where the pattern says R, C or D.
  for (int l = 0; l < 10; ++l) {
    int runs = 0;
    for (auto const& e : expected) runs += e[static_cast<std::size_t>(l)] != 'S';
    BOOST_TEST(host.ffn_calls[static_cast<std::size_t>(l)] == runs, "layer " << l);
  }
  // A skipped layer passed x = h on: the next attention saw no FFN contribution.
  std::size_t call = 0;
  for (auto const& e : expected) {
    for (std::size_t l = 1; l < 10; ++l) BOOST_TEST(host.ffn_applied[call + l][0] == (e[l - 1] != 'S'));
    call += 10;
  }
  // Scores: measured where the FFN ran, NaN where it was skipped.
  auto const scores = trace.scores(3);
  BOOST_TEST(scores[1] == kLow, boost::test_tools::tolerance(1e-6f));
  BOOST_TEST(scores[3] == kHigh, boost::test_tools::tolerance(1e-6f));
  BOOST_TEST(std::isnan(scores[4]));

  auto const& st = stack.statistics();
  BOOST_TEST(st.tokens() == 5u);
  BOOST_TEST(st.dense_tokens() == 2u);
  BOOST_TEST(st.skipped_blocks() == 8u);
  BOOST_TEST(st.ffn_blocks() == 50u);
  BOOST_TEST(st.eligible_blocks() == 18u);
  BOOST_TEST(st.skip_ratio() == 8.0 / 50.0);
  BOOST_TEST(st.skip_ratio_eligible() == 8.0 / 18.0);
  BOOST_TEST(st.skip_ratio_after_warmup() == 8.0 / 30.0);
  BOOST_TEST(st.layers()[6].skipped == 3u);
  BOOST_TEST(st.layers()[0].ran_cold == 3u);
  BOOST_TEST(st.layers()[0].ran_dense == 2u);
}

BOOST_AUTO_TEST_CASE(batched_rows_at_different_positions_get_their_own_decisions) {
  // slot 0 saturates from layer 0, slot 1 never, slot 2 from layer 2.
  Host host(6, [](int slot, int, int layer) {
    if (slot == 0) return kHigh;
    if (slot == 2) return layer >= 2 ? kHigh : kLow;
    return kLow;
  });
  skipllm::DecoderStack<Host, Runtime> stack(host,
                                             Runtime{p::Greedy{0.95f, 2, 1}, p::ColdLayers{1, 1}, p::Warmup{1, 0}},
                                             {.max_sequences = 4, .record_trace = true});
  stack.begin_sequence(0);
  stack.begin_sequence(1);
  decode_rows(stack, {0, 1});  // both in warm-up
  stack.begin_sequence(2);     // joins one token later
  host.ffn_rows.clear();
  host.ffn_rows_layer.clear();
  decode_rows(stack, {2, 0, 1});  // rows in any order

  auto const& trace = stack.trace();
  BOOST_TEST_REQUIRE(trace.size() == 5u);
  BOOST_TEST(letters(trace.decisions(0)) == "DDDDDD");
  BOOST_TEST(letters(trace.decisions(1)) == "DDDDDD");
  BOOST_TEST(letters(trace.decisions(2)) == "DDDDDD");  // slot 2 is at decode index 0: warm-up
  BOOST_TEST(trace.token(2).slot == 2);
  BOOST_TEST(letters(trace.decisions(3)) == "CSSRRC");  // slot 0, decode index 1
  BOOST_TEST(trace.token(3).decode_index == 1);
  BOOST_TEST(letters(trace.decisions(4)) == "CRRRRC");  // slot 1
  // Layers 1 and 2 ran the FFN only for rows 0 (slot 2) and 2 (slot 1).
  BOOST_TEST_REQUIRE(host.ffn_rows.size() == 6u);
  BOOST_TEST(host.ffn_rows[1] == (std::vector<int>{0, 2}), boost::test_tools::per_element());
  BOOST_TEST(host.ffn_rows[2] == (std::vector<int>{0, 2}), boost::test_tools::per_element());
  BOOST_TEST(host.ffn_rows[0] == (std::vector<int>{0, 1, 2}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(ffn_is_not_called_when_every_row_skips) {
  Host host(6, [](int, int, int) { return kHigh; });
  skipllm::DecoderStack<Host, Runtime> stack(
      host, Runtime{p::Greedy{0.95f, 2, 1}, p::ColdLayers{1, 1}, p::Warmup{0, 0}}, {.max_sequences = 3});
  for (int s = 0; s < 3; ++s) stack.begin_sequence(s);
  decode_rows(stack, {0, 1, 2});
  BOOST_TEST(host.ffn_calls[1] == 0);
  BOOST_TEST(host.ffn_calls[2] == 0);
  BOOST_TEST(host.ffn_calls[3] == 1);
  BOOST_TEST(host.attention_calls[1] == 1);
  BOOST_TEST(stack.statistics().skipped_blocks() == 6u);
}

BOOST_AUTO_TEST_CASE(prefill_is_dense_and_not_counted_as_decode) {
  Host host(4, [](int, int, int) { return kHigh; });
  skipllm::DecoderStack<Host, Runtime> stack(host,
                                             Runtime{p::Greedy{0.5f, 4, 1}, p::ColdLayers{0, 0}, p::Warmup{0, 0}});
  stack.begin_sequence(0);
  Host::Step prompt(std::vector<int>(7, 0));  // 7 prompt tokens of slot 0
  stack.prefill(prompt);
  for (int l = 0; l < 4; ++l) BOOST_TEST(host.ffn_calls[static_cast<std::size_t>(l)] == 1);
  BOOST_TEST(host.ffn_rows.front().size() == 7u);
  BOOST_TEST(prompt.x[1] != 0.0f);  // the FFN output was added
  BOOST_TEST(stack.statistics().prefill_tokens() == 7u);
  BOOST_TEST(stack.statistics().tokens() == 0u);
  BOOST_TEST(stack.state(0).decode_index == 0);
}

BOOST_AUTO_TEST_CASE(replaying_a_trace_reproduces_the_decisions) {
  auto script = [](int slot, int t, int layer) { return ((slot * 7 + t * 3 + layer * 5) % 11) > 6 ? kHigh : kLow; };
  using Cold = p::ColdLayers;
  using Warm = p::Warmup;
  Host recorded_host(12, script);
  skipllm::DecoderStack<Host, p::Greedy, Cold, Warm, p::Cosine> recorder(
      recorded_host, {p::Greedy{0.95f, 3, 2}, Cold{2, 2}, Warm{2, 3}}, {.max_sequences = 2, .record_trace = true});
  recorder.begin_sequence(0);
  recorder.begin_sequence(1);
  for (int t = 0; t < 12; ++t) decode_rows(recorder, {0, 1});
  BOOST_TEST(recorder.statistics().skipped_blocks() > 0u);

  auto const buffer = recorder.trace().replay_buffer(2, 12);
  Host replay_host(12, script);
  skipllm::DecoderStack<Host, p::ReplayTrace, Cold, Warm, p::Cosine> replayer(
      replay_host, {p::ReplayTrace{buffer.data(), 2, 12, 12}, Cold{2, 2}, Warm{2, 3}},
      {.max_sequences = 2, .record_trace = true});
  replayer.begin_sequence(0);
  replayer.begin_sequence(1);
  for (int t = 0; t < 12; ++t) decode_rows(replayer, {0, 1});
  BOOST_TEST_REQUIRE(replayer.trace().size() == recorder.trace().size());
  for (std::size_t i = 0; i < recorder.trace().size(); ++i) {
    BOOST_TEST(letters(replayer.trace().decisions(i)) == letters(recorder.trace().decisions(i)));
  }
  BOOST_TEST(replay_host.ffn_calls == recorded_host.ffn_calls, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(paper_defaults_work_out_of_the_box) {
  Host host(30, [](int, int, int layer) { return layer >= 4 ? kHigh : kLow; });
  skipllm::DecoderStack<Host> stack(host);
  stack.begin_sequence(0);
  for (int t = 0; t < 17; ++t) decode_rows(stack, {0});
  BOOST_TEST(stack.statistics().skipped_blocks() == 8u);  // token 16 skips layers 5..12
  BOOST_TEST(stack.statistics().dense_tokens() == 16u);
}

BOOST_AUTO_TEST_CASE(half_precision_host) {
  using HalfHost = ScriptedHost<skipllm::half_t>;
  HalfHost host(6, [](int, int, int layer) { return layer >= 1 ? kHigh : kLow; });
  skipllm::DecoderStack<HalfHost, Runtime> stack(
      host, Runtime{p::Greedy{0.95f, 2, 1}, p::ColdLayers{1, 1}, p::Warmup{0, 0}}, {.record_trace = true});
  stack.begin_sequence(0);
  HalfHost::Step step({0});
  stack.decode(step);
  BOOST_TEST(letters(stack.trace().decisions(0)) == "CRSSRC");
  BOOST_TEST(stack.trace().scores(0)[1] == kHigh, boost::test_tools::tolerance(2e-3f));
}

BOOST_AUTO_TEST_CASE(bad_batches_are_rejected_before_the_host_runs) {
  Host host(4, [](int, int, int) { return kLow; });
  skipllm::DecoderStack<Host, Runtime> stack(host, Runtime{}, {.max_sequences = 2});
  Host::Step dup({1, 1});
  BOOST_CHECK_THROW(stack.decode(dup, std::vector<int>{1, 1}), std::invalid_argument);
  Host::Step out_of_range({2});
  BOOST_CHECK_THROW(stack.decode(out_of_range, std::vector<int>{2}), std::out_of_range);
  Host::Step too_many({0, 1, 0});
  BOOST_CHECK_THROW(stack.decode(too_many, std::vector<int>{0, 1, 0}), std::invalid_argument);
  Host::Step mismatch({0, 1});
  BOOST_CHECK_THROW(stack.decode(mismatch, std::vector<int>{0}), std::invalid_argument);
  BOOST_CHECK_THROW(stack.begin_sequence(-1), std::out_of_range);
  for (int calls : host.attention_calls) BOOST_TEST(calls == 0);
  BOOST_CHECK_THROW((skipllm::DecoderStack<Host, Runtime>(host, Runtime{}, {.max_sequences = 0})),
                    std::invalid_argument);
  Host empty(0, [](int, int, int) { return kLow; });
  BOOST_CHECK_THROW((skipllm::DecoderStack<Host, Runtime>(empty)), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(decode_does_not_allocate_per_token) {
  Host host(8, [](int, int, int) { return kHigh; });
  skipllm::DecoderStack<Host, Runtime> stack(host, Runtime{}, {.max_sequences = 2});
  stack.begin_sequence(0);
  stack.begin_sequence(1);
  std::vector<int> const slots{1, 0};
  Host::Step step(slots);
  host.log_rows = false;
  stack.decode(step, slots);
  long const before = g_allocations;
  for (int t = 0; t < 20; ++t) stack.decode(step, slots);
  long const during = g_allocations - before;
  BOOST_TEST(during == 0);
  BOOST_TEST(stack.state(0).decode_index == 21);
}
