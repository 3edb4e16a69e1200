//! @file
//! BlockGate: one layer's skip decision for every row of a decode step, by one thread block,
//! and the stream compaction of the rows whose FFN runs.
//!
//! Each thread takes rows (thread t: rows t, t + Threads, ...), copies the row's `SkipState`
//! from device memory and calls the shared protocol of decision.hpp on it: `begin_token` at
//! layer 0, then `decide`. The policy logic is not restated here; this file only moves states
//! and flags. A `cub::BlockScan` (exclusive sum of the run flags) gives every running row its
//! position in the compacted FFN batch.
//!
//! Compaction choice: a block-local scan, not `cub::DeviceSelect::Flagged`. A decode step has
//! at most a few hundred rows, which one block scans in a few hundred cycles, inside the gate
//! kernel that runs anyway; DeviceSelect would add a temporary-storage pass and two launches
//! per layer (and a host-side size query at plan time). Above ~1k rows a device-wide select
//! would win; decode batches do not get there.
//!
//! Several blocks may run the same gate redundantly (each gathers a different FFN batch row and
//! must know which residual row lands there), so states are read from `states_in` and written
//! to a different buffer, `states_out`, by the one publishing block only: no block ever reads a
//! state another block is writing.
#pragma once

#include <cub/block/block_scan.cuh>

#include "../decision.hpp"
#include "../skip_state.hpp"
#include "config.cuh"

namespace skipllm::cuda {

//! Where one layer's gate reads and writes. Trivially copyable. Device pointers.
template <class Policies>
struct GateArgs {
  Policies const* policies = nullptr;    //!< one value
  SkipState const* states_in = nullptr;  //!< [num_slots]
  SkipState* states_out = nullptr;       //!< [num_slots]
  int const* row_slots = nullptr;        //!< [rows]: the slot of row r; negative for a padding row
  int num_slots = 0;
  int rows = 0;  //!< rows of this decode step
  int layer = 0;
  int num_layers = 0;
  // Written by the publishing block:
  unsigned char* row_runs = nullptr;  //!< [rows]
  int* run_rows = nullptr;            //!< [rows]: compacted list; -1 past the count
  int* num_run_rows = nullptr;        //!< scalar
  FfnDecision* decisions = nullptr;   //!< [rows]: this layer's row of the step record
  float* scores = nullptr;            //!< [rows]: this layer's row of the step record (NaN here)
};

//! @tparam Policies a skipllm::Policies<...> bundle
//! @tparam Threads  the block's thread count (blockDim.x)
template <class Policies, int Threads>
class BlockGate {
  static_assert(Threads % 32 == 0 && Threads >= 32 && Threads <= 1024,
                "skipllm: block thread count must be a multiple of 32 in [32, 1024]");
  using Scan = cub::BlockScan<int, Threads>;

 public:
  struct TempStorage {
    typename Scan::TempStorage scan;
    int source_row;
  };

  struct Result {
    int num_run_rows;  //!< rows whose FFN runs
    int source_row;    //!< the residual row at FFN batch position `position`; -1 if none
  };

  __device__ __forceinline__ explicit BlockGate(TempStorage& storage) : storage_(storage) {}

  //! Decides every row. Every thread of the block must call it (it synchronizes). With
  //! `publish`, this block writes the states, the flags, the compacted list, the count and the
  //! step record; exactly one block per gate may publish.
  __device__ Result run(GateArgs<Policies> const& a, int position, bool publish) {
    int const tid = static_cast<int>(threadIdx.x);
    if (tid == 0) storage_.source_row = -1;
    __syncthreads();
    // Read in place: a bundle with LayerThresholds is ~1 KiB, which a per-thread copy would
    // spill to local memory in every thread (tests/device/check_ptx.cmake guards this).
    Policies const& policies = *a.policies;
    int total = 0;
    for (int base = 0; base < a.rows; base += Threads) {
      int const r = base + tid;
      int slot = -1;
      int runs = 0;
      SkipState state{};
      FfnDecision decision = FfnDecision::kSkip;
      if (r < a.rows) {
        int const s = a.row_slots[r];
        if (s >= 0 && s < a.num_slots) {
          slot = s;
          state = a.states_in[slot];
          if (a.layer == 0) skipllm::begin_token(policies, state);
          decision = skipllm::decide(policies, state, a.layer, a.num_layers, slot);
          runs = runs_ffn(decision) ? 1 : 0;
        }
      }
      int offset = 0;
      int chunk_total = 0;
      Scan(storage_.scan).ExclusiveSum(runs, offset, chunk_total);
      int const compact = total + offset;
      if (runs && compact == position) storage_.source_row = r;
      if (publish && r < a.rows) {
        a.row_runs[r] = static_cast<unsigned char>(runs);
        if (runs) a.run_rows[compact] = r;
        if (slot >= 0) {
          a.states_out[slot] = state;
          a.decisions[r] = decision;
          a.scores[r] = skipllm::detail::quiet_nan();  // the FFN's score, if it runs, comes later
        }
      }
      total += chunk_total;
      __syncthreads();  // the scan storage is reused; source_row is visible after the loop
    }
    if (publish) {
      for (int i = total + tid; i < a.rows; i += Threads) a.run_rows[i] = -1;
      if (tid == 0) *a.num_run_rows = total;
    }
    return Result{total, storage_.source_row};
  }

 private:
  TempStorage& storage_;
};

}  // namespace skipllm::cuda
