//! @file
//! Validation of the runtime policies' values: `invalid_reason(policy)` says why the values
//! cannot mean what their fields promise, or returns nullptr when they are valid.
//!
//! *Why.* The compile-time twins refuse bad parameters with a `static_assert`
//! (`FixedGreedy<0.95f, 0>` does not compile). A runtime policy is built from a config file or a
//! command line, and its rules do not check their fields (they run per layer, on the GPU too):
//! a span of 0 would still skip one layer, a NaN threshold would silently never skip. An engine
//! calls `invalid_reason` once, where the policy enters, and refuses it with the message.
//!
//! What is checked: thresholds are not NaN (an infinite one is the documented "never"); spans
//! are >= 1; counts (spans per token, cold layers, warm-up tokens and period) are >= 0; a random
//! window's mean length is finite and >= 0 and its layer range is not reversed. A `Policies`
//! bundle reports its first invalid member; members without an `invalid_reason` overload (custom
//! policies, the compile-time ones) count as valid.
//!
//!     if (char const* why = skipllm::policy::invalid_reason(policies)) throw std::invalid_argument(why);
//!
//! No exceptions and no allocation: the messages are string literals, and the checks are
//! constexpr (usable in static_asserts). Host-side: a policy is checked before it travels to a
//! device.
#pragma once

#include "../numeric.hpp"
#include "any_skip.hpp"
#include "bundle.hpp"
#include "cold_region.hpp"
#include "layer_thresholds.hpp"
#include "random_window.hpp"
#include "sink_warmup.hpp"
#include "skip_policy.hpp"

namespace skipllm::policy {

namespace detail {

constexpr bool is_nan(float x) noexcept { return x != x; }

}  // namespace detail

constexpr char const* invalid_reason(Dense const&) noexcept { return nullptr; }
constexpr char const* invalid_reason(StaticMask const&) noexcept { return nullptr; }

constexpr char const* invalid_reason(Greedy const& p) noexcept {
  if (detail::is_nan(p.tau)) return "Greedy: tau is NaN";
  if (p.span < 1) return "Greedy: span must be at least 1";
  if (p.spans_per_token < 0) return "Greedy: spans_per_token must be >= 0";
  return nullptr;
}

constexpr char const* invalid_reason(LayerThresholds const& p) noexcept {
  for (float const t : p.tau) {
    if (detail::is_nan(t)) return "LayerThresholds: a threshold is NaN";
  }
  if (p.span < 1) return "LayerThresholds: span must be at least 1";
  if (p.spans_per_token < 0) return "LayerThresholds: spans_per_token must be >= 0";
  return nullptr;
}

constexpr char const* invalid_reason(RandomWindow const& p) noexcept {
  if (!skipllm::is_finite(p.length) || p.length < 0.0f) return "RandomWindow: length must be finite and >= 0";
  if (p.first < 0) return "RandomWindow: first must be >= 0";
  if (p.first > p.last) return "RandomWindow: first must not exceed last";
  return nullptr;
}

constexpr char const* invalid_reason(AnySkip const& p) noexcept {
  return p.visit([](auto const& held) { return invalid_reason(held); });
}

constexpr char const* invalid_reason(NoCold const&) noexcept { return nullptr; }

constexpr char const* invalid_reason(ColdLayers const& p) noexcept {
  if (p.first < 0 || p.last < 0) return "ColdLayers: first and last must be >= 0";
  return nullptr;
}

constexpr char const* invalid_reason(ColdRegions const& p) noexcept {
  if (p.first < 0 || p.last < 0) return "ColdRegions: first and last must be >= 0";
  return nullptr;
}

constexpr char const* invalid_reason(NoWarmup const&) noexcept { return nullptr; }

constexpr char const* invalid_reason(Warmup const& p) noexcept {
  if (p.tokens < 0 || p.every < 0) return "Warmup: tokens and every must be >= 0";
  return nullptr;
}

namespace detail {

// A member's reason when it has an invalid_reason overload; a policy without one is valid.
template <class P>
constexpr char const* member_reason(P const& p) noexcept {
  if constexpr (requires { invalid_reason(p); }) {
    return invalid_reason(p);
  } else {
    return nullptr;
  }
}

}  // namespace detail

//! The first invalid member of a bundle, in the order skip, cold region, warm-up (every value
//! of a SkipAction is valid).
template <class Skip, class Cold, class Warm, class Metric, class Action>
constexpr char const* invalid_reason(Policies<Skip, Cold, Warm, Metric, Action> const& p) noexcept {
  if (char const* why = detail::member_reason(p.skip)) return why;
  if (char const* why = detail::member_reason(p.cold)) return why;
  return detail::member_reason(p.warmup);
}

}  // namespace skipllm::policy
