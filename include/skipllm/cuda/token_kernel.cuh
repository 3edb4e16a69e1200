//! @file
//! Token-boundary kernels: closing a decode step (end_token, statistics counters, trace ring),
//! starting sequences, and the dense batch of a prefill step.
//!
//! token_end_kernel runs once per decode step, after the last layer, in one block. For every
//! active row it (1) adds the row's per-layer decisions to device-side counters, (2) appends
//! the row's record (slot, decode index, decisions, scores) to the trace ring when tracing is
//! on and there is room, counting what did not fit, and (3) calls `skipllm::end_token` on the
//! row's state. Nothing is read back: the host downloads counters and ring when asked
//! (DecoderStack::collect). Rows are appended in row order, as the CPU driver does.
#pragma once

#include <cub/block/block_scan.cuh>

#include "../decision.hpp"
#include "../skip_state.hpp"
#include "config.cuh"

namespace skipllm::cuda {

inline constexpr int kTokenThreads = 256;

//! Indices into the device-side totals (unsigned long long each).
enum TotalIndex : int {
  kTokensAfterWarmup = 0,  //!< decoded tokens with decode_index >= the warm-up length
  kTraceCount = 1,         //!< records in the trace ring
  kTraceDropped = 2,       //!< records that found the ring full
  kTraceEnabled = 3,       //!< non-zero: append to the ring
  kNumTotals = 4,
};

//! The device-side trace ring: `capacity` token records of `num_layers` decisions and scores.
struct TraceRing {
  int* slots = nullptr;               //!< [capacity]
  int* decode_indices = nullptr;      //!< [capacity]
  FfnDecision* decisions = nullptr;   //!< [capacity][num_layers]
  float* scores = nullptr;            //!< [capacity][num_layers]
  int capacity = 0;
};

struct TokenEndParams {
  int const* row_slots = nullptr;      //!< [rows]
  int rows = 0;
  int num_slots = 0;
  int num_layers = 0;
  int warmup_tokens = 0;
  SkipState const* states_in = nullptr;  //!< the states after the last layer
  SkipState* states_out = nullptr;       //!< where the closed states go (may equal states_in)
  FfnDecision const* decisions = nullptr;  //!< [num_layers][rows]: the step record
  float const* scores = nullptr;           //!< [num_layers][rows]
  unsigned long long* layer_counts = nullptr;  //!< [num_layers][4], indexed by FfnDecision
  unsigned long long* totals = nullptr;        //!< [kNumTotals]
  TraceRing trace;
};

template <int Threads>
SKIPLLM_KERNEL void __launch_bounds__(Threads) token_end_kernel(TokenEndParams const p) {
  using Scan = cub::BlockScan<int, Threads>;
  __shared__ typename Scan::TempStorage scan;
  __shared__ unsigned long long trace_base;
  __shared__ unsigned int after_warmup;
  int const tid = static_cast<int>(threadIdx.x);
  auto const active = [&](int r) {
    int const slot = p.row_slots[r];
    return slot >= 0 && slot < p.num_slots;
  };

  // (1) Per-layer counts: each thread owns whole layers, so no atomics are needed.
  for (int l = tid; l < p.num_layers; l += Threads) {
    unsigned long long counts[4] = {0, 0, 0, 0};
    FfnDecision const* const record = p.decisions + static_cast<std::int64_t>(l) * p.rows;
    for (int r = 0; r < p.rows; ++r) {
      if (active(r)) ++counts[static_cast<int>(record[r]) & 3];
    }
    for (int k = 0; k < 4; ++k) {
      if (counts[k] != 0) p.layer_counts[l * 4 + k] += counts[k];
    }
  }

  // (2) Warm-up count and trace records, rows in order.
  bool const tracing = p.trace.capacity > 0 && p.totals[kTraceEnabled] != 0;
  if (tid == 0) {
    trace_base = p.totals[kTraceCount];
    after_warmup = 0;
  }
  __syncthreads();
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

//! `skipllm::begin_sequence` on slots [first, first + count).
template <int Threads>
SKIPLLM_KERNEL void __launch_bounds__(Threads) begin_sequences_kernel(SkipState* states, int first, int count) {
  int const i = static_cast<int>(blockIdx.x) * Threads + static_cast<int>(threadIdx.x);
  if (i < count) skipllm::begin_sequence(states[first + i]);
}

//! A dense FFN batch of `rows` rows (prefill): identity row list, every flag set, the count.
template <int Threads>
SKIPLLM_KERNEL void __launch_bounds__(Threads) dense_batch_kernel(int* run_rows, unsigned char* row_runs,
                                                                  int* num_run_rows, int rows) {
  int const i = static_cast<int>(blockIdx.x) * Threads + static_cast<int>(threadIdx.x);
  if (i < rows) {
    run_rows[i] = i;
    row_runs[i] = 1;
  }
  if (i == 0) *num_run_rows = rows;
}

inline void launch_token_end(TokenEndParams const& params, cudaStream_t stream) {
  token_end_kernel<kTokenThreads><<<1, kTokenThreads, 0, stream>>>(params);
  check_launch("token_end_kernel launch");
}

inline void launch_begin_sequences(SkipState* states, int first, int count, cudaStream_t stream) {
  if (count <= 0) return;
  begin_sequences_kernel<kTokenThreads><<<(count + kTokenThreads - 1) / kTokenThreads, kTokenThreads, 0, stream>>>(
      states, first, count);
  check_launch("begin_sequences_kernel launch");
}

inline void launch_dense_batch(int* run_rows, unsigned char* row_runs, int* num_run_rows, int rows, cudaStream_t stream) {
  int const blocks = rows > 0 ? (rows + kTokenThreads - 1) / kTokenThreads : 1;
  dense_batch_kernel<kTokenThreads><<<blocks, kTokenThreads, 0, stream>>>(run_rows, row_runs, num_run_rows, rows);
  check_launch("dense_batch_kernel launch");
}

}  // namespace skipllm::cuda
