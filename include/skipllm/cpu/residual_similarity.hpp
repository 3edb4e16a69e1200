//! @file
//! CPU backend primitives: the residual add after an FFN, fused with the similarity pass.
//!
//! Both read h (the residual) and f (the FFN output) once. Eight independent accumulator
//! lanes give the compiler a vectorizable loop and shorten the fp32 summation chains (a
//! little more accurate than one running sum, and closer to the GPU's tree reduction).
#pragma once

#include <cstdint>

#include "../concepts.hpp"
#include "../numeric.hpp"

namespace skipllm::cpu {

namespace detail {
inline constexpr int kLanes = 8;

template <class Metric>
typename Metric::Accumulator combine_lanes(typename Metric::Accumulator const (&lanes)[kLanes]) {
  // Pairwise, so the order is fixed and independent of the compiler.
  auto const a = Metric::combine(Metric::combine(lanes[0], lanes[1]), Metric::combine(lanes[2], lanes[3]));
  auto const b = Metric::combine(Metric::combine(lanes[4], lanes[5]), Metric::combine(lanes[6], lanes[7]));
  return Metric::combine(a, b);
}
}  // namespace detail

//! x <- x + f over `n` elements (stored back in x's type, rounding to nearest even), and
//! returns `Metric`'s score of (before = x, after = x + f) computed in fp32 before rounding.
template <class Metric, class T, class F>
float residual_add_similarity(T* x, F const* f, std::int64_t n) noexcept {
  using Acc = typename Metric::Accumulator;
  Acc lanes[detail::kLanes] = {};
  std::int64_t i = 0;
  for (; i + detail::kLanes <= n; i += detail::kLanes) {
    for (int j = 0; j < detail::kLanes; ++j) {
      float const before = to_float(x[i + j]);
      float const after = before + to_float(f[i + j]);
      lanes[j] = Metric::accumulate(lanes[j], before, after);
      x[i + j] = from_float<T>(after);
    }
  }
  for (int j = 0; j < detail::kLanes && i < n; ++i, ++j) {  // fewer than kLanes left
    float const before = to_float(x[i]);
    float const after = before + to_float(f[i]);
    lanes[j] = Metric::accumulate(lanes[j], before, after);
    x[i] = from_float<T>(after);
  }
  return Metric::finalize(detail::combine_lanes<Metric>(lanes));
}

//! x <- x + f, without a score (dense prefill).
template <class T, class F>
void residual_add(T* x, F const* f, std::int64_t n) noexcept {
  for (std::int64_t i = 0; i < n; ++i) x[i] = from_float<T>(to_float(x[i]) + to_float(f[i]));
}

}  // namespace skipllm::cpu
