//! @file
//! Human-readable descriptions of policies, for reports, logs and the JSON summary.
//!
//! Host-only (iostreams stay out of the policy headers, which device code includes). A custom
//! policy can supply `describe(std::ostream&, MyPolicy const&)` found by ADL; without one it
//! is described by its role only. A compile-time policy prints what its runtime twin with the
//! same values prints (`FixedColdLayers<5, 5>` as `ColdLayers(first=5, last=5)`): the text
//! names the rule, which is what a report reader compares.
#pragma once

#include <ostream>
#include <sstream>
#include <string>

#include "any_skip.hpp"
#include "bundle.hpp"
#include "layer_thresholds.hpp"
#include "random_window.hpp"

namespace skipllm::policy {

inline void describe(std::ostream& os, Greedy const& p) {
  os << "Greedy(tau=" << p.tau << ", span=";
  if (p.span >= kToColdRegion)
    os << "to-cold-region";
  else
    os << p.span;
  os << ", spans_per_token=" << p.spans_per_token << ")";
}
template <float Tau, int Span, int Spans>
void describe(std::ostream& os, FixedGreedy<Tau, Span, Spans> const&) {
  describe(os, Greedy{Tau, Span, Spans});
}
inline void describe(std::ostream& os, Dense const&) { os << "Dense"; }
inline void describe(std::ostream& os, LayerThresholds const& p) {
  // Uniform arrays read like Greedy; otherwise the finite thresholds, as layer:tau.
  float const t0 = p.tau[0];
  bool uniform = true;
  for (float const t : p.tau) uniform = uniform && t == t0;
  if (uniform) {
    os << "LayerThresholds(tau=" << t0;
  } else {
    os << "LayerThresholds(tau={";
    char const* sep = "";
    for (int l = 0; l < LayerThresholds::kMaxLayers; ++l) {
      if (p.tau[l] < LayerThresholds::kNever) {
        os << sep << l << ":" << p.tau[l];
        sep = ",";
      }
    }
    os << "}";
  }
  os << ", span=";
  if (p.span >= kToColdRegion)
    os << "to-cold-region";
  else
    os << p.span;
  os << ", spans_per_token=" << p.spans_per_token << ")";
}
inline void describe(std::ostream& os, RandomWindow const& p) {
  os << "RandomWindow(length=" << p.length << ", layers=[" << p.first << ",";
  if (p.last >= (1 << 30))
    os << "end";
  else
    os << p.last;
  os << "), seed=" << p.seed << ")";
}
inline void describe(std::ostream& os, StaticMask const& p) {
  os << "StaticMask(layers=";
  char const* sep = "";
  for (int l = 0; l < LayerMask::kMaxLayers; ++l) {
    if (p.layers.contains(l)) {
      os << sep << l;
      sep = ",";
    }
  }
  os << ")";
}
//! Describes the held policy, word for word as describing it directly would.
inline void describe(std::ostream& os, AnySkip const& p) {
  p.visit([&os](auto const& held) { describe(os, held); });
}
inline void describe(std::ostream& os, ReplayTrace const& p) {
  os << "ReplayTrace(" << p.num_slots << " slots x " << p.num_tokens << " tokens)";
}

template <int First, int Last>
void describe(std::ostream& os, FixedColdLayers<First, Last> const&) {
  os << "ColdLayers(first=" << First << ", last=" << Last << ")";
}
template <int Num, int Den>
void describe(std::ostream& os, ProportionalCold<Num, Den> const&) {
  os << "ProportionalCold(" << Num << "/" << Den << ")";
}
inline void describe(std::ostream& os, ColdLayers const& c) {
  os << "ColdLayers(first=" << c.first << ", last=" << c.last << ")";
}
inline void describe(std::ostream& os, ColdMask const& c) {
  os << "ColdMask(";
  char const* sep = "";
  for (int l = 0; l < LayerMask::kMaxLayers; ++l) {
    if (c.layers.contains(l)) {
      os << sep << l;
      sep = ",";
    }
  }
  os << ")";
}
namespace detail {
//! "3,5,7": the members of `mask`, comma-separated.
inline void write_layers(std::ostream& os, LayerMask const& mask) {
  char const* sep = "";
  for (int l = 0; l < LayerMask::kMaxLayers; ++l) {
    if (mask.contains(l)) {
      os << sep << l;
      sep = ",";
    }
  }
}
}  // namespace detail

inline void describe(std::ostream& os, ColdRegions const& c) {
  os << "ColdRegions(first=" << c.first << ", last=" << c.last;
  if (c.layers.count() > 0) {
    os << ", layers=";
    detail::write_layers(os, c.layers);
  }
  os << ")";
}

inline void describe(std::ostream& os, StandIn const& a) {
  os << "StandIn(layers=";
  detail::write_layers(os, a.layers);
  os << ", feeds=" << (a.feeds ? "yes" : "no") << ")";
}
template <bool Feeds, int... Layers>
void describe(std::ostream& os, FixedStandIn<Feeds, Layers...> const&) {
  if constexpr (sizeof...(Layers) == 0) {
    os << "StandIn(layers=all, feeds=" << (Feeds ? "yes" : "no") << ")";
  } else {
    StandIn a{{}, Feeds};
    (a.layers.insert(Layers), ...);
    describe(os, a);
  }
}

//! Whether `a` may stand in anywhere: a StandIn without layers is described as no stand-in.
inline bool may_stand_in(StandIn const& a) { return a.layers.count() > 0; }
inline bool may_stand_in(NoStandIn const&) { return false; }
template <class A>
bool may_stand_in(A const&) {
  return true;
}
template <int First, int Last, int... Layers>
void describe(std::ostream& os, FixedColdRegions<First, Last, Layers...> const&) {
  ColdRegions c{First, Last, {}};
  (c.layers.insert(Layers), ...);
  describe(os, c);
}
inline void describe(std::ostream& os, NoCold const&) { os << "NoCold"; }

template <int N, int Every>
void describe(std::ostream& os, FixedWarmup<N, Every> const&) {
  os << "Warmup(tokens=" << N << ", every=" << Every << ")";
}
inline void describe(std::ostream& os, Warmup const& w) {
  os << "Warmup(tokens=" << w.tokens << ", every=" << w.every << ")";
}
inline void describe(std::ostream& os, NoWarmup const&) { os << "NoWarmup"; }

inline void describe(std::ostream& os, Cosine const&) { os << "Cosine"; }
inline void describe(std::ostream& os, RelativeUpdate const&) { os << "RelativeUpdate"; }

}  // namespace skipllm::policy

namespace skipllm {

namespace detail {
template <class P>
void describe_or_role(std::ostream& os, P const& p, char const* role) {
  using skipllm::policy::describe;
  if constexpr (requires { describe(os, p); })
    describe(os, p);
  else
    os << "custom " << role;
}
}  // namespace detail

//! "skip=Greedy(tau=0.95, span=8, spans_per_token=1) cold=... warmup=... metric=Cosine", then
//! " standin=StandIn(layers=..., feeds=...)" when skips may stand in.
template <class S, class C, class W, class M, class A>
std::string describe(Policies<S, C, W, M, A> const& p) {
  std::ostringstream os;
  os << "skip=";
  detail::describe_or_role(os, p.skip, "SkipPolicy");
  os << " cold=";
  detail::describe_or_role(os, p.cold, "ColdRegion");
  os << " warmup=";
  detail::describe_or_role(os, p.warmup, "SinkWarmup");
  os << " metric=";
  detail::describe_or_role(os, M{}, "SimilarityMetric");
  if (policy::may_stand_in(p.action)) {
    os << " standin=";
    detail::describe_or_role(os, p.action, "SkipAction");
  }
  return os.str();
}

}  // namespace skipllm
