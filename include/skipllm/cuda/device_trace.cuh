//! @file
//! DeviceTraceBuffer: the decision trace as the CUDA stack keeps it on the device between two
//! collects. The token-end kernel appends one record per decoded row at index
//! totals[kTraceCount] while there is room, and counts the records that find the buffer full
//! (totals[kTraceDropped]); nothing wraps around. DecoderStack::collect downloads the records
//! into its DecisionTrace and empties the buffer.
#pragma once

#include "../skip_state.hpp"
#include "config.cuh"

namespace skipllm::cuda {

//! `capacity` token records of `num_layers` decisions and scores, in device memory.
struct DeviceTraceBuffer {
  int* slots = nullptr;              //!< [capacity]
  int* decode_indices = nullptr;     //!< [capacity]
  FfnDecision* decisions = nullptr;  //!< [capacity][num_layers]
  float* scores = nullptr;           //!< [capacity][num_layers]
  int capacity = 0;
};

}  // namespace skipllm::cuda
