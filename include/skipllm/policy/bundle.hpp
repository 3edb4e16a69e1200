//! @file
//! Policies<>: the four policies composed into one value, and ready-made bundles.
//!
//! `DecoderLayer<Host, Skip, Cold, Warmup, Metric>` is the primary, fully spelled-out form;
//! it builds `Policies<Skip, Cold, Warmup, Metric>`. The named bundles below are
//! conveniences: `PaperPolicies` may follow the paper more closely in later releases, so
//! spell the policies out where you need the behaviour to stay fixed.
//!
//! Naming: a policy whose parameters are set at run time has a plain name (`Greedy`,
//! `ColdLayers`, `ColdRegions`, `Warmup`); its compile-time twin is `Fixed` + the same name
//! (`FixedGreedy<tau, k>`, `FixedColdLayers<5, 5>`, `FixedColdRegions<...>`, `FixedWarmup<16, 6>`),
//! decides identically for the same values, and is described identically (describe.hpp names
//! the rule, not the form).
#pragma once

#include <type_traits>

#include "../concepts.hpp"
#include "any_skip.hpp"
#include "cold_region.hpp"
#include "similarity.hpp"
#include "sink_warmup.hpp"
#include "skip_action.hpp"
#include "skip_policy.hpp"

namespace skipllm {

template <class Policy>
constexpr bool check_trivially_copyable() {
  static_assert(std::is_trivially_copyable_v<Policy>,
                "skipllm: a policy must be trivially copyable (it is passed by value into kernels)");
  return std::is_trivially_copyable_v<Policy>;
}

//! One value holding the runtime parameters of a skip policy, a cold region and a sink
//! warm-up, plus the similarity metric type, and what a skip leaves in place of the FFN
//! (`Action`, a SkipAction: policy::NoStandIn unless given). Trivially copyable: it travels by
//! value into kernels.
template <class Skip, class Cold, class Warm, class Metric, class Action = policy::NoStandIn>
struct Policies {
  // Evaluating the checks (with & so that all run) reports every malformed policy by name.
  static constexpr bool valid = check_skip_policy<Skip>() & check_cold_region<Cold>() & check_sink_warmup<Warm>() &
                                check_similarity_metric<Metric>() & check_skip_action<Action>() &
                                check_trivially_copyable<Skip>() & check_trivially_copyable<Cold>() &
                                check_trivially_copyable<Warm>() & check_trivially_copyable<Action>();
  //! Whether a skip may run the host's stand-in (the host then needs `standin_block`).
  static constexpr bool may_stand_in = !std::is_same_v<Action, policy::NoStandIn>;

  using skip_policy = Skip;
  using cold_region = Cold;
  using sink_warmup = Warm;
  using metric = Metric;
  using skip_action = Action;

  Skip skip{};
  Cold cold{};
  Warm warmup{};
  Action action{};
};

namespace policy {

//! The authors' settings: tau = 0.95, spans of 8 FFNs, 5 cold layers at each end, 16 dense
//! warm-up tokens then every 6th token dense, cosine similarity. All compile-time.
using PaperPolicies = Policies<FixedGreedy<0.95f, 8>, FixedColdLayers<5, 5>, FixedWarmup<16, 6>, Cosine>;

//! The same rule with every parameter set at runtime (what the CLI and calibration use).
using RuntimePolicies = Policies<Greedy, ColdLayers, Warmup, Cosine>;

//! Every policy a config file or a command line can choose, in one runtime type: any of the
//! library's runtime skip policies (AnySkip), first/last cold counts plus any set of cold
//! layers (ColdRegions), a runtime warm-up and cosine similarity. What an engine builds once
//! and then configures: the reference engine's generator, eval and calibration all run it.
//! Its `action` stands in for skipped FFNs on the layers an engine has maps for (none by default).
using ConfigurablePolicies = Policies<AnySkip, ColdRegions, Warmup, Cosine, StandIn>;

//! Never skips: the dense baseline with the same code path and statistics.
using DensePolicies = Policies<Dense, NoCold, NoWarmup, Cosine>;

}  // namespace policy
}  // namespace skipllm
