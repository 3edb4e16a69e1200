//! @file
//! ColdRegion policies: layers whose FFN always runs.
//!
//! *What it decides.* `is_cold(layer, num_layers)`: true for layers never skipped. The paper
//! protects the first and last layers, which change the representation most; a cold layer
//! also ends a skip span in progress (the authors clip the span at the tail region).
//!
//! *When to use which.* `FixedColdLayers<5, 5>` is the authors' setting for 32/40-layer LLaMA-2.
//! `ProportionalCold<1, 6>` scales it to any depth (5 of 30 layers at each end).
//! `ColdLayers` sets the counts at runtime, `ColdMask` takes any set of layers (what
//! calibration writes), `ColdRegions` both at once, and `NoCold` protects nothing (an ablation).
//!
//! *What it costs.* A comparison or a bit test per layer.
#pragma once

#include "../config.hpp"
#include "../layer_mask.hpp"

namespace skipllm::policy {

namespace detail {

//! The shared rule behind every count-based region: the first `first` and last `last` layers.
SKIPLLM_HOST_DEVICE constexpr bool in_end_regions(int layer, int num_layers, int first, int last) noexcept {
  return layer < first || layer >= num_layers - last;
}

}  // namespace detail

//! round(num_layers * num / den), integer-only so host and device agree: the size of each end
//! region of ProportionalCold<num, den>, and the engine's default cold count (1/6 of the depth).
SKIPLLM_HOST_DEVICE constexpr int proportional_count(int num_layers, int num, int den) noexcept {
  return (num_layers * num + den / 2) / den;
}

//! The first `First` and last `Last` layers, fixed at compile time.
template <int First, int Last>
struct FixedColdLayers {
  static_assert(First >= 0 && Last >= 0, "skipllm: FixedColdLayers counts must be non-negative");
  static constexpr int first = First;
  static constexpr int last = Last;

  SKIPLLM_HOST_DEVICE constexpr bool is_cold(int layer, int num_layers) const noexcept {
    return detail::in_end_regions(layer, num_layers, First, Last);
  }
};

//! The first `First` and last `Last` layers plus the listed `Layers`, fixed at compile time
//! (what a compile-time configured build bakes from a calibrated cold set).
template <int First, int Last, int... Layers>
struct FixedColdRegions {
  static_assert(First >= 0 && Last >= 0, "skipllm: FixedColdRegions counts must be non-negative");
  static_assert(((Layers >= 0) && ...), "skipllm: FixedColdRegions layers must be non-negative");
  static constexpr int first = First;
  static constexpr int last = Last;

  SKIPLLM_HOST_DEVICE constexpr bool is_cold(int layer, int num_layers) const noexcept {
    return detail::in_end_regions(layer, num_layers, First, Last) || ((layer == Layers) || ...);
  }
};

//! `Num/Den` of the depth at each end, rounded to the nearest layer.
template <int Num, int Den>
struct ProportionalCold {
  static_assert(Num >= 0 && Den > 0 && Num <= Den, "skipllm: ProportionalCold needs 0 <= Num <= Den");

  SKIPLLM_HOST_DEVICE constexpr bool is_cold(int layer, int num_layers) const noexcept {
    int const n = proportional_count(num_layers, Num, Den);
    return detail::in_end_regions(layer, num_layers, n, n);
  }
};

//! First/last counts chosen at runtime.
struct ColdLayers {
  int first = 5;
  int last = 5;

  SKIPLLM_HOST_DEVICE constexpr bool is_cold(int layer, int num_layers) const noexcept {
    return detail::in_end_regions(layer, num_layers, first, last);
  }
};

//! Any set of layers, chosen at runtime (e.g. loaded from a calibration file).
struct ColdMask {
  LayerMask layers{};

  SKIPLLM_HOST_DEVICE constexpr bool is_cold(int layer, int /*num_layers*/) const noexcept {
    return layers.contains(layer);
  }
};

//! First/last counts plus any set of layers, all at runtime: represents every region above
//! (`{5, 5}` is `ColdLayers{5, 5}`, `{0, 0, mask}` is `ColdMask{mask}`), so an engine can
//! hold any calibrated configuration in one type.
struct ColdRegions {
  int first = 5;
  int last = 5;
  LayerMask layers{};

  SKIPLLM_HOST_DEVICE constexpr bool is_cold(int layer, int num_layers) const noexcept {
    return detail::in_end_regions(layer, num_layers, first, last) || layers.contains(layer);
  }
};

//! No cold region at all.
struct NoCold {
  SKIPLLM_HOST_DEVICE constexpr bool is_cold(int, int) const noexcept { return false; }
};

}  // namespace skipllm::policy
