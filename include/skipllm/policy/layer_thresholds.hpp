//! @file
//! LayerThresholds: the authors' greedy rule with one threshold per layer.
//!
//! *What it decides.* Exactly what `Greedy` decides (skip the next `span` FFNs the first time
//! the previous layer's score is strictly above its threshold, `spans_per_token` times per
//! token), except that the threshold depends on the layer whose score is tested: the score of
//! layer `l - 1` is compared with `tau[l - 1]`. Scores have very different distributions from
//! layer to layer (on SmolLM2-135M the mean cosine is ~0.05 at layer 0, ~0.97 in the middle and
//! ~0.75 at the last layer), so one global tau either never fires or fires everywhere; a
//! calibration can instead put each layer's threshold at a quantile of its own scores.
//!
//! *When to use it.* Loaded from a calibration file (`skipllm calibrate --per-layer`). A
//! uniform array is `Greedy{tau, span, spans}`: `LayerThresholds::uniform(tau, span, spans)`
//! decides exactly like it. Layers without a threshold of their own default to +Inf (never
//! trigger).
//!
//! *What it costs.* One load from a fixed array (LayerMask::kMaxLayers floats, 1 KiB; the
//! struct is trivially copyable and fits in a kernel parameter) and the greedy bookkeeping.
#pragma once

#include "../config.hpp"
#include "../layer_mask.hpp"
#include "../numeric.hpp"
#include "../skip_state.hpp"
#include "skip_policy.hpp"

namespace skipllm::policy {

struct LayerThresholds {
  static constexpr int kMaxLayers = LayerMask::kMaxLayers;

  //! A threshold no score exceeds (+Inf): the layer never starts a span.
  static constexpr float kNever = skipllm::detail::infinity();

  //! tau[l]: threshold applied to layer l's score (it decides about layer l + 1).
  float tau[kMaxLayers] = {};
  int span = 8;
  int spans_per_token = 1;

  //! Every layer at `t`: decides exactly like `Greedy{t, span, spans}`.
  static constexpr LayerThresholds uniform(float t, int span_, int spans = 1) noexcept {
    LayerThresholds p;
    for (float& v : p.tau) v = t;
    p.span = span_;
    p.spans_per_token = spans;
    return p;
  }

  //! Every layer at +Inf (nothing triggers) until set.
  static constexpr LayerThresholds never(int span_, int spans = 1) noexcept { return uniform(kNever, span_, spans); }

  //! The threshold tested against the score of layer `layer`; +Inf outside the array.
  SKIPLLM_HOST_DEVICE constexpr float threshold(int layer) const noexcept {
    return layer >= 0 && layer < kMaxLayers ? tau[layer] : kNever;
  }

  SKIPLLM_HOST_DEVICE constexpr void begin_token(SkipState& s) const noexcept {
    detail::greedy_begin_token(s, spans_per_token);
  }
  SKIPLLM_HOST_DEVICE constexpr bool should_skip(SkipState& s, LayerContext c) const noexcept {
    return detail::greedy_should_skip(s, threshold(c.layer - 1), span);
  }
};

}  // namespace skipllm::policy
