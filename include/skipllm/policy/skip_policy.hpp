//! @file
//! SkipPolicy policies: which eligible FFN blocks of a token are skipped.
//!
//! *What it decides.* `should_skip(state, context)` for a layer that is neither cold nor in a
//! dense token; the library has already ruled those out (decision.hpp). `state` carries the
//! previous layer's score (`prev_similarity`, NaN when that FFN did not run) and the span
//! bookkeeping. An optional `begin_token(state)` arms the policy for a new token.
//!
//! *When to use which.*
//!  - `FixedGreedy<tau, k>` / `Greedy{tau, k}`: the authors' rule. The first time the
//!    previous layer's score exceeds tau (strictly), skip the next k FFNs without re-checking;
//!    a cold layer cuts the span short; then the token's budget is spent. Two variants the
//!    paper leaves open come from the same two knobs: `span = kToColdRegion` skips everything up
//!    to the next cold layer, and `spans_per_token > 1` re-checks after each span (the layer
//!    after a span runs, is measured, and may start another span).
//!  - `Dense`: never skip (the baseline; also what warm-up tokens do).
//!  - `StaticMask`: skip a fixed set of layers in every eligible token (ablations).
//!  - `ReplayTrace`: skip exactly what a recorded trace says (replaying the CPU backend's
//!    decisions on another backend, or A/B comparisons on identical decisions).
//!  - `AnySkip` (any_skip.hpp): one of the runtime policies (`Greedy`, `LayerThresholds`,
//!    `RandomWindow`, `StaticMask`, `Dense`), chosen at run time, e.g. from a config file.
//!
//! *What it costs.* A compare and two counter updates per layer.
#pragma once

#include "../config.hpp"
#include "../layer_mask.hpp"
#include "../skip_state.hpp"

namespace skipllm::policy {

//! A span long enough to reach the next cold layer (or the last layer) whatever the depth.
inline constexpr int kToColdRegion = 1 << 30;

namespace detail {

SKIPLLM_HOST_DEVICE constexpr void greedy_begin_token(SkipState& s, int spans_per_token) noexcept {
  s.spans_left = spans_per_token;
}

//! The authors' greedy rule; `span >= 1`. A span in progress continues without re-checking.
SKIPLLM_HOST_DEVICE constexpr bool greedy_should_skip(SkipState& s, float tau, int span) noexcept {
  if (s.span_left > 0) {
    --s.span_left;
    return true;
  }
  // NaN (no measurement, undefined score) compares false: it never starts a span.
  if (s.spans_left > 0 && s.prev_similarity > tau) {
    --s.spans_left;
    s.span_left = span - 1;
    return true;
  }
  return false;
}

}  // namespace detail

//! The greedy rule with tau, span and spans per token fixed at compile time.
template <float Tau, int Span, int SpansPerToken = 1>
struct FixedGreedy {
  static_assert(Span >= 1, "skipllm: FixedGreedy span must be at least 1");
  static_assert(SpansPerToken >= 0, "skipllm: FixedGreedy spans per token must be >= 0");
  static constexpr float tau = Tau;
  static constexpr int span = Span;
  static constexpr int spans_per_token = SpansPerToken;

  SKIPLLM_HOST_DEVICE constexpr void begin_token(SkipState& s) const noexcept {
    detail::greedy_begin_token(s, SpansPerToken);
  }
  SKIPLLM_HOST_DEVICE constexpr bool should_skip(SkipState& s, LayerContext) const noexcept {
    return detail::greedy_should_skip(s, Tau, Span);
  }
};

//! The greedy rule with every knob chosen at runtime (a threshold sweep needs no rebuild).
struct Greedy {
  float tau = 0.95f;
  int span = 8;
  int spans_per_token = 1;

  SKIPLLM_HOST_DEVICE constexpr void begin_token(SkipState& s) const noexcept {
    detail::greedy_begin_token(s, spans_per_token);
  }
  SKIPLLM_HOST_DEVICE constexpr bool should_skip(SkipState& s, LayerContext) const noexcept {
    return detail::greedy_should_skip(s, tau, span);
  }
};

//! Never skips.
struct Dense {
  SKIPLLM_HOST_DEVICE constexpr bool should_skip(SkipState&, LayerContext) const noexcept { return false; }
};

//! Skips the same eligible layers in every token.
struct StaticMask {
  LayerMask layers{};

  SKIPLLM_HOST_DEVICE constexpr bool should_skip(SkipState&, LayerContext c) const noexcept {
    return layers.contains(c.layer);
  }
};

//! Replays recorded decisions, laid out `[slot][decode_index][layer]` (row-major). Tokens,
//! slots or layers outside the recording run their FFN. The buffer is not owned; on a GPU it
//! must be device memory.
struct ReplayTrace {
  FfnDecision const* decisions = nullptr;
  int num_slots = 0;
  int num_tokens = 0;
  int num_layers = 0;

  SKIPLLM_HOST_DEVICE constexpr bool should_skip(SkipState&, LayerContext c) const noexcept {
    if (c.slot < 0 || c.slot >= num_slots || c.decode_index < 0 || c.decode_index >= num_tokens || c.layer < 0 ||
        c.layer >= num_layers) {
      return false;
    }
    long const index = (static_cast<long>(c.slot) * num_tokens + c.decode_index) * num_layers + c.layer;
    return decisions[index] == FfnDecision::kSkip;
  }
};

}  // namespace skipllm::policy
