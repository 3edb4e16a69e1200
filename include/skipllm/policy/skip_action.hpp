//! @file
//! SkipAction policies: what a skipped FFN leaves in its place.
//!
//! *What it decides.* `stands_in(layer)`: when the skip policy skips layer `layer`'s FFN, does
//! the host's stand-in block (a cheap map of the same input, e.g. a fitted linear map of
//! norm(h)) run instead of nothing? `feeds_decision()`: does the stand-in's similarity score
//! feed the next layer's decision the way a real FFN's does, or does the next layer see "not
//! measured" as after a plain skip?
//!
//! *Semantics of a stand-in.* The host writes g = standin(h) into its FFN output rows; skipllm
//! adds it into the residual (x = h + g) and measures the similarity of (h, h + g) in the same
//! pass, exactly as for an FFN. The score is always recorded (trace); it reaches the skip policy
//! only when `feeds_decision()`. The decision is `FfnDecision::kStandIn`, counted as skipped
//! (the FFN's weights are not read) and, separately, as stood in.
//!
//! *When to use which.* `NoStandIn` (the default) is the paper's skip: x = h. `StandIn` sets the
//! layers (those the host has maps for) and the feedback at runtime, what an engine loading
//! fitted maps uses; `FixedStandIn<feeds, layers...>` is its compile-time twin (no layers
//! listed: every layer).
//!
//! *What it costs.* A bit test per skipped block, plus whatever the host's stand-in reads.
#pragma once

#include "../config.hpp"
#include "../layer_mask.hpp"

namespace skipllm::policy {

//! A skip leaves nothing: x = h.
struct NoStandIn {
  SKIPLLM_HOST_DEVICE constexpr bool stands_in(int) const noexcept { return false; }
  SKIPLLM_HOST_DEVICE constexpr bool feeds_decision() const noexcept { return false; }
};

//! The host's stand-in runs for skipped FFNs of the layers in `layers`; its score feeds the
//! next decision when `feeds` is set. Empty `layers`: never (the same as NoStandIn).
struct StandIn {
  LayerMask layers{};
  bool feeds = false;

  SKIPLLM_HOST_DEVICE constexpr bool stands_in(int layer) const noexcept { return layers.contains(layer); }
  SKIPLLM_HOST_DEVICE constexpr bool feeds_decision() const noexcept { return feeds; }
};

//! Compile-time StandIn: the listed layers, or every layer when none is listed.
template <bool Feeds, int... Layers>
struct FixedStandIn {
  static_assert(((Layers >= 0) && ...), "skipllm: FixedStandIn layers must be non-negative");
  static constexpr bool feeds = Feeds;

  SKIPLLM_HOST_DEVICE constexpr bool stands_in(int layer) const noexcept {
    if constexpr (sizeof...(Layers) == 0) {
      return layer >= 0;
    } else {
      return ((layer == Layers) || ...);
    }
  }
  SKIPLLM_HOST_DEVICE constexpr bool feeds_decision() const noexcept { return Feeds; }
};

//! Whether `action` stands in for a skipped FFN of any of the first `num_layers` layers.
template <class Action>
constexpr bool stands_in_anywhere(Action const& action, int num_layers) noexcept {
  for (int l = 0; l < num_layers; ++l)
    if (action.stands_in(l)) return true;
  return false;
}

}  // namespace skipllm::policy
