//! @file
//! StackOptions: what a decoder stack is sized for, shared by the CPU driver
//! (skipllm::DecoderStack) and the CUDA one (skipllm::cuda::DecoderStack, whose options hold
//! these plus the device workspace's), and the one check of a sequence slot both apply.
#pragma once

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <string>

#include "config.hpp"

namespace skipllm {

struct StackOptions {
  int max_sequences = 1;      //!< sequence slots (concurrent requests)
  int max_rows = 0;           //!< rows per decode step; 0 means max_sequences
  bool record_trace = false;  //!< record the per-token decision trace from the start

  //! The most rows a decode step may carry (at least 1, so that a bad max_sequences is
  //! reported by the check that names it).
  int rows_per_step() const noexcept { return max_rows > 0 ? max_rows : std::max(max_sequences, 1); }
};

namespace detail {

//! `slot` as an index into a stack's `num_slots` sequence slots; throws std::out_of_range
//! with a `skipllm:` message when it is outside [0, num_slots).
inline std::size_t checked_slot(int slot, int num_slots) {
  if (slot < 0 || slot >= num_slots) {
    throw std::out_of_range("skipllm: sequence slot " + std::to_string(slot) + " is outside [0, " +
                            std::to_string(num_slots) + ")");
  }
  return static_cast<std::size_t>(slot);
}

}  // namespace detail

}  // namespace skipllm
