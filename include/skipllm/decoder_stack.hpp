//! @file
//! DecoderStack: the sequence-level driver. Runs every layer of the host for one token of
//! each active sequence, keeps one SkipState per sequence slot, and collects the statistics
//! and (optionally) the decision trace.
//!
//!     skipllm::DecoderStack<MyEngine> stack(engine, {}, {.max_sequences = 4});
//!     stack.begin_sequence(slot);          // a new request in `slot`
//!     stack.prefill(prompt_step);          // dense, every layer
//!     stack.decode(step, slots);           // one token per row; row r belongs to slots[r]
//!     stack.statistics().skip_ratio();
//!
//! Nothing is allocated per token: per-step buffers are sized by `max_rows` at construction
//! (the trace, when enabled, grows by amortised doubling unless reserved).
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "decoder_layer.hpp"
#include "stack_options.hpp"
#include "statistics.hpp"
#include "trace.hpp"

namespace skipllm {

template <class Host, class... P>
class DecoderStack {
 public:
  using layer_type = DecoderLayer<Host, P...>;
  using policies_type = typename layer_type::policies_type;
  using step_type = typename layer_type::step_type;

  DecoderStack(Host& host, policies_type const& policies = {}, StackOptions options = {})
      : layer_(host, policies, options.rows_per_step()),
        num_layers_(num_layers_of(host)),
        states_(static_cast<std::size_t>(checked_positive(options.max_sequences, "max_sequences"))),
        slot_stamp_(states_.size(), 0),
        step_decisions_(static_cast<std::size_t>(options.rows_per_step() * num_layers_)),
        step_scores_(step_decisions_.size()),
        token_decisions_(static_cast<std::size_t>(num_layers_)),
        token_scores_(static_cast<std::size_t>(num_layers_)),
        statistics_(num_layers_, warmup_tokens_of(policies.warmup)),
        trace_(num_layers_),
        record_trace_(options.record_trace) {}

  //! Starts a new sequence in `slot`: its next decode step is its decode index 0.
  void begin_sequence(int slot) { skipllm::begin_sequence(states_[checked_slot(slot)]); }

  //! Dense forward of every layer over all rows of `step` (the prompt, or a chunk of it).
  void prefill(step_type& step) {
    if constexpr (layer_type::valid) {
      for (int l = 0; l < num_layers_; ++l) layer_.prefill(l, step);
      statistics_.record_prefill(static_cast<std::uint64_t>(layer_.host().residual(step).rows));
    }
  }

  //! One decode token for each row of `step`; row r belongs to the sequence in `slots[r]`.
  void decode(step_type& step, std::span<int const> slots) {
    if constexpr (layer_type::valid) {
      check_rows(step, slots);
      std::size_t const rows = slots.size();
      for (int const slot : slots) skipllm::begin_token(layer_.policies(), states_[static_cast<std::size_t>(slot)]);
      for (int l = 0; l < num_layers_; ++l) {
        std::size_t const first = static_cast<std::size_t>(l) * rows;  // layer-major: [layers, rows]
        layer_.decode(l, step, slots, states_, std::span(step_decisions_).subspan(first, rows),
                      std::span(step_scores_).subspan(first, rows));
      }
      for (std::size_t r = 0; r < rows; ++r) finish_token(slots[r], r, rows);
    }
  }

  //! Single-sequence convenience: one row, slot 0.
  void decode(step_type& step) {
    int const slot = 0;
    decode(step, std::span<int const>(&slot, 1));
  }

  SkipState const& state(int slot) const { return states_[checked_slot(slot)]; }
  SkipStatistics const& statistics() const noexcept { return statistics_; }
  DecisionTrace const& trace() const noexcept { return trace_; }
  DecisionTrace& trace() noexcept { return trace_; }
  void record_trace(bool on) noexcept { record_trace_ = on; }
  void reset_statistics() noexcept {
    statistics_.reset();
    trace_.clear();
  }
  layer_type& layer() noexcept { return layer_; }
  int num_layers() const noexcept { return num_layers_; }

 private:
  static int num_layers_of(Host& host) {
    if constexpr (layer_type::valid) {
      return checked_positive(static_cast<int>(host.num_layers()), "num_layers");
    } else {
      return 1;
    }
  }

  static int checked_positive(int value, char const* what) {
    if (value <= 0) {
      throw std::invalid_argument(std::string("skipllm: ") + what + " must be positive, got " + std::to_string(value));
    }
    return value;
  }

  std::size_t checked_slot(int slot) const { return detail::checked_slot(slot, static_cast<int>(states_.size())); }

  // Bad batches fail here, before the host runs anything.
  void check_rows(step_type& step, std::span<int const> slots) {
    std::size_t const capacity = step_decisions_.size() / static_cast<std::size_t>(num_layers_);
    if (slots.size() > capacity) {
      throw std::invalid_argument("skipllm: decode step has " + std::to_string(slots.size()) +
                                  " rows; the stack was built for at most " + std::to_string(capacity));
    }
    auto const rows = layer_.host().residual(step).rows;
    if (rows != static_cast<std::int64_t>(slots.size())) {
      throw std::invalid_argument("skipllm: decode step has " + std::to_string(rows) + " residual rows but " +
                                  std::to_string(slots.size()) + " slots");
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
  void finish_token(int slot, std::size_t row, std::size_t rows) {
    for (std::size_t l = 0; l < token_decisions_.size(); ++l) {
      token_decisions_[l] = step_decisions_[l * rows + row];
      token_scores_[l] = step_scores_[l * rows + row];
    }
    SkipState& state = states_[static_cast<std::size_t>(slot)];
    statistics_.record_token(state.decode_index, token_decisions_);
    if (record_trace_) trace_.append({slot, state.decode_index}, token_decisions_, token_scores_);
    skipllm::end_token(state);
  }

  layer_type layer_;
  int num_layers_;
  std::vector<SkipState> states_;          // [max_sequences]
  std::vector<std::uint64_t> slot_stamp_;  // duplicate-slot check without clearing
  std::uint64_t stamp_ = 0;
  std::vector<FfnDecision> step_decisions_;   // [num_layers, rows of the step]
  std::vector<float> step_scores_;            // [num_layers, rows of the step]
  std::vector<FfnDecision> token_decisions_;  // [num_layers]
  std::vector<float> token_scores_;           // [num_layers]
  SkipStatistics statistics_;
  DecisionTrace trace_;
  bool record_trace_;
};

}  // namespace skipllm
