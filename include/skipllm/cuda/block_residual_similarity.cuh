//! @file
//! BlockResidualSimilarity: the residual add after an FFN, fused with the similarity metric,
//! for one row, by one thread block.
//!
//! Every thread walks its chunks of the row (16-byte vectors where alignment allows), forms
//! after = before + f in fp32, stores it back in x's storage type and folds (before, after)
//! into its own `Metric::Accumulator`. A fixed pairwise tree over the accumulators, with
//! `Metric::combine`, then gives the row's aggregate; `Metric::finalize` turns it into the
//! score. The metric is any `SimilarityMetric` (policy/similarity.hpp): the kernel never knows
//! what it measures.
//!
//! Numerics: the order is row_reduction.cuh's, independent of the row's alignment and
//! replicated on the host (`gpu_order_aggregate`); the CPU backend sums eight interleaved lanes
//! instead, so scores agree within `score_difference_bound`, not bit for bit. The stored x
//! agrees bit for bit (the same fp32 add, rounded to nearest even).
#pragma once

#include <cstdint>

#include "../concepts.hpp"
#include "row_reduction.cuh"
#include "storage.cuh"

namespace skipllm::cuda {

namespace detail {

//! One thread's share of the fused pass: x <- x + f, folding (x, x + f) into `acc`.
template <class Metric, class T>
struct AddAccumulate {
  static constexpr int kWidth = vector_width_v<T>;
  T* x;
  T const* f;
  typename Metric::Accumulator acc;

  __device__ __forceinline__ void element(std::int64_t i) {
    float const before = load_float(x[i]);
    float const after = before + load_float(f[i]);
    acc = Metric::accumulate(acc, before, after);
    x[i] = store_float<T>(after);
  }
  __device__ __forceinline__ void vector(std::int64_t i) {
    Vector<T> xv = *reinterpret_cast<Vector<T> const*>(x + i);
    Vector<T> const fv = *reinterpret_cast<Vector<T> const*>(f + i);
#pragma unroll
    for (int j = 0; j < kWidth; ++j) {
      float const before = load_float(xv.v[j]);
      float const after = before + load_float(fv.v[j]);
      acc = Metric::accumulate(acc, before, after);
      xv.v[j] = store_float<T>(after);
    }
    *reinterpret_cast<Vector<T>*>(x + i) = xv;
  }
};

}  // namespace detail

//! Block-wide x <- x + f over one row, returning the metric's aggregate of (x, x + f).
//!
//! @tparam Metric  a SimilarityMetric
//! @tparam Threads the block's thread count (blockDim.x; a multiple of 32)
//!
//! Shared memory is the caller's (`TempStorage`), as with CUB's collectives. Every thread of
//! the block must call `add` (it synchronizes).
template <class Metric, int Threads>
class BlockResidualSimilarity {
  static_assert(check_similarity_metric<Metric>());
  static_assert(Threads % 32 == 0 && Threads >= 32 && Threads <= 1024,
                "skipllm: block thread count must be a multiple of 32 in [32, 1024]");

 public:
  using Accumulator = typename Metric::Accumulator;

 private:
  using Reduce = BlockTreeReduce<Metric, Threads>;

 public:
  using TempStorage = typename Reduce::TempStorage;

  __device__ __forceinline__ explicit BlockResidualSimilarity(TempStorage& storage) : storage_(storage) {}

  //! x[i] <- x[i] + f[i] for i < n; returns the aggregate over the row, valid in thread 0.
  template <class T>
  __device__ __forceinline__ Accumulator add(T* __restrict__ x, T const* __restrict__ f, std::int64_t n) {
    detail::AddAccumulate<Metric, T> op{x, f, Accumulator{}};
    RowSplit const split = split_row(x, f, n);
    for_each_chunk_in_row<Threads>(split.vectorized && split.head == 0, n, static_cast<int>(threadIdx.x), op);
    return Reduce(storage_).reduce(op.acc);
  }

  //! `add`, then the row's score (`Metric::finalize`), valid in thread 0.
  template <class T>
  __device__ __forceinline__ float add_and_score(T* __restrict__ x, T const* __restrict__ f, std::int64_t n) {
    Accumulator const total = add(x, f, n);
    return threadIdx.x == 0 ? Metric::finalize(total) : 0.0f;
  }

 private:
  TempStorage& storage_;
};

}  // namespace skipllm::cuda
