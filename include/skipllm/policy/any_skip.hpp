//! @file
//! AnySkip: one skip policy chosen at run time among the library's own.
//!
//! *What it decides.* Exactly what the policy it holds decides: `Greedy`, `LayerThresholds`,
//! `RandomWindow`, `StaticMask` or `Dense` (default). `begin_token` and `should_skip` switch on
//! the kind and call the held policy's own members, so each rule still lives in one place.
//!
//! *When to use it.* When the skip policy is read from a file or the command line and one build
//! must run any of them, on the host or in a kernel: a calibrated config may hold one threshold,
//! per-layer thresholds, the random-window baseline or a static set of layers. A policy known at
//! compile time is better spelled out (`FixedGreedy<...>`): its decision then compiles to a
//! few instructions and the bundle stays a few bytes. `policy::ConfigurablePolicies`
//! (bundle.hpp) pairs AnySkip with the runtime cold region and warm-up.
//!
//! *What it costs.* One switch per layer; every row of a step holds the same policy, so on a GPU
//! the branch is uniform. In memory, the largest alternative plus a tag: the alternatives share
//! a union, so AnySkip is LayerThresholds' 1 KiB array and a few bytes (1,040 bytes), not the sum
//! of all five. It is trivially copyable and travels by value into kernels like LayerThresholds.
//!
//!     policy::AnySkip skip = policy::Greedy{0.97f, 2, 1};
//!     skip.kind();                   // AnySkip::Kind::greedy
//!     skip.greedy()->tau;            // 0.97f; layer_thresholds() etc. are nullptr
//!     skip = policy::RandomWindow{3.5f, 5, 25, 0};
#pragma once

#include <cstdint>

#include "../config.hpp"
#include "../skip_state.hpp"
#include "layer_thresholds.hpp"
#include "random_window.hpp"
#include "skip_policy.hpp"

namespace skipllm::policy {

class AnySkip {
 public:
  enum class Kind : std::uint8_t { dense, greedy, layer_thresholds, random_window, static_mask };

  //! Holds `Dense`: never skips.
  constexpr AnySkip() noexcept = default;
  // Implicit on purpose: `AnySkip s = Greedy{...}` reads as the policy it holds.
  constexpr AnySkip(Dense) noexcept {}
  constexpr AnySkip(Greedy p) noexcept : kind_(Kind::greedy), held_{.greedy = p} {}
  constexpr AnySkip(LayerThresholds const& p) noexcept : kind_(Kind::layer_thresholds), held_{.layer_thresholds = p} {}
  constexpr AnySkip(RandomWindow p) noexcept : kind_(Kind::random_window), held_{.random_window = p} {}
  constexpr AnySkip(StaticMask p) noexcept : kind_(Kind::static_mask), held_{.static_mask = p} {}

  SKIPLLM_HOST_DEVICE constexpr Kind kind() const noexcept { return kind_; }

  //! The held policy when it is of that type, else nullptr (like std::get_if).
  SKIPLLM_HOST_DEVICE constexpr Greedy const* greedy() const noexcept {
    return kind_ == Kind::greedy ? &held_.greedy : nullptr;
  }
  SKIPLLM_HOST_DEVICE constexpr LayerThresholds const* layer_thresholds() const noexcept {
    return kind_ == Kind::layer_thresholds ? &held_.layer_thresholds : nullptr;
  }
  SKIPLLM_HOST_DEVICE constexpr RandomWindow const* random_window() const noexcept {
    return kind_ == Kind::random_window ? &held_.random_window : nullptr;
  }
  SKIPLLM_HOST_DEVICE constexpr StaticMask const* static_mask() const noexcept {
    return kind_ == Kind::static_mask ? &held_.static_mask : nullptr;
  }

  //! `f(held)` with the held policy as its own type (e.g. to describe it). Host only: device
  //! code uses begin_token/should_skip, which need no callable.
  template <class F>
  constexpr decltype(auto) visit(F&& f) const {
    switch (kind_) {
      case Kind::greedy: return f(held_.greedy);
      case Kind::layer_thresholds: return f(held_.layer_thresholds);
      case Kind::random_window: return f(held_.random_window);
      case Kind::static_mask: return f(held_.static_mask);
      case Kind::dense: break;
    }
    return f(held_.dense);
  }

  //! Only the greedy family has per-token state to arm; the others need nothing.
  SKIPLLM_HOST_DEVICE constexpr void begin_token(SkipState& s) const noexcept {
    if (kind_ == Kind::greedy) held_.greedy.begin_token(s);
    if (kind_ == Kind::layer_thresholds) held_.layer_thresholds.begin_token(s);
  }

  SKIPLLM_HOST_DEVICE constexpr bool should_skip(SkipState& s, LayerContext c) const noexcept {
    switch (kind_) {
      case Kind::greedy: return held_.greedy.should_skip(s, c);
      case Kind::layer_thresholds: return held_.layer_thresholds.should_skip(s, c);
      case Kind::random_window: return held_.random_window.should_skip(s, c);
      case Kind::static_mask: return held_.static_mask.should_skip(s, c);
      case Kind::dense: break;
    }
    return held_.dense.should_skip(s, c);
  }

 private:
  // A union, so the size is that of the largest alternative. Every member is trivially
  // copyable, so the union and AnySkip are too; `dense` is active by default.
  union Held {
    Dense dense{};
    Greedy greedy;
    LayerThresholds layer_thresholds;
    RandomWindow random_window;
    StaticMask static_mask;
  };

  Kind kind_ = Kind::dense;
  Held held_{};
};

}  // namespace skipllm::policy
