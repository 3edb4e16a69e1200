//! @file
//! begin_sequences_kernel: `skipllm::begin_sequence` on a range of device-resident sequence
//! states (a new request in a slot, or every slot when a stack is set up), plus its launcher.
#pragma once

#include "../decision.hpp"
#include "../skip_state.hpp"
#include "config.cuh"

namespace skipllm::cuda {

inline constexpr int kBeginSequencesThreads = 256;

//! `skipllm::begin_sequence` on slots [first, first + count).
template <int Threads>
SKIPLLM_KERNEL void __launch_bounds__(Threads) begin_sequences_kernel(SkipState* states, int first, int count) {
  int const i = static_cast<int>(blockIdx.x) * Threads + static_cast<int>(threadIdx.x);
  if (i < count) skipllm::begin_sequence(states[first + i]);
}

inline void launch_begin_sequences(SkipState* states, int first, int count, cudaStream_t stream) {
  if (count <= 0) return;
  constexpr int kThreads = kBeginSequencesThreads;
  begin_sequences_kernel<kThreads><<<(count + kThreads - 1) / kThreads, kThreads, 0, stream>>>(states, first, count);
  check_launch("begin_sequences_kernel launch");
}

}  // namespace skipllm::cuda
