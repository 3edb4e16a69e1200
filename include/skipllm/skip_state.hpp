//! @file
//! The per-sequence skip state, the per-layer context and the decision codes.
//!
//! These are the plain values the decision protocol (decision.hpp) works on. They are
//! trivially copyable so a backend can keep one `SkipState` per sequence in device memory.
#pragma once

#include <cstdint>
#include <type_traits>

#include "config.hpp"
#include "numeric.hpp"

namespace skipllm {

//! What happened to one FFN block of one token. The run codes say *why* it ran, which the
//! statistics, the trace and the heatmap report.
enum class FfnDecision : std::uint8_t {
  kRun = 0,       //!< eligible layer; the skip policy chose to run it
  kSkip = 1,      //!< skipped: the layer passes x = h
  kRunCold = 2,   //!< ran because the layer is in a cold region
  kRunDense = 3,  //!< ran because the whole token is dense (sink warm-up or periodic refresh)
  kStandIn = 4,   //!< skipped, and the host's stand-in ran instead (policy/skip_action.hpp): x = h + g
};

//! How many FfnDecision values there are: one counter per decision kind, indexed by the value.
inline constexpr int kNumFfnDecisions = 5;
static_assert(static_cast<int>(FfnDecision::kStandIn) + 1 == kNumFfnDecisions,
              "kNumFfnDecisions counts every FfnDecision; the values are 0, 1, 2, ...");

//! Whether the FFN's weights are read: not for a skip, with or without a stand-in.
SKIPLLM_HOST_DEVICE constexpr bool runs_ffn(FfnDecision d) noexcept {
  return d != FfnDecision::kSkip && d != FfnDecision::kStandIn;
}

//! Where a decision is being made.
struct LayerContext {
  int layer;         //!< 0-based layer index
  int num_layers;    //!< depth of the model
  int decode_index;  //!< 0-based index of the token among this sequence's decoded tokens
  int slot;          //!< the sequence's slot in the driver (for per-sequence policies)
};

//! Per-sequence decision state. The library resets it at the start of a sequence and of each
//! token; the skip policy advances it. `scratch` is reserved for custom policies.
struct SkipState {
  std::int32_t decode_index = 0;                //!< tokens this sequence has decoded (prefill excluded)
  std::int32_t span_left = 0;                   //!< layers left in the skip span in progress
  std::int32_t spans_left = 0;                  //!< skip spans the current token may still start
  float prev_similarity = detail::quiet_nan();  //!< previous layer's FFN score; NaN if it did not run
  bool dense_token = false;                     //!< the current token runs every FFN
  std::uint32_t scratch = 0;                    //!< free for custom policies; zeroed at the start of a sequence
};

static_assert(std::is_trivially_copyable_v<SkipState>);
static_assert(std::is_trivially_copyable_v<LayerContext>);

}  // namespace skipllm
