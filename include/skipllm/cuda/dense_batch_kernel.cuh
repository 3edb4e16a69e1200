//! @file
//! dense_batch_kernel: the gate's output for a dense step (prefill), where every row runs its
//! FFN: the identity row list, every run flag set, the count. Plus its launcher.
#pragma once

#include "config.cuh"

namespace skipllm::cuda {

inline constexpr int kDenseBatchThreads = 256;

//! A dense FFN batch of `rows` rows: run_rows[i] = i, row_runs[i] = 1, *num_run_rows = rows.
template <int Threads>
SKIPLLM_KERNEL void __launch_bounds__(Threads)
    dense_batch_kernel(int* run_rows, unsigned char* row_runs, int* num_run_rows, int rows) {
  int const i = static_cast<int>(blockIdx.x) * Threads + static_cast<int>(threadIdx.x);
  if (i < rows) {
    run_rows[i] = i;
    row_runs[i] = 1;
  }
  if (i == 0) *num_run_rows = rows;
}

inline void launch_dense_batch(int* run_rows, unsigned char* row_runs, int* num_run_rows, int rows,
                               cudaStream_t stream) {
  constexpr int kThreads = kDenseBatchThreads;
  int const blocks = rows > 0 ? (rows + kThreads - 1) / kThreads : 1;
  dense_batch_kernel<kThreads><<<blocks, kThreads, 0, stream>>>(run_rows, row_runs, num_run_rows, rows);
  check_launch("dense_batch_kernel launch");
}

}  // namespace skipllm::cuda
