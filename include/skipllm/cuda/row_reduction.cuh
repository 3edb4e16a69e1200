//! @file
//! The order in which the GPU folds a row into a similarity score, a host replica of it, and the
//! stated bound between the GPU's score and the CPU backend's.
//!
//! Order (a function of the row length, the block size and the storage type only, never of the
//! row's address): the row is cut into chunks of `width` consecutive elements (one 16-byte
//! vector of the storage type); thread t folds chunks t, t + Threads, t + 2 Threads, ... element
//! by element in index order; the block's accumulators are then combined by a pairwise tree,
//! acc[t] <- combine(acc[t], acc[t + s]) for s = Threads / 2, ..., 1. A row whose start is not
//! 16-byte aligned in x and f walks the same chunks with scalar loads, so alignment changes the
//! speed, never the score.
//!
//! Why not the CPU's order: the CPU backend sums eight lanes of n / 8 terms each, a dependency
//! chain a GPU block cannot split. Both sides form the same per-element terms (no FMA
//! contraction: detail/math.hpp), so the scores differ only by fp32 summation error;
//! `score_difference_bound` states it (the standard gamma_k bound of both orders), and decisions
//! agree except for rows scoring inside that band around tau.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "../policy/similarity.hpp"
#include "config.cuh"
#include "storage.cuh"

namespace skipllm::cuda {

//! Elements of one chunk for a storage type of `elem_bytes` bytes (one 16-byte vector).
constexpr int row_chunk_width(int elem_bytes) noexcept { return kVectorBytes / elem_bytes; }

//! Calls `op.vector(start)` (a whole 16-byte-aligned chunk, when `aligned`) or `op.element(i)`
//! for each element of thread `tid`'s chunks, in the order stated above.
template <int Threads, class Op>
__device__ __forceinline__ void for_each_chunk_in_row(bool aligned, std::int64_t n, int tid, Op& op) {
  constexpr int kWidth = Op::kWidth;
  std::int64_t const chunks = (n + kWidth - 1) / kWidth;
  for (std::int64_t c = tid; c < chunks; c += Threads) {
    std::int64_t const start = c * kWidth;
    if (aligned && start + kWidth <= n) {
      op.vector(start);
    } else {
      std::int64_t const end = start + kWidth < n ? start + kWidth : n;
      for (std::int64_t i = start; i < end; ++i) op.element(i);
    }
  }
}

//! The pairwise tree over a block's accumulators, in shared memory. The result is valid in
//! thread 0. Every thread must call `reduce` (it synchronizes).
template <class Metric, int Threads>
class BlockTreeReduce {
  static_assert((Threads & (Threads - 1)) == 0, "skipllm: the tree reduction needs a power-of-two block");

 public:
  using Accumulator = typename Metric::Accumulator;
  struct TempStorage {
    Accumulator acc[Threads];
  };

  __device__ __forceinline__ explicit BlockTreeReduce(TempStorage& storage) : storage_(storage) {}

  __device__ __forceinline__ Accumulator reduce(Accumulator const& mine) {
    int const tid = static_cast<int>(threadIdx.x);
    storage_.acc[tid] = mine;
    __syncthreads();
#pragma unroll
    for (int s = Threads / 2; s > 0; s >>= 1) {
      if (tid < s) storage_.acc[tid] = Metric::combine(storage_.acc[tid], storage_.acc[tid + s]);
      __syncthreads();
    }
    return storage_.acc[0];
  }

 private:
  TempStorage& storage_;
};

//! Host replica of the GPU's order: the aggregate a block of `threads` threads forms over
//! (before[i], after[i]) with chunks of `width`. Bit for bit what the device computes.
template <class Metric>
typename Metric::Accumulator gpu_order_aggregate(float const* before, float const* after, std::int64_t n, int threads,
                                                 int width) {
  using Acc = typename Metric::Accumulator;
  std::vector<Acc> acc(static_cast<std::size_t>(threads), Acc{});
  std::int64_t const chunks = (n + width - 1) / width;
  for (int t = 0; t < threads; ++t) {
    for (std::int64_t c = t; c < chunks; c += threads) {
      std::int64_t const end = std::min<std::int64_t>(c * width + width, n);
      for (std::int64_t i = c * width; i < end; ++i) {
        acc[static_cast<std::size_t>(t)] = Metric::accumulate(acc[static_cast<std::size_t>(t)], before[i], after[i]);
      }
    }
  }
  for (int s = threads / 2; s > 0; s >>= 1) {
    for (int t = 0; t < s; ++t) {
      acc[static_cast<std::size_t>(t)] =
          Metric::combine(acc[static_cast<std::size_t>(t)], acc[static_cast<std::size_t>(t + s)]);
    }
  }
  return acc[0];
}

namespace detail {

//! gamma_k = k u / (1 - k u): the relative error bound of a sum whose terms pass through at
//! most k roundings (u = 2^-24, round to nearest).
inline double gamma(double k) {
  double const u = std::numeric_limits<float>::epsilon() / 2.0;
  return k * u / (1.0 - k * u);
}

//! Roundings on the longest path of the CPU backend's sum: n / 8 per lane, 3 tree levels.
inline double cpu_sum_depth(std::int64_t n) { return static_cast<double>((n + 7) / 8) + 3.0; }

//! Roundings on the longest path of the GPU's sum (the order above).
inline double gpu_sum_depth(std::int64_t n, int threads, int width) {
  std::int64_t const chunks = (n + width - 1) / width;
  std::int64_t const per_thread = (chunks + threads - 1) / threads;
  return static_cast<double>(per_thread * width) + std::log2(static_cast<double>(threads));
}

}  // namespace detail

//! The most the GPU's score of a row can differ from the CPU backend's, for a row of `n`
//! elements the GPU reduces with `threads` threads and chunks of `width`, when the scores are
//! near `score`. Derived from the gamma_k bounds of both orders over the same terms, plus the
//! finalize roundings; a factor of 1.01 covers the second-order terms. Cosine and
//! RelativeUpdate only (a user metric states its own).
template <class Metric>
double score_difference_bound(double score, std::int64_t n, int threads, int width) {
  double const u = std::numeric_limits<float>::epsilon() / 2.0;
  double const g = detail::gamma(detail::cpu_sum_depth(n)) + detail::gamma(detail::gpu_sum_depth(n, threads, width));
  double const s = std::fabs(score);
  if constexpr (std::is_same_v<Metric, policy::Cosine>) {
    // dot: |error| <= gamma * sum|h_i x_i| <= gamma * |h||x| (Cauchy-Schwarz); each squared
    // norm: relative gamma, halved by its sqrt; then sqrt, sqrt, multiply, divide.
    return 1.01 * (g * (1.0 + s) + 8.0 * u * s);
  } else if constexpr (std::is_same_v<Metric, policy::RelativeUpdate>) {
    // r = |f| / |h| = 1 - score: relative gamma from the two sums, 3 roundings each side
    // (sqrt, sqrt, divide); then 1 - r.
    return 1.01 * (std::fabs(1.0 - score) * (g + 6.0 * u) + 2.0 * u * (1.0 + s));
  } else {
    static_assert(std::is_same_v<Metric, policy::Cosine>, "skipllm: no stated bound for this metric");
    return 0.0;
  }
}

}  // namespace skipllm::cuda
