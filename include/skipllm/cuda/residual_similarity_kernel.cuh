//! @file
//! residual_similarity_kernel: x <- x + f after an FFN, with the similarity measured in the same
//! pass, one block per row; the FFN's rows are scattered back to their residual rows.
//!
//! Row i of the FFN output belongs to residual row `rows[i]` (the gate's compacted list), for
//! i below the live count; blocks past the count return at once. Thread 0 records the score and
//! hands it to `skipllm::observe` on the row's SkipState; with a WithRowSquares metric it also
//! stores the new row's sum of squares for the host's next RMSNorm (next_norm.cuh). Every pointer but the two views is
//! optional, so the same kernel serves the decode step, dense prefill (identity rows, no state)
//! and a bare "add and score these rows" call.
//!
//! Instantiation: one kernel per (Metric, storage type, block size). Block sizes come from a
//! closed list of two, chosen from the hidden size (`residual_block_threads`): with 16-byte
//! vectors, 128 threads cover rows up to 2k (fp32: 1k) elements in two vectors a thread, 512
//! threads cover the 4k-8k rows of 7B-70B models in one to four.
#pragma once

#include <cstdint>
#include <type_traits>

#include "../decision.hpp"
#include "../row_view.hpp"
#include "block_residual_similarity.cuh"
#include "next_norm.cuh"
#include "row_reduction.cuh"
#include "storage.cuh"

namespace skipllm::cuda {

//! The closed list of block sizes for this kernel.
inline constexpr int kResidualThreadsSmall = 128;
inline constexpr int kResidualThreadsLarge = 512;

//! The block size for rows of `hidden` elements of `elem_bytes` bytes.
constexpr int residual_block_threads(std::int64_t hidden, int elem_bytes) noexcept {
  std::int64_t const vectors = (hidden * elem_bytes + kVectorBytes - 1) / kVectorBytes;
  return vectors <= 2 * kResidualThreadsSmall ? kResidualThreadsSmall : kResidualThreadsLarge;
}

//! The stated CPU/GPU score bound (row_reduction.cuh) for rows of `hidden` elements of
//! `elem_bytes` bytes, with the block size this kernel uses for them.
template <class Metric>
double residual_score_bound(double score, std::int64_t hidden, int elem_bytes) {
  return score_difference_bound<Metric>(score, hidden, residual_block_threads(hidden, elem_bytes),
                                        row_chunk_width(elem_bytes));
}

//! One launch's arguments. `T` is the kernel-side storage type.
template <class T>
struct ResidualParams {
  RowView<T> residual;             //!< x, [rows, hidden]
  RowView<T const> ffn_output;     //!< f, [FFN batch rows, hidden]
  int const* rows = nullptr;       //!< [FFN batch rows]: residual row of f's row i; nullptr: row i
  int const* num_rows = nullptr;   //!< live FFN batch rows (device scalar); nullptr: ffn_output.rows
  int const* row_slots = nullptr;  //!< [residual rows]: the row's slot, for `states`
  SkipState* states = nullptr;     //!< observe() the score into states[row_slots[r]]; nullptr: no state
  float* scores = nullptr;         //!< [residual rows]: the score of row r; nullptr: not recorded
  //! [residual rows]: sum of squares of row r after the add (next_norm.cuh), written only when
  //! the metric is a WithRowSquares; nullptr: not recorded
  double* sum_squares = nullptr;
};

template <class Metric, class T, int Threads>
SKIPLLM_KERNEL void __launch_bounds__(Threads) residual_similarity_kernel(ResidualParams<T> const params) {
  using Block = BlockResidualSimilarity<Metric, Threads>;
  __shared__ typename Block::TempStorage storage;
  int const i = static_cast<int>(blockIdx.x);
  int const live = params.num_rows != nullptr ? *params.num_rows : static_cast<int>(params.ffn_output.rows);
  if (i >= live) return;  // the whole block: nothing for this FFN row (the early-exit path)
  int const r = params.rows != nullptr ? params.rows[i] : i;
  auto const total = Block(storage).add(params.residual.row(r), params.ffn_output.row(i), params.residual.cols);
  if (threadIdx.x == 0) {
    float const score = Metric::finalize(total);
    if constexpr (sums_row_squares_v<Metric>) {
      if (params.sum_squares != nullptr) params.sum_squares[r] = total.squares;
    }
    if (params.scores != nullptr) params.scores[r] = score;
    if (params.states != nullptr) {
      int const slot = params.row_slots[r];
      if (slot >= 0) skipllm::observe(params.states[slot], score);
    }
  }
}

//! Enqueues the kernel over `blocks` FFN batch rows (blocks past the live count return).
template <class Metric, class T>
void launch_residual_similarity(ResidualParams<T> const& params, int blocks, cudaStream_t stream) {
  if (blocks <= 0) return;
  if (residual_block_threads(params.residual.cols, sizeof(T)) == kResidualThreadsSmall) {
    residual_similarity_kernel<Metric, T, kResidualThreadsSmall><<<blocks, kResidualThreadsSmall, 0, stream>>>(params);
  } else {
    residual_similarity_kernel<Metric, T, kResidualThreadsLarge><<<blocks, kResidualThreadsLarge, 0, stream>>>(params);
  }
  check_launch("residual_similarity_kernel launch");
}

//! The CPU backend's `residual_add_similarity` on the device, for every row of `x`: x <- x + f
//! row by row, `scores[r]` <- the metric's score of row r (device memory, [rows]). No gate, no
//! state: the building block, and what the tests compare with the CPU.
template <class Metric, class T, class F>
void residual_add_similarity(RowView<T> x, RowView<F> f, float* scores, cudaStream_t stream) {
  static_assert(is_storage_v<T> && is_storage_v<F>,
                "skipllm: CUDA storage type must be float, __half, __nv_bfloat16, skipllm::half_t or "
                "skipllm::bfloat16_t");
  if constexpr (is_storage_v<T> && is_storage_v<F>) {
    static_assert(std::is_same_v<device_storage_t<T>, device_storage_t<F>>,
                  "skipllm: the CUDA residual add needs the FFN output in the residual's storage type");
    using D = device_storage_t<T>;
    ResidualParams<D> p;
    p.residual = RowView<D>{device_pointer(x.data), x.rows, x.cols, x.stride};
    p.ffn_output = RowView<D const>{device_pointer(f.data), f.rows, f.cols, f.stride};
    p.scores = scores;
    launch_residual_similarity<Metric>(p, static_cast<int>(x.rows), stream);
  }
}

}  // namespace skipllm::cuda
