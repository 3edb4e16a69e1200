//! @file
//! The decision protocol: the one piece of logic every backend runs per sequence and layer.
//!
//!     begin_token(policies, state);                       // before layer 0 of a decode step
//!     for each layer l:
//!       d = decide(policies, state, l, num_layers, slot); // before the FFN
//!       if (runs_ffn(d)) { ...FFN + residual add...; observe(state, score); }
//!     end_token(state);                                   // after the last layer
//!
//! The CPU backend calls these on the host, the CUDA backend inside its kernels; the code is
//! the same, which is what makes decisions comparable across backends.
#pragma once

#include "concepts.hpp"
#include "numeric.hpp"
#include "skip_state.hpp"

namespace skipllm {

//! A new sequence: its next decoded token is decode index 0.
SKIPLLM_HOST_DEVICE constexpr void begin_sequence(SkipState& s) noexcept { s = SkipState{}; }

//! Arms the state for the sequence's next token.
template <class Bundle>
SKIPLLM_HOST_DEVICE constexpr void begin_token(Bundle const& p, SkipState& s) noexcept {
  s.dense_token = p.warmup.is_dense(s.decode_index);
  s.span_left = 0;
  s.spans_left = 0;
  s.prev_similarity = detail::quiet_nan();
  if constexpr (requires { p.skip.begin_token(s); }) p.skip.begin_token(s);
}

//! Whether layer `layer`'s FFN runs for this token, and why. Warm-up outranks the cold
//! region, which outranks the skip policy; a cold layer also ends a span in progress.
template <class Bundle>
SKIPLLM_HOST_DEVICE constexpr FfnDecision decide(Bundle const& p, SkipState& s, int layer, int num_layers,
                                                 int slot) noexcept {
  if (s.dense_token) return FfnDecision::kRunDense;
  if (p.cold.is_cold(layer, num_layers)) {
    s.span_left = 0;
    return FfnDecision::kRunCold;
  }
  if (p.skip.should_skip(s, LayerContext{layer, num_layers, s.decode_index, slot})) {
    // Nothing was measured: the next layer must not trigger on a stale score.
    s.prev_similarity = detail::quiet_nan();
    return FfnDecision::kSkip;
  }
  return FfnDecision::kRun;
}

//! Records the score of the FFN that just ran.
SKIPLLM_HOST_DEVICE constexpr void observe(SkipState& s, float similarity) noexcept { s.prev_similarity = similarity; }

//! Closes the token.
SKIPLLM_HOST_DEVICE constexpr void end_token(SkipState& s) noexcept { ++s.decode_index; }

}  // namespace skipllm
