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
//! The bookkeeping (states, decisions, statistics, trace) is a SkipSession, which engines that
//! cannot be a Host use directly. Nothing is allocated per token: per-step buffers are sized
//! by `max_rows` at construction (the trace, when enabled, grows by amortised doubling unless
//! reserved).
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>

#include "decoder_layer.hpp"
#include "skip_session.hpp"
#include "stack_options.hpp"

namespace skipllm {

template <class Host, class... P>
class DecoderStack {
 public:
  using layer_type = DecoderLayer<Host, P...>;
  using policies_type = typename layer_type::policies_type;
  using step_type = typename layer_type::step_type;

  DecoderStack(Host& host, policies_type const& policies = {}, StackOptions options = {})
      : layer_(host, policies, options.rows_per_step()), session_(policies, num_layers_of(host), options) {}

  //! Starts a new sequence in `slot`: its next decode step is its decode index 0.
  void begin_sequence(int slot) { session_.begin_sequence(slot); }

  //! Dense forward of every layer over all rows of `step` (the prompt, or a chunk of it).
  void prefill(step_type& step) {
    if constexpr (layer_type::valid) {
      for (int l = 0; l < num_layers(); ++l) layer_.prefill(l, step);
      session_.record_prefill(static_cast<std::uint64_t>(layer_.host().residual(step).rows));
    }
  }

  //! One decode token for each row of `step`; row r belongs to the sequence in `slots[r]`.
  void decode(step_type& step, std::span<int const> slots) {
    if constexpr (layer_type::valid) {
      check_rows(step, slots);
      session_.begin_step(slots);
      for (int l = 0; l < num_layers(); ++l) {
        layer_.decode(l, step, slots, session_.states(), session_.decisions(l), session_.scores(l));
      }
      session_.end_step();
    }
  }

  //! Single-sequence convenience: one row, slot 0.
  void decode(step_type& step) {
    int const slot = 0;
    decode(step, std::span<int const>(&slot, 1));
  }

  SkipState const& state(int slot) const { return session_.state(slot); }
  SkipStatistics const& statistics() const noexcept { return session_.statistics(); }
  DecisionTrace const& trace() const noexcept { return session_.trace(); }
  DecisionTrace& trace() noexcept { return session_.trace(); }
  void record_trace(bool on) noexcept { session_.record_trace(on); }
  void reset_statistics() noexcept { session_.reset_statistics(); }
  layer_type& layer() noexcept { return layer_; }
  int num_layers() const noexcept { return session_.num_layers(); }

 private:
  static int num_layers_of(Host& host) {
    if constexpr (layer_type::valid) {
      return static_cast<int>(host.num_layers());
    } else {
      return 1;
    }
  }

  // The row count must match the host's residual; the session checks the slots themselves.
  void check_rows(step_type& step, std::span<int const> slots) {
    if (slots.size() > static_cast<std::size_t>(session_.max_rows())) return;  // begin_step reports it
    auto const rows = layer_.host().residual(step).rows;
    if (rows != static_cast<std::int64_t>(slots.size())) {
      throw std::invalid_argument("skipllm: decode step has " + std::to_string(rows) + " residual rows but " +
                                  std::to_string(slots.size()) + " slots");
    }
  }

  layer_type layer_;
  SkipSession<policies_type> session_;
};

}  // namespace skipllm
