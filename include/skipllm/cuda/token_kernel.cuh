//! @file
//! token_end_kernel: closes a decode step, once per step after the last layer, in one block.
//!
//! For every active row it (1) adds the row's per-layer decisions to the device counters
//! (device_counters.cuh), (2) appends the row's record (slot, decode index, decisions, scores)
//! to the device trace buffer (device_trace.cuh) when tracing is on and there is room, counting
//! what did not fit, and (3) calls `skipllm::end_token` on the row's state. Nothing is read
//! back: the host downloads counters and trace when asked (DecoderStack::collect). Rows are
//! appended in row order, as the CPU driver does.
#pragma once

#include <cub/block/block_scan.cuh>

#include <cstdint>

#include "../decision.hpp"
#include "../skip_state.hpp"
#include "config.cuh"
#include "device_counters.cuh"
#include "device_trace.cuh"

namespace skipllm::cuda {

//! Whether row `r` of a step names a usable slot of its own: negative (padding) is fine; a slot
//! at or past `num_slots`, or one an earlier row already names, is not (two rows on one slot
//! race on its state). O(r) per row: steps have a few hundred rows at most. Host and device.
SKIPLLM_HOST_DEVICE inline bool row_slot_is_bad(int const* row_slots, int r, int num_slots) noexcept {
  int const slot = row_slots[r];
  if (slot < 0) return false;
  if (slot >= num_slots) return true;
  for (int earlier = 0; earlier < r; ++earlier) {
    if (row_slots[earlier] == slot) return true;
  }
  return false;
}

//! Threads of the one token-end block.
inline constexpr int kTokenEndThreads = 256;

struct TokenEndParams {
  int const* row_slots = nullptr;  //!< [rows]
  int rows = 0;
  int num_slots = 0;
  int num_layers = 0;
  int warmup_tokens = 0;
  SkipState const* states_in = nullptr;        //!< the states after the last layer
  SkipState* states_out = nullptr;             //!< where the closed states go (may equal states_in)
  FfnDecision const* decisions = nullptr;      //!< [num_layers][rows]: the step record
  float const* scores = nullptr;               //!< [num_layers][rows]
  unsigned long long* layer_counts = nullptr;  //!< [num_layers][kNumFfnDecisions], indexed by FfnDecision
  unsigned long long* totals = nullptr;        //!< [kNumTotals], indexed by TotalIndex
  DeviceTraceBuffer trace;
};

template <int Threads>
SKIPLLM_KERNEL void __launch_bounds__(Threads) token_end_kernel(TokenEndParams const p) {
  using Scan = cub::BlockScan<int, Threads>;
  __shared__ typename Scan::TempStorage scan;
  __shared__ unsigned long long trace_base;
  __shared__ unsigned int after_warmup;
  __shared__ unsigned int bad_rows;
  int const tid = static_cast<int>(threadIdx.x);
  auto const active = [&](int r) {
    int const slot = p.row_slots[r];
    return slot >= 0 && slot < p.num_slots;
  };

  // (1) Per-layer counts: each thread owns whole layers, so no atomics are needed.
  for (int l = tid; l < p.num_layers; l += Threads) {
    unsigned long long counts[kNumFfnDecisions] = {};
    FfnDecision const* const record = p.decisions + static_cast<std::int64_t>(l) * p.rows;
    for (int r = 0; r < p.rows; ++r) {
      if (active(r)) ++counts[static_cast<unsigned>(record[r]) % kNumFfnDecisions];
    }
    for (int k = 0; k < kNumFfnDecisions; ++k) {
      if (counts[k] != 0) p.layer_counts[l * kNumFfnDecisions + k] += counts[k];
    }
  }

  // (2) Warm-up count and trace records, rows in order.
  bool const tracing = p.trace.capacity > 0 && p.totals[kTraceEnabled] != 0;
  if (tid == 0) {
    trace_base = p.totals[kTraceCount];
    after_warmup = 0;
    bad_rows = 0;
  }
  __syncthreads();
  // Rows the host could not check (an engine writing row_slots() itself): reported by collect.
  for (int r = tid; r < p.rows; r += Threads) {
    if (row_slot_is_bad(p.row_slots, r, p.num_slots)) atomicAdd(&bad_rows, 1u);
  }
  int appended = 0;
  for (int base = 0; base < p.rows; base += Threads) {
    int const r = base + tid;
    int const is_active = r < p.rows && active(r) ? 1 : 0;
    int offset = 0;
    int chunk = 0;
    Scan(scan).ExclusiveSum(is_active, offset, chunk);
    if (is_active) {
      int const slot = p.row_slots[r];
      SkipState const state = p.states_in[slot];
      if (state.decode_index >= p.warmup_tokens) atomicAdd(&after_warmup, 1u);
      unsigned long long const index = trace_base + static_cast<unsigned long long>(appended + offset);
      if (tracing && index < static_cast<unsigned long long>(p.trace.capacity)) {
        auto const i = static_cast<std::int64_t>(index);
        p.trace.slots[i] = slot;
        p.trace.decode_indices[i] = state.decode_index;
        for (int l = 0; l < p.num_layers; ++l) {
          std::int64_t const from = static_cast<std::int64_t>(l) * p.rows + r;
          p.trace.decisions[i * p.num_layers + l] = p.decisions[from];
          p.trace.scores[i * p.num_layers + l] = p.scores[from];
        }
      }
    }
    appended += chunk;
    __syncthreads();  // scan storage reuse; every read of states_in is done after the last pass
  }
  if (tid == 0) {
    p.totals[kTokensAfterWarmup] += after_warmup;
    p.totals[kBadRows] += bad_rows;
    if (tracing) {
      unsigned long long const room =
          trace_base < static_cast<unsigned long long>(p.trace.capacity) ? p.trace.capacity - trace_base : 0ull;
      unsigned long long const n = static_cast<unsigned long long>(appended);
      unsigned long long const stored = n < room ? n : room;
      p.totals[kTraceCount] += stored;
      p.totals[kTraceDropped] += n - stored;
    }
  }

  // (3) Close the token.
  for (int r = tid; r < p.rows; r += Threads) {
    if (!active(r)) continue;
    int const slot = p.row_slots[r];
    SkipState state = p.states_in[slot];
    skipllm::end_token(state);
    p.states_out[slot] = state;
  }
}

inline void launch_token_end(TokenEndParams const& params, cudaStream_t stream) {
  token_end_kernel<kTokenEndThreads><<<1, kTokenEndThreads, 0, stream>>>(params);
  check_launch("token_end_kernel launch");
}

}  // namespace skipllm::cuda
