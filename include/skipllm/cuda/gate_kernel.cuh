//! @file
//! gate_kernel: the per-layer decision kernel that always runs (it is where skipping is
//! decided, so it cannot itself be skipped).
//!
//! Per layer and decode step it (1) decides every row with BlockGate (the decision.hpp
//! protocol on device-resident SkipStates), (2) writes the row flags, the compacted row list,
//! the count and the step record, (3) sets the layer's graph IF-node condition to "any row
//! runs" (one thread, once: cudaGraphSetConditional must not race), and (4) gathers the running
//! rows of the residual stream into the compacted FFN input, zeroing the rows past the count.
//!
//! Launch: one block per FFN batch row when gathering (block b fills batch row b), else one
//! block. Every block decides every row (a few hundred `decide` calls at most); only block 0
//! publishes. See block_gate.cuh for why states are double-buffered.
#pragma once

#include "../row_view.hpp"
#include "block_gate.cuh"
#include "conditional_node.cuh"
#include "storage.cuh"

namespace skipllm::cuda {

//! Threads per gate block (the closed list has one entry: rows are few, the gather is short).
inline constexpr int kGateThreads = 128;

//! Everything one gate launch needs. `T` is the kernel-side storage type.
template <class Policies, class T>
struct GateParams {
  GateArgs<Policies> gate;
  RowView<T const> residual;                 //!< x, [rows, hidden]
  RowView<T> ffn_input;                      //!< compacted FFN input, [rows, hidden]; data == nullptr: no gather
  cudaGraphConditionalHandle condition = 0;  //!< the layer's IF node, when `set_condition`
  bool set_condition = false;
};

template <class Policies, class T, int Threads>
SKIPLLM_KERNEL void __launch_bounds__(Threads) gate_kernel(GateParams<Policies, T> const params) {
  using Gate = BlockGate<Policies, Threads>;
  __shared__ typename Gate::TempStorage storage;
  bool const gather = params.ffn_input.data != nullptr;
  int const position = static_cast<int>(blockIdx.x);
  bool const publish = blockIdx.x == 0;
  typename Gate::Result const result = Gate(storage).run(params.gate, gather ? position : -1, publish);
  if (publish && threadIdx.x == 0 && params.set_condition) { set_condition(params.condition, result.num_run_rows > 0); }
  if (gather && position < params.ffn_input.rows) {
    T* const dst = params.ffn_input.row(position);
    if (result.source_row >= 0) {
      copy_row<Threads>(dst, params.residual.row(result.source_row), params.residual.cols);
    } else {
      zero_row<Threads>(dst, params.ffn_input.cols);
    }
  }
}

//! Enqueues one gate. `blocks`: the FFN batch rows to gather (1 without a gather).
template <class Policies, class T>
void launch_gate(GateParams<Policies, T> const& params, int blocks, cudaStream_t stream) {
  int const grid = blocks > 0 ? blocks : 1;
  gate_kernel<Policies, T, kGateThreads><<<grid, kGateThreads, 0, stream>>>(params);
  check_launch("gate_kernel launch");
}

}  // namespace skipllm::cuda
