//! @file
//! Gate: what the decision kernel tells a layer's FFN, and the early-exit guard.
//!
//! The gate kernel (gate_kernel.cuh) writes, per layer and decode step, which rows' FFN runs:
//! a flag per residual row, the list of those rows (compacted: entry i is the residual row
//! whose FFN input sits at row i of the FFN batch) and their count. The FFN reads them from
//! device memory, so nothing travels back to the host.
//!
//! Early exit (SkipMechanism::kEarlyExit): an engine that does not use graphs launches its FFN
//! kernels anyway and starts each with
//!
//!     if (!skipllm::cuda::ffn_any_runs(gate)) return;          // nothing to do this step
//!     if (!skipllm::cuda::ffn_row_runs(gate, row)) return;     // a per-row kernel's row
//!
//! so a skipped FFN costs one launch and one load per kernel and reads no weights. Under a CUDA
//! graph IF node the guard is not needed (the body does not run), but is harmless.
#pragma once

#include "config.cuh"

namespace skipllm::cuda {

//! Device-side view of one layer's decision for a decode step. Trivially copyable: pass it by
//! value to kernels. All pointers are device memory owned by the stack's workspace.
struct Gate {
  unsigned char const* row_runs = nullptr;  //!< [rows of the step]: 1 where that residual row's FFN runs
  int const* rows = nullptr;                //!< [rows of the step]: residual row of FFN batch row i; -1 past the count
  int const* num_rows = nullptr;            //!< scalar: how many FFN batch rows are live this step
};

//! True when at least one row's FFN runs this step.
__device__ __forceinline__ bool ffn_any_runs(Gate const& gate) { return *gate.num_rows > 0; }

//! True when row `row` of the FFN batch (the compacted rows the FFN computes) is live. Rows at
//! or past the count hold zeros and their outputs are ignored.
__device__ __forceinline__ bool ffn_row_runs(Gate const& gate, int row) { return row < *gate.num_rows; }

//! The residual row behind FFN batch row `row` (valid when `ffn_row_runs(gate, row)`).
__device__ __forceinline__ int ffn_residual_row(Gate const& gate, int row) { return gate.rows[row]; }

//! True when residual row `residual_row` (not compacted) has its FFN run: for FFNs that read
//! the residual stream in place instead of the compacted batch.
__device__ __forceinline__ bool ffn_residual_row_runs(Gate const& gate, int residual_row) {
  return gate.row_runs[residual_row] != 0;
}

}  // namespace skipllm::cuda
