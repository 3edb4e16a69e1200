//! @file
//! SkipSession: the decision protocol's bookkeeping for one engine, without a Host.
//!
//! It keeps one SkipState per sequence slot, the current decode step's decisions and scores
//! ([layers, rows], layer-major), the statistics and (optionally) the decision trace. The
//! CPU DecoderStack drives its Host through it; an engine that cannot be a Host (a graph
//! engine such as llama.cpp, whose decode step is one precomputed graph) calls it from
//! inside its graph instead:
//!
//!     skipllm::SkipSession session(policies, num_layers, {.max_sequences = 8});
//!     session.begin_sequence(slot);                  // a new request in `slot`
//!     session.begin_step(slots);                     // row r of the step belongs to slots[r]
//!     for each layer l, row r:
//!       if (runs_ffn(session.decide(l, r))) { ...FFN, residual add + score s...;
//!                                             session.observe(l, r, s); }
//!     session.end_step();                            // statistics, trace, next token
//!
//! decide() for a layer must follow observe() of the layer before it (the decision reads its
//! score); rows are independent, so an engine may decide one layer of every row at once.
//! Nothing is allocated per step: the buffers are sized by StackOptions at construction.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "concepts.hpp"
#include "decision.hpp"
#include "stack_options.hpp"
#include "statistics.hpp"
#include "trace.hpp"

namespace skipllm {

template <class Bundle>
class SkipSession {
 public:
  using policies_type = Bundle;

  SkipSession(Bundle const& policies, int num_layers, StackOptions options = {})
      : policies_(policies),
        num_layers_(checked_positive(num_layers, "num_layers")),
        states_(static_cast<std::size_t>(checked_positive(options.max_sequences, "max_sequences"))),
        slot_stamp_(states_.size(), 0),
        step_slots_(static_cast<std::size_t>(options.rows_per_step())),
        step_decisions_(step_slots_.size() * static_cast<std::size_t>(num_layers_)),
        step_scores_(step_decisions_.size()),
        token_decisions_(static_cast<std::size_t>(num_layers_)),
        token_scores_(static_cast<std::size_t>(num_layers_)),
        statistics_(num_layers_, warmup_tokens_of(policies.warmup)),
        trace_(num_layers_),
        record_trace_(options.record_trace) {}

  //! Starts a new sequence in `slot`: its next decode step is its decode index 0.
  void begin_sequence(int slot) { skipllm::begin_sequence(states_[checked_slot(slot)]); }

  //! Starts a decode step of `slots.size()` rows, row r for the sequence in `slots[r]`: checks
  //! the rows (capacity, slot range, no slot twice) and arms each sequence for its next token.
  void begin_step(std::span<int const> slots) {
    check_slots(slots);
    rows_ = slots.size();
    std::copy(slots.begin(), slots.end(), step_slots_.begin());
    for (int const slot : slots) skipllm::begin_token(policies_, states_[static_cast<std::size_t>(slot)]);
  }

  //! Whether layer `layer`'s FFN runs for row `row` of the step, recorded for the statistics.
  //! The row's score is NaN until observe() sets it.
  FfnDecision decide(int layer, int row) {
    std::size_t const at = index(layer, row);
    int const slot = step_slots_[static_cast<std::size_t>(row)];
    step_scores_[at] = detail::quiet_nan();
    step_decisions_[at] = skipllm::decide(policies_, states_[static_cast<std::size_t>(slot)], layer, num_layers_, slot);
    return step_decisions_[at];
  }

  //! The score of the FFN that ran for (layer, row); `feeds_decision`: it is the score the
  //! row's next decision reads (false for a stand-in that only reports its score).
  void observe(int layer, int row, float score, bool feeds_decision = true) {
    step_scores_[index(layer, row)] = score;
    if (feeds_decision)
      skipllm::observe(states_[static_cast<std::size_t>(step_slots_[static_cast<std::size_t>(row)])], score);
  }

  //! Closes the step: each row's token goes into the statistics (and the trace) and its
  //! sequence moves to its next decode index.
  void end_step() {
    for (std::size_t r = 0; r < rows_; ++r) finish_token(r);
    rows_ = 0;
  }

  //! Counts `tokens` prompt tokens run densely (prefill).
  void record_prefill(std::uint64_t tokens) { statistics_.record_prefill(tokens); }

  // For an engine that decides a whole layer of rows at once (DecoderLayer::decode): the step's
  // per-slot states, and layer `layer`'s decisions and scores, one per row of the step.
  std::span<SkipState> states() noexcept { return states_; }
  std::span<FfnDecision> decisions(int layer) noexcept {
    return std::span(step_decisions_).subspan(first(layer), rows_);
  }
  std::span<float> scores(int layer) noexcept { return std::span(step_scores_).subspan(first(layer), rows_); }

  Bundle const& policies() const noexcept { return policies_; }
  int num_layers() const noexcept { return num_layers_; }
  int max_rows() const noexcept { return static_cast<int>(step_slots_.size()); }
  int max_sequences() const noexcept { return static_cast<int>(states_.size()); }
  SkipState const& state(int slot) const { return states_[checked_slot(slot)]; }
  SkipStatistics const& statistics() const noexcept { return statistics_; }
  DecisionTrace const& trace() const noexcept { return trace_; }
  DecisionTrace& trace() noexcept { return trace_; }
  void record_trace(bool on) noexcept { record_trace_ = on; }
  void reset_statistics() noexcept {
    statistics_.reset();
    trace_.clear();
  }

 private:
  static int checked_positive(int value, char const* what) {
    if (value <= 0) {
      throw std::invalid_argument(std::string("skipllm: ") + what + " must be positive, got " + std::to_string(value));
    }
    return value;
  }

  std::size_t checked_slot(int slot) const { return detail::checked_slot(slot, static_cast<int>(states_.size())); }
  std::size_t first(int layer) const noexcept { return static_cast<std::size_t>(layer) * rows_; }
  std::size_t index(int layer, int row) const noexcept { return first(layer) + static_cast<std::size_t>(row); }

  // Bad batches fail here, before the engine runs anything.
  void check_slots(std::span<int const> slots) {
    if (slots.size() > step_slots_.size()) {
      throw std::invalid_argument("skipllm: decode step has " + std::to_string(slots.size()) +
                                  " rows; the stack was built for at most " + std::to_string(step_slots_.size()));
    }
    ++stamp_;
    for (int const slot : slots) {
      std::size_t const s = checked_slot(slot);
      if (slot_stamp_[s] == stamp_) {
        throw std::invalid_argument("skipllm: slot " + std::to_string(slot) + " appears twice in one decode step");
      }
      slot_stamp_[s] = stamp_;
    }
  }

  // Gathers row `row` of the layer-major step buffers into one token's [layers] record.
  void finish_token(std::size_t row) {
    for (std::size_t l = 0; l < token_decisions_.size(); ++l) {
      token_decisions_[l] = step_decisions_[l * rows_ + row];
      token_scores_[l] = step_scores_[l * rows_ + row];
    }
    int const slot = step_slots_[row];
    SkipState& state = states_[static_cast<std::size_t>(slot)];
    statistics_.record_token(state.decode_index, token_decisions_);
    if (record_trace_) trace_.append({slot, state.decode_index}, token_decisions_, token_scores_);
    skipllm::end_token(state);
  }

  Bundle policies_;
  int num_layers_;
  std::vector<SkipState> states_;          // [max_sequences]
  std::vector<std::uint64_t> slot_stamp_;  // duplicate-slot check without clearing
  std::uint64_t stamp_ = 0;
  std::vector<int> step_slots_;               // [max_rows]: the slot of each row of the step
  std::size_t rows_ = 0;                      // rows of the step in progress
  std::vector<FfnDecision> step_decisions_;   // [num_layers, rows of the step]
  std::vector<float> step_scores_;            // [num_layers, rows of the step]
  std::vector<FfnDecision> token_decisions_;  // [num_layers]
  std::vector<float> token_scores_;           // [num_layers]
  SkipStatistics statistics_;
  DecisionTrace trace_;
  bool record_trace_;
};

}  // namespace skipllm
