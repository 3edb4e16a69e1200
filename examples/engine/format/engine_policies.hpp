// The reference engine's policy bundle: one runtime type that can hold every configuration the
// CLI, `skipllm calibrate`, the policy config files and the ablations need.
//
//  - EngineSkip: the authors' greedy rule with a global threshold or one threshold per layer
//    (the logic of policy::Greedy / policy::LayerThresholds, through the same detail function),
//    the authors' random-window baseline (policy::RandomWindow), or a static set of layers
//    (policy::StaticMask: e.g. the calibrated cheapest layers); plus one engine-level flag,
//    `skip_attention`, for the layer-skipping baseline (a skipped layer then skips its attention
//    too; the Generator applies it, see LlamaHost::set_layer_skip).
//  - policy::ColdRegions: first/last counts plus any explicit set of layers.
//
// Brace initialisation stays that of policy::RuntimePolicies: `EnginePolicies{{tau, span,
// spans}, {first, last}, {warmup, every}}` means what it meant for RuntimePolicies.
#pragma once

#include <cstdint>
#include <ostream>

#include <skipllm/policy/bundle.hpp>
#include <skipllm/policy/describe.hpp>
#include <skipllm/policy/layer_thresholds.hpp>
#include <skipllm/policy/random_window.hpp>

namespace skipllm::engine {

struct EngineSkip {
  enum class Kind : std::uint8_t {
    greedy,          //!< policy::Greedy{tau, span, spans_per_token}
    layer_greedy,    //!< the same rule, layer l's score tested against layer_tau[l]
    random_window,   //!< policy::RandomWindow `random`
    static_mask,     //!< policy::StaticMask `static_layers`: the same layers in every eligible token
  };

  float tau = 0.95f;
  int span = 8;
  int spans_per_token = 1;
  Kind kind = Kind::greedy;
  bool skip_attention = false;  //!< layer-skip baseline: a skipped layer skips its attention too
  float layer_tau[skipllm::LayerMask::kMaxLayers] = {};  //!< kind == layer_greedy
  skipllm::policy::RandomWindow random{};                //!< kind == random_window
  skipllm::LayerMask static_layers{};                    //!< kind == static_mask

  SKIPLLM_HOST_DEVICE constexpr void begin_token(skipllm::SkipState& s) const noexcept {
    bool const greedy = kind == Kind::greedy || kind == Kind::layer_greedy;
    skipllm::policy::detail::greedy_begin_token(s, greedy ? spans_per_token : 0);
  }
  SKIPLLM_HOST_DEVICE constexpr bool should_skip(skipllm::SkipState& s, skipllm::LayerContext c) const noexcept {
    switch (kind) {
      case Kind::greedy: return skipllm::policy::detail::greedy_should_skip(s, tau, span);
      case Kind::layer_greedy: {
        int const prev = c.layer - 1;
        float const t = prev >= 0 && prev < skipllm::LayerMask::kMaxLayers ? layer_tau[prev] : skipllm::detail::infinity();
        return skipllm::policy::detail::greedy_should_skip(s, t, span);
      }
      case Kind::random_window: return random.should_skip(s, c);
      case Kind::static_mask: return skipllm::policy::StaticMask{static_layers}.should_skip(s, c);
    }
    return false;
  }

  //! The library policy this one behaves like, for kind == layer_greedy (and greedy).
  skipllm::policy::LayerThresholds layer_thresholds() const noexcept {
    auto p = skipllm::policy::LayerThresholds::uniform(tau, span, spans_per_token);
    if (kind == Kind::layer_greedy) {
      for (int l = 0; l < skipllm::LayerMask::kMaxLayers; ++l) p.tau[l] = layer_tau[l];
    }
    return p;
  }
};

inline void describe(std::ostream& os, EngineSkip const& p) {
  if (p.skip_attention) os << "LayerSkip:";
  switch (p.kind) {
    case EngineSkip::Kind::greedy: skipllm::policy::describe(os, skipllm::policy::Greedy{p.tau, p.span, p.spans_per_token}); break;
    case EngineSkip::Kind::layer_greedy: skipllm::policy::describe(os, p.layer_thresholds()); break;
    case EngineSkip::Kind::random_window: skipllm::policy::describe(os, p.random); break;
    case EngineSkip::Kind::static_mask: {
      os << "StaticMask(layers=";
      char const* sep = "";
      for (int l = 0; l < skipllm::LayerMask::kMaxLayers; ++l) {
        if (p.static_layers.contains(l)) { os << sep << l; sep = ","; }
      }
      os << ")";
      break;
    }
  }
}

using EnginePolicies = skipllm::Policies<EngineSkip, skipllm::policy::ColdRegions, skipllm::policy::RuntimeWarmup,
                                         skipllm::policy::Cosine>;

//! The same rule as `p` (what skipllm::cli::make_policies returns) in the engine's type.
inline EnginePolicies to_engine_policies(skipllm::policy::RuntimePolicies const& p) {
  EnginePolicies e;
  e.skip.tau = p.skip.tau;
  e.skip.span = p.skip.span;
  e.skip.spans_per_token = p.skip.spans_per_token;
  e.cold = {p.cold.first, p.cold.last, {}};
  e.warmup = p.warmup;
  return e;
}

}  // namespace skipllm::engine
