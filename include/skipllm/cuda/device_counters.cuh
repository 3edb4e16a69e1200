//! @file
//! The counters the CUDA stack keeps on the device between two collects, and their fold into
//! SkipStatistics. The token-end kernel adds to them; DecoderStack::collect downloads them,
//! adds them to its SkipStatistics (`add_counts`) and clears them. Laid out as
//!   layer_counts  [num_layers][kNumFfnDecisions] u64, indexed by FfnDecision
//!   totals        [kNumTotals] u64, indexed by TotalIndex
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "../skip_state.hpp"
#include "../statistics.hpp"
#include "config.cuh"

namespace skipllm::cuda {

//! Indices into the device-side totals (unsigned long long each).
enum TotalIndex : int {
  kTokensAfterWarmup = 0,  //!< decoded tokens with decode_index >= the warm-up length
  kTraceCount = 1,         //!< records in the trace buffer
  kTraceDropped = 2,       //!< records that found the trace buffer full
  kBadRows = 3,            //!< rows whose slot was out of range or taken by an earlier row of the step
  kTraceEnabled = 4,       //!< non-zero: append to the trace buffer (the last: collect keeps it)
  kNumTotals = 5,
};

//! Elements of the layer counters of a `num_layers`-layer model.
inline std::size_t layer_counter_count(int num_layers) noexcept {
  return static_cast<std::size_t>(num_layers) * kNumFfnDecisions;
}

//! Downloaded layer counters ([num_layers][kNumFfnDecisions]) as SkipStatistics::add_counts
//! takes them.
inline std::vector<LayerCounts> to_layer_counts(std::span<unsigned long long const> counters) {
  std::vector<LayerCounts> layers(counters.size() / kNumFfnDecisions);
  for (std::size_t l = 0; l < layers.size(); ++l) {
    for (int k = 0; k < kNumFfnDecisions; ++k) {
      layers[l].add(static_cast<FfnDecision>(k), counters[l * kNumFfnDecisions + static_cast<std::size_t>(k)]);
    }
  }
  return layers;
}

}  // namespace skipllm::cuda
