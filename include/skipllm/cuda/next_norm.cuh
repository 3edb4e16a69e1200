//! @file
//! The next-RMSNorm hook: the residual add after an FFN also yields the statistic the engine's
//! next RMSNorm needs, so that norm needs no reduction of its own.
//!
//! After `x += FFN(norm(x))` a LLaMA-style layer stack normalizes x again (the next layer's
//! attention norm, or the final norm): a second pass over the row for its sum of squares.
//! skipllm's residual kernel already reads and writes every element of the row (the add is
//! fused with the similarity), so it can fold sum(x_new^2) into the same pass. A CUDA host asks
//! for it by declaring one more member:
//!
//!     double* residual_sum_squares(Step&);   // device memory, [rows of the step's residual]
//!
//! Then, for every residual row r whose FFN ran (decode and prefill), the residual kernel
//! writes sum_i x_new[r][i]^2 to element r, in double (each square is exact in double; the sum
//! is the block's fixed order, `gpu_order_aggregate` replicates it), before the step's next
//! host call. Rows whose FFN was skipped are left alone: their residual did not change, so a
//! host that writes the statistic wherever it changes the residual itself (the embedding, its
//! attention add) always holds the current row's sum of squares, and every RMSNorm becomes a
//! scale: x * 1 / sqrt(sum / n + eps) * w. The squared values are the fp32 sums before the
//! store (for an fp32 residual, exactly the stored row).
//!
//! A host without the member gets the plain metric: the same kernels, nothing more computed.
//! With it, the residual kernel is instantiated on `WithRowSquares<Metric>` instead of the
//! metric (still one residual kernel per engine configuration).
#pragma once

#include <concepts>

#include "../concepts.hpp"
#include "../config.hpp"
#include "../detail/math.hpp"
#include "host.cuh"

namespace skipllm::cuda {

//! A SimilarityMetric that also sums the squares of the new row (`after`) in double; its score
//! is `Metric`'s. Host and device code: the host replica of the GPU order works on it too.
template <class Metric>
struct WithRowSquares {
  static_assert(check_similarity_metric<Metric>());
  using metric = Metric;

  struct Accumulator {
    typename Metric::Accumulator metric;
    double squares = 0.0;  //!< sum after_i^2
  };

  SKIPLLM_HOST_DEVICE static Accumulator accumulate(Accumulator a, float before, float after) noexcept {
    return {Metric::accumulate(a.metric, before, after), skipllm::detail::add_rn(a.squares, square(after))};
  }
  SKIPLLM_HOST_DEVICE static Accumulator combine(Accumulator a, Accumulator b) noexcept {
    return {Metric::combine(a.metric, b.metric), skipllm::detail::add_rn(a.squares, b.squares)};
  }
  SKIPLLM_HOST_DEVICE static float finalize(Accumulator a) noexcept { return Metric::finalize(a.metric); }

 private:
  // A float's square is exact in double; the sum rounds each step to nearest (no contraction).
  SKIPLLM_HOST_DEVICE static double square(float v) noexcept { return static_cast<double>(v) * v; }
};

//! True for WithRowSquares<M>: the residual kernel then stores the row's sum of squares.
template <class Metric>
inline constexpr bool sums_row_squares_v = false;
template <class Metric>
inline constexpr bool sums_row_squares_v<WithRowSquares<Metric>> = true;

//! A CUDA host that takes the next-RMSNorm statistic: `double* residual_sum_squares(Step&)`.
template <class H>
concept CudaHostFusesNextNorm = CudaHostHasStep<H> && requires(H& h, typename H::Step& s) {
  { h.residual_sum_squares(s) } -> std::same_as<double*>;
};

//! The metric the residual kernel runs for `Host`: `Metric`, or WithRowSquares<Metric> when the
//! host takes the next-RMSNorm statistic.
template <class Host, class Metric>
using residual_metric_t = std::conditional_t<CudaHostFusesNextNorm<Host>, WithRowSquares<Metric>, Metric>;

}  // namespace skipllm::cuda
